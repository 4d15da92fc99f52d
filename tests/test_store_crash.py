"""A sweep store survives ``kill -9`` at any point of its creation, and has one writer at a time.

The kills are real: a forked child runs the sweep and sends itself SIGKILL just before its k-th
file write to the store (leaving the half-written temporary file zarr would leave), for values
of k spread over the creation of the template and of both groups' metric variables, plus one k
drawn at random and one kill at a random moment. The parent then resumes the store in-process
and compares it, file by file, with a store written without interruption: the same bytes (but
the root attribute ``run_log``, which records the runs). Forking keeps each kill to a fraction of
a second: the child inherits the parent's imported and compiled code.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
import uuid
from pathlib import Path

import pytest

from faultlock.outputs import LOCK_NAME, DirectoryLock, OutputError, lock_holder
from faultlock.sweeps import StoreError, run_sweep, show

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

# Both methods, 2 x 2 cells, short Monte Carlo runs: the whole sweep takes about a second.
SPEC = """
description = "store crash test grid"
method = "both"
policies = ["mainline", "vma_retry"]
seed = 11

[base]
preset = "virtio_2cpu"
writer_rate = "300/s"
reclaim = "hazard"
reclaim_rate_cached = "200/s"

[grid]
threads = [1, 4]
io_latency = ["100us", "2ms"]

[mc]
operations = 300
batches = 5
chunk_cells = 2
write_cells = 2

[analytic]
chunk_cells = 4
"""


def store_files(store: Path) -> dict[str, str]:
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file()}


def assert_same_store(reference: Path, store: Path) -> None:
    """Every file identical; the root metadata identical but for the run log."""
    a, b = store_files(reference), store_files(store)
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    differ = [name for name in a if a[name] != b[name]]
    assert differ in ([], ["zarr.json"]), differ
    ra = json.loads((reference / "zarr.json").read_text())
    rb = json.loads((store / "zarr.json").read_text())
    ra["attributes"].pop("run_log")
    rb["attributes"].pop("run_log")
    assert ra == rb


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "crash.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def reference(spec) -> tuple[Path, list[str], dict[str, tuple[int, int]]]:
    """An uninterrupted store, and the store files it wrote, in order, up to the moment the
    last group's schema was complete (the "schema creation" that the kills interrupt)."""
    import zarr.storage._local as local

    writes: list[str] = []
    original = local._put

    def counting(path, value, exclusive=False):
        writes.append(str(path))
        return original(path, value, exclusive=exclusive)

    store = spec.parent / "reference.zarr"
    local._put = counting
    try:
        run_sweep(spec, store, workers=0, progress=False)
    finally:
        local._put = original
    phases = _phases(writes, store)
    return store, writes[:max(stop for _, stop in phases.values())], phases


def _phases(writes: list[str], store: Path) -> dict[str, tuple[int, int]]:
    """The writes (1-based, inclusive ranges) that create the template, then each group's
    metric variables: up to the write before the first chunk of that group's metric data."""
    bounds = {}
    for group in ("mc", "analytic"):
        metrics = json.loads((store / group / "zarr.json").read_text()
                             )["attributes"]["metric_variables"]
        parts = [Path(name).relative_to(store).parts for name in writes]
        first_metric = next(i for i, p in enumerate(parts)
                            if p[0] == group and len(p) > 2 and p[1] in metrics)
        first_data = next(i for i, p in enumerate(parts)
                          if p[0] == group and len(p) > 2 and p[1] in metrics and p[2] == "c")
        bounds[f"{group} metric variables"] = (first_metric + 1, first_data)
    bounds["template"] = (1, min(start for start, _ in bounds.values()) - 1)
    return bounds


def _become_child() -> None:
    """In a forked child: compute with dask's synchronous scheduler, since the parent's
    threaded-scheduler pool (from earlier sweeps in this process) has no threads after fork."""
    import dask
    dask.config.set(scheduler="synchronous")


def _killed_child(run, kill_at: int | None = None, delay: float | None = None,
                  counted=lambda parts: True) -> int:
    """Fork; the child calls ``run()`` and is killed with SIGKILL before its ``kill_at``-th
    store write among those ``counted`` (a predicate on the path's parts), leaving a
    half-written temporary as a kill inside zarr's write would; or it is killed by the parent
    after ``delay`` seconds. Returns the child's wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 3
        try:
            _become_child()
            if kill_at is not None:
                import zarr.storage._local as local
                original = local._put
                count = [0]

                def dying(path, value, exclusive=False):
                    count[0] += counted(Path(path).parts)
                    if count[0] == kill_at:
                        partial = Path(path).with_suffix(f".{uuid.uuid4().hex}.partial")
                        data = bytes(value.as_buffer_like())
                        partial.parent.mkdir(parents=True, exist_ok=True)
                        partial.write_bytes(data[:len(data) // 2])
                        os.kill(os.getpid(), signal.SIGKILL)
                    return original(path, value, exclusive=exclusive)
                local._put = dying
            run()
            status = 0
        finally:
            os._exit(status)
    if delay is not None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    return _wait(pid)


def _wait(pid: int, seconds: float = 120) -> int:
    """The wait status of a child; a child that hangs is killed and fails the test."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the sweep child did not finish in {seconds} s")


def _assert_killed(status: int, where: str) -> None:
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
        f"the child was not killed {where}: wait status {status}"


def _assert_interrupted(spec: Path, store: Path) -> None:
    """Not reported as finished (a run without --resume resumes it: see _kill_and_resume)."""
    try:
        summary = show(store)
    except StoreError as exc:  # killed before the root metadata was written
        summary = str(exc)
        assert "its first run stopped before writing anything" in summary
    assert "status: complete" not in summary


def _kill_and_resume(spec: Path, reference: Path, store: Path, kill_at: int) -> None:
    status = _killed_child(lambda: run_sweep(spec, store, workers=0, progress=False),
                           kill_at=kill_at)
    _assert_killed(status, f"at write {kill_at}")
    _assert_interrupted(spec, store)
    run_sweep(spec, store, workers=0, progress=False)  # the same spec: resumed by default
    assert_same_store(reference, store)
    assert "status: complete" in show(store)


def test_killed_in_every_phase_of_schema_creation_then_resumed(spec, reference, tmp_path):
    """One store, killed three times at random writes: while the template is written, then
    (resuming) while one group's metric variables are created, then (resuming again) while the
    other group's are. The final resume ends byte for byte like the uninterrupted store. The
    seed is printed; FAULTLOCK_CRASH_SEED=... replays it."""
    store_ref, _, phases = reference
    seed = int(os.environ.get("FAULTLOCK_CRASH_SEED", random.SystemRandom().randrange(2**32)))
    rng = random.Random(seed)
    store = tmp_path / "killed.zarr"
    first, last = phases["template"]
    k = rng.randint(first, last)
    print(f"FAULTLOCK_CRASH_SEED={seed}: template (writes {first}..{last}): killed before {k}")
    _assert_killed(_killed_child(lambda: run_sweep(spec, store, workers=0, progress=False),
                                 kill_at=k), f"at write {k}")
    _assert_interrupted(spec, store)
    groups = sorted((g for g in phases if g != "template"), key=lambda g: phases[g])
    for group in groups:  # in the order the sweep creates them
        name = group.split()[0]
        metrics = set(json.loads((store_ref / name / "zarr.json").read_text())
                      ["attributes"]["metric_variables"])
        count = sum(1 for p in _relative_parts(reference) if p[:1] == (name,)
                    and len(p) > 2 and p[1] in metrics and p[2] != "c")
        j = rng.randint(1, count)
        print(f"  {group} ({count} writes): killed before its write {j}")

        def counted(parts, name=name, metrics=metrics):
            parts = parts[len(store.parts):]
            return (len(parts) > 2 and parts[0] == name and parts[1] in metrics
                    and parts[2] != "c")
        status = _killed_child(
            lambda: run_sweep(spec, store, workers=0, progress=False, resume=True),
            kill_at=j, counted=counted)
        _assert_killed(status, f"at write {j} of the {group}")
        _assert_interrupted(spec, store)
    run_sweep(spec, store, workers=0, progress=False, resume=True)
    assert_same_store(store_ref, store)
    assert "status: complete" in show(store)


def _relative_parts(reference) -> list[tuple[str, ...]]:
    store_ref, writes, _ = reference
    return [Path(name).relative_to(store_ref).parts for name in writes]


def test_kill_at_a_random_moment_then_resume(spec, reference, tmp_path):
    """SIGKILL from outside at a random moment of the first few seconds (most runs die while
    the template or the metric variables are being written)."""
    store_ref, _, _ = reference
    store = tmp_path / "moment.zarr"
    delay = random.uniform(0.0, 3.0)
    print(f"killed after {delay:.3f} s")
    _killed_child(lambda: run_sweep(spec, store, workers=0, progress=False), delay=delay)
    if store.exists():
        run_sweep(spec, store, workers=0, progress=False, resume=True)
    else:  # killed before it created anything: nothing to resume, nothing left behind
        run_sweep(spec, store, workers=0, progress=False)
    assert_same_store(store_ref, store)


@pytest.mark.slow
def test_kill_at_points_spread_over_schema_creation(spec, reference, tmp_path):
    """The first writes, the phase boundaries and points between them."""
    store_ref, writes, phases = reference
    points = {1, 2, 3, len(writes)}
    for first, last in phases.values():
        points |= {first, (first + last) // 2, last}
    for k in sorted(points):
        _kill_and_resume(spec, store_ref, tmp_path / f"killed-{k}.zarr", k)


@pytest.mark.slow
def test_kill_at_every_write_of_schema_creation(spec, reference, tmp_path):
    """Hours on a loaded machine: every one of the ~800 writes."""
    store_ref, writes, _ = reference
    for k in range(1, len(writes) + 1):
        _kill_and_resume(spec, store_ref, tmp_path / f"killed-{k}.zarr", k)


# ---- one writer ---------------------------------------------------------------------------------
def test_a_second_writer_is_refused_and_a_dead_one_blocks_nobody(spec, reference, tmp_path):
    """A child starts the sweep and stops (SIGSTOP) while it holds the store; a second sweep,
    with or without --resume, is refused with the child's pid. Once the child is killed the
    lock is gone (the kernel drops a dead process's flock), though its file remains."""
    store = tmp_path / "two.zarr"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _become_child()
            import zarr.storage._local as local
            original = local._put

            def stopping(path, value, exclusive=False):
                os.write(write_end, b"x")
                os.kill(os.getpid(), signal.SIGSTOP)  # hold the lock, mid-template
                return original(path, value, exclusive=exclusive)
            local._put = stopping
            run_sweep(spec, store, workers=0, progress=False)
        finally:
            os._exit(0)
    try:
        assert os.read(read_end, 1) == b"x"  # the child holds the lock
        for resume in (False, True):
            with pytest.raises(StoreError, match=f"being written by another faultlock process "
                                                 f"\\(pid {pid} "):
                run_sweep(spec, store, workers=0, progress=False, resume=resume)
        assert lock_holder(store).startswith(f"pid {pid} ")
        assert "being created by pid" in show(store)  # whichever file the child stopped on
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        os.close(write_end)
    assert (store / LOCK_NAME).exists()  # left behind by the killed writer, but not held
    assert lock_holder(store) is None
    with DirectoryLock(store):  # what --resume takes first (the kill tests resume in full)
        assert lock_holder(store).startswith(f"pid {os.getpid()} ")


def test_directory_lock(tmp_path):
    first = DirectoryLock(tmp_path, option="-o")
    first.acquire(command="test")
    info = json.loads((tmp_path / LOCK_NAME).read_text())
    assert info["pid"] == os.getpid() and info["command"] == "test"
    with pytest.raises(OutputError, match=f"--output {tmp_path}: is being written by another "
                                          f"faultlock process \\(pid {os.getpid()} on host"):
        DirectoryLock(tmp_path).acquire()  # another open file: refused, even in this process
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    with DirectoryLock(tmp_path) as again:
        assert again.held
    assert not again.held
    # a lock file left by a dead process (its pid no longer exists) holds nothing
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": os.uname()[1]}))
    assert lock_holder(tmp_path) is None
    with DirectoryLock(tmp_path):
        assert lock_holder(tmp_path).startswith(f"pid {os.getpid()} ")


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_two_sweeps_started_at_once_on_a_new_store(tmp_path):
    """Two processes released at the same moment onto the same new store: one writes it, the
    other is refused with one clear line while it does (before, both wrote and one failed
    inside zarr), or, if it comes after, finds the store complete and does nothing."""
    spec = tmp_path / "analytic.toml"
    spec.write_text(SPEC.replace('method = "both"', 'method = "analytic"'))
    store = tmp_path / "both.zarr"
    go_read, go_write = os.pipe()
    children = []
    for n in range(2):
        pid = os.fork()
        if pid == 0:
            outcome = "ok"
            try:
                _become_child()
                os.read(go_read, 1)
                try:
                    run_sweep(spec, store, workers=0, progress=False)
                except Exception as exc:  # noqa: BLE001 - reported to the parent
                    outcome = f"{type(exc).__name__}: {exc}"
                (tmp_path / f"outcome-{n}").write_text(outcome)
            finally:
                os._exit(0)
        children.append(pid)
    os.write(go_write, b"gg")
    for pid in children:
        _wait(pid)
    os.close(go_read)
    os.close(go_write)
    outcomes = sorted((tmp_path / f"outcome-{n}").read_text() for n in range(2))
    print(outcomes)
    assert outcomes[1] == "ok", outcomes
    assert outcomes[0] == "ok" or (
        outcomes[0].startswith("StoreError: ")
        and "is being written by another faultlock process" in outcomes[0]
        and "\n" not in outcomes[0]), outcomes
    assert "status: complete" in show(store)
    assert not (store / LOCK_NAME).exists()
