"""``simulate``: the compiled Monte Carlo engine, from a Scenario to an ``xarray.Dataset``.

Each (cell, policy) is one engine run. All policies of a cell share the same random streams (common
random numbers), so differences between policies are not blurred by sampling noise. Seeds come from
``numpy.random.SeedSequence``: the root entropy, then a child per grid cell (keyed by the cell's
position) and per replication.

A :class:`Run` is one (cell, policy) engine run that can be continued batch by batch (ranking
and selection gives more batches only to the policies still in contention); ``simulate`` runs
each policy as a Run of ``batches`` batches, and :func:`results_dataset` turns Runs of any
lengths into the same Dataset.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence

import numba
import numpy as np
import xarray as xr

from .. import arguments, metrics
from ..arguments import BATCHES_LIMIT, OPERATIONS_LIMIT, REPLICATIONS_LIMIT
from ..policies import POLICIES, get_policy
from ..scenario import Scenario
from . import engine, output, rng, state
from . import stats as stats_module
from .state import (FOLIO_DIRECT_LIMIT, FOLIO_WAYS, I_EVENTS, I_OVERLOAD, I_STOP, I_VIOLATIONS,
                    R_NOW, R_WARMUP_END)

__all__ = ["simulate", "Run", "results_dataset", "run_policy", "writers_past_capacity"]

_PAGE_MULTIPLIERS = (8191, 131071, 524287, 2147483647, 1)
#: slots for Poisson writers and other mmap_lock readers in flight; a run that needs more is
#: overloaded (no steady state), so they also bound the lock's waiters (model/checks.py)
WRITER_SLOTS = 4096
READER_SLOTS = 4096


def _page_multiplier(total_pages: int) -> int:
    for m in _PAGE_MULTIPLIERS:
        if math.gcd(m, total_pages) == 1 and (total_pages - 1) * m < 2**63:
            return m
    return 1


def parameters(scenario: Scenario, policy: str, *, operations: int, batches: int, warmup: float,
               max_events: int, max_time: float, check: bool) -> tuple[np.ndarray, np.ndarray]:
    """The engine's parameter arrays for one scalar scenario and one policy."""
    s = scenario
    p = get_policy(policy)
    P = np.zeros(state.N_P)
    Q = np.zeros(state.N_Q, dtype=np.int64)
    P[state.P_THINK] = s.think_time
    P[state.P_IDLE] = s.idle_time
    P[state.P_READER_RATE] = s.reader_rate
    P[state.P_READER_HOLD] = s.reader_hold
    P[state.P_IO_MEAN] = s.io_latency
    P[state.P_IO_CV] = s.io_latency_cv
    P[state.P_IO_SLOPE] = s.io_depth_slope
    P[state.P_IO_PAGE_TIME] = s.io_page_time
    P[state.P_IO_STALL_SHARE] = s.io_stall_share
    P[state.P_IO_STALL_MEAN] = s.io_stall_latency
    P[state.P_IO_STALL_CV] = s.io_stall_cv
    P[state.P_ZRAM] = s.zram_latency
    P[state.P_FAULT_CPU] = s.fault_cpu_time
    P[state.P_SLICE] = s.sched_slice
    P[state.P_WAKE] = s.wakeup_latency
    P[state.P_RECLAIM_CACHED] = s.reclaim_rate_cached
    P[state.P_RECLAIM_MAPPED] = s.reclaim_rate_mapped
    P[state.P_RECLAIM_CPU] = s.reclaim_cpu_time
    P[state.P_WRITER_RATE] = s.writer_rate
    P[state.P_WRITER_HOLD] = s.writer_hold
    P[state.P_WRITER_HOLD_CV] = s.writer_hold_cv
    P[state.P_WRITER_VMA_SHARE] = s.writer_vma_share
    P[state.P_WRITER_FORK_SHARE] = s.writer_fork_share
    P[state.P_HANDOFF] = s.handoff_timeout
    P[state.P_HZ] = s.tick_hz
    P[state.P_JANK] = s.jank_threshold
    P[state.P_POPULARITY] = s.page_popularity
    P[state.P_MAX_TIME] = max_time
    P[state.P_WRITER_PERIOD] = 1.0 / s.writer_op_rate if s.writer_op_rate > 0 else 0.0
    P[state.P_WRITER_GAP] = s.writer_gap_cpu
    P[state.P_UNMAP_PAGE] = s.unmap_page_time
    P[state.P_ROUND_LOCK_HOLD] = s.round_lock_hold
    P[state.P_HOLE_PAGE_CPU] = s.hole_page_cpu
    P[state.P_NOISE_CPU] = s.noise_cpu
    P[state.P_NOISE_SLEEP] = s.noise_sleep
    total = s.vmas * s.pages_per_vma
    P[state.P_ZIPF_H_X1], P[state.P_ZIPF_H_N], P[state.P_ZIPF_S] = rng.zipf_constants(
        total, s.page_popularity)

    total_pages = s.vmas * s.pages_per_vma
    writer_slots = WRITER_SLOTS
    reader_slots = READER_SLOTS
    Q[state.Q_THREADS] = s.threads
    Q[state.Q_VMAS] = s.vmas
    Q[state.Q_PAGES_PER_VMA] = s.pages_per_vma
    Q[state.Q_SWAP_VMAS] = int(round(s.swap_share * s.vmas))
    Q[state.Q_IO_LAW] = rng.LAW_CODES[s.io_distribution]
    Q[state.Q_IO_PARALLELISM] = s.io_parallelism
    Q[state.Q_READAROUND] = min(s.readaround_pages, s.pages_per_vma)
    Q[state.Q_CPUS] = s.cpus
    Q[state.Q_WRITER_LAW] = rng.LAW_CODES[s.writer_hold_distribution]
    Q[state.Q_RWSEM] = state.RWSEM_CODES[s.rwsem]
    Q[state.Q_WRITER_SPIN] = int(s.writer_spin)
    Q[state.Q_WAKE_BATCH] = s.reader_wake_batch
    Q[state.Q_TRIED_AFTER_MAJOR] = int(s.tried_after_major)
    Q[state.Q_RETRY_LIMIT] = s.retry_limit
    Q[state.Q_USE_VMA_LOCK] = p.use_vma_lock
    Q[state.Q_DROP_ON_VMA] = p.drop_on_vma
    Q[state.Q_DROP_ON_MMAP] = p.drop_on_mmap
    Q[state.Q_RETRY_ON_VMA] = p.retry_on_vma
    Q[state.Q_UPTODATE_WAIT] = p.uptodate_wait
    Q[state.Q_WARMUP_FAULTS] = max(1, int(warmup * operations))
    Q[state.Q_BATCH_FAULTS] = max(1, operations // batches)
    Q[state.Q_BATCHES] = batches
    Q[state.Q_MAX_EVENTS] = max_events
    Q[state.Q_PAGE_MULT] = _page_multiplier(total_pages)
    Q[state.Q_CHECK] = int(check)
    Q[state.Q_TOTAL_PAGES] = total_pages
    Q[state.Q_ZIPF_ALIAS] = int(s.page_popularity > 0 and 1 < total_pages <= rng.ALIAS_LIMIT
                                 and s.access_pattern != "file_rounds")
    lru = s.reclaim == "lru"
    Q[state.Q_RECLAIM_LRU] = int(lru)
    Q[state.Q_MEMORY_LIMIT] = s.memory_limit if lru else 0
    Q[state.Q_LRU_LISTS] = s.lru_lists
    if total_pages <= FOLIO_DIRECT_LIMIT:
        Q[state.Q_FOLIO_DIRECT] = 1
    else:
        # Enough sets that the folios pinned by reads and waiters never fill one, and room for
        # the limit's folios in two candidate sets per page (the limit decides what stays).
        limit = int(Q[state.Q_MEMORY_LIMIT])
        slots = int(state.folio_table_slots(s.threads, s.readaround_pages, limit))
        Q[state.Q_FOLIO_SET_MASK] = slots // FOLIO_WAYS - 1
        Q[state.Q_FOLIO_TWO_SETS] = int(limit > 0)
    Q[state.Q_WRITER_SLOTS] = writer_slots
    Q[state.Q_FIRST_WRITER] = s.threads
    Q[state.Q_FIRST_IO] = s.threads + writer_slots
    Q[state.Q_ARRIVAL_ENTITY] = 2 * s.threads + writer_slots
    Q[state.Q_FIRST_READER] = Q[state.Q_ARRIVAL_ENTITY] + 1
    Q[state.Q_READER_SLOTS] = reader_slots
    Q[state.Q_READER_ARRIVAL] = Q[state.Q_FIRST_READER] + reader_slots
    walk = s.access_pattern == "group_walk"
    group = (s.group_size or s.threads) if walk else 1
    Q[state.Q_ACCESS_PATTERN] = state.ACCESS_GROUP_WALK if walk else state.ACCESS_POPULARITY
    Q[state.Q_GROUP_SIZE] = group
    Q[state.Q_WALK_GROUPS] = s.threads // group
    Q[state.Q_WALK_PAGES] = s.walk_pages
    Q[state.Q_WALK_SEQUENTIAL] = int(s.walk_order == "sequential")
    Q[state.Q_WALK_KEY_STREAM] = _walk_key_stream(s.threads)
    Q[state.Q_WRITER_MODE] = state.WRITER_MODE_CODES[s.writer_mode]
    Q[state.Q_WRITER_THREADS] = s.writer_threads if s.writer_mode != "poisson" else 0
    Q[state.Q_WRITER_LOCKS] = s.writer_locks_per_op
    Q[state.Q_WRITER_PROCESS] = int(s.writer_where == "process")
    Q[state.Q_RUN_TO_PARITY] = int(s.wakeup_preemption == "run_to_parity")
    Q[state.Q_WRITER_STREAM] = _walk_key_stream(s.threads) + 1
    if s.access_pattern == "file_rounds":
        Q[state.Q_ACCESS_PATTERN] = state.ACCESS_FILE_ROUNDS
    Q[state.Q_FAULTAROUND] = min(s.faultaround_pages, s.pages_per_vma)
    Q[state.Q_READ_HOLE] = int(s.read_source == "hole")
    Q[state.Q_NOISE_THREADS] = s.noise_threads
    Q[state.Q_FIRST_NOISE] = Q[state.Q_READER_ARRIVAL] + 1
    Q[state.Q_NOISE_STREAM] = _noise_stream(s)
    return P, Q


def _walk_key_stream(threads: int) -> int:
    """Streams: 3 per thread, 6 shared (writers, reclaim, background readers), then the walk key
    and one per writer thread: appended, so that the streams of existing scenarios are unchanged
    (``SeedSequence.generate_state`` is prefix-stable)."""
    return 3 * threads + 6


def _stream_count(scenario: Scenario) -> int:
    return _noise_stream(scenario) + scenario.noise_threads


def _noise_stream(scenario: Scenario) -> int:
    """The stream of noise thread 0: after the writer threads' (appended: existing scenarios keep
    their streams)."""
    writers = scenario.writer_threads if scenario.writer_mode != "poisson" else 0
    return _walk_key_stream(scenario.threads) + 1 + writers


#: largest group-walk permutation table (entries of int32) a run may allocate
WALK_TABLE_LIMIT = 1 << 27


def _check_walk_memory(scenario: Scenario) -> None:
    if scenario.access_pattern != "group_walk" or scenario.walk_order != "random":
        return
    groups = scenario.threads // (scenario.group_size or scenario.threads)
    entries = 2 * groups * scenario.walk_pages
    if entries > WALK_TABLE_LIMIT:
        raise ValueError(f"walk_pages={scenario.walk_pages} with {groups} groups is not allowed "
                         f"by the Monte Carlo engine: its random walk keeps 2 permutations per "
                         f"group, {entries * 4 / 2**20:.0f} MiB, more than "
                         f"{WALK_TABLE_LIMIT * 4 / 2**20:.0f} MiB (use fewer pages per group, "
                         "larger groups or walk_order='sequential')")


def walk_extent(scenario: Scenario, S) -> dict:
    """How far a group walk went: epochs walked and whether it wrapped the page space."""
    if scenario.access_pattern != "group_walk":
        return {"walk_epochs": 0, "walk_wrapped": False}
    group = scenario.group_size or scenario.threads
    most = int(S.t_walk.max()) if S.t_walk.size else 0
    epochs = -(-most // scenario.walk_pages)
    pages = epochs * (scenario.threads // group) * scenario.walk_pages
    return {"walk_epochs": epochs,
            "walk_wrapped": pages > scenario.vmas * scenario.pages_per_vma}


_ALIAS_CACHE: dict[tuple[int, float], tuple[np.ndarray, np.ndarray]] = {}


def _alias_table(total_pages: int, exponent: float):
    """The page-popularity alias table, shared by the policies and cells that use the same law."""
    key = (total_pages, exponent)
    if key not in _ALIAS_CACHE:
        if len(_ALIAS_CACHE) >= 4:
            _ALIAS_CACHE.pop(next(iter(_ALIAS_CACHE)))
        _ALIAS_CACHE[key] = rng.build_alias(total_pages, exponent)
    return _ALIAS_CACHE[key]


class Run:
    """One policy's engine run, continued batch by batch (the state stays alive between calls).

    The engine is started once (``engine.start``: threads, writers, background readers, noise);
    every :meth:`extend` raises the run's target ``Q[Q_BATCHES]`` and runs ``engine.loop`` again
    on the live state, so the warm-up (``warmup_operations`` operations) is paid once, however
    many times the run is continued. The per-batch arrays have room for ``capacity`` batches.

    Batch ``j`` of a run extended in steps is bit for bit batch ``j`` of one run of the same
    total (``stats.operation_completed`` opens the next batch at the very event that closes a
    batch, whether or not the loop then stops). Runs of different policies with the same ``seed``
    draw from the same streams per purpose (think times, pages, I/O latencies, reclaim clocks),
    and their batches are equal operation counts: batch ``j`` of two policies is a common-random-
    numbers pair, as ranking and selection (``faultlock.sweeps.selection``) wants.

    Attributes
    ----------
    batches_done : int
        Complete measured batches so far.
    capacity : int
        Most batches the run can hold.
    stopped : bool
        True once the run cannot be extended: ``stop_reason`` says why ("overloaded",
        "out_of_memory", "max_events", "max_time", "capacity", "closed", or "idle" when no
        event was left).
    stats, hist : numpy.ndarray
        Views ``(batches_done, N_STATS)`` and ``(batches_done, n_hists, N_BINS)`` of the complete
        batches (``state.S_*``, ``state.H_*``).
    """

    def __init__(self, scenario: Scenario, policy: str, seed: np.random.SeedSequence, *,
                 batch_operations: int, warmup_operations: int, capacity: int,
                 max_events: int | None = None, max_time: float = np.inf, check: bool = False):
        scenario = arguments.check_scenario(scenario)
        if not scenario.is_scalar:
            raise arguments.ArgumentError(
                "scenario is not allowed: a Run simulates one cell, a scalar faultlock.Scenario "
                f"(this one has the grid dimensions {dict(scenario.dims)})")
        if not isinstance(policy, str):
            raise arguments.ArgumentError(f"policy={policy!r} is not allowed: one policy name, "
                                          f"from {', '.join(POLICIES)}")
        (policy,) = arguments.check_policies(policy, name="policy")
        seed = arguments.check_seed("seed", seed)
        batch_operations = arguments.check_integer("batch_operations", batch_operations, low=1,
                                                   high=OPERATIONS_LIMIT)
        warmup_operations = arguments.check_integer("warmup_operations", warmup_operations,
                                                    low=0, high=OPERATIONS_LIMIT)
        capacity = arguments.check_integer("capacity", capacity, low=1, high=BATCHES_LIMIT)
        if max_events is None:
            max_events = 400 * (warmup_operations + capacity * batch_operations) + 10_000_000
        max_events = arguments.check_integer("max_events", max_events, low=1, high=2**62)
        max_time = arguments.check_real("max_time", max_time, low=0.0, low_open=True,
                                        infinite=True)
        check = arguments.check_bool("check", check)
        _check_walk_memory(scenario)
        self.scenario, self.policy, self.seed = scenario, policy, seed
        self.batch_operations, self.warmup_operations = batch_operations, warmup_operations
        self.capacity = capacity
        P, Q = parameters(scenario, policy, operations=batch_operations, batches=1, warmup=0.0,
                          max_events=max_events, max_time=max_time, check=check)
        Q[state.Q_WARMUP_FAULTS] = warmup_operations
        Q[state.Q_BATCH_FAULTS] = batch_operations
        Q[state.Q_BATCHES] = 0                     # the target: raised by extend
        streams = rng.seed_streams(seed, _stream_count(scenario))
        alias = (_alias_table(int(Q[state.Q_TOTAL_PAGES]), scenario.page_popularity)
                 if Q[state.Q_ZIPF_ALIAS] else None)
        self.state = state.allocate(P, Q, streams, alias, capacity=capacity)
        self._P, self._Q = P, Q
        self.batches_done = 0
        self.stop_reason: str | None = None
        self.wall_time = 0.0
        self._frozen: tuple | None = None           # (stats, hist, summary) after close()
        _compile_engine(self.state.struct, P, Q)
        started = time.perf_counter()
        engine.start(self.state.struct, P, Q)
        self.wall_time += time.perf_counter() - started

    @property
    def stopped(self) -> bool:
        """True once the run cannot be extended (overload, out of memory, budget, capacity)."""
        return self.stop_reason is not None

    def extend(self, batches: int) -> int:
        """Simulate until `batches` more batches are complete (or the run cannot go on: overload,
        out of memory, event/time budget, capacity reached). Returns batches_done."""
        batches = arguments.check_integer("batches", batches, low=0, high=BATCHES_LIMIT)
        if self.stopped or batches == 0:
            return self.batches_done
        S, P, Q = self.state, self._P, self._Q
        target = min(self.batches_done + batches, self.capacity)
        Q[state.Q_BATCHES] = target
        # I_BATCH already is the next batch (opened by the event that closed the last one), or
        # -1 while the warm-up lasts.
        S.ints[I_STOP] = 0
        started = time.perf_counter()
        engine.loop(S.struct, P, Q)
        self.wall_time += time.perf_counter() - started
        if S.ints[I_STOP]:
            self.batches_done = target
        else:
            self.batches_done = max(0, int(S.ints[state.I_BATCH]))
        if S.ints[state.I_OUT_OF_MEMORY]:
            self.stop_reason = "out_of_memory"
        elif S.ints[I_OVERLOAD]:
            self.stop_reason = "overloaded"
        elif S.ints[I_EVENTS] >= Q[state.Q_MAX_EVENTS]:
            self.stop_reason = "max_events"
        elif S.reals[R_NOW] >= P[state.P_MAX_TIME]:
            self.stop_reason = "max_time"
        elif not S.ints[I_STOP]:
            self.stop_reason = "idle"                  # no event left (nothing to simulate)
        elif self.batches_done >= self.capacity:
            self.stop_reason = "capacity"
        if self.stopped:
            # The run ends here: the batch it was in gets its elapsed time (see
            # stats.close_open_batch), as a run that ends early always did.
            stats_module.close_open_batch(S.struct)
        return self.batches_done

    @property
    def capacity_reached(self) -> bool:
        """True if the run stopped because its batch arrays are full."""
        return self.stop_reason == "capacity"

    @property
    def stats(self) -> np.ndarray:
        """``(batches_done, N_STATS)``: the complete batches' counters."""
        if self._frozen is not None:
            return self._frozen[0][:self.batches_done]
        return self.state.stats[:self.batches_done]

    @property
    def hist(self) -> np.ndarray:
        """``(batches_done, n_hists, N_BINS)``: the complete batches' histograms."""
        if self._frozen is not None:
            return self._frozen[1][:self.batches_done]
        return self.state.hist[:self.batches_done]

    def measured(self) -> tuple[np.ndarray, np.ndarray]:
        """The batches the results pool: the complete ones and, if the run ended early (a
        stop that is not at a batch boundary), the partial batch it ended in."""
        if self._frozen is not None:
            return self._frozen[0], self._frozen[1]
        done = self.state.stats[:, state.S_TIME] > 0
        return self.state.stats[done], self.state.hist[done]

    def engine_summary(self) -> dict:
        """The engine's own account of the run (``run_policy``'s summary): what it did, without
        the writers' flow-conservation test (:func:`writers_past_capacity`)."""
        if self._frozen is not None:
            return dict(self._frozen[2])
        S = self.state
        return {
            "completed": bool(S.ints[I_STOP]),
            "overloaded": bool(S.ints[I_OVERLOAD]),
            "out_of_memory": bool(S.ints[state.I_OUT_OF_MEMORY]),
            "events": int(S.ints[I_EVENTS]),
            "violations": int(S.ints[I_VIOLATIONS]),
            "simulated_time": float(S.reals[R_NOW]),
            "measured_time": (float(S.reals[R_NOW] - S.reals[R_WARMUP_END])
                              if S.reals[R_WARMUP_END] > 0 else 0.0),
            "wall_time": self.wall_time,
            "faults_stuck": faults_stuck(S, int(self._Q[state.Q_THREADS])),
            **walk_extent(self.scenario, S),
        }

    @property
    def summary(self) -> dict:
        """As ``run_policy``'s summary, for the batches done so far; ``overloaded`` is also set
        when the Poisson writers arrive faster than they leave (:func:`writers_past_capacity`)."""
        summary = self.engine_summary()
        summary["overloaded"] |= writers_past_capacity(self.scenario, self.measured()[0])
        return summary

    def close(self) -> None:
        """Free the engine's state (its folio table is tens of MB), keeping the measured batches
        and the summary: the run can no longer be extended (``stop_reason`` "closed" unless it
        had stopped already)."""
        if self._frozen is not None:
            return
        stats, hist = self.measured()
        self._frozen = (stats.copy(), hist.copy(), self.engine_summary())
        self.state = None
        if self.stop_reason is None:
            self.stop_reason = "closed"

    def batch_values(self, metric: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Per-batch statistic of `metric` for batches [start, stop): a ratio metric of
        montecarlo/output.py RATIOS as that batch's num/den (NaN where den is 0), a QUANTILES
        metric as the quantile of that batch's own histogram (output.quantile_from_hist; NaN if
        the batch has no observation of it); +inf for a latency (units "s") metric of an
        overloaded run (no steady state), as simulate reports it."""
        if not isinstance(metric, str) or (metric not in output.RATIOS
                                           and metric not in output.QUANTILES):
            allowed = ", ".join(sorted([*output.RATIOS, *output.QUANTILES]))
            raise arguments.ArgumentError(f"metric={metric!r} is not allowed: a per-batch "
                                          f"metric, one of {allowed}")
        start = arguments.check_integer("start", start, low=0, high=self.batches_done)
        stop = self.batches_done if stop is None else arguments.check_integer(
            "stop", stop, low=start, high=self.batches_done)
        if metrics.METRICS[metric].units == "s" and self.summary["overloaded"]:
            return np.full(stop - start, np.inf)
        if metric in output.RATIOS:
            num, den = output.RATIOS[metric][:2]
            numerator = self.stats[start:stop, num]
            denominator = self.stats[start:stop, den]
            values = np.full(stop - start, np.nan)
            np.divide(numerator, denominator, out=values, where=denominator != 0)
            return values
        which, q = output.QUANTILES[metric][:2]
        hist = self.hist[start:stop, which, :]
        return np.array([output.quantile_from_hist(hist[j], q) for j in range(stop - start)],
                        dtype=float)

    def __repr__(self) -> str:
        return (f"Run(policy={self.policy!r}, batches_done={self.batches_done}, "
                f"capacity={self.capacity}, stop_reason={self.stop_reason!r})")


def _compile_engine(struct, P, Q) -> None:
    """Load (or compile) the engine before any clock starts: wall times are simulation only."""
    signature = (numba.typeof(struct), numba.typeof(P), numba.typeof(Q))
    for function in (engine.start, engine.loop):
        if not function.signatures:
            function.compile(signature)


def run_policy(scenario: Scenario, policy: str, seed: np.random.SeedSequence, *, operations: int,
               batches: int, warmup: float, max_events: int, max_time: float, check: bool):
    """One engine run of ``batches`` batches of ``operations // batches`` operations after a
    warm-up of ``warmup * operations`` (a :class:`Run` extended once). Returns the final state
    and a summary dict."""
    run = _fixed_run(scenario, policy, seed, operations=operations, batches=batches,
                     warmup=warmup, max_events=max_events, max_time=max_time, check=check)
    return run.state, run.engine_summary()


def _fixed_run(scenario, policy, seed, *, operations, batches, warmup, max_events, max_time,
               check) -> Run:
    """A Run of ``batches`` batches, done: what ``simulate`` runs per policy and replication."""
    run = Run(scenario, policy, seed, batch_operations=max(1, operations // batches),
              warmup_operations=max(1, int(warmup * operations)), capacity=batches,
              max_events=max_events, max_time=max_time, check=check)
    run.extend(batches)
    return run


def faults_stuck(S, threads: int) -> int:
    """Faults in progress at the end of the run that began before the middle of its measured part.

    Their latencies are censored: no statistic contains them, and a fault that has lasted half
    the measured run (thousands of faults) is not a long read but a thread that keeps retrying
    or is never woken. A thread is outside a fault exactly when its next continuation is the end
    of its CPU work or of its idle sleep (``threads.think``, ``threads.think_done``); every other
    continuation is a step of a fault.
    """
    warmup_end = float(S.reals[state.R_WARMUP_END])
    if warmup_end <= 0.0:
        return 0
    middle = warmup_end + 0.5 * (float(S.reals[state.R_NOW]) - warmup_end)
    cont = S.ent_cont[:threads]
    in_fault = (cont != state.K_THINK_DONE) & (cont != state.K_IDLE_DONE)
    return int(np.count_nonzero(in_fault & (S.t_fault_start[:threads] < middle)))


def _policy_metrics(stats: np.ndarray, hist: np.ndarray, summary: dict, rel_tolerance: float):
    values: dict[str, tuple] = {}
    for name, (num, den) in output.RATIOS.items():
        values[name] = output.ratio_estimate(stats, num, den)
    for name, (which, q) in output.QUANTILES.items():
        values[name] = output.quantile_estimate(hist, which, q)
    for name, key in output.MAXIMA.items():
        values[name] = (float(stats[:, key].max()) if len(stats) else np.nan, np.nan)
    hists = {}
    for name, (which, edges) in output.HISTOGRAMS.items():
        hists[name] = output.coarse_shares(hist, which, edges)
    stable = not summary["overloaded"]
    mean, mean_ci = values["fault_latency_mean"][:2]
    converged = (stable and summary["completed"] and np.isfinite(mean)
                 and np.isfinite(mean_ci) and mean_ci <= rel_tolerance * mean)
    if not stable:
        # Past capacity there is no steady state: no finite number stands for it.
        for name in values:
            if metrics.METRICS[name].units == "s":
                values[name] = (np.inf, np.nan)
    return values, hists, stable, converged


def simulate(scenario: Scenario, policies=POLICIES, *, seed=0, operations: int = 100_000,
             batches: int = 20, warmup: float = 0.2, replications: int = 1,
             max_events: int | None = None, max_time: float = np.inf, check: bool = False,
             rel_tolerance: float = 0.05, progress=None) -> xr.Dataset:
    """Run the Monte Carlo engine for every policy and return the metrics of ``MODEL.md``.

    Parameters
    ----------
    scenario : Scenario
        A scalar scenario, or one with DataArray fields (a grid): each cell is simulated.
    policies : str or sequence of str
        Policies to simulate, in the order wanted (default: all of ``POLICIES``).
    seed : int or numpy.random.SeedSequence
        Root of every random stream. The same seed gives the same numbers.
    operations : int
        Operations (completed faults and writer critical sections, a control writer's holds
        included) measured per replication after the warm-up, cut into ``batches`` batches of
        equal counts.
    warmup : float
        Operations discarded before measuring, as a fraction of ``operations``.
    replications : int
        Independent replications (fresh streams); their batches are pooled.
    max_events, max_time : budget
        Each run stops when it has spent either; such a run is not ``converged``.
    check : bool
        Verify lock invariants after every event (slower); violations are counted in
        ``invariant_violations``.
    rel_tolerance : float
        ``converged`` requires the mean fault latency's half-width below this share of it.
    progress : callable, optional
        For a grid: called as ``progress(cells_done, cells)`` before the first cell and after
        each (``faultlock validate`` draws its progress bar with it).

    Returns
    -------
    xarray.Dataset
        Dimension ``policy`` (plus the scenario's grid dimensions and the histogram bins); every
        metric with ``units`` and ``long_name`` and a ``<metric>_ci`` 95 % half-width; ``converged``
        and ``stable`` flags per policy.
    """
    scenario = arguments.check_scenario(scenario)
    policies = arguments.check_policies(policies)
    root = arguments.check_seed("seed", seed)
    operations = arguments.check_integer("operations", operations, low=100, high=OPERATIONS_LIMIT)
    batches = arguments.check_integer("batches", batches, low=2, high=BATCHES_LIMIT)
    replications = arguments.check_integer("replications", replications, low=1,
                                           high=REPLICATIONS_LIMIT)
    warmup = arguments.check_real("warmup", warmup, low=0.0, high=10.0)
    if max_events is not None:
        max_events = arguments.check_integer("max_events", max_events, low=1, high=2**62)
    max_time = arguments.check_real("max_time", max_time, low=0.0, low_open=True, infinite=True)
    check = arguments.check_bool("check", check)
    rel_tolerance = arguments.check_real("rel_tolerance", rel_tolerance, low=0.0, low_open=True)
    if operations < batches:
        raise arguments.ArgumentError(f"operations={operations} is not allowed: at least "
                                      f"batches={batches}")
    if max_events is None:
        max_events = 400 * int(operations * (1 + warmup)) + 10_000_000

    if progress is not None and not callable(progress):
        raise arguments.ArgumentError(f"progress={progress!r} is not allowed: None or a "
                                      "function progress(cells_done, cells)")
    if not scenario.is_scalar:
        cells = []
        grid_cells = list(scenario.cells())
        if progress is not None:
            progress(0, len(grid_cells))
        for index, (_, cell) in enumerate(grid_cells):
            child = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + (index,))
            cells.append(simulate(cell, policies, seed=child, operations=operations,
                                  batches=batches, warmup=warmup, replications=replications,
                                  max_events=max_events, max_time=max_time, check=check,
                                  rel_tolerance=rel_tolerance))
            if progress is not None:
                progress(index + 1, len(grid_cells))
        combined = _grid_dataset(scenario, cells)
        combined.attrs.update(_provenance(scenario, root, operations, batches, warmup,
                                          replications))
        return combined

    runs = {}
    for policy in policies:
        replicas = []
        for r in range(replications):
            child = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + (r,))
            replicas.append(_fixed_run(scenario, policy, child, operations=operations,
                                       batches=batches, warmup=warmup, max_events=max_events,
                                       max_time=max_time, check=check))
            replicas[-1].close()         # keep the batches, free the engine state
        runs[policy] = replicas
    return _results(scenario, runs, root, (operations, batches, warmup, replications),
                    rel_tolerance, check)


def results_dataset(scenario: Scenario, runs: Mapping[str, Run], *, seed, rel_tolerance=0.05,
                    check: bool = False) -> xr.Dataset:
    """The Dataset `simulate` returns (metrics with _ci, valid, converged, stable, provenance,
    invariant checks applied), from each policy's run over the batches it did -- policies may
    have different batch counts (a policy eliminated early has fewer).

    ``runs`` maps each policy, in the order wanted, to its :class:`Run` (or to a sequence of
    Runs: independent replications, pooled as ``simulate`` pools them). Every run must measure
    batches of the same number of operations (what pairs batch ``j`` across policies). The
    provenance gives ``batch_operations``, ``warmup_operations`` and ``policy_batches`` (each
    policy's batch count); ``batches`` is the largest of them.
    """
    scenario = arguments.check_scenario(scenario)
    if not scenario.is_scalar:
        raise arguments.ArgumentError("scenario is not allowed: results_dataset takes one cell, "
                                      "a scalar faultlock.Scenario")
    root = arguments.check_seed("seed", seed)
    rel_tolerance = arguments.check_real("rel_tolerance", rel_tolerance, low=0.0, low_open=True)
    check = arguments.check_bool("check", check)
    if not isinstance(runs, Mapping) or not runs:
        raise arguments.ArgumentError(f"runs={runs!r} is not allowed: a non-empty mapping of "
                                      "policy name to faultlock Run")
    arguments.check_policies(list(runs), name="runs")
    pooled = {}
    for policy, value in runs.items():
        replicas = [value] if isinstance(value, Run) else value
        if (not isinstance(replicas, Sequence) or not replicas
                or not all(isinstance(r, Run) for r in replicas)):
            raise arguments.ArgumentError(f"runs[{policy!r}]={value!r} is not allowed: a Run or "
                                          "a non-empty sequence of Runs")
        other = next((r.policy for r in replicas if r.policy != policy), None)
        if other is not None:
            raise arguments.ArgumentError(f"runs[{policy!r}] is not allowed: a run of policy "
                                          f"{other!r}")
        pooled[policy] = list(replicas)
    every = [r for replicas in pooled.values() for r in replicas]
    batch_operations = {r.batch_operations for r in every}
    warmup_operations = {r.warmup_operations for r in every}
    if len(batch_operations) > 1:
        raise arguments.ArgumentError(f"runs is not allowed: batches of different sizes "
                                      f"{sorted(batch_operations)} operations (CRN pairs batches "
                                      "of equal operation counts)")
    (size,) = batch_operations
    replications = max(len(replicas) for replicas in pooled.values())
    batches = max(1, max(r.batches_done for r in every))
    warmup = max(warmup_operations) / (size * batches)
    ds = _results(scenario, pooled, root, (size * batches, batches, warmup, replications),
                  rel_tolerance, check, finish=False)
    ds.attrs["batch_operations"] = size
    ds.attrs["warmup_operations"] = max(warmup_operations)
    ds.attrs["policy_batches"] = ", ".join(
        f"{policy}={sum(r.batches_done for r in replicas)}" for policy, replicas in pooled.items())
    from ..checks import check as check_invariants
    return check_invariants(ds, scenario)


def _results(scenario, runs: dict[str, list[Run]], root, provenance, rel_tolerance, check,
             finish=True) -> xr.Dataset:
    """The per-policy pooled batches and summaries of ``runs``, as ``simulate``'s Dataset."""
    per_policy = []
    for replicas in runs.values():
        measured = [r.measured() for r in replicas]
        stats, hist, summary = pool_replications([m[0] for m in measured],
                                                 [m[1] for m in measured],
                                                 [r.engine_summary() for r in replicas])
        summary["overloaded"] |= writers_past_capacity(scenario, stats)
        per_policy.append((stats, hist, summary))
    operations, batches, warmup, replications = provenance
    ds = _dataset(scenario, list(runs), per_policy, root, operations, batches, warmup,
                  replications, rel_tolerance, check)
    if not finish:
        return ds
    from ..checks import check as check_invariants
    return check_invariants(ds, scenario)


def _grid_dataset(scenario: Scenario, cells: list[xr.Dataset]) -> xr.Dataset:
    """The datasets of a grid's cells (in the C order of :meth:`Scenario.cells`) as one, the grid's
    dimensions first, labelled by the scenario's coordinates in the order given (not sorted)."""
    dims = tuple(scenario.dims)
    shape = tuple(scenario.dims.values())
    first = cells[0]
    data_vars = {}
    for name, var in first.data_vars.items():
        values = np.stack([cell[name].values for cell in cells]).reshape(shape + var.shape)
        data_vars[name] = (dims + var.dims, values, var.attrs)
    coords = {d: (d, np.asarray(v)) for d, v in scenario.coords.items()}
    coords.update({name: coord for name, coord in first.coords.items() if name not in coords})
    # the attributes every cell agrees on (xarray's combine_attrs="drop_conflicts")
    attrs = {k: v for k, v in first.attrs.items()
             if all(k in c.attrs and np.array_equal(c.attrs[k], v) for c in cells[1:])}
    for key in ("walk_wrapped", "walk_epochs"):      # a grid wrapped if any cell did
        if all(key in c.attrs for c in cells):
            attrs[key] = max(c.attrs[key] for c in cells)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


#: multiples of the standard deviation of the writers' arrival count by which the writers that
#: left may fall short of those that arrived before the backlog counts as growing
BACKLOG_Z = 4.0
#: writers that may be left in the system at the end of a stable run beyond that (a queue near
#: capacity holds tens of them at any moment)
BACKLOG_SLACK = 20.0


def writers_past_capacity(scenario: Scenario, stats: np.ndarray) -> bool:
    """True if the Poisson ``mmap_lock`` writers arrive faster than the lock lets them through.

    They are an open stream: they keep arriving at ``writer_rate`` whatever the lock does, and each
    holds it exclusively for ``writer_hold`` on average, so at most ``1 / writer_hold`` of them can
    be served a second. Past that there is no steady state: the backlog grows without bound, and
    the run ends (after ``operations`` operations, most of them faults served under the per-VMA
    lock) long before the engine's writer slots run out. Two tests, either of which is enough:

    * capacity: ``writer_rate * writer_hold >= 1`` (the offered load of the hold alone);
    * flow conservation: in a steady state as many writers leave as arrive. The arrivals in the
      measured time ``T`` are Poisson with mean ``writer_rate * T``; when the writers that
      completed fall short of it by more than ``BACKLOG_Z`` standard deviations plus
      ``BACKLOG_SLACK``, the backlog grew over the batches (the lock's capacity, drains of VMA
      readers and wake-ups included, is below the arrival rate).

    Writer threads (``writer_mode`` periodic or flat_out) are a closed loop and cannot pile up.
    """
    if scenario.writer_mode != "poisson" or scenario.writer_rate <= 0:
        return False
    if scenario.writer_rate * scenario.writer_hold >= 1.0:
        return True
    measured = float(stats[:, state.S_TIME].sum()) if len(stats) else 0.0
    arrived = scenario.writer_rate * measured
    left = float(stats[:, state.S_WRITER_OPS].sum()) if len(stats) else 0.0
    return arrived - left > BACKLOG_Z * math.sqrt(arrived) + BACKLOG_SLACK


def pool_replications(all_stats, all_hist, summaries):
    """One policy's replications as one run: their batches side by side, their summaries merged."""
    summary = {
        "completed": all(s["completed"] for s in summaries),
        "overloaded": any(s["overloaded"] for s in summaries),
        "out_of_memory": any(s.get("out_of_memory", False) for s in summaries),
        "events": sum(s["events"] for s in summaries),
        "violations": sum(s["violations"] for s in summaries),
        "simulated_time": sum(s["simulated_time"] for s in summaries),
        "wall_time": sum(s["wall_time"] for s in summaries),
        "faults_stuck": sum(s["faults_stuck"] for s in summaries),
        "walk_epochs": max(s["walk_epochs"] for s in summaries),
        "walk_wrapped": any(s["walk_wrapped"] for s in summaries),
    }
    return np.concatenate(all_stats), np.concatenate(all_hist), summary


def _provenance(scenario, root, operations, batches, warmup, replications) -> dict:
    from ... import __version__
    return {
        "solver": "montecarlo",
        "faultlock_version": __version__,
        "scenario": scenario.to_json(indent=None),
        "seed_entropy": str(root.entropy),
        "seed_spawn_key": str(tuple(root.spawn_key)),
        "operations_per_replication": operations,
        "batches": batches,
        "warmup": warmup,
        "replications": replications,
        "interval": "95% batch means, Student t",
    }


def _dataset(scenario, policies, per_policy, root, operations, batches, warmup, replications,
             rel_tolerance, check) -> xr.Dataset:
    data_vars: dict[str, tuple] = {}
    results = [_policy_metrics(st, hi, su, rel_tolerance) for st, hi, su in per_policy]
    for name in results[0][0]:
        est = np.array([r[0][name][0] for r in results])
        ci = np.array([r[0][name][1] for r in results])
        data_vars[name] = ("policy", est, metrics.attrs(name))
        if metrics.METRICS[name].has_ci:     # an extreme has no batch-means interval
            data_vars[metrics.ci_name(name)] = ("policy", ci, metrics.ci_attrs(name))
    for name in output.HISTOGRAMS:
        dim = metrics.METRICS[name].dim
        est = np.stack([r[1][name][0] for r in results])
        ci = np.stack([r[1][name][1] for r in results])
        data_vars[name] = (("policy", dim), est, metrics.attrs(name))
        data_vars[metrics.ci_name(name)] = (("policy", dim), ci, metrics.ci_attrs(name))
    data_vars["stable"] = ("policy", np.array([r[2] for r in results]), metrics.attrs("stable"))
    data_vars["converged"] = ("policy", np.array([r[3] for r in results]),
                              {**metrics.attrs("converged"),
                               "long_name": f"all batches done, stable, mean latency within "
                                            f"{rel_tolerance:.0%}"})
    counters = {"events": "events", "simulated_time": "simulated_time", "wall_time": "wall_time",
                "faults_stuck": "faults_stuck"}
    if check:
        counters["invariant_violations"] = "violations"
    for name, key in counters.items():
        data_vars[name] = ("policy", np.array([p[2][key] for p in per_policy]),
                           metrics.attrs(name))
    if scenario.reclaim != "lru":
        for name in output.LRU_ONLY:
            for key in (name, metrics.ci_name(name)):
                if key in data_vars:
                    dims, values, attrs = data_vars[key]
                    data_vars[key] = (dims, np.full_like(values, np.nan), attrs)
    coords = {"policy": list(policies), **metrics.bin_coords()}
    ds = xr.Dataset(data_vars, coords=coords)
    oom = [p for p, run in zip(policies, per_policy) if run[2].get("out_of_memory", False)]
    ds.attrs["out_of_memory"] = int(bool(oom))
    if oom:
        warnings.warn(f"out of memory under {', '.join(oom)}: every folio resident was pinned "
                      f"(locked, referenced or waited on) when a charge needed room under "
                      f"memory_limit={scenario.memory_limit} pages; the run stopped overloaded "
                      "(the kernel would OOM-kill): raise memory_limit", stacklevel=3)
    ds.attrs.update(_provenance(scenario, root, operations, batches, warmup, replications))
    if scenario.access_pattern == "group_walk":
        wrapped = any(p[2]["walk_wrapped"] for p in per_policy)
        ds.attrs["walk_epochs"] = max(p[2]["walk_epochs"] for p in per_policy)
        ds.attrs["walk_wrapped"] = int(wrapped)
        if wrapped:
            warnings.warn(f"the group walk wrapped the page space: {ds.attrs['walk_epochs']} "
                          f"epochs of "
                          f"{scenario.threads // (scenario.group_size or scenario.threads)}"
                          f" x {scenario.walk_pages} pages exceed vmas * pages_per_vma = "
                          f"{scenario.vmas * scenario.pages_per_vma}, so later epochs touch pages "
                          "already read (raise pages_per_vma for a cold walk)", stacklevel=3)
    return ds
