"""Measuring page faults that wait for I/O on the running kernel, and the model against it.

``measure(config) -> Dataset`` runs a C harness (built at run time with the system compiler) that
times every first touch of a cold, ``MADV_RANDOM``-mapped file by groups of threads, with optional
``mmap_lock`` writers (in the process, or in a separate process as a CPU-load control), plus the
device's O_DIRECT latency curve and the futex wake-up latency; with perf, one traced run per cell
counts ``mmap_lock`` acquisitions, waits and holds. ``calibrate`` fits the Scenario fields the
measurement pins down; ``compare`` predicts each measured configuration under ``mainline`` and sets
it against the measurement; ``fit_douyin`` fits ``android_warm_start`` to the published Douyin
numbers (kernel.md §1.4). ``main_measure``, ``main_calibrate`` and ``main_compare`` are the CLI.

Modules: ``build`` (compile the harness), ``system`` (kernel, device, read_ahead_kb), ``config``
(what to measure), ``runner`` (run the harness), ``parse`` (its output, classification, per-run
metrics), ``tracing`` (perf), ``run`` (``measure``), ``mapping`` (cell -> closest Scenario),
``calibrate`` (``calibrate``), ``compare`` (``compare``: the model against the measurement, and its
scores), ``douyin`` (``fit_douyin``), ``figure``, ``commands``; and the memcg refault loop (issue
12): ``cgroup`` (a memory cgroup of our own, v2 or v1), ``memcg`` (``measure_memcg``: threads that
map, walk and unmap files of their own under a limit, and the direct reclaim cost per page),
``memcg_compare`` (a cell as a Scenario, ``compare_memcg``).
"""

from .build import HarnessBuildError, build_harness
from .cgroup import CgroupUnavailable
from .calibrate import Calibration, calibrate, fit_douyin
from .compare import compare, error_table
from .commands import main_calibrate, main_compare, main_measure
from .config import Cell, MeasureConfig, WriterSpec
from .figure import plot_comparison, plot_device
from .mapping import closest_scenario
from .memcg import MemcgConfig, measure_memcg
from .memcg_compare import calibrate_memcg, compare_memcg
from .parse import HarnessError, classify
from .run import measure

__all__ = ["measure", "MeasureConfig", "WriterSpec", "Cell", "build_harness", "HarnessBuildError",
           "HarnessError", "classify", "Calibration", "calibrate", "compare", "error_table",
           "fit_douyin", "closest_scenario", "plot_comparison", "plot_device", "main_measure",
           "main_calibrate", "main_compare", "measure_memcg", "MemcgConfig", "CgroupUnavailable",
           "calibrate_memcg", "compare_memcg"]
