"""The memcg measurement (faultlock.measure.memcg, cgroup, memcg_compare): configuration checks,
finding a memory controller, the harness output's arithmetic, the reclaim-cost estimate against
a hand-built case, the cell -> Scenario mapping, the CLI's errors, and (as root, where a memory
cgroup is usable) a short real run that must leave no cgroup and no file behind."""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest

from faultlock.measure import cgroup as cg
from faultlock.measure import memcg
from faultlock.measure.memcg import MemcgConfig, _assemble, parse_rounds, reclaim_cost, run_metrics
from faultlock.measure.memcg_compare import (
    calibrate_memcg,
    check_memcg_dataset,
    measured_memcg_metrics,
    memcg_cells,
    memcg_scenario,
    memcg_scenario_fields,
)

# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, field", [
    ({"threads": (0,)}, "threads"),
    ({"limit_ratios": (0.0, 1.0)}, "limit_ratios"),
    ({"limit_ratios": (math.inf,)}, "limit_ratios"),
    ({"file_mb": 0}, "file_mb"),
    ({"repeats": 1.5}, "repeats"),
    ({"seconds": 0.0}, "seconds"),
    ({"cgroup": "v3"}, "cgroup"),
    ({"filled": 1}, "filled"),
    ({"threads": (512,), "file_mb": 16}, "file_mb"),            # 8 GiB working set
    ({"threads": (2,), "file_mb": 2, "limit_ratios": (0.25,)}, "limit_ratios"),  # 1 MiB limit
])
def test_config_rejects_bad_fields_by_name(changes, field):
    with pytest.raises(ValueError, match=field):
        MemcgConfig(**changes)


def test_config_limits_and_runs():
    config = MemcgConfig(threads=(8, 2), limit_ratios=(2, 0.5), file_mb=16)
    assert config.threads == (2, 8) and config.limit_ratios == (0.5, 2.0)
    assert config.file_pages == 4096
    assert config.limit_pages(8, 0.5) == 8 * 4096 // 2
    kinds = [kind for _, kind, _ in config.runs()]
    assert kinds.count("limit") == 4 and kinds.count("unlimited") == kinds.count("cold") == 2
    assert MemcgConfig.from_dict(json.loads(config.to_json())) == config


# -- finding a memory controller ---------------------------------------------------------------


def _mounts(tmp_path, lines):
    path = tmp_path / "mounts"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_controller_prefers_v2_with_memory_in_subtree_control(tmp_path):
    v2, v1 = tmp_path / "unified", tmp_path / "memory"
    v2.mkdir()
    v1.mkdir()
    (v2 / "cgroup.subtree_control").write_text("cpu memory io\n")
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    mounts = _mounts(tmp_path, [f"cgroup2 {v2} cgroup2 rw 0 0",
                                f"cgroup {v1} cgroup rw,memory 0 0"])
    found = cg.find_memory_controller(mounts_file=mounts)
    assert found == cg.MemoryController(2, v2)
    assert cg.find_memory_controller("v1", mounts_file=mounts) == cg.MemoryController(1, v1)


def test_controller_falls_back_to_v1_when_v2_lacks_memory(tmp_path):
    v2, v1 = tmp_path / "unified", tmp_path / "memory"
    v2.mkdir()
    v1.mkdir()
    (v2 / "cgroup.subtree_control").write_text("\n")
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    mounts = _mounts(tmp_path, [f"cgroup2 {v2} cgroup2 rw 0 0",
                                f"cgroup {v1} cgroup rw,memory 0 0"])
    assert cg.find_memory_controller(mounts_file=mounts) == cg.MemoryController(1, v1)
    with pytest.raises(cg.CgroupUnavailable, match="no memory controller"):
        cg.find_memory_controller("v2", mounts_file=mounts)


def test_no_controller_is_one_clear_line(tmp_path):
    mounts = _mounts(tmp_path, ["proc /proc proc rw 0 0"])
    with pytest.raises(cg.CgroupUnavailable) as info:
        cg.find_memory_controller(mounts_file=mounts)
    message = str(info.value)
    assert "\n" not in message and "v2" in message and "v1" in message
    with pytest.raises(ValueError, match="cgroup="):
        cg.find_memory_controller("v9", mounts_file=mounts)


def test_parse_flat_keyed():
    assert cg.parse_flat_keyed("cache 4096\npgmajfault 3\nbad line here\nx -1\n") == \
        {"cache": 4096, "pgmajfault": 3, "x": -1}


# -- the harness's output ----------------------------------------------------------------------


def _snapshot(name, t, user, system, pages, rounds, stat, majflt=0, minflt=0):
    return json.dumps({"type": "snapshot", "name": name, "t_ns": int(t * 1e9),
                       "utime_ns": int(user * 1e9), "stime_ns": int(system * 1e9),
                       "majflt": majflt, "minflt": minflt, "nvcsw": 0, "nivcsw": 0,
                       "pages": pages, "rounds": rounds, "noise_loops": [], "noise_cpu_ns": [],
                       "memory.stat": stat})


def _run_record(evict=0, rounds=10, munmap=1e-3, evict_cpu=0.0):
    return json.dumps({"type": "rounds", "threads": 2, "file_pages": 1024, "evict": evict,
                       "noise_threads": 0, "noise_priority": -1, "evict_cpu_ns": evict_cpu * 1e9,
                       "munmap_cpu_ns": munmap * 1e9, "mmap_cpu_ns": 0, "unmapped_rounds": rounds})


def test_run_metrics_by_hand():
    # two threads, 1024-page files: in a 2 s window 3 + 5 rounds (8192 pages walked),
    # 6000 pages read back (refaults), 300 major and 700 minor faults
    stat0 = {"workingset_refault_file": 100, "pgmajfault": 10, "cache": 4096 * 500}
    stat1 = {"workingset_refault_file": 6100, "pgmajfault": 310, "cache": 4096 * 520}
    text = "\n".join([
        _snapshot("start", 1.0, 0.1, 1.0, [1024, 2048], [1, 2], stat0, 5, 50),
        _snapshot("end", 3.0, 0.2, 4.0, [4096, 7168], [4, 7], stat1, 305, 750),
        _run_record()])
    m = run_metrics(parse_rounds(text), file_pages=1024, version=1)
    assert m["window"] == pytest.approx(2.0)
    assert m["rounds"] == 8 and m["round_rate"] == pytest.approx(4.0)
    assert m["pages_walked"] == 8192 and m["page_rate"] == pytest.approx(4096)
    assert m["round_rate_per_thread_min"] == pytest.approx(1.5)
    assert m["pages_read"] == m["pages_reclaimed"] == 6000          # v1: refaults both ways
    assert m["pages_read_per_page"] == pytest.approx(6000 / 8192)
    assert m["cpu_per_page"] == pytest.approx(3.1 / 8192)
    assert m["majflt_per_round"] == pytest.approx(300 / 8)
    assert m["pages_read_per_majflt"] == pytest.approx(20)
    assert m["cache_change_pages"] == pytest.approx(20)
    assert m["end_cache_pages"] == pytest.approx(520)
    assert math.isnan(m["pgsteal"])                               # v1 has none


def test_parse_rounds_errors():
    with pytest.raises(memcg.HarnessError, match="boom"):
        parse_rounds('{"type":"error","message":"boom"}\n')
    with pytest.raises(ValueError, match="lacks"):
        parse_rounds(_run_record())
    with pytest.raises(ValueError, match="not JSON"):
        parse_rounds("{oops\n")


# -- the reclaim cost against a hand-built case --------------------------------------------------

WARM, FILL, RECLAIM = 0.15e-6, 0.4e-6, 1.7e-6      # s per page walked, read, reclaimed


def _synthetic(config, rng, noise=0.0):
    """Runs whose CPU is exactly warm*walked + fill*read + reclaim*reclaimed (+ noise)."""
    results = {}
    for r in range(config.repeats):
        for threads, kind, ratio in config.runs():
            walked = float(rng.integers(100_000, 400_000))
            read = {"limit": walked * max(0.0, 2.0 - ratio), "unlimited": 0.0,
                    "cold": walked}[kind]
            reclaimed = read if kind == "limit" else 0.0
            rounds = walked / config.file_pages
            evict_per_round = 2e-4 if kind == "cold" else 0.0
            cpu = WARM * walked + FILL * (read if kind != "unlimited" else 0) \
                + RECLAIM * reclaimed + evict_per_round * rounds
            cpu *= 1 + noise * rng.standard_normal()
            window = 2.0
            results[(threads, kind, ratio, r)] = {
                "cpu_user": 0.1 * cpu, "cpu_system": 0.9 * cpu, "pages_walked": walked,
                "pages_read": read, "pages_reclaimed": reclaimed, "rounds": rounds,
                "window": window, "round_rate": rounds / window, "majflt": read / 1000,
                "minflt": walked / 16, "evict_cpu_per_round": evict_per_round,
                "munmap_cpu_per_round": config.file_pages * 50e-9, "mmap_cpu_per_round": 1e-6,
                "limit_pages": float(config.limit_pages(threads, ratio)) if kind == "limit"
                else math.inf, "end_cache_pages": 1000.0}
    ds = _assemble(config, results)
    ds.attrs.update({"workload": memcg.WORKLOAD, "file_pages": config.file_pages,
                     "config": config.to_json(), "cpus_online": 2, "read_ahead_kb": 8192})
    return ds


def test_reclaim_cost_recovers_a_known_cost():
    config = MemcgConfig(threads=(2, 8), limit_ratios=(0.25, 0.5, 1.0, 2.0), file_mb=16,
                         repeats=3)
    ds = _synthetic(config, np.random.default_rng(1))
    est = reclaim_cost(ds)
    assert est["value"] == pytest.approx(RECLAIM, rel=1e-9)
    assert est["hole_page_cpu"] == pytest.approx(FILL, rel=1e-9)
    assert est["warm_page_cpu"] == pytest.approx(WARM, rel=1e-9)
    # ratio 2 reclaims nothing: left out; ratios 0.25 .. 1 kept: 3 ratios x 2 T x 3 repeats
    assert est["n"] == 18
    assert np.isnan(est["runs"].sel(limit_ratio=2.0)).all()


def test_reclaim_cost_interval_covers_with_noise():
    config = MemcgConfig(threads=(2, 8), limit_ratios=(0.25, 0.5), file_mb=16, repeats=5)
    ds = _synthetic(config, np.random.default_rng(7), noise=0.02)
    est = reclaim_cost(ds)
    assert abs(est["value"] - RECLAIM) < 3 * est["ci"] + 0.05 * RECLAIM
    assert 0 < est["ci"] < 0.5 * RECLAIM


def test_reclaim_cost_needs_the_references():
    config = MemcgConfig(threads=(2,), limit_ratios=(0.5,), file_mb=16, repeats=2,
                         references=False)
    ds = _synthetic(config, np.random.default_rng(2))
    with pytest.raises(ValueError, match="references"):
        reclaim_cost(ds)


# -- from a cell to a Scenario -------------------------------------------------------------------


def test_cells_and_measured_metrics_by_hand():
    config = MemcgConfig(threads=(2, 8), limit_ratios=(0.5, 2.0), file_mb=16, repeats=3)
    ds = _synthetic(config, np.random.default_rng(3))
    check_memcg_dataset(ds)
    cells = memcg_cells(ds)
    assert [(c["threads"], c["limit_ratio"]) for c in cells] == \
        [(2, 0.5), (2, 2.0), (8, 0.5), (8, 2.0)]
    assert cells[2]["limit_pages"] == 8 * 4096 // 2 and cells[2]["file_pages"] == 4096
    measured = measured_memcg_metrics(ds)
    walked = ds["pages_walked_runs"].sel(threads=8, limit_ratio=0.5).values
    faults = walked * 1.5 / 1000 + walked / 16
    mean, _ = measured["pages_read_per_fault"]
    assert mean[1, 0] == pytest.approx(np.mean(walked * 1.5 / faults))
    mean, half = measured["access_rate"]
    assert mean[1, 0] == pytest.approx(np.mean(walked / 2.0))
    assert half[1, 0] > 0


def test_scenario_fields_follow_the_contract():
    attrs = {"cpus_online": 2, "read_ahead_kb": "8192", "fault_around_bytes": "unknown",
             "config": json.dumps({"filled": False, "noise_threads": 0})}
    cell = {"threads": 8, "limit_pages": 16384, "file_pages": 4096}
    fields = memcg_scenario_fields(cell, attrs, {"reclaim_cpu_time": 1.7e-6,
                                                 "hole_page_cpu": 0.4e-6})
    assert fields["threads"] == fields["vmas"] == 8
    assert fields["access_pattern"] == "file_rounds" and fields["pages_per_vma"] == 4096
    assert fields["read_source"] == "hole" and fields["reclaim"] == "lru"
    assert fields["memory_limit"] == 16384 and fields["lru_lists"] == 2
    assert fields["cpus"] == 2
    assert fields["readaround_pages"] == 2048          # read_ahead_kb 8192 / 4 KiB
    assert fields["faultaround_pages"] == 16           # the kernel default where unknown
    assert fields["reclaim_cpu_time"] == 1.7e-6 and fields["hole_page_cpu"] == 0.4e-6
    assert fields["reclaim_rate_cached"] == fields["reclaim_rate_mapped"] == 0.0
    assert "noise_threads" not in fields
    filled = memcg_scenario_fields(cell, {**attrs, "read_ahead_kb": "128", "config": json.dumps(
        {"filled": True, "noise_threads": 4, "noise_spin": 5e-6, "noise_sleep": 5e-5})})
    assert filled["read_source"] == "device" and filled["readaround_pages"] == 32
    assert (filled["noise_threads"], filled["noise_cpu"], filled["noise_sleep"]) == \
        (4, 5e-6, 5e-5)
    with pytest.raises(ValueError, match="threads"):
        memcg_scenario_fields({**cell, "threads": 0}, attrs)


def test_scenario_is_built_or_names_the_missing_fields():
    from faultlock.model.scenario import Scenario
    attrs = {"cpus_online": 2, "read_ahead_kb": "8192", "config": "{}"}
    cell = {"threads": 2, "limit_pages": 4096, "file_pages": 4096}
    needed = set(memcg_scenario_fields(cell, attrs))
    if needed <= set(Scenario.FIELDS):
        scenario, note = memcg_scenario(cell, attrs, {"reclaim_cpu_time": 2e-6})
        assert scenario.memory_limit == 4096 and scenario.access_pattern == "file_rounds"
        assert scenario.reclaim_cpu_time == 2e-6 and note
    else:
        with pytest.raises(ValueError, match="no field .*memory_limit"):
            memcg_scenario(cell, attrs)


def test_calibration_of_a_synthetic_measurement():
    config = MemcgConfig(threads=(2,), limit_ratios=(0.25, 0.5), file_mb=16, repeats=3)
    ds = _synthetic(config, np.random.default_rng(4))
    cal = calibrate_memcg(ds)
    assert cal["fields"]["reclaim_cpu_time"] == pytest.approx(RECLAIM)
    assert cal["fields"]["hole_page_cpu"] == pytest.approx(FILL)
    assert cal["fields"]["unmap_page_time"] == pytest.approx(50e-9)
    with pytest.raises(ValueError, match="not a memcg measurement"):
        check_memcg_dataset(ds.assign_attrs(workload="other"))


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_bad_input_is_one_line(capsys, tmp_path):
    from faultlock.cli import main
    assert main(["measure", "memcg", "-o", str(tmp_path / "m.nc"), "--limit-ratios", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "limit_ratios" in err


def test_cli_without_cgroups_is_one_line(capsys, tmp_path, monkeypatch):
    from faultlock.cli import main

    def unavailable(version="auto", **kwargs):
        raise cg.CgroupUnavailable("no usable memory cgroup: cgroup v2 is not mounted; no "
                                   "cgroup v1 memory hierarchy is mounted")
    monkeypatch.setattr(memcg, "find_memory_controller", unavailable)
    assert main(["measure", "memcg", "-o", str(tmp_path / "m.nc"), "--threads", "2",
                 "--file-mb", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no usable memory cgroup" in err
    assert not (tmp_path / "m.nc").exists()


# -- a real run ----------------------------------------------------------------------------------


def _usable():
    if os.geteuid() != 0 or shutil.which("cc") is None and shutil.which("gcc") is None:
        return None
    try:
        return cg.find_memory_controller()
    except cg.CgroupUnavailable:
        return None


CONTROLLER = _usable()
needs_cgroup = pytest.mark.skipif(CONTROLLER is None, reason="needs root, a C compiler and a "
                                  "usable memory cgroup")


def _disk_dir(tmp_path):
    from faultlock.measure.system import check_disk_backed
    try:
        check_disk_backed(tmp_path)
    except ValueError:
        pytest.skip("tmp_path is on a RAM file system")
    return tmp_path


@needs_cgroup
def test_real_run_reads_under_a_small_limit_and_leaves_nothing(tmp_path):
    directory = _disk_dir(tmp_path)
    config = MemcgConfig(threads=(2,), limit_ratios=(0.5, 2.0), file_mb=8, repeats=1,
                         seconds=0.3, warmup=0.05, directory=str(directory))
    ds = memcg.measure_memcg(config)
    assert cg.leftover_cgroups(CONTROLLER, os.getpid()) == []
    assert list(directory.iterdir()) == []
    assert ds.attrs["cgroup_version"] == CONTROLLER.version
    read = ds["pages_read_per_page"].sel(threads=2)
    # twice the working set: every page stays cached after the warm-up round
    assert float(read.sel(limit_ratio=2.0)) < 0.05
    # half of it: a cyclic walk over twice the memory cannot hit much (LRU reads it all back)
    assert float(read.sel(limit_ratio=0.5)) > 0.5
    assert float(ds["peak_pages"].sel(threads=2, limit_ratio=0.5)) <= config.limit_pages(2, 0.5)
    assert ds.attrs["reclaim_cpu_time_value"] > 0


@needs_cgroup
def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    directory = _disk_dir(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(memcg, "run_metrics", interrupted)
    config = MemcgConfig(threads=(2,), limit_ratios=(0.5,), file_mb=8, repeats=1,
                         seconds=0.1, warmup=0.0, references=False, directory=str(directory))
    with pytest.raises(KeyboardInterrupt):
        memcg.measure_memcg(config)
    assert cg.leftover_cgroups(CONTROLLER, os.getpid()) == []
    assert list(directory.iterdir()) == []


def test_compare_without_solvers_keeps_the_measured_cells():
    from faultlock.measure.memcg_compare import compare_memcg, memcg_error_table
    config = MemcgConfig(threads=(2, 8), limit_ratios=(0.5, 2.0), file_mb=16, repeats=3)
    ds = _synthetic(config, np.random.default_rng(5))
    cmp = compare_memcg(ds, solvers=())
    assert list(cmp["source"].values) == ["measured"]
    mean, half = measured_memcg_metrics(ds)["reclaim_rate"]
    assert cmp["reclaim_rate"].values[:, 0] == pytest.approx(mean.ravel())
    assert cmp["reclaim_rate_ci"].values[:, 0] == pytest.approx(half.ravel())
    fields = json.loads(str(cmp["scenario"].values[2]))
    assert fields["memory_limit"] == 8 * 4096 // 2 and fields["threads"] == 8
    assert fields["reclaim_cpu_time"] == pytest.approx(RECLAIM)
    assert "| 8 | 0.5 | round_rate |" in memcg_error_table(cmp)


def test_run_metrics_take_the_noise_cpu_off():
    stat = {"workingset_refault_file": 0, "cache": 0}
    start = json.loads(_snapshot("start", 0.0, 1.0, 1.0, [0, 0], [0, 0], stat))
    end = json.loads(_snapshot("end", 1.0, 2.5, 1.5, [2048, 2048], [2, 2], stat))
    start.update(noise_loops=[0], noise_cpu_ns=[0])
    end.update(noise_loops=[1000], noise_cpu_ns=[int(0.4e9)])
    run = json.loads(_run_record())
    run.update(noise_threads=1, noise_priority=2)
    m = run_metrics({"start": start, "end": end, "run": run}, file_pages=1024, version=1)
    assert m["cpu_noise"] == pytest.approx(0.4)
    assert m["cpu_user"] == pytest.approx(1.5 - 0.4)
    assert m["noise_cpu_per_loop"] == pytest.approx(0.4e-3)
    assert m["cpu_per_page"] == pytest.approx((1.1 + 0.5) / 4096)


def _scenario_has_the_fields() -> bool:
    from faultlock.model.scenario import Scenario
    cell = {"threads": 2, "limit_pages": 4096, "file_pages": 4096}
    return set(memcg_scenario_fields(cell, {"config": "{}"})) <= set(Scenario.FIELDS)


@pytest.mark.slow
@pytest.mark.skipif(not _scenario_has_the_fields(), reason="the Scenario lacks the issue-12 "
                    "fields (memory_limit, file_rounds, ...) until the lru and rounds branches "
                    "are merged")
def test_compare_with_the_monte_carlo():
    from faultlock.measure.memcg_compare import compare_memcg
    config = MemcgConfig(threads=(2,), limit_ratios=(0.5, 2.0), file_mb=16, repeats=3)
    ds = _synthetic(config, np.random.default_rng(6))
    cmp = compare_memcg(ds, solvers=("montecarlo",), operations=5000)
    rate = cmp["round_rate"].sel(source="montecarlo").values
    assert np.all(np.isfinite(rate)) and np.all(rate > 0)
    # a limit of half the working set re-reads pages; twice the working set keeps them all
    reads = cmp["pages_read_per_fault"].sel(source="montecarlo").values
    assert reads[0] > reads[1]
    err = cmp["round_rate_error"].sel(source="montecarlo").values
    assert err == pytest.approx(rate / cmp["round_rate"].sel(source="measured").values - 1)


def test_reclaim_calls_count_on_cpu_time_by_hand():
    from faultlock.measure.memcg import reclaim_calls
    pid = 100
    events = [
        (pid, 101, 1_000, "mm_vmscan_memcg_reclaim_begin", {}),
        (0, 0, 1_500, "sched_switch", {"prev_pid": "101", "next_pid": "7"}),     # out 1.5 us
        (pid, 102, 2_000, "mm_vmscan_memcg_reclaim_begin", {}),
        (0, 0, 3_000, "sched_switch", {"prev_pid": "7", "next_pid": "101"}),     # back at 3 us
        (pid, 102, 2_800, "mm_vmscan_memcg_reclaim_end", {"nr_reclaimed": "40"}),
        (pid, 101, 5_000, "mm_vmscan_memcg_reclaim_end", {"nr_reclaimed": "32"}),
        (999, 5, 6_000, "mm_vmscan_memcg_reclaim_begin", {}),                   # another process
    ]
    out = reclaim_calls(events, pid=pid)
    assert out["calls"] == 2 and out["pages"] == 72
    # thread 101: 4 us wall, 1.5 us switched out -> 2.5 us on CPU; thread 102: 0.8 us
    assert out["wall"] == pytest.approx(4.8e-6)
    assert out["cpu"] == pytest.approx(3.3e-6)
    assert out["cpu_per_page"] == pytest.approx(3.3e-6 / 72)
    assert out["cpu_per_page_median"] == pytest.approx(np.median([2.5e-6 / 32, 0.8e-6 / 40]))


@needs_cgroup
def test_a_straggler_in_our_cgroup_is_ended_on_removal():
    import subprocess
    import time
    with cg.MemoryCgroup(CONTROLLER, limit_bytes=64 << 20) as group:
        # a process of ours that joins the cgroup and would outlive its parent's interrupt
        child = subprocess.Popen(["sh", "-c", f"echo $$ > {group.procs}; exec sleep 30"])
        deadline = time.monotonic() + 5
        while str(child.pid) not in group.read("cgroup.procs").split():
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert not group.path.exists()
    assert child.wait(timeout=5) == -9
