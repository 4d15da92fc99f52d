"""Tests of faultlock.measure: the C harness builds and measures, its output is parsed and
classified, perf events are turned into lock metrics, and calibration recovers parameters from
Monte Carlo data generated with them."""

import json
import math
import os
import shutil

import numpy as np
import pytest
import xarray as xr

import faultlock
from faultlock.measure import build, parse, tracing
from faultlock.measure.calibrate import (Calibration, _cv_from_mean_p99, calibrate,
                                         fit_device_curve, fit_lognormal)
from faultlock.measure.compare import compare, error_table
from faultlock.measure.config import Cell, MeasureConfig, WriterSpec
from faultlock.measure.mapping import closest_scenario
from faultlock.measure.system import RAM_FILESYSTEMS, check_disk_backed, mount_of


# -- the harness on this machine -----------------------------------------------------------------

def _platform_reason(directory) -> str | None:
    if os.uname().sysname != "Linux":
        return "the harness measures Linux page faults"
    try:
        build.find_compiler()
    except build.HarnessBuildError:
        return "no C compiler (cc, gcc or clang) to build the harness"
    if mount_of(directory)["fstype"] in RAM_FILESYSTEMS:
        return f"{directory} is on a RAM file system: no device to fault from"
    return None


@pytest.fixture(scope="module")
def disk_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("measure")
    reason = _platform_reason(path)
    if reason:
        # pytest's tmp dir may be on tmpfs; try the working directory's file system instead
        reason = _platform_reason(".") and reason
        if reason:
            pytest.skip(reason)
        path = None
    return str(path) if path is not None else "."


@pytest.fixture(scope="module")
def small_measurement(disk_dir):
    cfg = MeasureConfig(threads=(1, 2), groups=(1, 0), writers=(None, "thread:mmap:rate=2000"),
                        pages=96, repeats=2, device_depths=(1, 4), device_seconds=0.05,
                        trace="off", directory=disk_dir, budget=60, max_seconds=10)
    return cfg, __import__("faultlock.measure", fromlist=["measure"]).measure(cfg)


def test_harness_builds_once(tmp_path):
    if _platform_reason(".") and _platform_reason(str(tmp_path)):
        pytest.skip(_platform_reason("."))
    first = build.build_harness(directory=tmp_path)
    assert first.exists() and os.access(first, os.X_OK)
    mtime = first.stat().st_mtime_ns
    assert build.build_harness(directory=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime


def test_no_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(build.HarnessBuildError, match="needs a C compiler"):
        build.find_compiler()


def test_small_measurement_runs(small_measurement):
    cfg, ds = small_measurement
    cells = cfg.cells()
    assert ds.sizes["config"] == len(cells) == 6        # T=1: G=1 (G=0 is the same); T=2: G=1, 2
    assert list(ds["io_depth"].values) == [1, 4]
    assert ds.attrs["kernel_release"] == os.uname().release
    assert ds.attrs["tracing"].startswith("tracing off")
    for i, cell in enumerate(cells):
        shares = sum(float(ds[f"{c}_share"].values[i]) for c in ("major", "waiter", "minor",
                                                                 "nofault"))
        assert shares == pytest.approx(1.0)
        # a cold walk: every page is read once, so majors per page are ~1 (retries counted
        # major by the kernel can add a few)
        assert float(ds["touches"].values[i]) == cell.threads * cfg.pages
        majors = float(ds["major_share"].values[i]) * cell.threads * cfg.pages
        assert 0.9 * (cell.threads // cell.group) * cfg.pages <= majors
        assert majors <= 1.2 * (cell.threads // cell.group) * cfg.pages
        assert 1e-6 < float(ds["fault_latency_p50"].values[i]) < 0.1
        if cell.group == 1:
            assert float(ds["waiter_share"].values[i]) < 0.05
    lockstep = [i for i, c in enumerate(cells) if c.group == 2 and c.writer is None][0]
    # two threads in lock step: the second mostly finds the folio under read, or mapped
    assert float(ds["waiter_share"].values[lockstep] + ds["nofault_share"].values[lockstep]) > 0.2
    writer = [i for i, c in enumerate(cells) if c.writer is not None][0]
    assert float(ds["writer_ops_rate"].values[writer]) > 100
    assert float(ds["mmap_write_rate"].values[writer]) == pytest.approx(
        2 * float(ds["writer_ops_rate"].values[writer]))
    assert float(ds["device_latency_p50"].values[0]) > 1e-6
    minor = float(ds["minor_fault_latency_p50"].values[0])
    assert minor < float(ds["device_latency_p50"].values[0])
    assert np.isfinite(float(ds["wakeup_latency_p50"]))
    assert not [p for p in os.listdir(cfg.directory) if p.startswith("faultlock-measure-")]


def test_process_writers_do_not_take_the_lock(disk_dir):
    """The control writers run in another process: the harness's mmap_lock sees no writes."""
    from faultlock.measure.runner import Harness
    with Harness(disk_dir, pages=64) as h:
        parsed = h.faults(Cell(1, 1, WriterSpec("process", "mprotect", rate=5000, pages=16)),
                          pages=64)
    w = parse.writer_metrics(parsed)
    assert w["writer_ops_rate"] > 100 and w["mmap_write_rate"] == 0.0
    assert parsed["run"]["resident_before"] == 0


def test_traced_cold_walk_retries_once_per_fault(disk_dir):
    ok, why = tracing.perf_status()
    if not ok:
        pytest.skip(why)
    from faultlock.measure.runner import Harness
    with Harness(disk_dir, pages=256) as h:
        parsed = h.faults(Cell(1, 1, None), pages=256, trace=True, minor_pass=False)
    locks = parsed["locks"]
    # MODEL.md: every major file fault retries under mmap_lock, one read acquisition each
    assert locks["mmap_read_per_fault"] == pytest.approx(1.0, abs=0.1)
    assert locks["trace_lost_events"] == 0


def test_harness_refuses_tmpfs():
    if not os.path.isdir("/dev/shm") or mount_of("/dev/shm")["fstype"] != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    with pytest.raises(ValueError, match="tmpfs"):
        check_disk_backed("/dev/shm")


# -- parsing and classification ------------------------------------------------------------------

def _touch_line(thread=0, group=0, lat=(50_000, 60_000, 3_000, 100), maj=(1, 0, 0, 0),
                mn=(0, 1, 1, 0), vcsw=(1, 1, 0, 0), ivcsw=(0, 0, 0, 0)):
    n = len(lat)
    return json.dumps({"type": "touches", "thread": thread, "group": group, "done": n,
                       "walk_ns": sum(lat) + 1000 * n, "cpu_ns": 10_000, "lat_ns": list(lat),
                       "t_us": list(range(n)), "majflt": list(maj), "minflt": list(mn),
                       "nvcsw": list(vcsw), "nivcsw": list(ivcsw)})


_RUN = json.dumps({"type": "run", "threads": 2, "group": 2, "wall_ns": 1_000_000, "pid": 7,
                   "start_mono_ns": 0, "end_mono_ns": 1_000_000, "ncpus_online": 2,
                   "timed_out": False})


def test_parse_output_groups_records():
    text = "\n".join([_RUN, _touch_line(0), _touch_line(1), ""])
    parsed = parse.parse_output(text)
    assert parsed["run"]["threads"] == 2 and len(parsed["touches"]) == 2
    assert parsed["touches"][0]["lat_ns"].dtype == np.int64


def test_parse_output_errors():
    with pytest.raises(parse.HarnessError, match="stay resident"):
        parse.parse_output('{"type":"error","message":"3 pages stay resident"}\n')
    with pytest.raises(ValueError, match="not JSON"):
        parse.parse_output("{oops\n")
    with pytest.raises(ValueError, match="unknown record type"):
        parse.parse_output('{"type":"banana"}\n')
    bad = json.loads(_touch_line())
    bad["minflt"] = [0]
    with pytest.raises(ValueError, match="unequal length"):
        parse.parse_output(json.dumps(bad))


@pytest.mark.parametrize("lat_us, maj, mn, vcsw, ivcsw, expected", [
    (60.0, 1, 0, 1, 0, parse.MAJOR),        # started the read (or retried TRIED)
    (60.0, 1, 1, 1, 0, parse.MAJOR),        # major wins over minor
    (40.0, 0, 1, 1, 0, parse.WAITER),       # minor that slept: waited for a folio lock
    (4.0, 0, 1, 1, 0, parse.WAITER),        # slept, however briefly
    (30.0, 0, 1, 0, 0, parse.WAITER),       # slow without sleeping or preemption
    (3.0, 0, 1, 0, 0, parse.MINOR),         # a plain minor fault
    (900.0, 0, 1, 0, 1, parse.MINOR),       # slow because preempted: still minor
    (0.1, 0, 0, 0, 0, parse.NONE),          # already mapped by another thread
    (500.0, 0, 0, 0, 1, parse.NONE),        # preempted, no fault
])
def test_classify(lat_us, maj, mn, vcsw, ivcsw, expected):
    code = parse.classify([lat_us * 1000], [maj], [mn], [vcsw], [ivcsw], waiter_threshold=10e-6)
    assert code[0] == expected


def test_runqueue_delay_of_each_fault_is_split_from_its_latency():
    """Harness 4 reports each touch's run delay (schedstat); the metrics take it over faults only,
    and latency minus it is what the fault would have taken with a CPU always free. Hand case:
    faults of 50, 60 and 3 µs with 0, 20 and 1 µs of run-queue wait, one no-fault touch."""
    line = json.loads(_touch_line())
    line["rqd_ns"] = [0, 20_000, 1_000, 2**32 - 1]        # the last: not read (-> NaN)
    parsed = parse.parse_output("\n".join([_RUN, json.dumps(line)]))
    m = parse.fault_metrics(parsed)
    assert m["fault_runqueue_delay_mean"] == pytest.approx(7e-6)
    assert m["fault_runqueue_delay_p50"] == pytest.approx(1e-6)
    assert m["fault_runqueue_share"] == pytest.approx(21 / 113)
    assert m["fault_latency_off_runqueue_p50"] == pytest.approx(40e-6)     # of 50, 40, 2 µs
    old = parse.fault_metrics(parse.parse_output("\n".join([_RUN, _touch_line()])))
    assert np.isnan(old["fault_runqueue_delay_mean"])                   # harness 3: unknown
    # a wait longer than the timed touch (it fell in the getrusage calls) counts up to its latency
    line["rqd_ns"] = [0, 90_000, 1_000, 2**32 - 1]
    m = parse.fault_metrics(parse.parse_output("\n".join([_RUN, json.dumps(line)])))
    assert m["fault_runqueue_share"] == pytest.approx(61 / 113)
    assert m["fault_latency_off_runqueue_p50"] == pytest.approx(2e-6)       # of 50, 0, 2 µs
    bad = dict(line, rqd_ns=[0])
    with pytest.raises(ValueError, match="unequal length"):
        parse.parse_output(json.dumps(bad))


def test_classify_validates():
    with pytest.raises(ValueError, match="unequal"):
        parse.classify([1, 2], [0], [0], [0], [0])
    with pytest.raises(ValueError, match="waiter_threshold"):
        parse.classify([1], [0], [0], [0], [0], waiter_threshold=0)


def test_fault_metrics_of_synthetic_run():
    parsed = parse.parse_output("\n".join([_RUN, _touch_line(0), _touch_line(1)]))
    m = parse.fault_metrics(parsed, waiter_threshold=10e-6)
    # per thread: one major (50 µs), one waiter (60 µs), one minor (3 µs), one no fault
    assert m["major_share"] == m["waiter_share"] == m["minor_share"] == m["nofault_share"] == 0.25
    assert m["faults"] == 6 and m["touches"] == 8
    assert m["fault_rate"] == pytest.approx(6 / 1e-3)
    assert m["fault_latency_p50"] == pytest.approx(50e-6)
    assert m["major_faults_per_fault"] == pytest.approx(1 / 3)
    assert m["touch_overhead"] == pytest.approx(1e-6)


def test_writer_and_device_metrics():
    writer = {"type": "writer", "id": 0, "where": "thread", "op": "mmap", "calls_per_op": 1,
              "write_locks_per_op": 2, "pages": 1, "rate": 0, "ops": 1000, "failed": 0,
              "active_ns": 10_000_000, "sum_ns": 5_000_000, "max_ns": 20_000, "cpu_ns": 5_000_000,
              "op_ns_sorted_sample": [4000] * 90 + [20000] * 10}
    device = {"type": "device", "depth": 1, "reads": 100, "wall_ns": 5_000_000,
              "sum_ns": 5_000_000, "lat_ns": [50_000] * 100}
    parsed = parse.parse_output("\n".join(map(json.dumps, [writer, device])))
    w = parse.writer_metrics(parsed)
    assert w["writer_ops_rate"] == pytest.approx(1e5)
    assert w["mmap_write_rate"] == pytest.approx(2e5)
    assert w["writer_latency_mean"] == pytest.approx(2.5e-6)
    d = parse.device_metrics(parsed["device"])[1]
    assert d["device_latency_mean"] == pytest.approx(50e-6)
    assert d["device_iops"] == pytest.approx(2e4)


def test_lock_metrics_from_perf_lines():
    mm = "mm=0xffff1 memcg_id=1"
    lines = [
        # a trylock read acquisition (no wait), then its release
        f"7/8  0.000001000: mmap_lock:mmap_lock_acquire_returned: {mm} write=false success=true",
        f"7/8  0.000002000: mmap_lock:mmap_lock_released: {mm} write=false",
        # a writer: 3 µs wait, 5 µs hold to the downgrade, then a read release
        f"7/9  0.000010000: mmap_lock:mmap_lock_start_locking: {mm} write=true",
        f"7/9  0.000013000: mmap_lock:mmap_lock_acquire_returned: {mm} write=true success=true",
        f"7/9  0.000018000: mmap_lock:mmap_lock_acquire_returned: {mm} write=false success=true",
        f"7/9  0.000019000: mmap_lock:mmap_lock_released: {mm} write=false",
        # a slow-path read: failed trylock, then 20 µs wait
        f"7/8  0.000014000: mmap_lock:mmap_lock_acquire_returned: {mm} write=false success=false",
        f"7/8  0.000014000: mmap_lock:mmap_lock_start_locking: {mm} write=false",
        f"7/8  0.000034000: mmap_lock:mmap_lock_acquire_returned: {mm} write=false success=true",
        "7/8  0.000035000: exceptions:page_fault_user: address=0x1 ip=0x1 error_code=0x14",
        "7/8  0.000036000: exceptions:page_fault_user: address=0x2 ip=0x1 error_code=0x14",
        # another process and an event outside the window are ignored
        f"9/9  0.000040000: mmap_lock:mmap_lock_acquire_returned: {mm} write=false success=true",
        f"7/8  5.000000000: mmap_lock:mmap_lock_acquire_returned: {mm} write=false success=true",
    ]
    events = tracing.parse_perf_script("\n".join(lines))
    assert len(events) == len(lines)
    m = tracing.lock_metrics(events, pid=7, start_ns=0, end_ns=1_000_000)
    assert m["mmap_read_acquisitions"] == 2
    assert m["mmap_read_wait_mean"] == pytest.approx(10e-6)
    assert m["mmap_read_trylock_failures"] == 1
    assert m["mmap_write_acquisitions"] == 1 and m["mmap_downgrades"] == 1
    assert m["mmap_write_wait_mean"] == pytest.approx(3e-6)
    assert m["mmap_write_hold_mean"] == pytest.approx(5e-6)
    assert m["mmap_read_per_fault"] == 1.0
    assert m["mmap_read_wait_hist"][0] == 0.5 and m["mmap_read_wait_hist"][2] == 0.5


# -- configuration -------------------------------------------------------------------------------

def test_writer_spec_parse():
    w = WriterSpec.parse("thread:mprotect:rate=1000:pages=1024")
    assert (w.where, w.op, w.rate, w.pages, w.write_locks_per_op) == ("thread", "mprotect",
                                                                     1000.0, 1024, 1)
    assert WriterSpec.parse("none") is None
    assert WriterSpec.parse("process:mmap:calls=3").write_locks_per_op == 6
    for bad in ("thread", "thread:mmap:speed=3", "pipe:mmap", "thread:mmap:rate=x"):
        with pytest.raises(ValueError):
            WriterSpec.parse(bad)


def test_measure_config_cells_and_errors():
    cfg = MeasureConfig(threads=(1, 2, 4), groups=(1, 2, 0), writers=("none", "thread:mmap"))
    labels = [c.label for c in cfg.cells()]
    assert len(labels) == len(set(labels)) == 2 * (1 + 2 + 3)
    assert cfg.file_pages() == 4 * cfg.pages
    with pytest.raises(ValueError, match="2 problems"):
        MeasureConfig(threads=(0,), trace="maybe")
    with pytest.raises(ValueError, match="max_file_mb"):
        MeasureConfig(threads=(64,), pages=100_000)
    with pytest.raises(ValueError, match="no cell"):
        MeasureConfig(threads=(3,), groups=(2,))
    assert MeasureConfig.from_dict(json.loads(cfg.to_json())) == cfg


# -- calibration ---------------------------------------------------------------------------------

def test_fit_lognormal_and_cv():
    mean, cv = 80e-6, 0.6
    sigma = math.sqrt(math.log1p(cv**2))
    median = mean / math.exp(sigma**2 / 2)
    p90 = median * math.exp(1.2815515655446004 * sigma)
    assert fit_lognormal(median, p90) == pytest.approx((mean, cv))
    p99 = median * math.exp(2.3263478740408408 * sigma)
    assert _cv_from_mean_p99(mean, p99) == pytest.approx(cv)


def test_fit_device_curve():
    depths = np.array([1, 2, 4, 8, 16, 32])
    fit = fit_device_curve(depths, 45e-6 + 11e-6 * (depths - 1))
    assert fit["choice"] == "io_depth_slope" and fit["slope"] == pytest.approx(11e-6)
    servers = 4
    fit = fit_device_curve(depths, np.maximum(50e-6, depths * 50e-6 / servers),
                           iops=np.minimum(depths, servers) / 50e-6)
    assert fit["choice"] == "io_parallelism" and fit["servers"] == servers


TRUE = {"io_latency": 60e-6, "io_latency_cv": 0.4, "io_depth_slope": 8e-6, "fault_cpu_time": 3e-6,
        "wakeup_latency": 12e-6, "think_time": 1e-6, "writer_hold": 5e-6, "writer_hold_cv": 0.8}


def _mc_measurement(true=TRUE, depths=(1, 2, 4, 8, 16), operations=8000) -> xr.Dataset:
    """A dataset shaped like measure()'s, made by the Monte Carlo engine with known parameters:
    the device curve from closed loops of d threads with no CPU or wake-up cost (each fault is
    then one read, submitted with d-1 in flight), the single-thread cold walk, and a writer's
    holds from a lightly loaded writer stream. The direct harness measurements (minor-fault
    latency, futex wake-up, loop overhead) are set to their true values."""
    from faultlock import Scenario, simulate

    common = dict(vmas=1, pages_per_vma=2**22, page_popularity=0.0, readaround_pages=1,
                  io_distribution="lognormal", io_latency=true["io_latency"],
                  io_latency_cv=true["io_latency_cv"], io_depth_slope=true["io_depth_slope"],
                  writer_rate=0.0, reclaim_rate_cached=0.0, reclaim_rate_mapped=0.0)
    dev = {k: [] for k in ("device_latency_p50", "device_latency_p90", "device_latency_mean",
                           "device_iops")}
    for d in depths:
        s = Scenario(threads=d, cpus=0, fault_cpu_time=0.0, wakeup_latency=0.0, think_time=0.0,
                     **common)
        out = simulate(s, policies=["mainline"], operations=operations, seed=d).isel(policy=0)
        dev["device_latency_p50"].append(float(out.fault_latency_p50))
        dev["device_latency_p90"].append(float(out.fault_latency_p90))
        dev["device_latency_mean"].append(float(out.fault_latency_mean))
        dev["device_iops"].append(float(out.io_read_rate))
    full = Scenario.preset("virtio_2cpu", threads=1, fault_cpu_time=true["fault_cpu_time"],
                           wakeup_latency=true["wakeup_latency"], think_time=true["think_time"],
                           **common)
    walk = simulate(full, policies=["mainline"], operations=operations, seed=1).isel(policy=0)
    writer = simulate(full.replace(writer_rate=500.0, writer_hold=true["writer_hold"],
                                   writer_hold_cv=true["writer_hold_cv"], writer_vma_share=0.0),
                      policies=["mainline"], operations=operations, seed=2).isel(policy=0)
    cells = [("none", "none", 0), ("thread", "mmap", 1)]
    coords = {"config": [0, 1], "threads": ("config", [1, 1]), "group": ("config", [1, 1]),
              "writer_where": ("config", [c[0] for c in cells]),
              "writer_op": ("config", [c[1] for c in cells]),
              "writer_pages": ("config", [c[2] for c in cells]),
              "writer_rate": ("config", [0.0, 0.0]), "writer_count": ("config", [0, 1]),
              "writer_locks_per_op": ("config", [0, 2]), "label": ("config", ["quiet", "writer"]),
              "io_depth": list(depths)}
    per_cell = lambda a, b: ("config", np.array([a, b], dtype=float))  # noqa: E731
    nan = float("nan")
    data = {k: ("io_depth", np.array(v)) for k, v in dev.items()}
    data.update({
        "major_latency_p50": per_cell(float(walk.fault_latency_p50), nan),
        "fault_latency_p50": per_cell(float(walk.fault_latency_p50), nan),
        "minor_fault_latency_p50": per_cell(true["fault_cpu_time"], nan),
        "touch_overhead": per_cell(true["think_time"], nan),
        "mmap_write_hold_mean": per_cell(nan, float(writer.writer_latency_mean)),
        "mmap_write_hold_p50": per_cell(nan, nan),
        "mmap_write_hold_p99": per_cell(nan, float(writer.writer_latency_p99)),
        "writer_write_lock_rate": per_cell(nan, 500.0),
        "wakeup_latency_p50": ((), true["wakeup_latency"]),
    })
    return xr.Dataset(data, coords=coords, attrs={"cpus_online": 2, "config": "{}"})


@pytest.fixture(scope="module")
def mc_measurement():
    return _mc_measurement()


def test_calibration_recovers_monte_carlo_parameters(mc_measurement):
    cal = calibrate(mc_measurement)
    f = cal.fields
    assert f["io_latency"] == pytest.approx(TRUE["io_latency"], rel=0.08)
    assert f["io_latency_cv"] == pytest.approx(TRUE["io_latency_cv"], rel=0.25)
    assert f["io_depth_slope"] == pytest.approx(TRUE["io_depth_slope"], rel=0.15)
    assert f["io_parallelism"] == 0
    assert f["fault_cpu_time"] == TRUE["fault_cpu_time"]
    assert f["wakeup_latency"] == TRUE["wakeup_latency"]
    assert f["think_time"] == TRUE["think_time"]
    assert f["writer_hold"] == pytest.approx(TRUE["writer_hold"], rel=0.1)
    assert cal.writer_holds["mmap 1p"][0] == f["writer_hold"]
    # the O_DIRECT level and the fault path agree here: both are the model's reads
    assert cal.details["fault_path"]["fault_io_over_device"] == pytest.approx(1.0, rel=0.08)
    again = Calibration.from_json(cal.to_json())
    assert again.fields == cal.fields


def test_compare_predicts_the_calibrated_walk(mc_measurement):
    cal = calibrate(mc_measurement)
    cmp = compare(mc_measurement, calibration=cal, solvers=("montecarlo",), operations=8000)
    assert list(cmp["source"].values) == ["measured", "montecarlo"]
    quiet = 0
    assert float(cmp["fault_latency_p50_error"].values[quiet, 1]) == pytest.approx(0, abs=0.08)
    assert "montecarlo" in error_table(cmp)
    # the writer cell: a flat-out mmap thread, one to one; no control cell gave its gap
    assert "writer_gap_cpu=0" in cmp["mapping_note"].values[1]
    writer = faultlock.Scenario.from_json(str(cmp["scenario"].values[1]))
    assert writer.writer_mode == "flat_out" and writer.writer_locks_per_op == 2
    assert writer.access_pattern == "group_walk" and writer.threads == 1
    # the model now reports the per-class metrics the harness measures
    assert np.isfinite(cmp["major_latency_p50"].values[quiet, 1])
    assert float(cmp["nofault_share"].values[quiet, 1]) == 0.0


def test_closest_scenario_translates_a_cell_one_to_one():
    """SCENARIO_SPEC.md §4: group walks, writer threads and the control map to Scenario fields."""
    cal = Calibration({"io_latency": 50e-6, "writer_hold": 3e-6, "writer_hold_cv": 1.0},
                      {"mmap 1p": (2.6e-6, 0.5)}, writer_gaps={"mmap 1p": 1.5e-6})
    again = Calibration.from_json(cal.to_json())
    assert again.writer_gaps == cal.writer_gaps and again.writer_holds == cal.writer_holds
    control = {"threads": 8, "group": 4, "writer_where": "process", "writer_op": "mmap",
               "writer_pages": 1, "writer_rate": 0.0, "writer_count": 2, "writer_calls": 1,
               "writer_locks_per_op": 2, "pages": 256, "order": "sequential"}
    s, note = closest_scenario(control, cal)
    assert (s.threads, s.access_pattern, s.group_size, s.walk_pages, s.walk_order) == \
        (8, "group_walk", 4, 256, "sequential")
    assert (s.writer_mode, s.writer_threads, s.writer_where, s.writer_locks_per_op) == \
        ("flat_out", 2, "process", 2)
    assert s.writer_gap_cpu == 1.5e-6 and s.writer_hold == 2.6e-6 and s.writer_hold_cv == 0.5
    assert s.writer_rate == 0 and s.writer_vma_share == 0 and s.writer_fork_share == 0
    assert (s.readaround_pages, s.vmas, s.reclaim_rate_cached, s.swap_share) == (1, 1, 0, 0)
    assert s.vmas * s.pages_per_vma >= 2 * 256 * 64 and "gap" not in note
    periodic = {"threads": 2, "group": 0, "writer_where": "thread", "writer_op": "mprotect",
                "writer_pages": 1024, "writer_rate": 100.0, "writer_locks_per_op": 3,
                "writer_count": 1}
    s, note = closest_scenario(periodic, cal)
    assert s.group_size == 2 and s.walk_pages == 1024 and s.walk_order == "random"
    assert (s.writer_mode, s.writer_op_rate, s.writer_locks_per_op, s.writer_where) == \
        ("periodic", 100.0, 3, "thread")
    assert s.writer_hold == 3e-6 and "mprotect 1024p" in note and "writer_gap_cpu=0" in note
    s, _ = closest_scenario({"threads": 4, "group": 1, "writer_where": "none"}, cal)
    assert s.writer_mode == "poisson" and s.writer_rate == 0 and s.writer_threads == 0
    with pytest.raises(ValueError, match="multiple"):
        closest_scenario({"threads": 6, "group": 4, "writer_where": "none"}, cal)


def test_figures_from_a_comparison(mc_measurement):
    from faultlock.measure.figure import plot_comparison, plot_device
    cal = calibrate(mc_measurement)
    cmp = compare(mc_measurement, calibration=cal, solvers=("montecarlo",), operations=2000)
    fig = plot_comparison(cmp)
    assert fig.axes
    for name in ("device_latency_p50", "device_latency_mean"):
        mc_measurement[name + "_lo"] = mc_measurement[name]
        mc_measurement[name + "_hi"] = mc_measurement[name]
    mc_measurement["device_latency_p99"] = mc_measurement["device_latency_p90"]
    mc_measurement["device_latency_p99_lo"] = mc_measurement["device_latency_p90"]
    mc_measurement["device_latency_p99_hi"] = mc_measurement["device_latency_p90"]
    assert plot_device(mc_measurement, cal).axes


def test_douyin_targets_and_a_tiny_fit():
    from faultlock.measure.douyin import TARGETS, fit_douyin
    assert TARGETS["removed_reads_per_write"][0] == pytest.approx(17.05, abs=0.01)
    assert TARGETS["read_wait_ge_1ms_mainline"][0] == pytest.approx(656 / 20010)
    fit = fit_douyin(grid={"writer_hold": (20e-6, 80e-6)}, operations=2000, refine_rounds=0)
    assert fit.fields["writer_hold"] in (20e-6, 80e-6)
    assert len(fit.evaluations) == 2 and set(fit.achieved) == set(TARGETS)
    assert "removed_reads_per_write" in fit.table()
    with pytest.raises(ValueError, match="not a Scenario field"):
        fit_douyin(grid={"bogus": (1,)})


def test_commands_reject_bad_input(tmp_path):
    from faultlock.measure.commands import load_dataset, main_calibrate, main_compare, main_measure
    with pytest.raises(ValueError, match="required"):
        main_measure([])
    with pytest.raises(ValueError, match="not allowed"):
        main_measure(["-o", str(tmp_path / "x.csv")])
    with pytest.raises(ValueError, match="no such file"):
        main_compare([str(tmp_path / "missing.nc"), "-o", str(tmp_path / "c")])
    with pytest.raises(ValueError, match="MEASUREMENT"):
        main_calibrate([])
    with pytest.raises(ValueError, match=".nc, .zarr or .json"):
        load_dataset(__file__)


def test_commands_calibrate_and_compare_files(mc_measurement, tmp_path, capsys):
    from faultlock.measure.commands import main_calibrate, main_compare, save_dataset
    path = save_dataset(mc_measurement, tmp_path / "m.nc")
    capsys.readouterr()
    assert main_calibrate([str(path), "-o", str(tmp_path / "cal.json")]) == 0
    steps = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("calibrate: ")]   # a line per fit step, on stderr
    assert [line.split()[1] for line in steps] == ["1/4", "2/4", "3/4", "4/4"], steps
    assert json.loads((tmp_path / "cal.json").read_text())["fields"]["io_latency"] > 0
    assert main_compare([str(path), "-o", str(tmp_path / "cmp"), "--calibration",
                         str(tmp_path / "cal.json"), "--operations", "2000",
                         "--no-analytic"]) == 0
    for suffix in (".nc", ".md", ".png"):
        assert (tmp_path / f"cmp{suffix}").exists()
