"""Run a sweep: spec -> plans -> store template -> chunks on Dask -> region writes -> winner maps.

The client (this process) is the only writer: workers compute chunks from plain payloads and
send results back, so workers need no access to the store (a remote cluster's workers may not
share the client's disk). Chunks are written as they complete, each followed by its ``done``
marker; a killed sweep resumes from the chunks not marked done. The store's path is checked
like every output (:func:`faultlock.outputs.check_output`) and the store is locked
(:class:`faultlock.outputs.DirectoryLock`) from before its first byte to the end of the run, so
two sweeps never write one store.

A task that fails (its worker died more often than Dask allows, or the solver raised) costs its
cells only: the others complete, the winner maps are written for what is done, and
:class:`SweepIncomplete` says which cells remain; running the sweep again computes them.

Running a sweep again on its own store does what the person running it wants: a store of the
same spec (the same fingerprint) that is complete is left alone ("nothing to do"), one that is
incomplete is resumed (cells marked done are skipped); ``force`` starts again, and a store of
another spec is refused. So ``faultlock sweep lsfmm -o lsfmm.zarr && faultlock show ...`` can be
run twice. Progress (:mod:`.progress`) is printed before each slow step (the cluster's start) and
the time left weighs every task by its cost (:func:`task_weight`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import xarray as xr

from ..outputs import DirectoryLock, OutputError, check_output, created_directory
from .grid import Plan, make_plans
from .progress import CostModel, ProgressBar, status
from .solvers import analytic_available, make_task, run_task
from .spec import SpecError, SweepSpec, load_spec
from .store import FORMAT, StoreError, SweepStore, open_sweep
from .winners import agreement, winner_maps

__all__ = ["COST_PRIOR", "SweepIncomplete", "default_workers", "run_sweep", "task_weight"]


class SweepIncomplete(RuntimeError):
    """Some chunks failed; the store holds every other cell and can be resumed."""

    def __init__(self, message: str, failures: list[tuple[str, tuple[slice, ...], str]]):
        super().__init__(message)
        self.failures = failures


def default_workers() -> int:
    """One worker process per core available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _check_options(workers: Any, scheduler: Any) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 0):
        raise ValueError(f"workers={workers!r} is not allowed: None (one per core), 0 (no Dask: "
                         "compute in this process) or a positive integer")
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ValueError(f"scheduler={scheduler!r} is not allowed: an address such as "
                             "tcp://10.0.0.5:8786")
        if workers is not None:
            raise ValueError(f"workers={workers!r} with scheduler={scheduler!r} is not allowed: "
                             "an existing cluster has its own workers; give one or the other")


def run_sweep(spec_or_path: str | Path | SweepSpec, store: str | Path, workers: int | None = None,
              scheduler: str | None = None, resume: bool = False, progress: bool = True, *,
              force: bool = False, chunk_cells: Mapping[str, int] | None = None,
              write_cells: Mapping[str, int] | None = None, stream: TextIO | None = None,
              option: str = "store") -> xr.DataTree:
    """Run (or resume) a sweep into a zarr store and return the store as a DataTree.

    Parameters
    ----------
    spec_or_path : shipped spec name (``"lsfmm"``), path to a TOML spec, or a SweepSpec
    store : path of the zarr store (a directory ending in ``.zarr``) to create, or to resume;
        its parent directory must exist (see :mod:`faultlock.outputs`). While the sweep runs the
        store is locked (``STORE/.faultlock.lock``): a second writer is refused
    workers : processes of the default ``dask.distributed.LocalCluster`` (None: one per core);
        0 computes in this process, without Dask
    scheduler : address of an existing Dask scheduler (``tcp://host:8786``) instead of a
        LocalCluster
    resume : continue an existing store made by the same spec (skipping cells marked done).
        This is also what happens without it: a store of the same spec is resumed, or left
        alone if it is complete; ``resume=True`` only says so explicitly
    force : replace an existing zarr store at ``store`` (a new sweep from scratch)
    progress : draw a progress bar on ``stream`` (default stderr)
    chunk_cells, write_cells : cells per task and cells per zarr chunk (one write), per method
        (``{"mc": 2}``), overriding the spec's; a store is resumed with its own chunking
    option : how ``store`` is named in error messages (the CLI passes ``-o/--output``)

    Raises
    ------
    SpecError, StoreError (ValueErrors)
        Bad spec or options, or a store that cannot be used (missing parent, not writable,
        holds something else or another spec's sweep without ``force``, locked by another
        writer); nothing is written.
    SweepIncomplete
        Some chunks failed; everything else is stored; resume to finish.
    """
    spec = load_spec(spec_or_path)
    _check_options(workers, scheduler)
    plans = make_plans(spec, dict(chunk_cells or {}), dict(write_cells or {}))
    if resume and force:
        raise StoreError(f"resume=True with force=True for {store} is not allowed: resume "
                         "continues the store, force replaces it; give one of them")
    try:
        # an existing store is looked at, not refused: same spec -> resumed (below)
        path = check_output(store, (".zarr",), option=option, force=force, reuse=not force)
    except OutputError as exc:
        raise StoreError(str(exc)) from None
    total = sum(plan.cells for plan in plans.values())
    if not force and _same_spec(SweepStore(path), spec, option, store):
        resume = True
        # read only, before the slow imports and without the lock: cells marked done stay
        # done (only --force, refused while another process holds the lock, undoes them)
        if _complete(SweepStore(path), spec, plans):
            status(f"{store} is complete ({total} cells); nothing to do (--force to recompute)",
                   stream, progress)
            return open_sweep(path)
    status(f"{spec.name}: {total} cells (" + ", ".join(
        f"{method} {plan.cells}" for method, plan in plans.items()) + f") into {store}",
        stream, progress)
    if "analytic" in spec.methods:
        missing = analytic_available()
        if missing:
            raise SpecError(f"{spec.source}: method: the analytic model is not available: "
                            f"{missing}; allowed: method = \"mc\"")
    remove_if_unused = created_directory(path)
    lock = DirectoryLock(path, option)
    try:
        lock.acquire(command=f"faultlock sweep {spec.name}")
    except OutputError as exc:
        raise StoreError(str(exc)) from None
    try:
        sweep_store = SweepStore(path)
        try:
            created = sweep_store.prepare(spec, plans, resume, force)
        except StoreError:
            lock.release()
            remove_if_unused()
            raise
        if not created:
            done = sum(int(sweep_store.done(m).sum()) for m in plans)
            status(f"{store}: resuming, {done} of {total} cells already done (--force to "
                   "start again)", stream, progress)
        _run_prepared(sweep_store, spec, plans, workers, scheduler, resume, progress, stream)
    finally:
        lock.release()
    return open_sweep(path)


def _same_spec(sweep_store: SweepStore, spec: SweepSpec, option: str, name) -> bool:
    """True if the path holds a faultlock sweep store of ``spec`` (to be resumed); False if it
    holds nothing (or something that :meth:`SweepStore.prepare` will refuse with its own
    message). Another spec's sweep is refused here, with the way out: ``--force``."""
    attrs = sweep_store.attrs()
    if attrs is None or attrs.get("faultlock_sweep") != FORMAT:
        return False   # nothing, or not ours (prepare says which)
    if attrs.get("spec_fingerprint") != spec.fingerprint():
        raise StoreError(
            f"{option} {name}: holds a sweep made by a different spec "
            f"({attrs.get('spec_source')}); allowed: --force (force=True) to replace it, or a new "
            "path")
    return True


def _complete(sweep_store: SweepStore, spec: SweepSpec, plans: Mapping[str, Plan]) -> bool:
    """Every cell of every method done and its winner maps written (a run killed between its
    last chunk and its winner maps is not complete: running again writes them)."""
    attrs = sweep_store.attrs() or {}
    if not attrs.get("template_complete"):
        return False
    for method, plan in plans.items():
        for what, mine in (("chunks", plan.chunks), ("blocks", plan.blocks)):
            if tuple(attrs.get(what, {}).get(method, mine)) != mine:
                return False   # another chunking: prepare refuses it with its own message
        if not sweep_store.done(method).all():
            return False
        # the store is zarr format 3: an array is a directory with its zarr.json (listing the
        # group through zarr would warn about the lock file)
        if spec.objectives and not any((array / "zarr.json").is_file() for array in
                                       (sweep_store.path / method).glob("winner_*")):
            return False
    if set(plans) == {"analytic", "mc"} and spec.objectives and not any(
            (array / "zarr.json").is_file()
            for array in (sweep_store.path / "mc").glob("agreement_*")):
        return False  # written last, after both methods' winner maps
    return True


def _run_prepared(sweep_store: SweepStore, spec: SweepSpec, plans: Mapping[str, Plan],
                  workers: int | None, scheduler: str | None, resume: bool, progress: bool,
                  stream: TextIO | None) -> None:
    """Compute the cells not done and write them (the store's lock is held)."""
    store = sweep_store.path
    blocks = _Blocks(sweep_store)
    done_cells = 0
    for method, plan in plans.items():
        done = sweep_store.done(method)
        done_cells += int(done.sum())
        for block in plan.block_regions():
            if not done[block].all():
                blocks.expect(plan, block, [t for t in plan.tasks(block) if not done[t].all()])
    total = sum(plan.cells for plan in plans.values())
    where = "in this process" if workers == 0 and scheduler is None else \
        (scheduler or f"LocalCluster({workers or default_workers()} processes)")
    sweep_store.log_run({"resume": bool(resume), "workers": workers, "scheduler": scheduler,
                         "executor": where, "cells_done_before": done_cells,
                         "cells_total": total})

    parallel = 1 if workers == 0 and scheduler is None else (workers or default_workers())
    work: dict[str, float] = {}
    for plan, _block, region in blocks.tasks:
        work[plan.method] = work.get(plan.method, 0.0) + task_weight(plan, region)
    failures: list[tuple[str, tuple[slice, ...], str]] = []
    bar: ProgressBar | None = None

    def start_bar() -> ProgressBar:
        nonlocal bar
        bar = ProgressBar(total, done_cells, label=spec.name, stream=stream, enabled=progress,
                          work=work, cost=CostModel(COST_PRIOR), workers=parallel,
                          ticking=True)
        return bar

    try:
        try:
            if blocks.tasks:
                if workers == 0 and scheduler is None:
                    _run_here(blocks, start_bar())
                else:
                    failures = _run_dask(blocks, spec, workers, scheduler, start_bar,
                                         lambda text: status(text, stream, progress))
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                blocks.flush()  # keep what was computed (Ctrl-C, a lost scheduler)
            raise
        blocks.flush()
        if bar is not None:   # ends its line on a terminal, before the next one
            bar.close()
            bar = None
        if blocks.tasks:
            status(f"{spec.name}: writing the winner maps", stream, progress)
        for method in plans:
            write_winners(sweep_store, spec, method)
        if set(plans) == {"analytic", "mc"}:
            write_agreement(sweep_store, spec)
    finally:
        if bar is not None:
            bar.close()
    if failures:
        cells = sum(_region_cells(region) for _, region, _ in failures)
        method, region, error = failures[0]
        raise SweepIncomplete(
            f"{len(failures)} chunks ({cells} cells) failed and are not in {store}; the other "
            f"cells are. Resume (--resume) to compute them. First failure ({method}, "
            f"{_region_text(region)}):\n{error}", failures)


class _Blocks:
    """Task results wait here until their block (one zarr chunk) is complete, then the block
    is written at once: one write per variable per block, however small the tasks."""

    def __init__(self, store: SweepStore):
        self.store = store
        self.tasks: list[tuple[Plan, tuple[slice, ...], tuple[slice, ...]]] = []
        self._missing: dict[tuple[str, tuple], set] = {}
        self._parts: dict[tuple[str, tuple], list] = {}
        self._plans: dict[str, Plan] = {}

    @staticmethod
    def _key(plan: Plan, block: tuple[slice, ...]) -> tuple[str, tuple]:
        return plan.method, tuple((s.start, s.stop) for s in block)

    def expect(self, plan: Plan, block: tuple[slice, ...], tasks: list[tuple[slice, ...]]):
        key = self._key(plan, block)
        self._plans[plan.method] = plan
        self._missing[key] = {tuple((s.start, s.stop) for s in t) for t in tasks}
        self._parts[key] = []
        self.tasks += [(plan, block, task) for task in tasks]

    def add(self, plan: Plan, block: tuple[slice, ...], region: tuple[slice, ...],
            result: xr.Dataset) -> None:
        key = self._key(plan, block)
        self._parts[key].append((region, self.store.arrays(plan, region, result)))
        self._missing[key].discard(tuple((s.start, s.stop) for s in region))
        if not self._missing[key]:
            self.store.write_block(plan, block, self._parts.pop(key))
            del self._missing[key]

    def flush(self) -> None:
        """Write the finished tasks of blocks left incomplete (failures, interruptions)."""
        for key in list(self._parts):
            parts = self._parts.pop(key)
            if parts:
                block = tuple(slice(a, b) for a, b in key[1])
                self.store.write_block(self._plans[key[0]], block, parts)


def _region_cells(region: tuple[slice, ...]) -> int:
    count = 1
    for s in region:
        count *= s.stop - s.start
    return count


def _region_text(region: tuple[slice, ...]) -> str:
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in region) + "]"


#: the methods this process has run a task of (on a worker: its own set)
_WARM: set[str] = set()


def _timed(task: dict[str, Any]) -> tuple[xr.Dataset, float | None]:
    """:func:`run_task` and the seconds it took where it ran, for the time left; None for the
    first task of a method in a process, which also pays for imports and numba's compilation
    or cache load (measured 10-20 s, ten times a Monte Carlo cell: it would inflate the
    estimate for minutes)."""
    started = time.perf_counter()
    result = run_task(task)
    seconds = time.perf_counter() - started
    first = task["method"] not in _WARM
    _WARM.add(task["method"])
    return result, None if first else seconds


def _run_here(blocks: _Blocks, bar: ProgressBar) -> None:
    for plan, block, region in blocks.tasks:
        result, seconds = _timed(make_task(plan, region))
        blocks.add(plan, block, region, result)
        bar.update(_region_cells(region), kind=plan.method, weight=task_weight(plan, region),
                   seconds=seconds)


def _connect(workers: int | None, scheduler: str | None):
    from dask.distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"scheduler={scheduler!r}: cannot connect ({exc}); allowed: the "
                             "address of a running dask scheduler") from None
    cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                           processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR,
                           env={"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
                                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return Client(cluster), cluster


def _run_dask(blocks: _Blocks, spec: SweepSpec, workers: int | None, scheduler: str | None,
              start_bar, say):
    """Submit every task, write results as they complete; ``start_bar()`` once the cluster is
    up, ``say(line)`` before the slow steps."""
    say(f"{spec.name}: {len(blocks.tasks)} tasks; connecting to {scheduler} ..." if scheduler
        else f"{spec.name}: {len(blocks.tasks)} tasks; starting "
             f"{workers or default_workers()} worker processes (dask LocalCluster) ...")
    from dask.distributed import as_completed

    client, cluster = _connect(workers, scheduler)
    failures = []
    futures = {}
    try:
        token = uuid.uuid4().hex[:8]
        order = _probes_first(blocks.tasks, 3 * (workers or default_workers()))
        for k, (plan, block, region) in enumerate(order):
            future = client.submit(_timed, make_task(plan, region), pure=False,
                                   key=f"faultlock-{spec.name}-{plan.method}-{k}-{token}")
            futures[future] = (plan, block, region)
        bar = start_bar()
        for future in as_completed(list(futures)):
            plan, block, region = futures.pop(future)
            cells = _region_cells(region)
            weight = task_weight(plan, region)
            try:
                result, seconds = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, solver errors: cost one task
                failures.append((plan.method, region,
                                 "".join(traceback.format_exception_only(type(exc), exc))))
                bar.update(0, failed=cells, kind=plan.method, weight=weight)
                continue
            finally:
                future.release()
            blocks.add(plan, block, region, result)
            bar.update(cells, kind=plan.method, weight=weight, seconds=seconds)
    finally:
        for future in futures:
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()
    return failures


def _probes_first(tasks: list, count: int) -> list:
    """The tasks in submission order (Dask starts them first come, first served), with the
    first ``count`` tasks of the method whose tasks are the cheapest (:data:`COST_PRIOR` x
    :func:`task_weight`) moved to the front: a sweep whose first tasks are minutes-long
    analytic chunks then shows cells done, and measures the cost of the other method, within
    seconds. The rest keeps its order (heavy tasks early, the best for the end of the run)."""
    by_method: dict[str, list[int]] = {}
    for k, (plan, _block, _region) in enumerate(tasks):
        by_method.setdefault(plan.method, []).append(k)
    if len(by_method) < 2:
        return list(tasks)

    def seconds(k: int) -> float:
        plan, _block, region = tasks[k]
        return COST_PRIOR.get(plan.method, 1.0) * task_weight(plan, region)

    cheapest = min(by_method, key=lambda m: seconds(by_method[m][0]))
    probes = set(by_method[cheapest][:count])
    return [tasks[k] for k in sorted(probes)] + [t for k, t in enumerate(tasks)
                                                 if k not in probes]


#: seconds per unit of :func:`task_weight` before a task of the method has completed: measured
#: on the project's 2-vCPU machine on 2026-12-05 (``lsfmm`` cells run one at a time, numba's
#: cache warm, machine shared): an analytic cell 0.5-1.5 s, a Monte Carlo cell about 1 s.
#: Only the first estimate uses them; the completed tasks' durations replace them.
COST_PRIOR = {"analytic": 0.7, "mc": 1.0}


def task_weight(plan: Plan, region: tuple[slice, ...]) -> float:
    """The cost of one task relative to the other tasks of its method, for the time left.

    The sum over its cells of ``(1 + log2(threads) / 12) x (2 if memory_limit else 1)``: both
    solvers do more work as threads grow (the Monte Carlo: more events in flight per fault; the
    analytic model: more fixed-point passes) and under a memory limit (the Monte Carlo's LRU
    and reclaim, the analytic model's characteristic-time equation, measured about twice the
    unlimited cost). The factor is deliberately mild: the scale (seconds per unit) is measured
    per method as tasks complete (:class:`faultlock.sweeps.progress.CostModel`), so only the
    ratios between tasks of one method matter here.
    """
    weight = 0.0
    for index in plan.cell_indices(region):
        scenario = plan.scenario(index)
        threads = max(1, int(getattr(scenario, "threads", 1)))
        limited = bool(getattr(scenario, "memory_limit", 0))
        weight += (1.0 + math.log2(threads) / 12.0) * (2.0 if limited else 1.0)
    return weight


def write_winners(store: SweepStore, spec: SweepSpec, method: str) -> None:
    """(Re)compute the winner maps of one method from what the store holds, and write them."""
    group = store.root()[method]
    if not group.attrs.get("schema_complete"):
        return
    ds = xr.open_zarr(str(store.path), group=method, consolidated=False)
    needed = {m for o in spec.objectives for m in o.metrics}
    answers = {f"answer_{o.name}" for o in spec.objectives}
    names = [n for n in ds.data_vars if n in needed or n.removesuffix("_ci") in needed
             or n in answers or n == "valid"]
    maps = winner_maps(ds[names + ["done"]].load(), spec.objectives, done=ds["done"].load(),
                       rtol=spec.tie_tolerance)
    if maps.data_vars:
        store.write_winners(method, maps)


def write_agreement(store: SweepStore, spec: SweepSpec) -> None:
    """(Re)write where the analytic model's leader is among the Monte Carlo's answers
    (``agreement_<objective>`` in the Monte Carlo's group, :func:`~.winners.agreement`)."""
    root = store.root()
    if not all(root[m].attrs.get("schema_complete") for m in ("analytic", "mc")):
        return
    mc = xr.open_zarr(str(store.path), group="mc", consolidated=False)
    analytic = xr.open_zarr(str(store.path), group="analytic", consolidated=False)
    keep = [n for n in mc.data_vars if n.startswith(("winner_", "survivors_"))]
    lead = [n for n in analytic.data_vars if n.startswith("leader_")]
    if not keep or not lead:
        return
    maps = agreement(mc[keep].load(), analytic[lead].load(), spec.objectives)
    if maps.data_vars:
        store.write_winners("mc", maps)
