"""faultlock: page faults that wait for I/O under mmap_lock, per-VMA locks, folio locks and reclaim.

The notebook API::

    >>> import faultlock
    >>> s = faultlock.Scenario.preset("android_warm_start", threads=400)
    >>> ds = faultlock.simulate(s, policies=["mainline", "vma_retry"], faults=20_000)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .model.arguments import ArgumentError  # noqa: E402
from .model.policies import POLICIES, POLICY_TABLE, Policy  # noqa: E402
from .model.scenario import PRESETS, Scenario, parse_time  # noqa: E402
from .model.montecarlo.simulate import simulate  # noqa: E402
from .model.analytic import predict  # noqa: E402
from .sweeps import run_sweep  # noqa: E402

__all__ = ["ArgumentError", "Scenario", "PRESETS", "POLICIES", "POLICY_TABLE", "Policy",
           "parse_time", "simulate", "predict", "run_sweep", "__version__"]
