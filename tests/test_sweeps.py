"""Sweeps: spec parsing and its errors, seeds and chunks, the store (template, provenance, resume
after kill -9, bit-for-bit equality across workers, chunkings and a real multi-process cluster),
and the winner maps on grids whose answer is known."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from faultlock import POLICIES, Scenario
from faultlock.model.formulas import FORMULAS
from faultlock.sweeps import (
    SpecError,
    StoreError,
    SweepSpec,
    list_specs,
    load_spec,
    main_show,
    main_sweep,
    open_sweep,
    run_sweep,
    show,
    winner_maps,
)
from faultlock.sweeps.grid import cell_seed_key, chunk_shape, make_plans
from faultlock.sweeps.progress import CostModel, ProgressBar
from faultlock.sweeps.run import task_weight
from faultlock.sweeps.solvers import DERIVED, analytic_available
from faultlock.sweeps.spec import Objective
from faultlock.sweeps.winners import (
    INVALID,
    NO_DATA,
    NONE_FEASIBLE,
    TIE,
    UNDECIDED,
    agreement,
    decode,
    winner_shares,
)

# A Monte Carlo grid of a few seconds: 2 policies, 3 x 2 x 2 = 12 cells of ~0.1 s.
TINY = """
description = "test grid"
method = "mc"
policies = ["mainline", "vma_retry"]
seed = 7

[base]
preset = "virtio_2cpu"
writer_rate = "300/s"

[grid]
threads = { pow2 = [1, 4] }
io_latency = ["100us", "2ms"]

[grid.writers]
levels.few = { writer_rate = "100/s", writer_fork_share = 0.0 }
levels.forks = { writer_rate = "500/s", writer_fork_share = 0.3 }

[mc]
operations = {operations}
batches = 5
chunk_cells = {chunk_cells}
write_cells = {write_cells}
"""


def tiny_spec(tmp_path: Path, operations: int = 600, chunk_cells: int = 1,
              write_cells: int = 2, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.replace("{operations}", str(operations))
                    .replace("{chunk_cells}", str(chunk_cells))
                    .replace("{write_cells}", str(write_cells)))
    return path


def store_files(store: Path) -> dict[str, str]:
    """SHA-256 of every file of a store (the bytes on disk)."""
    out = {}
    for path in sorted(store.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(store))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_bit_identical(a: Path, b: Path) -> None:
    """Every chunk and array metadata file identical; root attributes identical but the run log."""
    fa, fb = store_files(a), store_files(b)
    assert set(fa) == set(fb)
    differ = [name for name in fa if fa[name] != fb[name]]
    assert differ in ([], ["zarr.json"]), differ
    ra = json.loads((a / "zarr.json").read_text())["attributes"]
    rb = json.loads((b / "zarr.json").read_text())["attributes"]
    ra.pop("run_log")
    rb.pop("run_log")
    assert ra == rb


def assert_same_data(a: Path, b: Path) -> None:
    """Same variables, coordinates and values (chunkings may differ)."""
    ta, tb = open_sweep(a), open_sweep(b)
    assert set(ta.children) == set(tb.children)
    for group in ta.children:
        da_, db_ = ta[group].to_dataset().load(), tb[group].to_dataset().load()
        assert set(da_.variables) == set(db_.variables)
        for name in da_.variables:
            x, y = da_[name].values, db_[name].values
            assert x.dtype == y.dtype, name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


def done_count(store: Path, group: str = "mc") -> int:
    try:
        return int(np.asarray(zarr.open_array(str(store / group / "done"), mode="r")[...]).sum())
    except Exception:  # noqa: BLE001 - not created yet
        return 0


# ------------------------------------------------------------------------------------------------
# Specs
# ------------------------------------------------------------------------------------------------

def test_shipped_specs_parse():
    assert {"lsfmm", "validation", "smoke"} <= set(list_specs())
    for name in list_specs():
        spec = load_spec(name)
        assert spec.description and spec.name == name
    lsfmm = load_spec("lsfmm")
    assert lsfmm.methods == ("analytic", "mc")
    assert lsfmm.policies == POLICIES
    assert lsfmm.dims == {"threads": 13, "io_latency": 13, "memory_pressure": 4, "writer_load": 4}
    assert lsfmm.axis("threads").values == tuple(2 ** k for k in range(13))
    io = lsfmm.axis("io_latency").values
    assert io[0] == 20e-6 and io[-1] == 20e-3 and io[4] == 2e-4  # clean decade points
    assert np.allclose(np.diff(np.log(io)), np.log(10) / 4)
    assert lsfmm.axis("memory_pressure").values == ("none", "ws_8x", "ws_16x", "ws_32x")
    assert "fork_heavy" in lsfmm.axis("writer_load").values
    assert lsfmm.cells("analytic") == 2704 and lsfmm.cells("mc") == 7 * 4 * 4 * 4
    cell = lsfmm.cell((12, 0, 3, 3))
    assert cell.threads == 4096 and cell.io_latency == 20e-6
    # memory pressure ws_32x: the limit is a 32nd of the preset's 1 GiB working set
    assert cell.reclaim == "lru" and cell.reclaim_rate_cached == 0.0
    assert cell.memory_limit * 32 == cell.vmas * cell.pages_per_vma
    assert cell.writer_fork_share == 0.3
    assert cell.vmas == Scenario.preset("android_warm_start").vmas  # from the base preset
    names = {o.name for o in lsfmm.objectives}
    assert {"fault_p99", "jank", "writer_p99", "read_wait", "fault_p99_bounded_writer"} <= names


def test_ranges_and_units(tmp_path):
    text = """
        seed = 1
        method = "mc"
        [grid]
        threads = { pow2 = [1, 64], step = 2 }
        think_time = { linear = ["0us", "300us"], step = "100us" }
        writer_rate = { linear = [0, 100], points = 3 }
        io_latency = { log = ["10us", "10ms"], points = 4 }
        vmas = { log = [1, 100], points = 3 }
        rwsem = ["linux", "fifo"]
        zram_latency = { values = ["1us", "2 µs"] }
    """
    spec = SweepSpec.from_text(textwrap.dedent(text), "inline.toml")
    values = {a.name: a.values for a in spec.axes}
    assert values["threads"] == (1, 4, 16, 64)
    assert values["think_time"] == (0.0, 1e-4, 2e-4, 3e-4)
    assert values["writer_rate"] == (0.0, 50.0, 100.0)
    assert values["io_latency"] == (1e-5, 1e-4, 1e-3, 1e-2)
    assert values["vmas"] == (1, 10, 100)
    assert values["rwsem"] == ("linux", "fifo")
    assert values["zram_latency"] == (1e-6, 2e-6)
    assert list(spec.dims) == ["threads", "think_time", "writer_rate", "io_latency", "vmas",
                               "rwsem", "zram_latency"]
    assert spec.policies == POLICIES and spec.methods == ("mc",)
    grid = spec.grid()
    assert grid.dims == spec.dims


BAD_SPECS = [
    # (TOML, key named in the error, a word of what is allowed)
    ('seed = 1\nsed = 2\n[grid]\nthreads = [1]', "sed", "allowed: description"),
    ('[grid]\nthreads = [1]', "seed", "non-negative integer"),
    ('seed = -1\n[grid]\nthreads = [1]', "seed", "integer >= 0"),
    ('seed = 1\nmethod = "exact"\n[grid]\nthreads = [1]', "method", "'analytic', 'mc' or 'both'"),
    ('seed = 1\npolicies = ["mainline", "vma_retri"]\n[grid]\nthreads = [1]', "policies",
     "vma_retry"),
    ('seed = 1\npolicies = ["mainline", "mainline"]\n[grid]\nthreads = [1]', "policies",
     "distinct"),
    ('seed = 1\npolicies = []\n[grid]\nthreads = [1]', "policies", "'all'"),
    ('seed = 1\n[base]\npreset = "phone"\n[grid]\nthreads = [1]', "base.preset",
     "android_warm_start"),
    ('seed = 1\n[base]\nthread = 3\n[grid]\nthreads = [1]', "base.thread", "did you mean"),
    ('seed = 1\n[base]\nio_latency = "5 parsecs"\n[grid]\nthreads = [1]', "base",
     "unknown unit"),
    ('seed = 1\n[base]\nthreads = [1, 2]\n[grid]\nio_latency = ["1ms"]', "base.threads",
     "[grid]"),
    ('seed = 1', "grid", "at least one axis"),
    ('seed = 1\n[grid]', "grid", "at least one axis"),
    ('seed = 1\n[grid]\nio_latency = { log = ["20us", "20xs"], points = 3 }',
     "grid.io_latency.log", "unknown unit"),
    ('seed = 1\n[grid]\nio_latency = { log = ["20ms", "20us"], points = 3 }',
     "grid.io_latency.log", "lo < hi"),
    ('seed = 1\n[grid]\nio_latency = { log = ["0us", "20us"], points = 3 }',
     "grid.io_latency.log", "0 < lo < hi"),
    ('seed = 1\n[grid]\nio_latency = { log = ["1us", "20us"] }', "grid.io_latency.points",
     "integer >= 2"),
    ('seed = 1\n[grid]\nio_latency = { log = ["1us", "20us"], points = 1 }',
     "grid.io_latency.points", "integer >= 2"),
    ('seed = 1\n[grid]\nthreads = { pow2 = [5, 7] }', "grid.threads.pow2", "holding one"),
    ('seed = 1\n[grid]\nthreads = { range = [1, 7] }', "grid.threads", "pow2"),
    ('seed = 1\n[grid]\nthreads = { pow2 = [1, 8], points = 3 }', "grid.threads.points",
     "allowed: pow2, step"),
    ('seed = 1\n[grid]\nthreads = []', "grid.threads.values", "non-empty"),
    ('seed = 1\n[grid]\nthreads = [1, 1]', "grid.threads", "distinct"),
    ('seed = 1\n[grid]\nthreads = [0, 1]', "grid.threads.values", "integer count in [1,"),
    ('seed = 1\n[grid]\nrwsem = { linear = [0, 1], points = 2 }', "grid.rwsem.linear",
     "explicit list"),
    ('seed = 1\n[grid]\nrwsem = ["linux", "ticket"]', "grid.rwsem.values", "'fifo'"),
    ('seed = 1\n[grid]\npressure = [1, 2]', "grid.pressure", "levels"),
    ('seed = 1\n[grid]\npolicy = { levels = { a = { threads = 1 } } }', "grid.policy",
     "other than policy"),
    ('seed = 1\n[grid.pressure]\nlevels.low = { reclaim_rate = 3 }',
     "grid.pressure.levels.low.reclaim_rate", "did you mean"),
    ('seed = 1\n[grid.pressure]\nlevels.low = { reclaim_rate_cached = "3 per s" }',
     "grid.pressure.levels.low.reclaim_rate_cached", "unknown unit"),
    ('seed = 1\n[grid.pressure]\nlevels.low = {}', "grid.pressure.levels.low", "field"),
    ('seed = 1\n[grid]\nwriter_rate = [1, 2]\n[grid.load]\nlevels.a = { writer_rate = 3 }',
     "grid.load", "one axis only"),
    (('seed = 1\n[grid]\nwriter_vma_share = [0.5, 0.9]\n[grid.load]\n'
      'levels.a = { writer_fork_share = 0.3 }'), "grid", "sum to at most 1"),
    ('seed = 1\n[grid]\nthreads = [1]\n[mc]\noperations = 10', "mc.operations", ">= 100"),
    ('seed = 1\n[grid]\nthreads = [1]\n[mc]\nstride = { io_latency = 2 }', "mc.stride.io_latency",
     "allowed: threads"),
    ('seed = 1\n[grid]\nthreads = [1]\n[mc]\nruns = 2', "mc.runs", "operations"),
    ('seed = 1\n[grid]\nthreads = [1]\n[objectives]\nfast = "fault_p99"', "objectives.fast",
     "fault_latency_p99"),
    (('seed = 1\n[grid]\nthreads = [1]\n[objectives]\nb = { minimize = "jank_share", '
      'subject_to = { writer_latency_p99 = "10 fortnights" } }'),
     "objectives.b.subject_to.writer_latency_p99", "upper bound in s"),
    ('seed = 1\n[grid]\nthreads = [1]\n[objectives]\nb = { lower = "jank_share" }',
     "objectives.b.lower", "minimize"),
    ('seed = 1\n[grid\nthreads = [1]', "not valid TOML", ""),
]


@pytest.mark.parametrize("text, key, allowed", BAD_SPECS, ids=[b[1] + "-" + str(i)
                                                                 for i, b in enumerate(BAD_SPECS)])
def test_spec_errors_name_file_key_and_what_is_allowed(tmp_path, text, key, allowed):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    store = tmp_path / "never.zarr"
    with pytest.raises(SpecError) as info:
        run_sweep(path, store, workers=0, progress=False)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert key in message, message
    assert allowed in message, message
    assert not store.exists()  # nothing written


def test_unknown_spec_name():
    with pytest.raises(SpecError, match="lsfmm"):
        load_spec("lsfm")


# ------------------------------------------------------------------------------------------------
# Seeds and chunks
# ------------------------------------------------------------------------------------------------

def test_seeds_depend_on_coordinates_only(tmp_path):
    small = load_spec(tiny_spec(tmp_path))
    bigger = SweepSpec.from_text(small.text.replace("pow2 = [1, 4]", "pow2 = [1, 16]")
                                 .replace('["100us", "2ms"]', '["50us", "2ms", "100us"]'),
                                 "bigger.toml")
    a, b = make_plans(small)["mc"], make_plans(bigger, {"mc": 7})["mc"]
    keys_a = {tuple(sorted(a.cell_coords(i).items())): a.seed_key(i)
              for i in a.cell_indices(tuple(slice(0, n) for n in a.shape))}
    keys_b = {tuple(sorted(b.cell_coords(i).items())): b.seed_key(i)
              for i in b.cell_indices(tuple(slice(0, n) for n in b.shape))}
    assert set(keys_a) < set(keys_b)
    assert all(keys_b[c] == k for c, k in keys_a.items())
    assert len(set(keys_b.values())) == len(keys_b)  # distinct cells, distinct streams
    assert cell_seed_key({"threads": 4}) != cell_seed_key({"threads": 4.0})


@pytest.mark.parametrize("shape, cells, expected", [
    ((13, 13, 4, 4), 256, (1, 13, 4, 4)), ((13, 13, 4, 4), 1, (1, 1, 1, 1)),
    ((4, 3), 2, (1, 2)), ((4, 3), 5, (1, 3)), ((4, 3), 100, (4, 3)), ((5,), 0, (1,))])
def test_chunk_shape(shape, cells, expected):
    assert chunk_shape(shape, cells) == expected


def test_regions_cover_the_grid_once(tmp_path):
    spec = load_spec("lsfmm")
    for plan in make_plans(spec, {"mc": 3, "analytic": 100}, {"mc": 20}).values():
        seen = np.zeros(plan.shape, dtype=int)
        for block in plan.block_regions():
            inside = np.zeros(plan.shape, dtype=int)
            for region in plan.tasks(block):
                seen[region] += 1
                inside[region] += 1
            assert inside[block].all() and inside.sum() == inside[block].size
        assert (seen == 1).all()
    mc = make_plans(spec)["mc"]
    assert mc.coords()["threads"].tolist() == [1, 4, 16, 64, 256, 1024, 4096]
    assert mc.coords()["io_latency"].tolist() == [2e-5, 2e-4, 2e-3, 2e-2]


# ------------------------------------------------------------------------------------------------
# The store
# ------------------------------------------------------------------------------------------------

def test_store_template_provenance_and_resume_rules(tmp_path):
    path = tiny_spec(tmp_path)
    spec = load_spec(path)
    store = tmp_path / "a.zarr"
    tree = run_sweep(path, store, workers=0, progress=False)
    attrs = tree.attrs
    assert attrs["spec_text"] == path.read_text()
    assert attrs["seed_entropy"] == 7
    assert attrs["faultlock_version"]
    assert "git_revision" in attrs
    assert set(attrs["formula_hashes"]) == set(FORMULAS)
    assert attrs["formula_hashes"]["mm1_wait"] == FORMULAS["mm1_wait"].hash()
    assert Scenario.from_json(attrs["grid_scenario"]) == spec.grid()
    mc = tree["mc"].to_dataset()
    assert mc.attrs["solver"] == "montecarlo"
    assert mc.attrs["run_lengths"]["operations"] == 600
    assert bool(mc["done"].all())
    assert mc.sizes["threads"] == 3 and mc.sizes["writers"] == 2
    # the level's field values are coordinates; every cell's Scenario is stored
    assert mc["writer_fork_share"].values.tolist() == [0.0, 0.3]
    cell = Scenario.from_json(str(mc["scenario"].sel(threads=4, io_latency=2e-3,
                                                     writers="forks").values))
    assert cell == spec.cell((2, 1, 1))
    key = mc["seed_key"].sel(threads=4, io_latency=2e-3, writers="forks").values.tolist()
    assert tuple(key) == cell_seed_key({"threads": 4, "io_latency": 2e-3, "writers": "forks"})
    assert "fault_latency_p99_ci" in mc and "wall_time" not in mc
    assert mc["fault_latency_p99"].attrs["units"] == "s"
    assert mc["winner_fault_p99"].dtype == np.int8

    # the same cell through simulate directly: the store holds exactly that
    from faultlock import simulate
    direct = simulate(cell, spec.policies, seed=np.random.SeedSequence(7, spawn_key=tuple(key)),
                      **spec.mc.simulate_kwargs())
    stored = mc.sel(threads=4, io_latency=2e-3, writers="forks")
    assert np.array_equal(stored["fault_latency_p99"].values, direct["fault_latency_p99"].values)

    before = store_files(store)
    other = tmp_path / "other.toml"
    other.write_text(path.read_text().replace("seed = 7", "seed = 8"))
    for resume in (False, True):  # another spec's store: refused, with the way out
        with pytest.raises(StoreError, match="different spec .*allowed: --force"):
            run_sweep(other, store, workers=0, progress=False, resume=resume)
    not_a_store = tmp_path / "notes.zarr"
    not_a_store.mkdir()
    (not_a_store / "x.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a faultlock sweep store"):
        run_sweep(path, not_a_store, workers=0, progress=False, resume=True)
    assert store_files(store) == before

    started = time.perf_counter()
    run_sweep(path, store, workers=0, progress=False, resume=True)  # nothing left to do
    run_sweep(path, store, workers=0, progress=False)  # the same without resume
    assert time.perf_counter() - started < 10
    assert_bit_identical(store, tmp_path / "a.zarr")
    assert store_files(store) == before  # a complete store is left alone: not even logged
    assert len(zarr.open_group(str(store)).attrs["run_log"]) == 1


def test_resume_after_kill_is_bit_identical(tmp_path):
    """A sweep killed with SIGKILL mid-way, then resumed, equals one never interrupted."""
    path = tiny_spec(tmp_path, operations=1500)
    reference = tmp_path / "reference.zarr"
    run_sweep(path, reference, workers=0, progress=False)
    total = load_spec(path).cells("mc")

    store = tmp_path / "killed.zarr"
    code = (f"from faultlock.sweeps import run_sweep; "
            f"run_sweep({str(path)!r}, {str(store)!r}, workers=0, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while done_count(store) < total // 3 and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = done_count(store)
    assert 0 < killed_at < total, f"killed after {killed_at} of {total} cells: not mid-sweep"
    run_sweep(path, store, workers=0, progress=False)  # the same spec: resumed by default
    assert done_count(store) == total
    assert_bit_identical(reference, store)


def test_interrupted_block_keeps_its_finished_tasks(tmp_path, monkeypatch):
    """An exception (Ctrl-C) mid-block writes the block's finished tasks (a partial zarr chunk);
    the resumed store is still bit-identical to an uninterrupted one."""
    import faultlock.sweeps.run as run_module
    path = tiny_spec(tmp_path, chunk_cells=1, write_cells=4)
    reference = tmp_path / "reference.zarr"
    run_sweep(path, reference, workers=0, progress=False)
    calls = []
    real = run_module.run_task

    def interrupted(task):
        calls.append(task["region"])
        if len(calls) == 7:  # the 3rd task of the 2nd block of 4
            raise KeyboardInterrupt
        return real(task)

    store = tmp_path / "store.zarr"
    monkeypatch.setattr(run_module, "run_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, store, workers=0, progress=False)
    monkeypatch.setattr(run_module, "run_task", real)
    done = open_sweep(store)["mc"]["done"].values
    assert done.sum() == 6  # one whole block, and two tasks of the next
    run_sweep(path, store, workers=0, progress=False, resume=True)
    assert_bit_identical(reference, store)


def test_equal_across_workers_and_chunkings(tmp_path):
    """In this process, on a LocalCluster of 1 and of 2 processes (one with other chunks), and
    with other chunkings: the same numbers. (Two ``dask worker`` processes, one of them killed:
    ``test_real_cluster_and_a_dead_worker``.)"""
    path = tiny_spec(tmp_path)
    here = tmp_path / "here.zarr"
    run_sweep(path, here, workers=0, progress=False)
    one = tmp_path / "one.zarr"
    run_sweep(path, one, workers=1, progress=False)
    assert_bit_identical(here, one)
    for workers, tasks, writes in ((2, 3, 6), (0, 1, 12), (0, 12, 1)):
        other = tmp_path / f"w{workers}-c{tasks}-{writes}.zarr"
        run_sweep(path, other, workers=workers, progress=False, chunk_cells={"mc": tasks},
                  write_cells={"mc": writes})
        block = chunk_shape((3, 2, 2), max(tasks, writes))
        attrs = open_sweep(other)["mc"].attrs
        assert attrs["block_shape"] == list(block)
        assert attrs["chunk_shape"] == list(chunk_shape(block, tasks))
        assert_same_data(here, other)


def _start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=handle,
                                stderr=handle, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def test_real_cluster_and_a_dead_worker(tmp_path):
    """``dask scheduler`` + two ``dask worker`` processes on loopback; one worker is killed
    mid-sweep: its tasks run elsewhere, and the store equals an in-process run."""
    path = tiny_spec(tmp_path, operations=1500)
    reference = tmp_path / "reference.zarr"
    run_sweep(path, reference, workers=0, progress=False)

    scheduler_file = tmp_path / "scheduler.json"
    procs = [_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(scheduler_file)], tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline and procs[0].poll() is None, \
                (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for k in range(2):
            procs.append(_start(["worker", "--scheduler-file", str(scheduler_file),
                                 "--nthreads", "1", "--no-dashboard", "--name", f"w{k}",
                                 "--local-directory", str(tmp_path / f"w{k}")],
                                tmp_path / f"worker{k}.log"))
        from dask.distributed import Client
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)

        store = tmp_path / "cluster.zarr"
        outcome: dict[str, object] = {}

        def sweep():
            try:
                outcome["tree"] = run_sweep(path, store, scheduler=address, progress=False)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        thread = threading.Thread(target=sweep)
        thread.start()
        deadline = time.monotonic() + 300
        while done_count(store) < 2 and thread.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        _stop(procs[1])  # a worker dies mid-sweep (nanny and worker: the whole process group)
        thread.join(timeout=300)
        assert not thread.is_alive()
        assert "error" not in outcome, outcome.get("error")
        assert_bit_identical(reference, store)
        log = zarr.open_group(str(store)).attrs["run_log"]
        assert log[-1]["executor"] == address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def test_show_and_commands(tmp_path, capsys):
    path = tiny_spec(tmp_path, operations=400)
    store = tmp_path / "s.zarr"
    assert main_sweep([str(path), "-o", str(store), "--workers", "0", "--no-progress"]) == 0
    text = show(store)
    assert "tiny" in text
    assert "12/12 cells done" in text
    assert "threads=3 [1..4]" in text and "writers=2 [few, forks]" in text
    for objective in ("fault_p99", "jank", "writer_p99", "read_wait",
                      "fault_p99_bounded_writer"):
        assert f"  {objective} (" in text
    assert "%" in text
    capsys.readouterr()
    assert main_show([str(store)]) == 0
    assert capsys.readouterr().out == text
    assert main_sweep(["--list"]) == 0
    listing = capsys.readouterr().out
    assert "lsfmm" in listing and "smoke" in listing and "validation" in listing
    with pytest.raises(ValueError, match="-o STORE"):
        main_sweep([str(path)])
    with pytest.raises(ValueError, match="unrecognized"):
        main_sweep([str(path), "-o", str(store), "--frobnicate"])
    with pytest.raises(ValueError, match="workers"):
        run_sweep(path, tmp_path / "x.zarr", workers=-1)
    with pytest.raises(ValueError, match="one or the other"):
        run_sweep(path, tmp_path / "x.zarr", workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(StoreError):
        show(tmp_path)
    assert not (tmp_path / "x.zarr").exists()


def test_progress_bar_text():
    import io
    stream = io.StringIO()
    bar = ProgressBar(10, 2, "lsfmm", stream=stream)
    bar.update(3)
    bar.close()
    out = stream.getvalue()
    assert "lsfmm" in out and "5/10 cells" in out and "cells/s" in out and "left" in out


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cost_model_learns_seconds_per_weight_per_kind():
    cost = CostModel({"analytic": 2.0, "mc": 0.5})
    # before any measurement: the priors; a kind without a prior has no estimate
    assert cost.estimate({"analytic": 10, "mc": 4}) == pytest.approx(10 * 2.0 + 4 * 0.5)
    assert math.isnan(cost.estimate({"other": 1}))
    cost.observe("mc", weight=2, seconds=3.0)
    cost.observe("mc", weight=6, seconds=5.0)   # (3 + 5) / (2 + 6) = 1 s a unit
    assert cost.seconds_per_weight("mc") == pytest.approx(1.0)
    assert cost.seconds_per_weight("analytic") == pytest.approx(2.0)  # still the prior
    # two workers share the work left
    assert cost.estimate({"analytic": 10, "mc": 4}, workers=2) == pytest.approx((20 + 4) / 2)
    cost.observe("mc", weight=0, seconds=9.0)   # no weight: ignored, not a division by zero
    cost.observe("mc", weight=1, seconds=float("nan"))
    assert cost.seconds_per_weight("mc") == pytest.approx(1.0)


def test_progress_bar_time_left_weighs_tasks_by_cost():
    """The issue's case: a few heavy analytic tasks among many cheap Monte Carlo cells. Counting
    cells says almost done after the cheap cells; the cost model says what is left."""
    clock = FakeClock()
    stream = io.StringIO()
    # 2 analytic tasks of 208 cells (weight 400 each), 100 Monte Carlo cells (weight 1 each)
    bar = ProgressBar(516, 0, "lsfmm", stream=stream, work={"analytic": 800.0, "mc": 100.0},
                      cost=CostModel({"analytic": 1.0, "mc": 1.0}), workers=2, clock=clock)
    assert bar.seconds_left() == pytest.approx((800 + 100) / 2)   # the priors
    for _ in range(100):   # each MC cell took 0.5 s where it ran
        clock.now += 0.25
        bar.update(1, kind="mc", weight=1.0, seconds=0.5)
    # the MC rate is measured (0.5 s a unit); analytic still the prior; only analytic left
    assert bar.work["mc"] == 0
    assert bar.seconds_left() == pytest.approx(800 * 1.0 / 2)
    clock.now += 300
    bar.update(208, kind="analytic", weight=400.0, seconds=320.0)   # 0.8 s a unit
    assert bar.seconds_left() == pytest.approx(400 * 0.8 / 2)
    # a cell-counting bar would say 516 - 308 = 208 cells at 308 / 325 cells/s: 3.7 minutes
    # less than the heavy task left; this one says 160 s (0.8 s a unit x 400 on 2 workers)
    assert "2:40 left" in bar.text()
    clock.now += 60   # no task completes for a minute: the time left counts down
    assert bar.seconds_left() == pytest.approx(400 * 0.8 / 2 - 60)
    clock.now += 600
    assert bar.seconds_left() == 0
    bar.update(0, failed=208, kind="analytic", weight=400.0)  # a failure ends its work too
    assert bar.seconds_left() == 0 and bar.failed == 208
    assert bar.cost.seconds_per_weight("analytic") == pytest.approx(0.8)  # not learnt from it


def test_progress_bar_log_lines_every_tenth_and_every_heartbeat():
    """Not on a terminal: a line at each tenth of the cells, and one at least every heartbeat
    while cells complete (the issue's log showed one ETA for 15 minutes)."""
    clock = FakeClock()
    stream = io.StringIO()
    bar = ProgressBar(1000, 0, "x", stream=stream, heartbeat=30.0, clock=clock)
    assert len(stream.getvalue().splitlines()) == 1   # the first line at once
    for _ in range(50):   # 50 cells in 500 s: within the first tenth, but 16 heartbeats
        clock.now += 10
        bar.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 + 500 // 30
    bar.update(50)   # the first tenth reached
    assert stream.getvalue().splitlines()[-1].startswith("x [###---")
    quiet = io.StringIO()
    ProgressBar(10, 0, stream=quiet, enabled=False).update(10)
    assert quiet.getvalue() == ""


def test_ticking_bar_draws_while_nothing_completes_and_stops_on_close():
    stream = io.StringIO()
    bar = ProgressBar(10, 0, "x", stream=stream, heartbeat=0.01, ticking=True)
    deadline = time.monotonic() + 30
    while len(stream.getvalue().splitlines()) < 3:   # the first line, then the thread's
        assert time.monotonic() < deadline
        time.sleep(0.01)
    bar.close()
    assert bar._ticker is None
    lines = len(stream.getvalue().splitlines())
    time.sleep(0.05)
    assert len(stream.getvalue().splitlines()) == lines   # stopped


def test_task_weight_grows_with_threads_and_memory_limit():
    spec = load_spec("lsfmm")
    plan = make_plans(spec)["analytic"]
    weights = [task_weight(plan, region) for region in plan.regions()]
    assert len(weights) == 13 and weights == sorted(weights)   # one task per thread count
    assert weights[0] == pytest.approx(208 * (1 + 3 * 2) / 4)  # 1 thread: 1 unlimited, 3 limited
    assert weights[-1] == pytest.approx(weights[0] * 2)         # 4096 threads: 1 + 12/12


def test_cheap_probe_tasks_go_first():
    """The lsfmm sweep's first tasks are minutes-long analytic chunks: six Monte Carlo cells
    go before them (cells done and a measured rate within seconds); the rest keeps its order."""
    from faultlock.sweeps.run import _probes_first
    plans = make_plans(load_spec("lsfmm"))
    tasks = [(plan, None, region) for plan in plans.values() for region in plan.regions()]
    assert tasks[0][0].method == "analytic"
    order = _probes_first(tasks, 6)
    assert [t[0].method for t in order[:7]] == ["mc"] * 6 + ["analytic"]
    assert order[:6] == [t for t in tasks if t[0].method == "mc"][:6]
    assert order[6:] == [t for t in tasks if t not in order[:6]]
    assert _probes_first(tasks[:13], 6) == tasks[:13]   # one method: unchanged


def test_a_second_run_resumes_or_says_it_is_complete(tmp_path, monkeypatch, capsys):
    """Issue 13: ``faultlock sweep SPEC -o STORE && ...`` run twice must not stop the chain."""
    import faultlock.sweeps.run as run_module
    from faultlock.cli import main
    path = str(tiny_spec(tmp_path))
    store = tmp_path / "s.zarr"
    real = run_module.run_task
    calls = []

    def interrupted(task):
        calls.append(task["region"])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(run_module, "run_task", interrupted)
    assert main(["sweep", path, "-o", str(store), "--workers", "0"]) == 130
    monkeypatch.setattr(run_module, "run_task", real)
    capsys.readouterr()
    assert main(["sweep", path, "-o", str(store), "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert f"{store}: resuming, 4 of 12 cells already done (--force to start again)" in err
    assert done_count(store) == 12

    def fail(task):
        raise AssertionError("a complete store was computed again")

    monkeypatch.setattr(run_module, "run_task", fail)
    for extra in ([], ["--resume"]):
        assert main(["sweep", path, "-o", str(store), "--workers", "0"] + extra) == 0
        out, err = capsys.readouterr()
        assert err == f"{store} is complete (12 cells); nothing to do (--force to recompute)\n"
        assert "status: complete" in out     # the summary, as after a run
    other = tmp_path / "other.toml"
    other.write_text(Path(path).read_text().replace("seed = 7", "seed = 8"))
    assert main(["sweep", str(other), "-o", str(store), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "made by a different spec" in err and "--force" in err


# ------------------------------------------------------------------------------------------------
# Winners
# ------------------------------------------------------------------------------------------------

def _dataset(values: dict[str, np.ndarray], policies=("a", "b", "c"), ci: dict | None = None,
             x=(0, 1, 2)) -> xr.Dataset:
    data = {name: (("x", "policy"), np.asarray(v, dtype=float)) for name, v in values.items()}
    for name, v in (ci or {}).items():
        data[f"{name}_ci"] = (("x", "policy"), np.asarray(v, dtype=float))
    return xr.Dataset(data, coords={"x": list(x), "policy": list(policies)})


FAULT = Objective("fault_p99", "fault_latency_p99")
BOUNDED = Objective("bounded", "fault_latency_p99",
                    constraints=(("writer_latency_p99", 10e-3),))


def test_winners_without_intervals():
    ds = _dataset({"fault_latency_p99": [[3, 1, 2], [1, 1, 5], [np.inf, np.inf, np.inf]]})
    maps = winner_maps(ds, [FAULT])
    # points (no intervals): equal values are a tie, an answer
    assert maps["winner_fault_p99"].values.tolist() == [1, TIE, NONE_FEASIBLE]
    assert maps["leader_fault_p99"].values.tolist() == [1, 0, NONE_FEASIBLE]
    assert maps["margin_fault_p99"].values[:2].tolist() == [1.0, 0.0]
    assert decode(maps["winner_fault_p99"], ["a", "b", "c"]).values.tolist() == \
        ["b", "tie", "none_feasible"]
    close = _dataset({"fault_latency_p99": [[1.0, 1.005, 2], [1.0, 1.02, 2], [2, 1, 1.5]]})
    assert winner_maps(close, [FAULT])["winner_fault_p99"].values.tolist() == [0, 0, 1]
    assert winner_maps(close, [FAULT], rtol=0.01)["winner_fault_p99"].values.tolist() == \
        [TIE, 0, 1]
    # an unstable policy (inf) loses; a missing value (nan) does not compete; a computed cell
    # where no policy has a value (no faults) has no feasible policy, it is not "not computed"
    ds = _dataset({"fault_latency_p99": [[np.inf, 2, np.nan], [np.nan] * 3, [5, np.inf, 4]]})
    maps = winner_maps(ds, [FAULT], done=xr.DataArray([True, True, False], dims="x"))
    assert maps["winner_fault_p99"].values.tolist() == [1, NONE_FEASIBLE, NO_DATA]
    assert maps["margin_fault_p99"].values[0] == np.inf


def test_an_invalid_result_neither_wins_nor_lets_a_winner_be_claimed():
    """A policy whose result failed the invariant checks (valid false) does not compete, and the
    cell claims no winner: the number it would have been compared with is known to be wrong."""
    ds = _dataset({"fault_latency_p99": [[3, 1, 2], [3, 1, 2], [3, 1, 2]]})
    ds["valid"] = (("x", "policy"), np.array([[True, True, True], [True, False, True],
                                              [False, True, True]]))
    maps = winner_maps(ds, [FAULT])
    assert maps["winner_fault_p99"].values.tolist() == [1, INVALID, INVALID]
    # the leader is the best valid policy: c once b is invalid, b when a (the worst) is
    assert maps["leader_fault_p99"].values.tolist() == [1, 2, 1]
    assert decode(maps["winner_fault_p99"], ["a", "b", "c"]).values.tolist()[1] == "invalid"
    shares = winner_shares(maps["winner_fault_p99"], ["a", "b", "c"])
    assert shares["invalid"] == pytest.approx(2 / 3) and shares["b"] == pytest.approx(1 / 3)


def test_winners_with_intervals_are_undecided_where_they_overlap():
    ds = _dataset({"fault_latency_p99": [[1.0, 1.5, 3.0], [1.0, 1.5, 3.0], [1.0, 1.5, 3.0]]},
                  ci={"fault_latency_p99": [[0.1, 0.1, 0.1], [0.3, 0.3, 0.1], [0.1, np.nan, 0.1]]})
    maps = winner_maps(ds, [FAULT])
    # disjoint intervals: decided; overlapping: undecided; unknown width: undecided
    assert maps["winner_fault_p99"].values.tolist() == [0, UNDECIDED, UNDECIDED]
    assert maps["leader_fault_p99"].values.tolist() == [0, 0, 0]
    assert np.allclose(maps["margin_fault_p99"].values, 0.5)
    shares = winner_shares(maps["winner_fault_p99"], ["a", "b", "c"])
    assert shares["a"] == pytest.approx(1 / 3) and shares["undecided"] == pytest.approx(2 / 3)


def test_winners_under_a_bound():
    fault = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    writer = [[20e-3, 5e-3, 1e-3], [9.9e-3, 5e-3, 1e-3], [20e-3, 30e-3, np.nan]]
    ds = _dataset({"fault_latency_p99": fault, "writer_latency_p99": writer})
    maps = winner_maps(ds, [BOUNDED, FAULT])
    assert maps["winner_bounded"].values.tolist() == [1, 0, 2]  # nan writer p99: no writers
    assert maps["winner_fault_p99"].values.tolist() == [0, 0, 0]
    # a leader whose writer interval straddles the bound is not a sure winner
    ds = _dataset({"fault_latency_p99": fault, "writer_latency_p99": writer},
                  ci={"fault_latency_p99": np.full((3, 3), 0.01),
                      "writer_latency_p99": np.full((3, 3), 0.5e-3)})
    maps = winner_maps(ds, [BOUNDED])
    assert maps["winner_bounded"].values.tolist() == [1, UNDECIDED, 2]
    assert maps["leader_bounded"].values.tolist() == [1, 0, 2]
    maximise = Objective("throughput", "fault_rate", sense="maximize")
    ds = _dataset({"fault_rate": [[1.0, 2.0, 3.0], [5, 4, 3], [1, 1, 1]]})
    maps = winner_maps(ds, [maximise])
    assert maps["winner_throughput"].values.tolist() == [2, 0, TIE]
    assert maps["margin_throughput"].values[:2].tolist() == [1.0, 1.0]
    assert "winner_missing" not in winner_maps(ds, [Objective("missing", "jank_share")])


def test_selection_answers_are_the_map_and_agreement_is_counted_by_hand():
    """With ranking and selection the stored answer is the map (a tie is an answer); the
    analytic leader agrees where it is among the Monte Carlo's answers."""
    ds = _dataset({"fault_latency_p99": [[1.0, 1.5, 3.0], [1.0, 1.01, 3.0], [1.0, 1.2, 3.0]]},
                  ci={"fault_latency_p99": np.full((3, 3), 0.3)})
    ds["answer_fault_p99"] = ("x", np.array([0, TIE, UNDECIDED], np.int8),
                              {"confidence_level": 0.95})
    ds["survivors_fault_p99"] = (("x", "policy"), np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0]],
                                                           bool))
    maps = winner_maps(ds, [FAULT])
    assert maps["winner_fault_p99"].values.tolist() == [0, TIE, UNDECIDED]
    assert maps["winner_fault_p99"].attrs["confidence"] == 0.95
    assert winner_shares(maps["winner_fault_p99"], ["a", "b", "c"])["tie"] == pytest.approx(1 / 3)
    mc = maps.assign(survivors_fault_p99=ds["survivors_fault_p99"])
    analytic = xr.Dataset({"leader_fault_p99": ("x", [1, 1, 0])}, coords={"x": [0, 1, 2]})
    # cell 0: MC winner a, analytic b: disagree; cell 1: b is in the tie; cell 2: undecided
    assert agreement(mc, analytic, [FAULT])["agreement_fault_p99"].values.tolist() == [0, 1, -1]


def test_winner_map_known_from_the_formulas():
    """Three 'policies' that are M/G/1 queues with the same mean service and coefficients of
    variation 0, 1 and 2 (Pollaczek-Khinchine): the deterministic one wins wherever the queue is
    stable, by the formula's margin; past capacity every policy is inf: none feasible."""
    mg1 = FORMULAS["mg1_wait"]
    assert mg1.parameters == ("arrival_rate", "service_mean", "service_cv")
    arrival = xr.DataArray(np.linspace(100.0, 1500.0, 8), dims="arrival_rate")
    hold = xr.DataArray([1e-4, 5e-4, 1e-3], dims="service_mean")
    cvs = xr.DataArray([0.0, 1.0, 2.0], dims="policy")
    wait = xr.apply_ufunc(mg1, arrival, hold, cvs).transpose("arrival_rate", "service_mean",
                                                              "policy")
    ds = xr.Dataset({"mmap_read_wait_mean": wait},
                    coords={"arrival_rate": arrival, "service_mean": hold,
                            "policy": ["deterministic", "exponential", "bursty"]})
    objective = Objective("read_wait", "mmap_read_wait_mean")
    maps = winner_maps(ds, [objective])
    load = arrival * hold
    expected = xr.where(load < 1, 0, NONE_FEASIBLE)
    assert (maps["winner_read_wait"] == expected).all()
    stable = (load < 1).values
    wait = ds["mmap_read_wait_mean"]
    runner_up = wait.sel(policy="exponential") - wait.sel(policy="deterministic")
    assert np.allclose(maps["margin_read_wait"].values[stable], runner_up.values[stable])
    # P-K: W = rho * m * (1 + cv^2) / (2 (1 - rho)), so the margin is W(cv=0)
    assert np.allclose(runner_up.values[stable], wait.sel(policy="deterministic").values[stable])


# ------------------------------------------------------------------------------------------------
# The analytic method (once faultlock.model.analytic exists)
# ------------------------------------------------------------------------------------------------

ANALYTIC_MISSING = analytic_available()


ANALYTIC_TEXT = TINY.replace('method = "mc"', 'method = "analytic"').replace(
    "{operations}", "600").replace("{chunk_cells}", "1").replace("{write_cells}", "2").replace(
    'writer_rate = "300/s"',
    'writer_rate = "300/s"\nreclaim = "hazard"\nreclaim_rate_mapped = "1/s"')
needs_analytic = pytest.mark.skipif(ANALYTIC_MISSING is not None,
                                    reason=f"analytic model not available: {ANALYTIC_MISSING}")


def _analytic_stores(tmp_path: Path, chunkings=(1, 5, 100)) -> tuple[Path, list[Path]]:
    path = tmp_path / "analytic.toml"
    path.write_text(ANALYTIC_TEXT)
    stores = []
    for cells in chunkings:
        store = tmp_path / f"a{cells}.zarr"
        run_sweep(path, store, workers=0, progress=False, chunk_cells={"analytic": cells},
                  write_cells={"analytic": cells})
        stores.append(store)
    return path, stores


@pytest.fixture(scope="module")
def analytic_stores(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The analytic spec swept with 1, 5 and 100 cells a call, shared by the tests below (both
    marked ``needs_analytic``)."""
    return _analytic_stores(tmp_path_factory.mktemp("analytic"))


@needs_analytic
def test_analytic_sweep_matches_predict(analytic_stores):
    from faultlock.model.analytic import predict
    path, stores = analytic_stores
    stores = [stores[0], stores[-1]]                        # one cell a call; all in one
    spec = load_spec(path)
    trees = [open_sweep(s)["analytic"].to_dataset().load() for s in stores]
    for ds in trees:
        assert bool(ds["done"].all()) and ds.attrs["solver"] == "analytic"
        assert "fault_latency_mean_ci" not in ds      # no Monte Carlo interval
    direct = predict(spec.cell((2, 1, 1)), spec.policies)
    for ds in trees:
        cell = ds.sel(threads=4, io_latency=2e-3, writers="forks")
        for name, var in direct.data_vars.items():
            if name in DERIVED:
                continue       # stored as invalid_checks and converged
            assert name in cell, name
            np.testing.assert_array_equal(cell[name].values, var.values, err_msg=name)
    ds = trees[0]
    best = ds["mmap_read_wait_mean"].argmin("policy")
    decided = ds["winner_read_wait"] >= 0
    assert (ds["winner_read_wait"].where(decided) == best.where(decided)).all()


@needs_analytic
def test_analytic_bit_identical_across_chunkings(analytic_stores):
    """predict() stops each element of its fixed point on its own, so a cell's numbers do not
    depend on the cells it is vectorised with."""
    _, stores = analytic_stores
    for store in stores[1:]:
        assert_same_data(stores[0], store)


def test_analytic_unavailable_is_a_clear_error(tmp_path):
    if ANALYTIC_MISSING is None:
        pytest.skip("the analytic model is available")
    path = tmp_path / "both.toml"
    path.write_text(ANALYTIC_TEXT.replace('method = "analytic"', 'method = "both"'))
    with pytest.raises(SpecError, match="analytic model is not available"):
        run_sweep(path, tmp_path / "x.zarr", workers=0, progress=False)
    assert not (tmp_path / "x.zarr").exists()


# ------------------------------------------------------------------------------------------------
# Long: kills at random moments, through a LocalCluster
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_killed_at_random_moments_through_a_local_cluster(tmp_path):
    path = tiny_spec(tmp_path, operations=3000, chunk_cells=1, write_cells=2)
    reference = tmp_path / "reference.zarr"
    run_sweep(path, reference, workers=0, progress=False)
    store = tmp_path / "store.zarr"
    total = load_spec(path).cells("mc")
    rng = np.random.default_rng(1)
    code = (f"from faultlock.sweeps import run_sweep; run_sweep({str(path)!r}, {str(store)!r}, "
            f"workers=2, progress=False, resume=True)")
    counts = []
    for round_ in range(7):
        before = done_count(store)
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        if round_ < 6:  # at random moments: starting, writing the template, computing, writing
            time.sleep(rng.uniform(0.0, 8.0))
        else:  # and surely once after progress
            deadline = time.monotonic() + 300
            while done_count(store) == before and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        counts.append(done_count(store))
        if counts[-1] == total:
            break
    assert any(0 < c < total for c in counts), counts
    run_sweep(path, store, workers=0, progress=False, resume=True)
    assert_bit_identical(reference, store)


@pytest.mark.slow
def test_smoke_spec_runs_on_a_local_cluster(tmp_path):
    spec = load_spec("smoke")
    if "analytic" in spec.methods and ANALYTIC_MISSING:
        pytest.skip(ANALYTIC_MISSING)
    tree = run_sweep("smoke", tmp_path / "smoke.zarr", workers=2, progress=False)
    for method in spec.methods:
        assert bool(tree[method]["done"].all())
