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
:class:`SweepIncomplete` says which cells remain; ``resume=True`` computes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import xarray as xr

from ..outputs import DirectoryLock, OutputError, check_output, created_directory
from .grid import Plan, make_plans
from .progress import ProgressBar
from .solvers import analytic_available, make_task, run_task
from .spec import SpecError, SweepSpec, load_spec
from .store import StoreError, SweepStore, open_sweep
from .winners import agreement, winner_maps

__all__ = ["SweepIncomplete", "default_workers", "run_sweep"]


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
    resume : continue an existing store made by the same spec (skipping cells marked done);
        without it (or ``force``) an existing store is an error
    force : replace an existing zarr store at ``store`` (a new sweep from scratch)
    progress : draw a progress bar on ``stream`` (default stderr)
    chunk_cells, write_cells : cells per task and cells per zarr chunk (one write), per method
        (``{"mc": 2}``), overriding the spec's; a store is resumed with its own chunking
    option : how ``store`` is named in error messages (the CLI passes ``-o/--output``)

    Raises
    ------
    SpecError, StoreError (ValueErrors)
        Bad spec or options, or a store that cannot be used (missing parent, not writable,
        exists without resume or force, locked by another writer); nothing is written.
    SweepIncomplete
        Some chunks failed; everything else is stored; resume to finish.
    """
    spec = load_spec(spec_or_path)
    _check_options(workers, scheduler)
    if "analytic" in spec.methods:
        missing = analytic_available()
        if missing:
            raise SpecError(f"{spec.source}: method: the analytic model is not available: "
                            f"{missing}; allowed: method = \"mc\"")
    plans = make_plans(spec, dict(chunk_cells or {}), dict(write_cells or {}))
    if resume and force:
        raise StoreError(f"resume=True with force=True for {store} is not allowed: resume "
                         "continues the store, force replaces it; give one of them")
    try:
        path = check_output(store, (".zarr",), option=option, force=force, reuse=resume,
                            reuse_hint="--resume to continue it")
    except OutputError as exc:
        raise StoreError(str(exc)) from None
    remove_if_unused = created_directory(path)
    lock = DirectoryLock(path, option)
    try:
        lock.acquire(command=f"faultlock sweep {spec.name}")
    except OutputError as exc:
        raise StoreError(str(exc)) from None
    try:
        sweep_store = SweepStore(path)
        try:
            sweep_store.prepare(spec, plans, resume, force)
        except StoreError:
            lock.release()
            remove_if_unused()
            raise
        _run_prepared(sweep_store, spec, plans, workers, scheduler, resume, progress, stream)
    finally:
        lock.release()
    return open_sweep(path)


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

    bar = ProgressBar(total, done_cells, label=spec.name, stream=stream, enabled=progress)
    failures: list[tuple[str, tuple[slice, ...], str]] = []
    try:
        try:
            if blocks.tasks:
                if workers == 0 and scheduler is None:
                    _run_here(blocks, bar)
                else:
                    failures = _run_dask(blocks, bar, spec, workers, scheduler)
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                blocks.flush()  # keep what was computed (Ctrl-C, a lost scheduler)
            raise
        blocks.flush()
        for method in plans:
            write_winners(sweep_store, spec, method)
        if set(plans) == {"analytic", "mc"}:
            write_agreement(sweep_store, spec)
    finally:
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


def _run_here(blocks: _Blocks, bar: ProgressBar) -> None:
    for plan, block, region in blocks.tasks:
        blocks.add(plan, block, region, run_task(make_task(plan, region)))
        bar.update(_region_cells(region))


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


def _run_dask(blocks: _Blocks, bar: ProgressBar, spec: SweepSpec, workers: int | None,
              scheduler: str | None):
    from dask.distributed import as_completed

    client, cluster = _connect(workers, scheduler)
    failures = []
    futures = {}
    try:
        token = uuid.uuid4().hex[:8]
        for k, (plan, block, region) in enumerate(blocks.tasks):
            future = client.submit(run_task, make_task(plan, region), pure=False,
                                   key=f"faultlock-{spec.name}-{plan.method}-{k}-{token}")
            futures[future] = (plan, block, region)
        for future in as_completed(list(futures)):
            plan, block, region = futures.pop(future)
            cells = _region_cells(region)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, solver errors: cost one task
                failures.append((plan.method, region,
                                 "".join(traceback.format_exception_only(type(exc), exc))))
                bar.update(0, failed=cells)
                continue
            finally:
                future.release()
            blocks.add(plan, block, region, result)
            bar.update(cells)
    finally:
        for future in futures:
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()
    return failures


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
