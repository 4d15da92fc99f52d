"""The numba engine's model as a plain-Python event loop: the baseline of ``bench_engine.py``.

This is the model of ``faultlock/model/montecarlo``, function for function: threads with think
time, idle sleeps and Zipf page popularity or group walks; folio states with lazy reclaim clocks
(``reclaim="hazard"``: the memory limit's LRU lists are not ported) and a set-associative table for
huge address spaces; the per-VMA lock and writers draining it; the Linux rwsem rules and the four
textbook disciplines; Poisson writers and closed-loop writer threads with optimistic spinning;
background mmap_lock readers; storage with parallelism, a FIFO queue and a queue-depth slope; CPUs
with per-CPU owners, a run queue, slices, wake-up preemption and yields; wake-up latency; the seven
policies; fault classes; per-batch statistics and log histograms. It is written as a lean,
idiomatic Python event loop with no numba, and numpy only to refill random number buffers.

What differs is the machinery:

* **Calendar** (default ``calendar="heapq"``, the benchmark baseline): ``heapq`` of
  ``(time, seq, entity)`` tuples with versioned entries. Each entity has at most one live timer;
  ``seq`` breaks ties first in, first out and marks the live entry (``tseq[entity]``), so moving
  or cancelling a timer leaves a stale entry that the loop skips. The engine's indexed binary heap
  takes simultaneous events in heap order instead, so the trajectories part after the first tie
  and the two agree statistically. ``calendar="indexed"`` is the engine's heap ported step for
  step (slower: its sifts run in Python): with it and the same seed this loop reproduces the
  engine's run event for event, with bit-identical counters and histograms
  (``tests/test_plain_python_engine.py``).
* **Random numbers**: the same SplitMix64 streams as ``rng.py`` (same seeding from a
  ``SeedSequence``, same stream per purpose and per thread, same variate formulas, the same Walker
  alias table for page popularity, the same group-walk permutations). SplitMix64 is counter-based,
  so each stream's next 128 outputs are computed at once in numpy ``uint64`` arithmetic and handed
  out one by one by a generator: the same numbers in the same order, ~0.15 µs a draw (loop
  included) where a draw in Python integers costs ~0.45 µs (``rng_block=0`` selects that).
* **State**: Python lists (structure of arrays) and attributes of one ``__slots__`` object;
  FIFO queues are ``collections.deque``; the rwsem wait list and the folio wait queues are linked
  lists through per-entity lists, as in the compiled engine. Hot attributes are bound to locals,
  and the common paths of read completion and read-around are inlined.
* **Statistics**: the open batch's counters are one list (``self.cur``, ``None`` outside the
  measured batches) instead of a row looked up on every count.

Parameters come from ``faultlock.model.montecarlo.simulate.parameters`` (the same P/Q arrays the
compiled engine gets), and ``simulate_plain`` builds its ``xarray.Dataset`` with the same
batch-means code as ``faultlock.simulate``, so every metric and interval is computed alike.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import deque

import numpy as np

from faultlock.model.montecarlo import rng as _nrng
from faultlock.model.montecarlo import simulate as _sim
from faultlock.model.montecarlo import state as _st
from faultlock.model.montecarlo.state import (
    ACCESS_GROUP_WALK, CLASS_MAJOR, CLASS_MINOR, CLASS_WAITER, EV_ARRIVAL, EV_BURST, EV_IO,
    EV_NONE, EV_READER_ARRIVAL, EV_RUN, EV_SPIN, EV_WAKE, FOLIO_WAYS, F_ABSENT, F_CACHED,
    F_MAPPED, F_READING, HIST_LOG10_MIN, HIST_PER_DECADE, H_FAULT_LATENCY, H_MAJOR_LATENCY,
    H_MINOR_LATENCY, H_READ_WAIT, H_WAITER_LATENCY, H_WRITER_LATENCY, H_WRITER_OP_LATENCY,
    H_WRITE_WAIT, K_ATTEMPT, K_FOLIO_HOLD_OWNED, K_FOLIO_LOCK_WOKEN, K_FOLIO_RETRY,
    K_FOLIO_RETRY_OWNED, PAGE_LOCK_UNFAIRNESS,
    K_IDLE_DONE, K_INSTALL_DONE, K_MISS_SUBMIT, K_MMAP_GRANTED, K_PTE_PRESENT_DONE,
    K_R_HOLD_DONE, K_R_START, K_THINK_DONE, K_W_DRAINED, K_W_GAP_DONE, K_W_GRANTED,
    K_W_HOLD_DONE, K_W_NEXT_ACQ, K_W_OP_START, K_W_PROC_HOLD_DONE, K_W_START, K_W_WOKEN, LOCK_MMAP,
    LOCK_NONE, LOCK_VMA, N_BINS, N_H, N_S, OWNER_IO, OWNER_NONE, P_IDLE, RWSEM_FIFO,
    RWSEM_LINUX, RWSEM_PHASE_FAIR, RWSEM_READER_PREF, RWSEM_WRITER_PREF, S_ACCESSES,
    S_CLASS_MAJOR, S_CLASS_MINOR, S_CLASS_WAITER, S_EVENTS, S_FAULTS, S_IN_FAULT_AREA,
    S_IO_READS, S_PAGES_READ, S_JANK, S_KERNEL_MAJOR, S_LATENCY_SUM, S_MAJOR, S_MAJOR_LATENCY_SUM,
    S_MINOR_LATENCY_SUM, S_NOFAULT, S_READS_HOLDING_MMAP, S_READS_HOLDING_VMA, S_READ_ACQ,
    S_READ_BUSY_PERIODS, S_READ_BUSY_TIME, S_READ_SLOW_WAIT_SUM, S_READ_WAITING_AREA,
    S_READ_WAIT_DONE, S_READ_WAIT_MAX, S_READ_WAIT_SUM, S_RECLAIMS, S_REFAULTS, S_RETRIES,
    S_RETRY_IO_WAITS, S_RETRY_MISSES, S_TIME, S_VMA_ABORTS, S_WAITER_LATENCY_SUM,
    S_WRITERS_DONE, S_WRITER_CPU, S_WRITER_LATENCY_SUM, S_WRITER_OPS, S_WRITER_OP_LATENCY_SUM,
    S_WRITE_ACQ, S_WRITE_SLOW_WAIT_SUM, S_WRITE_WAITING_AREA, S_WRITE_WAIT_DONE,
    S_WRITE_WAIT_MAX, S_WRITE_WAIT_SUM, WAIT_EXCLUSIVE, WAIT_SHARED, WRITER_FORK,
    WRITER_NONE_VMA, WRITER_ONE_VMA, WRITER_PERIODIC, WRITER_POISSON)
from faultlock.model.policies import check_policies

__all__ = ["Engine", "SplitMix", "run_policy", "simulate_plain"]

LAW_EXPONENTIAL = _nrng.LAW_EXPONENTIAL
LAW_LOGNORMAL = _nrng.LAW_LOGNORMAL
LAW_DETERMINISTIC = _nrng.LAW_DETERMINISTIC

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_TWO_M53 = 1.0 / 9007199254740992.0
_INF = math.inf
_NAN = math.nan
_TWO_PI = 2.0 * math.pi

_log = math.log
_log10 = math.log10
_exp = math.exp
_sqrt = math.sqrt
_cos = math.cos
_log1p = math.log1p
_expm1 = math.expm1

# rwsem.down_write results
GRANTED, SPINNING, QUEUED = 0, 1, 2


# ---- random variates (rng.py in Python integers) ----------------------------------------------
class SplitMix:
    """SplitMix64 streams and the variates of ``rng.py``.

    ``block`` > 0 (the default): SplitMix64 is counter-based (the n-th output of a stream is
    ``mix(state + n * golden)``), so each stream's next ``block`` outputs are computed at once with
    numpy ``uint64`` arithmetic and handed out one by one by a generator: the same numbers, in the
    same order, as drawing them one at a time. ``block`` = 0: every draw in Python integers.
    ``nexts[k]()`` is the next U(0, 1) of stream ``k``.
    """

    __slots__ = ("s", "nexts", "block")

    def __init__(self, states, block=128):
        self.s = [int(x) for x in states]
        self.block = block
        if block > 0:
            self.nexts = [self._blocks(k).__next__ for k in range(len(self.s))]
        else:
            self.nexts = [self._one(k) for k in range(len(self.s))]

    def _one(self, k):
        s = self.s

        def draw():
            x = (s[k] + _GOLDEN) & _MASK
            s[k] = x
            z = ((x ^ (x >> 30)) * _MIX1) & _MASK
            z = ((z ^ (z >> 27)) * _MIX2) & _MASK
            return (((z ^ (z >> 31)) >> 11) + 0.5) * _TWO_M53
        return draw

    def _blocks(self, k):
        n = self.block
        steps = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(_GOLDEN)   # wraps mod 2**64
        advance = (n * _GOLDEN) & _MASK
        while True:
            state = self.s[k]
            x = steps + np.uint64(state)
            z = (x ^ (x >> np.uint64(30))) * np.uint64(_MIX1)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
            z ^= z >> np.uint64(31)
            self.s[k] = (state + advance) & _MASK
            yield from (((z >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_M53).tolist()

    def uniform(self, k):
        return self.nexts[k]()

    def exponential(self, k, mean):
        return -mean * _log(self.uniform(k))

    def standard_normal(self, k):
        u1 = self.uniform(k)
        u2 = self.uniform(k)
        return _sqrt(-2.0 * _log(u1)) * _cos(_TWO_PI * u2)

    def gamma_unit_scale(self, k, shape):
        if shape < 1.0:
            return self.gamma_unit_scale(k, shape + 1.0) * self.uniform(k) ** (1.0 / shape)
        d = shape - 1.0 / 3.0
        c = 1.0 / _sqrt(9.0 * d)
        while True:
            x = self.standard_normal(k)
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            u = self.uniform(k)
            if _log(u) < 0.5 * x * x + d - d * v + d * _log(v):
                return d * v

    def sample_law(self, k, law, mean, cv):
        if mean <= 0.0:
            return 0.0
        if law == LAW_EXPONENTIAL:
            return -mean * _log(self.uniform(k))
        if law == LAW_DETERMINISTIC or cv <= 0.0:
            return mean
        if law == LAW_LOGNORMAL:
            sigma2 = _log1p(cv * cv)
            return _exp(_log(mean) - 0.5 * sigma2 + _sqrt(sigma2) * self.standard_normal(k))
        shape = 1.0 / (cv * cv)
        return self.gamma_unit_scale(k, shape) * (mean / shape)


def _log1p_over_x(x):
    if abs(x) > 1e-8:
        return _log1p(x) / x
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))


def _expm1_over_x(x):
    if abs(x) > 1e-8:
        return _expm1(x) / x
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))


def _zipf_h_integral(x, exponent):
    log_x = _log(x)
    return _expm1_over_x((1.0 - exponent) * log_x) * log_x


def _zipf_h(x, exponent):
    return _exp(-exponent * _log(x))


def _zipf_h_integral_inverse(x, exponent):
    t = x * (1.0 - exponent)
    if t < -1.0:
        t = -1.0
    return _exp(_log1p_over_x(t) * x)


def build_alias(n, exponent):
    """Walker's alias table by Vose's construction, step for step as ``rng.build_alias``: the
    same table, so that the same uniform picks the same page in both engines."""
    weights = [(r + 1.0) ** (-exponent) for r in range(n)]
    total = 0.0
    for w in weights:
        total += w
    factor = n / total
    scaled = [w * factor for w in weights]
    prob = [0.0] * n
    alias = [0] * n
    small = [r for r in range(n) if scaled[r] < 1.0]
    large = [r for r in range(n) if scaled[r] >= 1.0]
    while small and large:
        s_ = small.pop()
        g = large[-1]
        prob[s_] = scaled[s_]
        alias[s_] = g
        scaled[g] = (scaled[g] + scaled[s_]) - 1.0
        if scaled[g] < 1.0:
            large.pop()
            small.append(g)
    for r in large:
        prob[r] = 1.0
    for r in small:
        prob[r] = 1.0
    return prob, alias


_ALIAS_CACHE = {}


def _alias_table(n, exponent):
    key = (n, exponent)
    if key not in _ALIAS_CACHE:
        if len(_ALIAS_CACHE) >= 4:
            _ALIAS_CACHE.pop(next(iter(_ALIAS_CACHE)))
        _ALIAS_CACHE[key] = build_alias(n, exponent)
    return _ALIAS_CACHE[key]


def _mix(z):
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    return z ^ (z >> 31)


def walk_permutation(key, group, epoch, n):
    """``perm_{group,epoch}`` of a group walk (``access.shuffle``): Fisher-Yates driven by a
    SplitMix64 seeded with a hash of (walk key, group, epoch); the engine's permutation."""
    h = _mix(key ^ ((group * _MIX1 + _GOLDEN) & _MASK))
    state = _mix(h ^ ((epoch * _MIX2 + _GOLDEN) & _MASK))
    out = list(range(n))
    for i in range(n - 1, 0, -1):
        state = (state + _GOLDEN) & _MASK
        j = int(((_mix(state) >> 11) + 0.5) * _TWO_M53 * (i + 1))
        if j > i:
            j = i
        out[i], out[j] = out[j], out[i]
    return out


def _bin_of(value):
    if value <= 0.0:
        return 0
    x = (_log10(value) - HIST_LOG10_MIN) * HIST_PER_DECADE
    if x < 0.0:
        return 0
    b = 1 + int(x)
    return b if b < N_BINS else N_BINS - 1


# ---- the engine -------------------------------------------------------------------------------
class Engine:
    """One run of one scenario under one policy (``run()``), the state in Python lists."""

    __slots__ = (
        # parameters
        "think_mean", "idle_mean", "io_mean", "io_cv", "io_slope", "io_page_time",
        "io_stall_share", "io_stall_mean", "io_stall_cv", "zram",
        "fault_cpu", "slice", "wake_lat", "rec_cached", "rec_mapped", "writer_rate",
        "writer_hold", "writer_hold_cv", "w_vma_share", "w_fork_share", "handoff", "jank",
        "popularity", "max_time", "T", "vmas", "ppv", "swap_vmas", "io_law", "io_par",
        "readaround", "cpus", "writer_law", "rwsem", "writer_spin", "wake_batch",
        "tried_after_major", "retry_limit", "use_vma", "drop_on_vma", "drop_on_mmap",
        "retry_on_vma", "uptodate_wait", "warmup_ops", "batch_ops", "batches", "max_events",
        "page_mult", "check", "folio_direct", "set_mask", "total_pages", "writer_slots",
        "first_writer", "first_io", "arrival_entity", "zipf_const", "reader_rate", "reader_hold",
        "first_reader", "reader_arrival", "alias_prob", "alias_alias", "writer_period",
        "writer_gap", "walk", "group_size", "walk_groups", "walk_pages", "walk_sequential",
        "walk_key", "writer_mode", "writer_threads", "writer_locks", "writer_process",
        "run_to_parity", "hz", "writer_stream",
        # random numbers
        "rng", "u",
        # calendar: heapq (tseq versions) or the engine's indexed heap (h_*)
        "heap", "tseq", "next_seq", "timer", "cancel", "indexed", "h_time", "h_ent", "h_pos",
        "h_size",
        # clock and scalars
        "now", "last_event", "events", "faults_done", "ops_done", "batch", "batch_ops_done",
        "batch_start", "warmup_end", "stop", "overload", "halt", "violations", "read_waiting",
        "write_waiting", "in_fault",
        # entities
        "ent_event", "ent_cont", "burst_rem", "burst_end", "wait_start", "ent_cpu", "cpu_running",
        "free_cpus", "oncpu_since",
        "run_queue", "rq_woken",
        # rwsem
        "rw_readers", "rw_writer", "rw_qhead", "rw_qtail", "rw_qlen", "rw_qwriters", "rw_handoff",
        "rw_next", "rw_prev", "rw_enq_time", "rw_is_writer", "rw_woken", "spinners",
        # folio waits
        "fw_next", "fw_mode", "fw_unfair",
        # threads
        "t_key", "t_vma", "t_lock", "t_last_lock", "t_tried", "t_major", "t_io_seen", "t_retries",
        "t_waited_io", "t_want_vma", "t_is_retry", "t_fault_start", "t_slot", "t_io", "t_class",
        # group walks
        "t_walk", "walk_perm", "walk_epoch",
        # writers
        "w_start", "w_kind", "w_vma", "w_next_vma", "w_free", "w_draining", "w_waiting",
        "w_spin_start", "w_op_start", "w_next", "w_done_locks",
        # background readers
        "r_free",
        # VMAs
        "v_readers", "v_drainer", "v_write_locked",
        # folios
        "f_key", "f_state", "f_owner", "f_uptodate_at", "f_refs", "f_deadline",
        "f_exposed_at", "f_wq_head", "f_wq_tail",
        # reads
        "io_folios", "io_stream", "io_free", "dev_queue", "dev_inflight",
        # statistics
        "stats", "hist", "cur", "curh",
        # continuation table, profile counters
        "conts", "profile",
    )

    def __init__(self, scenario, policy, seed=0, *, operations=100_000, batches=20, warmup=0.2,
                 max_events=None, max_time=math.inf, check=False, profile=False,
                 rng_block=128, calendar="heapq"):
        if max_events is None:
            max_events = 400 * int(operations * (1 + warmup)) + 10_000_000
        P, Q = _sim.parameters(scenario, policy, operations=operations, batches=batches,
                               warmup=warmup, max_events=max_events, max_time=max_time,
                               check=check)
        st = _st
        self.think_mean = float(P[st.P_THINK])
        self.idle_mean = float(P[P_IDLE])
        self.reader_rate = float(P[st.P_READER_RATE])
        self.reader_hold = float(P[st.P_READER_HOLD])
        self.writer_period = float(P[st.P_WRITER_PERIOD])
        self.writer_gap = float(P[st.P_WRITER_GAP])
        self.io_mean = float(P[st.P_IO_MEAN])
        self.io_cv = float(P[st.P_IO_CV])
        self.io_slope = float(P[st.P_IO_SLOPE])
        self.io_page_time = float(P[st.P_IO_PAGE_TIME])
        self.io_stall_share = float(P[st.P_IO_STALL_SHARE])
        self.io_stall_mean = float(P[st.P_IO_STALL_MEAN])
        self.io_stall_cv = float(P[st.P_IO_STALL_CV])
        self.zram = float(P[st.P_ZRAM])
        self.fault_cpu = float(P[st.P_FAULT_CPU])
        self.slice = float(P[st.P_SLICE])
        self.wake_lat = float(P[st.P_WAKE])
        self.rec_cached = float(P[st.P_RECLAIM_CACHED])
        self.rec_mapped = float(P[st.P_RECLAIM_MAPPED])
        self.writer_rate = float(P[st.P_WRITER_RATE])
        self.writer_hold = float(P[st.P_WRITER_HOLD])
        self.writer_hold_cv = float(P[st.P_WRITER_HOLD_CV])
        self.w_vma_share = float(P[st.P_WRITER_VMA_SHARE])
        self.w_fork_share = float(P[st.P_WRITER_FORK_SHARE])
        self.handoff = float(P[st.P_HANDOFF])
        self.hz = float(P[st.P_HZ])
        self.jank = float(P[st.P_JANK])
        self.popularity = float(P[st.P_POPULARITY])
        self.max_time = float(P[st.P_MAX_TIME])
        q = [int(x) for x in Q]
        self.T = T = q[st.Q_THREADS]
        self.vmas = q[st.Q_VMAS]
        self.ppv = q[st.Q_PAGES_PER_VMA]
        self.swap_vmas = q[st.Q_SWAP_VMAS]
        self.io_law = q[st.Q_IO_LAW]
        self.io_par = q[st.Q_IO_PARALLELISM]
        self.readaround = q[st.Q_READAROUND]
        self.cpus = q[st.Q_CPUS]
        self.writer_law = q[st.Q_WRITER_LAW]
        self.rwsem = q[st.Q_RWSEM]
        self.writer_spin = q[st.Q_WRITER_SPIN]
        self.wake_batch = q[st.Q_WAKE_BATCH]
        self.tried_after_major = q[st.Q_TRIED_AFTER_MAJOR]
        self.retry_limit = q[st.Q_RETRY_LIMIT]
        self.use_vma = q[st.Q_USE_VMA_LOCK]
        self.drop_on_vma = q[st.Q_DROP_ON_VMA]
        self.drop_on_mmap = q[st.Q_DROP_ON_MMAP]
        self.retry_on_vma = q[st.Q_RETRY_ON_VMA]
        self.uptodate_wait = q[st.Q_UPTODATE_WAIT]
        self.warmup_ops = q[st.Q_WARMUP_FAULTS]
        self.batch_ops = q[st.Q_BATCH_FAULTS]
        self.batches = nb = q[st.Q_BATCHES]
        self.max_events = q[st.Q_MAX_EVENTS]
        self.page_mult = q[st.Q_PAGE_MULT]
        self.check = q[st.Q_CHECK]
        self.folio_direct = q[st.Q_FOLIO_DIRECT]
        self.set_mask = q[st.Q_FOLIO_SET_MASK]
        self.total_pages = total = q[st.Q_TOTAL_PAGES]
        self.writer_slots = ws = q[st.Q_WRITER_SLOTS]
        self.first_writer = q[st.Q_FIRST_WRITER]
        self.first_io = q[st.Q_FIRST_IO]
        self.arrival_entity = q[st.Q_ARRIVAL_ENTITY]
        self.first_reader = q[st.Q_FIRST_READER]
        self.reader_arrival = q[st.Q_READER_ARRIVAL]
        self.walk = q[st.Q_ACCESS_PATTERN] == ACCESS_GROUP_WALK
        self.group_size = q[st.Q_GROUP_SIZE]
        self.walk_groups = q[st.Q_WALK_GROUPS]
        self.walk_pages = q[st.Q_WALK_PAGES]
        self.walk_sequential = q[st.Q_WALK_SEQUENTIAL]
        self.writer_mode = q[st.Q_WRITER_MODE]
        self.writer_threads = q[st.Q_WRITER_THREADS]
        self.writer_locks = q[st.Q_WRITER_LOCKS]
        self.writer_process = q[st.Q_WRITER_PROCESS]
        self.run_to_parity = q[st.Q_RUN_TO_PARITY]
        self.writer_stream = q[st.Q_WRITER_STREAM]
        entities = self.reader_arrival + 1
        e = self.popularity
        self.alias_prob = self.alias_alias = None
        if q[st.Q_ZIPF_ALIAS]:          # Walker's alias table (built once per law, not timed)
            self.alias_prob, self.alias_alias = _alias_table(total, e)
        if e == 0.0 or total == 1:
            self.zipf_const = None
        else:   # the constants of zipf_rank, as the engine gets them
            h_x1 = float(P[st.P_ZIPF_H_X1])
            h_n = float(P[st.P_ZIPF_H_N])
            self.zipf_const = (h_n, h_x1 - h_n, float(P[st.P_ZIPF_S]))

        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        states = _nrng.seed_streams(seq, self.writer_stream + self.writer_threads)
        self.walk_key = int(states[q[st.Q_WALK_KEY_STREAM]])   # a stream nobody draws from
        self.rng = SplitMix(states, rng_block)
        self.u = self.rng.nexts             # self.u[k]() is the next uniform of stream k

        self.heap = []
        self.tseq = [-1] * entities
        self.next_seq = itertools.count().__next__
        if calendar not in ("heapq", "indexed"):
            raise ValueError(f"calendar={calendar!r} is not allowed: 'heapq' or 'indexed'")
        self.indexed = calendar == "indexed"
        self.h_time = [0.0] * entities
        self.h_ent = [0] * entities
        self.h_pos = [-1] * entities
        self.h_size = 0
        if self.indexed:
            self.timer, self.cancel = self._schedule_indexed, self._cancel_indexed
        else:
            self.timer, self.cancel = self._timer, self._cancel

        self.now = 0.0
        self.last_event = 0.0
        self.events = 0
        self.faults_done = 0
        self.ops_done = 0
        self.batch = -1
        self.batch_ops_done = 0
        self.batch_start = 0.0
        self.warmup_end = 0.0
        self.stop = False
        self.overload = False
        self.halt = False
        self.violations = 0
        self.read_waiting = 0
        self.write_waiting = 0
        self.in_fault = 0

        self.ent_event = [EV_NONE] * entities
        self.ent_cont = [0] * entities
        self.burst_rem = [0.0] * entities
        self.burst_end = [0.0] * entities
        self.oncpu_since = [0.0] * entities
        self.wait_start = [0.0] * entities
        self.ent_cpu = [-1] * entities
        self.cpu_running = [-1] * max(1, self.cpus)
        self.free_cpus = list(range(self.cpus))       # a stack: the top is taken first
        self.run_queue = deque()
        self.rq_woken = 0                               # woken entities at its front

        self.rw_readers = 0
        self.rw_writer = -1
        self.rw_qhead = -1
        self.rw_qtail = -1
        self.rw_qlen = 0
        self.rw_qwriters = 0
        self.rw_handoff = 0
        self.rw_next = [-1] * entities
        self.rw_prev = [-1] * entities
        self.rw_enq_time = [0.0] * entities
        self.rw_is_writer = [0] * entities
        self.rw_woken = [0] * entities
        self.spinners = []

        self.fw_next = [-1] * entities
        self.fw_mode = [0] * entities
        self.fw_unfair = [0] * entities

        self.t_key = [0] * T
        self.t_vma = [0] * T
        self.t_lock = [0] * T
        self.t_last_lock = [0] * T
        self.t_tried = [0] * T
        self.t_major = [0] * T
        self.t_io_seen = [0] * T
        self.t_retries = [0] * T
        self.t_waited_io = [0] * T
        self.t_want_vma = [0] * T
        self.t_is_retry = [0] * T
        self.t_fault_start = [0.0] * T
        self.t_slot = [-1] * T
        self.t_io = [-1] * T
        self.t_class = [CLASS_MINOR] * T
        self.t_walk = [0] * T
        rows = 2 * self.walk_groups if self.walk and not self.walk_sequential else 0
        self.walk_perm = [None] * rows          # two epochs a group, as the engine keeps
        self.walk_epoch = [-1] * rows

        self.w_start = [0.0] * ws
        self.w_kind = [0] * ws
        self.w_vma = [0] * ws
        self.w_next_vma = [0] * ws
        # writer threads own their slots for the whole run: none free for Poisson arrivals
        self.w_free = list(range(ws)) if self.writer_mode == WRITER_POISSON else []
        self.w_spin_start = [-1.0] * ws
        self.w_op_start = [0.0] * ws
        self.w_next = [0.0] * ws
        self.w_done_locks = [0] * ws
        self.w_draining = [0] * ws
        self.w_waiting = [0] * ws
        self.r_free = list(range(q[st.Q_READER_SLOTS]))

        self.v_readers = [0] * self.vmas
        self.v_drainer = [-1] * self.vmas
        self.v_write_locked = [0] * self.vmas

        slots = total if self.folio_direct else (self.set_mask + 1) * FOLIO_WAYS
        self.f_key = [-1] * slots
        self.f_state = [F_ABSENT] * slots
        self.f_owner = [OWNER_NONE] * slots
        self.f_uptodate_at = [0.0] * slots
        self.f_refs = [0] * slots
        self.f_deadline = [_INF] * slots          # nan: exposed, reclaim instant not drawn yet
        self.f_exposed_at = [0.0] * slots
        self.f_wq_head = [-1] * slots
        self.f_wq_tail = [-1] * slots

        self.io_folios = [[] for _ in range(T)]
        self.io_stream = [0] * T
        self.io_free = list(range(T))
        self.dev_queue = deque()
        self.dev_inflight = 0

        self.stats = [[0.0] * N_S for _ in range(nb)]
        self.hist = [[[0.0] * N_BINS for _ in range(N_H)] for _ in range(nb)]
        self.cur = None
        self.curh = None

        conts = [None] * 64
        conts[K_THINK_DONE] = self.think_done
        conts[K_IDLE_DONE] = self.access
        conts[K_INSTALL_DONE] = self.install_done
        conts[K_MMAP_GRANTED] = self._mmap_granted
        conts[K_MISS_SUBMIT] = self.miss_submit
        conts[K_FOLIO_RETRY_OWNED] = self.folio_retry_owned
        conts[K_FOLIO_RETRY] = self.folio_retry_shared
        conts[K_FOLIO_HOLD_OWNED] = self.folio_hold_owned
        conts[K_FOLIO_LOCK_WOKEN] = self.folio_lock_woken
        conts[K_ATTEMPT] = self.attempt
        conts[K_W_START] = self.w_start_op
        conts[K_W_GRANTED] = self.w_granted
        conts[K_W_DRAINED] = self.w_drained
        conts[K_W_HOLD_DONE] = self.w_hold_done
        conts[K_W_WOKEN] = self.w_woken
        conts[K_R_START] = self.r_start
        conts[K_R_HOLD_DONE] = self.r_hold_done
        conts[K_PTE_PRESENT_DONE] = self.pte_present_done
        conts[K_W_OP_START] = self.w_op_start_op
        conts[K_W_GAP_DONE] = self.w_gap_done
        conts[K_W_NEXT_ACQ] = self._w_resume_acquisition
        conts[K_W_PROC_HOLD_DONE] = self.w_proc_hold_done
        self.conts = conts
        self.profile = {} if profile else None

    # ---- statistics ---------------------------------------------------------------------------
    def _observe(self, h, value):
        ch = self.curh
        if ch is not None:
            ch[h][_bin_of(value)] += 1.0

    def _operation_completed(self):
        self.ops_done += 1
        b = self.batch
        now = self.now
        if b < 0:
            if b == -1 and self.ops_done >= self.warmup_ops:
                self.batch = 0
                self.batch_ops_done = 0
                self.batch_start = now
                self.warmup_end = now
                self.cur = self.stats[0]
                self.curh = self.hist[0]
            return
        self.batch_ops_done += 1
        if self.batch_ops_done >= self.batch_ops:
            self.stats[b][S_TIME] = now - self.batch_start
            self.batch_start = now
            self.batch_ops_done = 0
            if b + 1 >= self.batches:
                self.stop = self.halt = True
                self.batch = -2
                self.cur = self.curh = None
            else:
                self.batch = b + 1
                self.cur = self.stats[b + 1]
                self.curh = self.hist[b + 1]

    # ---- calendar and CPUs (calendar.py, cpu.py) ----------------------------------------------
    def _timer(self, e, when):
        s = self.next_seq()
        self.tseq[e] = s
        heapq.heappush(self.heap, (when, s, e))

    def _cancel(self, e):
        self.tseq[e] = -1

    # The engine's calendar (calendar.py), step for step: with it and the same seed this loop
    # reproduces the engine's trajectory event for event (``calendar="indexed"``; a check of the
    # port, not the benchmark baseline: its sifts run in Python).
    def _sift_up(self, i):
        times, ents, pos = self.h_time, self.h_ent, self.h_pos
        t = times[i]
        e = ents[i]
        while i > 0:
            parent = (i - 1) >> 1
            if times[parent] <= t:
                break
            times[i] = times[parent]
            ents[i] = ents[parent]
            pos[ents[i]] = i
            i = parent
        times[i] = t
        ents[i] = e
        pos[e] = i

    def _sift_down(self, i, n):
        times, ents, pos = self.h_time, self.h_ent, self.h_pos
        t = times[i]
        e = ents[i]
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and times[child + 1] < times[child]:
                child += 1
            if times[child] >= t:
                break
            times[i] = times[child]
            ents[i] = ents[child]
            pos[ents[i]] = i
            i = child
        times[i] = t
        ents[i] = e
        pos[e] = i

    def _schedule_indexed(self, e, when):
        i = self.h_pos[e]
        if i < 0:
            i = self.h_size
            self.h_size += 1
            self.h_time[i] = when
            self.h_ent[i] = e
            self._sift_up(i)
        else:
            old = self.h_time[i]
            self.h_time[i] = when
            if when < old:
                self._sift_up(i)
            else:
                self._sift_down(i, self.h_size)

    def _cancel_indexed(self, e):
        pos = self.h_pos
        i = pos[e]
        if i < 0:
            return
        pos[e] = -1
        n = self.h_size - 1
        self.h_size = n
        if i == n:
            return
        moved = self.h_ent[n]
        self.h_time[i] = self.h_time[n]
        self.h_ent[i] = moved
        pos[moved] = i
        self._sift_up(i)
        self._sift_down(pos[moved], n)

    def _pop_indexed(self):
        times, ents, pos = self.h_time, self.h_ent, self.h_pos
        t = times[0]
        e = ents[0]
        pos[e] = -1
        n = self.h_size - 1
        self.h_size = n
        if n > 0:
            times[0] = times[n]
            ents[0] = ents[n]
            pos[ents[0]] = 0
            self._sift_down(0, n)
        return t, e

    def _give(self, e, cpu):
        self.cpu_running[cpu] = e
        self.ent_cpu[e] = cpu
        self.oncpu_since[e] = self.now
        self.ent_event[e] = EV_RUN
        self.timer(e, self.now)

    def run_now(self, e, cont):
        self.ent_cont[e] = cont
        self.ent_event[e] = EV_RUN
        self.burst_rem[e] = 0.0
        self.timer(e, self.now)

    def wake(self, e, cont):
        self.ent_cont[e] = cont
        self.ent_event[e] = EV_WAKE
        self.burst_rem[e] = 0.0
        self.timer(e, self.now + self.wake_lat)

    def handoff_due(self, e):
        """The waiter has waited RWSEM_WAIT_TIMEOUT (in jiffies when tick_hz > 0)."""
        if self.hz <= 0.0:
            return self.now - self.rw_enq_time[e] >= self.handoff
        deadline = (math.floor(self.rw_enq_time[e] * self.hz)
                    + math.ceil(self.handoff * self.hz - 1e-9))
        return math.floor(self.now * self.hz) > deadline

    def protected(self, e):
        """RUN_TO_PARITY: a task keeps its CPU against a woken one for a slice after it got it."""
        return self.run_to_parity and self.now - self.oncpu_since[e] < self.slice

    def request_cpu(self, e, woken):
        cpus = self.cpus
        if cpus == 0:
            self.ent_event[e] = EV_RUN
            self.timer(e, self.now)
            return
        if self.free_cpus:
            self._give(e, self.free_cpus.pop())
            return
        if woken:
            running = self.cpu_running
            ent_event = self.ent_event
            ent_cont = self.ent_cont
            for cpu in range(cpus):
                victim = running[cpu]
                if ent_event[victim] == EV_BURST and (ent_cont[victim] == K_THINK_DONE
                                                      or ent_cont[victim] == K_W_GAP_DONE) \
                        and not self.protected(victim):
                    # wake-up preemption of a thread computing between accesses, or of a writer
                    # thread outside the lock
                    self.cancel(victim)             # its burst timer
                    self.burst_rem[victim] = (self.burst_end[victim] - self.now
                                              + self.burst_rem[victim])
                    ent_event[victim] = EV_RUN
                    self.ent_cpu[victim] = -1
                    self.run_queue.append(victim)
                    self._give(e, cpu)
                    return
            # no CPU to take: at the front, behind the woken ones (EEVDF: its lag)
            self.ent_cpu[e] = -1
            self.run_queue.insert(self.rq_woken, e)
            self.rq_woken += 1
            return
        self.ent_cpu[e] = -1
        self.run_queue.append(e)

    def release_cpu(self, e):
        if self.cpus == 0:
            return
        cpu = self.ent_cpu[e]
        self.ent_cpu[e] = -1
        if self.run_queue:
            if self.rq_woken:
                self.rq_woken -= 1
            self._give(self.run_queue.popleft(), cpu)
        else:
            self.cpu_running[cpu] = -1
            self.free_cpus.append(cpu)

    def burst(self, e, duration, cont):
        if (cont == K_THINK_DONE or cont == K_W_GAP_DONE) and self.run_queue and (
                (self.rq_woken and not self.run_to_parity)
                or self.now - self.oncpu_since[e] >= self.slice):
            # a preemption point: the woken task at the front takes the CPU, or the head of
            # the queue does after this one ran a whole slice
            self.ent_cont[e] = cont
            self.burst_rem[e] = duration
            self.release_cpu(e)
            self.ent_event[e] = EV_RUN
            self.run_queue.append(e)
            return
        self.ent_cont[e] = cont
        self.ent_event[e] = EV_BURST
        run = duration
        if self.cpus > 0:
            limit = self.slice
            if self.run_to_parity and (cont == K_THINK_DONE or cont == K_W_GAP_DONE
                                       or cont == K_W_HOLD_DONE or cont == K_W_PROC_HOLD_DONE):
                # the slice runs from when the entity got its CPU, across bursts (computing and
                # write holds; fault work has no preemption point)
                left = self.oncpu_since[e] + self.slice - self.now
                if left > 0.0:
                    limit = left
                elif self.run_queue:
                    limit = 0.0
            if duration > limit:
                run = limit
        self.burst_rem[e] = duration - run
        end = self.now + run
        self.burst_end[e] = end          # a heapq has no index: keep the end for preemption
        self.timer(e, end)

    def _slice_end(self, e, remaining):
        """A slice ended with ``remaining`` > 0 of the burst left: go on, or yield the CPU."""
        if self.run_queue:
            self.release_cpu(e)
            self.ent_event[e] = EV_RUN
            self.run_queue.append(e)
            return
        self.burst(e, remaining, self.ent_cont[e])

    # ---- mmap_lock (rwsem.py) ------------------------------------------------------------------
    def _add_reader(self):
        if self.rw_readers == 0:
            cur = self.cur
            if cur is not None:
                cur[S_READ_BUSY_PERIODS] += 1.0
        self.rw_readers += 1

    def _enqueue(self, e, is_writer):
        self.rw_is_writer[e] = is_writer
        self.rw_woken[e] = 0
        self.rw_enq_time[e] = self.now
        self.rw_next[e] = -1
        tail = self.rw_qtail
        self.rw_prev[e] = tail
        if tail >= 0:
            self.rw_next[tail] = e
        else:
            self.rw_qhead = e
        self.rw_qtail = e
        self.rw_qlen += 1
        self.rw_qwriters += is_writer

    def _unlink(self, e):
        prev = self.rw_prev[e]
        nxt = self.rw_next[e]
        if prev >= 0:
            self.rw_next[prev] = nxt
        else:
            self.rw_qhead = nxt
        if nxt >= 0:
            self.rw_prev[nxt] = prev
        else:
            self.rw_qtail = prev
        self.rw_qlen -= 1
        self.rw_qwriters -= self.rw_is_writer[e]
        if self.rw_qlen == 0:
            self.rw_handoff = 0

    def _grant_writer(self, e):
        self._unlink(e)
        self.rw_writer = e
        self.wake(e, K_W_GRANTED)

    def _wake_readers(self, limit, stop_at_writer):
        e = self.rw_qhead
        granted = 0
        rw_next = self.rw_next
        rw_is_writer = self.rw_is_writer
        while e >= 0 and granted < limit:
            nxt = rw_next[e]
            if rw_is_writer[e]:
                if stop_at_writer:
                    break
            else:
                self._unlink(e)
                self._add_reader()
                self.wake(e, K_MMAP_GRANTED)
                granted += 1
            e = nxt
        return granted

    def down_read(self, e):
        writer = self.rw_writer
        qlen = self.rw_qlen
        discipline = self.rwsem
        if discipline == RWSEM_LINUX:
            handoff = self.rw_handoff
            if writer < 0 and qlen == 0 and handoff == 0:
                self._add_reader()
                return True
            if self.rw_readers > 0 and writer < 0 and qlen > 0:
                self._enqueue(e, 0)
                return False
            if writer < 0 and handoff == 0:
                self._add_reader()
                if qlen > 0:
                    self._wake_readers(self.wake_batch, False)
                return True
            if qlen == 0 and writer < 0:
                self._add_reader()
                return True
            self._enqueue(e, 0)
            return False
        if discipline == RWSEM_FIFO:
            ok = writer < 0 and qlen == 0
        elif discipline == RWSEM_READER_PREF:
            ok = writer < 0
        else:
            ok = writer < 0 and self.rw_qwriters == 0
        if ok:
            self._add_reader()
            return True
        self._enqueue(e, 0)
        return False

    def up_read(self):
        self.rw_readers -= 1
        if self.rw_readers == 0 and self.rw_writer < 0:
            self._on_free(False)

    def down_write(self, e, owner_running):
        readers = self.rw_readers
        writer = self.rw_writer
        qlen = self.rw_qlen
        discipline = self.rwsem
        if discipline != RWSEM_LINUX:
            free = readers == 0 and writer < 0
            if discipline == RWSEM_WRITER_PREF or discipline == RWSEM_PHASE_FAIR:
                ok = free and self.rw_qwriters == 0
            else:
                ok = free and qlen == 0
            if ok:
                self.rw_writer = e
                return GRANTED
            self._enqueue(e, 1)
            return QUEUED
        handoff = self.rw_handoff
        if readers == 0 and writer < 0 and handoff == 0:
            self.rw_writer = e
            return GRANTED
        if self.writer_spin and handoff == 0:
            if writer >= 0 and owner_running:
                self.spinners.append(e)
                return SPINNING
            if writer < 0 and readers > 0:
                self.spinners.append(e)
                return SPINNING
        self._enqueue(e, 1)
        if readers == 0 and writer < 0 and (handoff == 0 or self.rw_qhead == e):
            self._unlink(e)
            self.rw_writer = e
            return GRANTED
        return QUEUED

    def stop_spinning(self, e):
        try:
            self.spinners.remove(e)
        except ValueError:
            return False
        self._enqueue(e, 1)
        if (self.rw_readers == 0 and self.rw_writer < 0
                and (self.rw_handoff == 0 or self.rw_qhead == e)):
            self._unlink(e)
            self.rw_writer = e
            return True
        return False

    def writer_woken(self, e):
        self.rw_woken[e] = 0
        first = self.rw_qhead == e
        if self.rw_readers == 0 and self.rw_writer < 0 and (self.rw_handoff == 0 or first):
            self._unlink(e)
            self.rw_writer = e
            return True
        if first and self.handoff_due(e):
            self.rw_handoff = 1
        return False

    def up_write(self):
        self.rw_writer = -1
        self._on_free(True)

    def _on_free(self, by_writer):
        head = self.rw_qhead
        discipline = self.rwsem
        if discipline == RWSEM_LINUX:
            handoff = self.rw_handoff
            if self.spinners and handoff == 0:
                spinner = self.spinners.pop(0)
                self.rw_writer = spinner
                self.run_now(spinner, K_W_GRANTED)
                if head >= 0 and self.handoff_due(head):
                    self.rw_handoff = 1
                return
            if head < 0:
                return
            if self.rw_is_writer[head]:
                if handoff:
                    self._unlink(head)
                    self.rw_writer = head
                    if self.rw_woken[head]:
                        # already woken, on its way to a CPU: it runs once, holding the lock
                        self.ent_cont[head] = K_W_GRANTED
                    else:
                        self.wake(head, K_W_GRANTED)
                    self.rw_woken[head] = 0
                elif not self.rw_woken[head]:
                    self.rw_woken[head] = 1
                    self.wake(head, K_W_WOKEN)
            else:
                self.rw_handoff = 0
                self._wake_readers(self.wake_batch, False)
            return
        if head < 0:
            return
        big = 1 << 40
        if discipline == RWSEM_FIFO:
            if self.rw_is_writer[head]:
                self._grant_writer(head)
            else:
                self._wake_readers(big, True)
        elif discipline == RWSEM_READER_PREF:
            if self.rw_qlen > self.rw_qwriters:
                self._wake_readers(big, False)
            else:
                self._grant_writer(head)
        elif discipline == RWSEM_WRITER_PREF:
            if self.rw_qwriters > 0:
                self._grant_writer(self._first_writer())
            else:
                self._wake_readers(big, False)
        else:
            readers_waiting = self.rw_qlen > self.rw_qwriters
            if (by_writer and readers_waiting) or self.rw_qwriters == 0:
                self._wake_readers(big, False)
            else:
                self._grant_writer(self._first_writer())

    def _first_writer(self):
        e = self.rw_qhead
        while e >= 0 and not self.rw_is_writer[e]:
            e = self.rw_next[e]
        return e

    # ---- per-VMA lock (vma_lock.py) -----------------------------------------------------------
    def vma_end_read(self, vma):
        v_readers = self.v_readers
        v_readers[vma] -= 1
        if self.check and (v_readers[vma] < 0 or self.v_write_locked[vma]):
            self.violations += 1
        if v_readers[vma] == 0 and self.v_drainer[vma] >= 0:
            self.wake(self.v_drainer[vma], K_W_DRAINED)

    # ---- folios (folio.py) --------------------------------------------------------------------
    def _settle(self, slot):
        """Apply reclaim since the folio was exposed; its reclaim instant is drawn on first look."""
        state = self.f_state[slot]
        if ((state == F_CACHED or state == F_MAPPED) and self.f_owner[slot] == OWNER_NONE
                and self.f_refs[slot] == 0):
            deadline = self.f_deadline[slot]
            if deadline != deadline:  # noqa: PLR0124 (nan: not drawn yet; faster than isnan)
                rate = self.rec_cached if state == F_CACHED else self.rec_mapped
                deadline = _INF
                if rate > 0.0:
                    draw = self.u[3 * self.T + 3]
                    deadline = self.f_exposed_at[slot] - (1.0 / rate) * _log(draw())
                self.f_deadline[slot] = deadline
            if self.now >= deadline:
                self.f_state[slot] = F_ABSENT
                self.f_deadline[slot] = _INF
                cur = self.cur
                if cur is not None:
                    cur[S_RECLAIMS] += 1.0

    def slot_of(self, key):
        if self.folio_direct:
            self._settle(key)
            return key
        f_key = self.f_key
        f_state = self.f_state
        f_refs = self.f_refs
        f_wq_head = self.f_wq_head
        f_owner = self.f_owner
        f_deadline = self.f_deadline
        base = ((((key * _GOLDEN) & _MASK) >> 20) & self.set_mask) * FOLIO_WAYS
        for slot in range(base, base + FOLIO_WAYS):
            if f_key[slot] == key:
                self._settle(slot)
                return slot
        victim = -1
        victim_deadline = _INF
        for slot in range(base, base + FOLIO_WAYS):
            if f_key[slot] < 0:
                victim = slot
                break
            self._settle(slot)
            if f_state[slot] == F_ABSENT and f_refs[slot] == 0 and f_wq_head[slot] < 0:
                victim = slot
                break
            if (f_owner[slot] == OWNER_NONE and f_refs[slot] == 0 and f_wq_head[slot] < 0
                    and (victim < 0 or f_deadline[slot] < victim_deadline)):
                victim = slot
                victim_deadline = f_deadline[slot]
        if victim < 0:
            self.overload = self.halt = True
            return -1
        if f_key[victim] >= 0 and f_state[victim] != F_ABSENT:
            cur = self.cur
            if cur is not None:
                cur[S_RECLAIMS] += 1.0
        f_key[victim] = key
        f_state[victim] = F_ABSENT
        f_owner[victim] = OWNER_NONE
        f_refs[victim] = 0
        f_deadline[victim] = _INF
        return victim

    def _expose(self, slot):
        """Nobody references or locks the folio any more: its reclaim clock starts."""
        self.f_exposed_at[slot] = self.now
        self.f_deadline[slot] = _NAN

    def _put(self, slot):
        self.f_refs[slot] -= 1
        if self.f_refs[slot] == 0 and self.f_owner[slot] == OWNER_NONE:
            self._expose(slot)

    def _wait(self, slot, e, mode):
        """One FIFO queue; an exclusive wait starts its budget of lock steals."""
        if mode == WAIT_EXCLUSIVE:
            self.fw_unfair[e] = PAGE_LOCK_UNFAIRNESS
        self._folio_enqueue(slot, e, mode)

    def _folio_enqueue(self, slot, e, mode):
        self.fw_mode[e] = mode
        if mode == WAIT_EXCLUSIVE:
            self.fw_unfair[e] -= 1
        self.fw_next[e] = -1
        tail = self.f_wq_tail[slot]
        if tail >= 0:
            self.fw_next[tail] = e
        else:
            self.f_wq_head[slot] = e
        self.f_wq_tail[slot] = e

    def unlock(self, slot):
        """``folio_wake_bit``: wake the shared waiters up to the first exclusive one, that one
        (to take the lock itself, or handed it after five steals), and stop."""
        self.f_owner[slot] = OWNER_NONE
        e = self.f_wq_head[slot]
        fw_next = self.fw_next
        while e >= 0:
            nxt = fw_next[e]
            self.f_wq_head[slot] = nxt
            if nxt < 0:
                self.f_wq_tail[slot] = -1
            if self.fw_mode[e] == WAIT_SHARED:
                if self.t_lock[e] == LOCK_NONE:
                    self.wake(e, K_FOLIO_RETRY)
                else:
                    self.fw_unfair[e] = PAGE_LOCK_UNFAIRNESS
                    self.wake(e, K_FOLIO_LOCK_WOKEN)
                e = nxt
                continue
            if self.fw_unfair[e] < 0:
                self.f_owner[slot] = e
                self.wake(e, K_FOLIO_HOLD_OWNED if self.t_lock[e] != 0 else K_FOLIO_RETRY_OWNED)
            else:
                self.wake(e, K_FOLIO_LOCK_WOKEN)
            break
        if self.f_owner[slot] == OWNER_NONE and self.f_refs[slot] == 0:
            self._expose(slot)

    def folio_lock_woken(self, t):
        slot = self.t_slot[t]
        if self.f_owner[slot] != OWNER_NONE:
            self._folio_enqueue(slot, t, WAIT_EXCLUSIVE)
            self.release_cpu(t)
            return
        self.f_owner[slot] = t
        if self.t_lock[t] == LOCK_NONE:
            self._folio_retry(t, True)
        else:
            self.folio_hold_owned(t)

    # ---- storage (device.py) ------------------------------------------------------------------
    def _dev_start(self, io):
        depth = self.dev_inflight
        self.dev_inflight = depth + 1
        latency = self.rng.sample_law(self.io_stream[io], self.io_law, self.io_mean, self.io_cv)
        latency += self.io_slope * depth + self.io_page_time * (len(self.io_folios[io]) - 1)
        if self.io_stall_share > 0.0:          # rng.stall: no draw without stalls
            k = self.io_stream[io]
            if self.rng.uniform(k) < self.io_stall_share:
                latency += self.rng.sample_law(k, LAW_LOGNORMAL, self.io_stall_mean,
                                               self.io_stall_cv)
        e = self.first_io + io
        self.ent_event[e] = EV_IO
        self.timer(e, self.now + latency)

    def dev_complete(self, io):
        self.dev_inflight -= 1
        now = self.now
        f_state = self.f_state
        f_uptodate_at = self.f_uptodate_at
        f_wq_head = self.f_wq_head
        f_owner = self.f_owner
        f_refs = self.f_refs
        f_deadline = self.f_deadline
        f_exposed_at = self.f_exposed_at
        for slot in self.io_folios[io]:
            f_state[slot] = F_CACHED
            f_uptodate_at[slot] = now
            if f_wq_head[slot] >= 0:
                self.unlock(slot)
            else:   # unlock() with nobody waiting, inlined: exposed to reclaim if unreferenced
                f_owner[slot] = OWNER_NONE
                if f_refs[slot] == 0:
                    f_exposed_at[slot] = now
                    f_deadline[slot] = _NAN
        self.io_free.append(io)
        if self.dev_queue:
            self._dev_start(self.dev_queue.popleft())

    # ---- the faulting threads (threads.py) ----------------------------------------------------
    def think(self, t):
        self.burst(t, -self.think_mean * _log(self.u[3 * t]()), K_THINK_DONE)

    def think_done(self, t):
        if self.idle_mean > 0.0:
            idle = -self.idle_mean * _log(self.u[3 * t]())
            self.release_cpu(t)
            self.ent_event[t] = EV_WAKE
            self.ent_cont[t] = K_IDLE_DONE
            self.timer(t, self.now + idle + self.wake_lat)
            return
        self.access(t)

    def _zipf(self, k):
        n = self.total_pages
        u = self.u[k]
        prob = self.alias_prob
        if prob is not None:
            x = u() * n
            i = int(x)
            return i if x - i < prob[i] else self.alias_alias[i]
        zc = self.zipf_const
        if zc is None:
            r = int(u() * n)
            return r if r < n else n - 1
        h_n, width, s = zc
        e = self.popularity
        while True:
            v = h_n + u() * width
            # _zipf_h_integral_inverse, inlined
            tt = v * (1.0 - e)
            if tt < -1.0:
                tt = -1.0
            x = _exp(_log1p_over_x(tt) * v)
            kk = int(x + 0.5)
            if kk < 1:
                kk = 1
            elif kk > n:
                kk = n
            if kk - x <= s or v >= _zipf_h_integral(kk + 0.5, e) - _zipf_h(kk, e):
                return kk - 1

    def _walk_page(self, t):
        """The page of thread ``t``'s next access in its group walk (``access.walk_page``)."""
        k = self.t_walk[t]
        self.t_walk[t] = k + 1
        n = self.walk_pages
        epoch = k // n
        i = k - epoch * n
        group = t // self.group_size
        if self.walk_sequential:
            j = i
        else:
            row = 2 * group + (epoch & 1)
            if self.walk_epoch[row] != epoch:
                self.walk_perm[row] = walk_permutation(self.walk_key, group, epoch, n)
                self.walk_epoch[row] = epoch
            j = self.walk_perm[row][i]
        return ((epoch * self.walk_groups + group) * n + j) % self.total_pages

    def access(self, t):
        cur = self.cur
        if cur is not None:
            cur[S_ACCESSES] += 1.0
        if self.walk:
            key = self._walk_page(t)
        else:
            key = (self._zipf(3 * t + 1) * self.page_mult) % self.total_pages
        slot = self.slot_of(key)
        if slot < 0 or self.f_state[slot] == F_MAPPED:
            if cur is not None:
                cur[S_NOFAULT] += 1.0
            self.think(t)
            return
        self.t_key[t] = key
        self.t_vma[t] = key // self.ppv
        self.t_fault_start[t] = self.now
        self.t_tried[t] = 0
        self.t_io_seen[t] = 0
        self.t_retries[t] = 0
        self.t_waited_io[t] = 0
        self.t_is_retry[t] = 0
        self.t_want_vma[t] = self.use_vma
        self.t_class[t] = CLASS_MINOR
        self.in_fault += 1
        self.attempt(t)

    def attempt(self, t):
        self.t_major[t] = 0
        if self.t_want_vma[t]:
            vma = self.t_vma[t]
            if not self.v_write_locked[vma] and self.v_drainer[vma] < 0:   # vma_start_read
                self.v_readers[vma] += 1
                self.t_lock[t] = LOCK_VMA
                self._under_lock(t)
                return
            cur = self.cur
            if cur is not None:
                cur[S_VMA_ABORTS] += 1.0
        if self.down_read(t):
            cur = self.cur
            if cur is not None:
                cur[S_READ_ACQ] += 1.0
                self.curh[H_READ_WAIT][0] += 1.0           # observe(H_READ_WAIT, 0.0)
            self.t_lock[t] = LOCK_MMAP
            self._under_lock(t)
            return
        self.t_lock[t] = LOCK_NONE
        self.wait_start[t] = self.now
        self.read_waiting += 1
        self.release_cpu(t)

    def mmap_granted(self, t):
        waited = self.now - self.wait_start[t]
        self.read_waiting -= 1
        cur = self.cur
        if cur is not None:
            cur[S_READ_ACQ] += 1.0
            cur[S_READ_WAIT_SUM] += waited
            cur[S_READ_WAIT_DONE] += 1.0
            cur[S_READ_SLOW_WAIT_SUM] += waited
            self.curh[H_READ_WAIT][_bin_of(waited)] += 1.0
            if waited > cur[S_READ_WAIT_MAX]:
                cur[S_READ_WAIT_MAX] = waited
        self.t_lock[t] = LOCK_MMAP
        self._under_lock(t)

    def _may_drop(self, t):
        if self.t_tried[t]:
            return False
        if self.t_lock[t] == LOCK_VMA:
            return self.drop_on_vma != 0
        return self.drop_on_mmap != 0

    def _release_fault_lock(self, t):
        lock = self.t_lock[t]
        self.t_lock[t] = LOCK_NONE
        self.t_last_lock[t] = lock
        if lock == LOCK_VMA:
            self.vma_end_read(self.t_vma[t])
        elif lock == LOCK_MMAP:
            self.up_read()

    def _under_lock(self, t):
        slot = self.slot_of(self.t_key[t])
        if slot < 0:
            self._release_fault_lock(t)
            self._finish(t)
            return
        self.t_slot[t] = slot
        cur = self.cur
        waited_for_read = self.t_is_retry[t] and self.t_waited_io[t]
        if waited_for_read and cur is not None:
            cur[S_RETRY_IO_WAITS] += 1.0
        self.t_waited_io[t] = 0
        state = self.f_state[slot]
        now = self.now
        if not self.t_is_retry[t]:                     # the first attempt classes the fault
            if state == F_ABSENT:
                self.t_class[t] = CLASS_MAJOR
            elif self.f_owner[slot] == OWNER_NONE:
                self.t_class[t] = CLASS_MINOR
            else:
                self.t_class[t] = CLASS_WAITER
        if state == F_MAPPED:
            # the PTE is present: done after the attempt's CPU, without the folio lock
            self.burst(t, self.fault_cpu, K_PTE_PRESENT_DONE)
            return
        if state == F_ABSENT:
            if cur is not None:
                if waited_for_read:
                    cur[S_RETRY_MISSES] += 1.0
                if self.t_io_seen[t]:
                    cur[S_REFAULTS] += 1.0
                cur[S_MAJOR] += 1.0
            self.f_refs[slot] += 1                     # folio.get
            self.f_deadline[slot] = _INF
            self.t_io_seen[t] = 1
            if cur is not None:
                cur[S_PAGES_READ] += 1.0               # folio.charge (reclaim="hazard")
            if self.t_vma[t] < self.swap_vmas:
                self.t_major[t] = 1                    # zram: VM_FAULT_MAJOR, no retry
                self.f_state[slot] = F_CACHED
                self.f_owner[slot] = t
                self.f_uptodate_at[slot] = now + self.zram
                self.burst(t, self.zram + self.fault_cpu, K_INSTALL_DONE)
                return
            self.t_major[t] = 1
            self.f_state[slot] = F_READING
            self.f_owner[slot] = OWNER_IO
            io = self.io_free.pop()                    # device.new_read
            self.io_stream[io] = 3 * t + 2
            self.io_folios[io] = [slot]
            if self.readaround > 1:
                self._add_readaround(io, self.t_key[t])
                if cur is not None:
                    cur[S_PAGES_READ] += len(self.io_folios[io]) - 1
            self.t_io[t] = io
            self.burst(t, self.fault_cpu, K_MISS_SUBMIT)
            return
        self.f_refs[slot] += 1                         # folio.get
        self.f_deadline[slot] = _INF
        if self.f_owner[slot] == OWNER_NONE:
            self.f_owner[slot] = t
            self.burst(t, self.fault_cpu, K_INSTALL_DONE)
            return
        uptodate = state != F_READING and now >= self.f_uptodate_at[slot]
        if not uptodate:
            self.t_io_seen[t] = 1
        if not self._may_drop(t) or (uptodate and self.uptodate_wait):
            self._wait(slot, t, WAIT_EXCLUSIVE)
        else:
            self.t_waited_io[t] = not uptodate
            self._release_fault_lock(t)
            swap = self.t_vma[t] < self.swap_vmas
            self._wait(slot, t, WAIT_SHARED if swap else WAIT_EXCLUSIVE)
        self.release_cpu(t)

    def _add_readaround(self, io, key):
        readaround = self.readaround
        pages = self.ppv
        vma_base = (key // pages) * pages
        page = key - vma_base
        first = page - readaround // 2
        if first < 0:
            first = 0
        last = first + readaround
        if last > pages:
            last = pages
            first = max(0, last - readaround)
        f_state = self.f_state
        f_refs = self.f_refs
        f_wq_head = self.f_wq_head
        f_owner = self.f_owner
        folios = self.io_folios[io]
        if self.folio_direct:
            settle = self._settle
            for p in range(vma_base + first, vma_base + last):
                if p == key or f_refs[p] != 0:
                    continue
                if f_state[p] != F_ABSENT:
                    settle(p)                          # was it reclaimed since it was exposed?
                    if f_state[p] != F_ABSENT:
                        continue
                if f_wq_head[p] < 0:
                    f_state[p] = F_READING
                    f_owner[p] = OWNER_IO
                    folios.append(p)
            return
        slot_of = self.slot_of
        for p in range(first, last):
            if p == page:
                continue
            slot = slot_of(vma_base + p)
            if (slot >= 0 and f_state[slot] == F_ABSENT and f_refs[slot] == 0
                    and f_wq_head[slot] < 0):
                f_state[slot] = F_READING
                f_owner[slot] = OWNER_IO
                folios.append(slot)

    def miss_submit(self, t):
        io = self.t_io[t]
        cur = self.cur
        if cur is not None:
            cur[S_IO_READS] += 1.0
        if self.io_par == 0 or self.dev_inflight < self.io_par:   # device.submit
            self._dev_start(io)
        else:
            self.dev_queue.append(io)
        if self._may_drop(t):
            self.t_waited_io[t] = 1
            self._release_fault_lock(t)
        elif cur is not None:
            if self.t_lock[t] == LOCK_MMAP:
                cur[S_READS_HOLDING_MMAP] += 1.0
            else:
                cur[S_READS_HOLDING_VMA] += 1.0
        self._wait(self.t_slot[t], t, WAIT_SHARED if self.readaround <= 1 else WAIT_EXCLUSIVE)
        self.release_cpu(t)

    def folio_retry_owned(self, t):
        self._folio_retry(t, True)

    def folio_retry_shared(self, t):
        self._folio_retry(t, False)

    def _folio_retry(self, t, owned):
        slot = self.t_slot[t]
        if owned:
            self.unlock(slot)
        self._put(slot)
        cur = self.cur
        if cur is not None:
            cur[S_RETRIES] += 1.0
        self.t_retries[t] += 1
        self.t_is_retry[t] = 1
        if self.t_last_lock[t] == LOCK_VMA:
            if self.t_major[t] and self.tried_after_major:
                self.t_tried[t] = 1
            self.t_want_vma[t] = self.retry_on_vma
        else:
            self.t_tried[t] = 1
            self.t_want_vma[t] = 0
        if self.retry_limit > 0 and self.t_retries[t] >= self.retry_limit:
            self.t_tried[t] = 1
        self.burst(t, self.fault_cpu, K_ATTEMPT)

    def folio_hold_owned(self, t):
        self.burst(t, self.fault_cpu, K_INSTALL_DONE)

    def install_done(self, t):
        slot = self.t_slot[t]
        self.f_state[slot] = F_MAPPED
        self.unlock(slot)
        self._put(slot)
        self._release_fault_lock(t)
        self._finish(t)

    def pte_present_done(self, t):
        self._release_fault_lock(t)
        self._finish(t)

    def _finish(self, t):
        latency = self.now - self.t_fault_start[t]
        self.in_fault -= 1
        cur = self.cur
        if cur is not None:
            cur[S_LATENCY_SUM] += latency
            if latency > self.jank:
                cur[S_JANK] += 1.0
            curh = self.curh
            b = _bin_of(latency)
            curh[H_FAULT_LATENCY][b] += 1.0
            cls = self.t_class[t]
            if cls == CLASS_MAJOR:
                cur[S_CLASS_MAJOR] += 1.0
                cur[S_MAJOR_LATENCY_SUM] += latency
                curh[H_MAJOR_LATENCY][b] += 1.0
            elif cls == CLASS_WAITER:
                cur[S_CLASS_WAITER] += 1.0
                cur[S_WAITER_LATENCY_SUM] += latency
                curh[H_WAITER_LATENCY][b] += 1.0
            else:
                cur[S_CLASS_MINOR] += 1.0
                cur[S_MINOR_LATENCY_SUM] += latency
                curh[H_MINOR_LATENCY][b] += 1.0
            if self.t_major[t] or self.t_tried[t]:     # mm_account_fault
                cur[S_KERNEL_MAJOR] += 1.0
            cur[S_FAULTS] += 1.0
        self.faults_done += 1
        self._operation_completed()
        self.think(t)

    # ---- writers (writers.py) -----------------------------------------------------------------
    def schedule_arrival(self):
        if self.writer_rate <= 0.0:
            return
        source = self.arrival_entity
        self.ent_event[source] = EV_ARRIVAL
        gap = -(1.0 / self.writer_rate) * _log(self.u[3 * self.T]())
        self.timer(source, self.now + gap)

    def arrival(self):
        self.schedule_arrival()
        k = 3 * self.T + 2
        u = self.u[k]()
        which = int(self.u[k]() * self.vmas)
        if not self.w_free:
            self.overload = self.halt = True
            return
        w = self.w_free.pop()
        self._set_kind(w, u, which)
        e = self.first_writer + w
        self.ent_cont[e] = K_W_START
        self.request_cpu(e, True)

    def _set_kind(self, w, u, which):
        if u < self.w_fork_share:
            self.w_kind[w] = WRITER_FORK
        elif u < self.w_fork_share + self.w_vma_share:
            self.w_kind[w] = WRITER_ONE_VMA
        else:
            self.w_kind[w] = WRITER_NONE_VMA
        self.w_vma[w] = min(which, self.vmas - 1)
        self.w_next_vma[w] = 0
        self.w_draining[w] = 0
        self.w_start[w] = self.now

    def _end_spin(self, w):
        began = self.w_spin_start[w]
        if began >= 0.0:
            cur = self.cur
            if cur is not None:
                cur[S_WRITER_CPU] += self.now - began
            self.w_spin_start[w] = -1.0

    def w_start_op(self, e):
        w = e - self.first_writer
        self.wait_start[e] = self.now
        owner = self.rw_writer        # owner->on_cpu: a writer owner that runs, not draining
        owner_running = (owner >= 0 and not self.w_draining[owner - self.first_writer]
                         and (self.cpus == 0 or self.ent_cpu[owner] >= 0))
        result = self.down_write(e, owner_running)
        if result == GRANTED:
            self.w_waiting[w] = 0
            self.w_granted(e)
            return
        self.w_waiting[w] = 1
        self.write_waiting += 1
        if result == SPINNING:
            self.w_spin_start[w] = self.now
            if self.rw_writer < 0:
                self.ent_event[e] = EV_SPIN
                limit = (20.0 + min(self.rw_readers, 30)) * 0.5e-6
                self.timer(e, self.now + limit)
            else:
                self.ent_event[e] = EV_NONE
            return
        self.release_cpu(e)

    def w_granted(self, e):
        w = e - self.first_writer
        self._end_spin(w)
        waited = self.now - self.wait_start[e]
        cur = self.cur
        if self.w_waiting[w]:
            self.w_waiting[w] = 0
            self.write_waiting -= 1
            if cur is not None:
                cur[S_WRITE_WAIT_DONE] += 1.0
                cur[S_WRITE_SLOW_WAIT_SUM] += waited
        if cur is not None:
            cur[S_WRITE_ACQ] += 1.0
            cur[S_WRITE_WAIT_SUM] += waited
            self.curh[H_WRITE_WAIT][_bin_of(waited)] += 1.0
            if waited > cur[S_WRITE_WAIT_MAX]:
                cur[S_WRITE_WAIT_MAX] = waited
        self._lock_vmas(e)

    def _lock_vmas(self, e):
        w = e - self.first_writer
        kind = self.w_kind[w]
        n = 0
        if kind == WRITER_ONE_VMA:
            n = 1
        elif kind == WRITER_FORK:
            n = self.vmas
        v_write_locked = self.v_write_locked
        while self.w_next_vma[w] < n:
            vma = self.w_vma[w] if kind == WRITER_ONE_VMA else self.w_next_vma[w]
            if not v_write_locked[vma]:                # vma_start_write
                if self.v_readers[vma] == 0:
                    v_write_locked[vma] = 1
                else:
                    self.v_drainer[vma] = e
                    self.w_draining[w] = 1
                    self._spinners_give_up()
                    self.release_cpu(e)
                    return
            self.w_next_vma[w] += 1
        stream = 3 * self.T + 1 if self.writer_mode == WRITER_POISSON else self.writer_stream + w
        hold = self.rng.sample_law(stream, self.writer_law, self.writer_hold, self.writer_hold_cv)
        cur = self.cur
        if cur is not None:
            cur[S_WRITER_CPU] += hold
        self.burst(e, hold, K_W_HOLD_DONE)

    def _spinners_give_up(self):
        for spinner in list(self.spinners):
            self._end_spin(spinner - self.first_writer)
            self.cancel(spinner)
            self.ent_event[spinner] = EV_NONE
            self.stop_spinning(spinner)
            self.release_cpu(spinner)

    def w_drained(self, e):
        w = e - self.first_writer
        vma = self.w_vma[w] if self.w_kind[w] == WRITER_ONE_VMA else self.w_next_vma[w]
        if self.check and self.v_readers[vma] != 0:
            self.violations += 1
        self.v_drainer[vma] = -1                       # vma_drained
        self.v_write_locked[vma] = 1
        self.w_draining[w] = 0
        self.w_next_vma[w] += 1
        self._lock_vmas(e)

    def w_hold_done(self, e):
        w = e - self.first_writer
        kind = self.w_kind[w]
        if kind == WRITER_ONE_VMA:
            self.v_write_locked[self.w_vma[w]] = 0
        elif kind == WRITER_FORK:
            v_write_locked = self.v_write_locked
            for vma in range(self.vmas):
                v_write_locked[vma] = 0
        self.up_write()
        latency = self.now - self.w_start[w]
        cur = self.cur
        if cur is not None:
            cur[S_WRITERS_DONE] += 1.0
            cur[S_WRITER_LATENCY_SUM] += latency
            self.curh[H_WRITER_LATENCY][_bin_of(latency)] += 1.0
        if self.writer_mode != WRITER_POISSON:
            self._operation_completed()
            self._w_acquisition_done(e)
            return
        if cur is not None:                            # a Poisson writer: one acquisition
            cur[S_WRITER_OPS] += 1.0
            cur[S_WRITER_OP_LATENCY_SUM] += latency
            self.curh[H_WRITER_OP_LATENCY][_bin_of(latency)] += 1.0
        self._operation_completed()
        self.w_free.append(w)
        self.ent_event[e] = EV_NONE
        self.release_cpu(e)

    def w_woken(self, e):
        if self.writer_woken(e):
            self.w_granted(e)
        else:
            self.release_cpu(e)

    def w_spin_timeout(self, e):
        self._end_spin(e - self.first_writer)
        if self.stop_spinning(e):
            self.w_granted(e)
        else:
            self.release_cpu(e)

    # ---- writer threads, closed loop (writers.py) ---------------------------------------------
    def w_start_threads(self):
        if self.writer_mode == WRITER_POISSON:
            return
        for w in range(self.writer_threads):
            e = self.first_writer + w
            self.w_next[w] = 0.0
            if self.writer_mode == WRITER_PERIODIC:
                self._w_sleep_until_next(e, False)
            else:
                self.ent_cont[e] = K_W_OP_START
                self.request_cpu(e, False)

    def _w_sleep_until_next(self, e, on_cpu):
        w = e - self.first_writer
        period = self.writer_period
        now = self.now
        deadline = self.w_next[w] + period
        if deadline + period < now:
            deadline = now
        self.w_next[w] = deadline
        if deadline <= now:
            if on_cpu:
                self.w_op_start_op(e)
            else:
                self.ent_cont[e] = K_W_OP_START
                self.request_cpu(e, False)
            return
        if on_cpu:
            self.release_cpu(e)
        self.ent_cont[e] = K_W_OP_START
        self.ent_event[e] = EV_WAKE
        self.burst_rem[e] = 0.0
        self.timer(e, deadline + self.wake_lat)

    def w_op_start_op(self, e):
        w = e - self.first_writer
        self.w_op_start[w] = self.now
        self.w_done_locks[w] = 0
        self._w_next_acquisition(e)

    def _w_next_acquisition(self, e):
        if self.cpus > 0 and self.run_queue and not self.protected(e):
            # a preemption point: give the CPU to the head of the run queue, queue at the tail
            self.release_cpu(e)
            self.ent_cont[e] = K_W_NEXT_ACQ
            self.ent_event[e] = EV_RUN
            self.burst_rem[e] = 0.0
            self.run_queue.append(e)
            return
        self._w_resume_acquisition(e)

    def _w_resume_acquisition(self, e):
        """The CPU outside the lock, then the acquisition (after a yield: no second yield)."""
        gap = self.writer_gap
        if gap > 0.0:
            cur = self.cur
            if cur is not None:
                cur[S_WRITER_CPU] += gap
            self.burst(e, gap, K_W_GAP_DONE)
        else:
            self.w_gap_done(e)

    def w_gap_done(self, e):
        w = e - self.first_writer
        stream = self.writer_stream + w
        if self.writer_process:
            hold = self.rng.sample_law(stream, self.writer_law, self.writer_hold,
                                       self.writer_hold_cv)
            cur = self.cur
            if cur is not None:
                cur[S_WRITER_CPU] += hold
            self.burst(e, hold, K_W_PROC_HOLD_DONE)
            return
        u = self.u[stream]()
        which = int(self.u[stream]() * self.vmas)
        self._set_kind(w, u, which)
        self.w_start_op(e)

    def w_proc_hold_done(self, e):
        """A writer in another process finished a lock-free hold: an operation for the batches."""
        self._operation_completed()
        self._w_acquisition_done(e)

    def _w_acquisition_done(self, e):
        w = e - self.first_writer
        self.w_done_locks[w] += 1
        if self.w_done_locks[w] < self.writer_locks:
            self._w_next_acquisition(e)
            return
        latency = self.now - self.w_op_start[w]
        cur = self.cur
        if cur is not None:
            cur[S_WRITER_OPS] += 1.0
            cur[S_WRITER_OP_LATENCY_SUM] += latency
            self.curh[H_WRITER_OP_LATENCY][_bin_of(latency)] += 1.0
        if self.writer_mode == WRITER_PERIODIC:
            self._w_sleep_until_next(e, True)
        else:
            self.w_op_start_op(e)

    # ---- background mmap_lock readers (readers.py) -------------------------------------------
    def r_schedule_arrival(self):
        if self.reader_rate <= 0.0:
            return
        source = self.reader_arrival
        self.ent_event[source] = EV_READER_ARRIVAL
        gap = -(1.0 / self.reader_rate) * _log(self.u[3 * self.T + 4]())
        self.timer(source, self.now + gap)

    def r_arrival(self):
        self.r_schedule_arrival()
        if not self.r_free:
            self.overload = self.halt = True
            return
        e = self.first_reader + self.r_free.pop()
        self.ent_cont[e] = K_R_START
        self.request_cpu(e, True)

    def r_start(self, e):
        if self.down_read(e):
            cur = self.cur
            if cur is not None:
                cur[S_READ_ACQ] += 1.0
                self.curh[H_READ_WAIT][0] += 1.0
            self._r_hold(e)
            return
        self.wait_start[e] = self.now
        self.read_waiting += 1
        self.release_cpu(e)

    def _mmap_granted(self, e):
        """K_MMAP_GRANTED: a faulting thread or a background reader got mmap_lock."""
        if e < self.T:
            self.mmap_granted(e)
            return
        waited = self.now - self.wait_start[e]
        self.read_waiting -= 1
        cur = self.cur
        if cur is not None:
            cur[S_READ_ACQ] += 1.0
            cur[S_READ_WAIT_SUM] += waited
            cur[S_READ_WAIT_DONE] += 1.0
            cur[S_READ_SLOW_WAIT_SUM] += waited
            self.curh[H_READ_WAIT][_bin_of(waited)] += 1.0
            if waited > cur[S_READ_WAIT_MAX]:
                cur[S_READ_WAIT_MAX] = waited
        self._r_hold(e)

    def _r_hold(self, e):
        self.burst(e, -self.reader_hold * _log(self.u[3 * self.T + 5]()), K_R_HOLD_DONE)

    def r_hold_done(self, e):
        self.up_read()
        self.r_free.append(e - self.first_reader)
        self.ent_event[e] = EV_NONE
        self.release_cpu(e)

    # ---- the event loop (engine.py) -----------------------------------------------------------
    def _check_invariants(self):
        if self.rw_writer >= 0 and self.rw_readers != 0:
            self.violations += 1
        if self.rw_readers < 0:
            self.violations += 1
        for vma in range(self.vmas):
            if self.v_write_locked[vma] and self.v_readers[vma] != 0:
                self.violations += 1

    def run(self):
        """Simulate until every batch is done, the time or event budget is spent, or overload."""
        for t in range(self.T):
            self.ent_cont[t] = K_THINK_DONE
            self.request_cpu(t, False)
        self.schedule_arrival()
        self.w_start_threads()
        self.r_schedule_arrival()
        heap = self.heap
        tseq = self.tseq
        heappop = heapq.heappop
        ent_event = self.ent_event
        ent_cont = self.ent_cont
        burst_rem = self.burst_rem
        conts = self.conts
        first_io = self.first_io
        max_events = self.max_events
        max_time = self.max_time
        check = self.check
        profile = self.profile
        events = 0
        last = 0.0
        indexed = self.indexed
        pop_indexed = self._pop_indexed
        while heap or self.h_size:
            if indexed:
                when, e = pop_indexed()
            else:
                when, s, e = heappop(heap)
                if tseq[e] != s:
                    continue                           # a moved or cancelled timer
            if when > max_time:
                self.now = max_time
                break
            cur = self.cur
            if cur is not None:                        # stats.advance_clock
                dt = when - last
                cur[S_READ_WAITING_AREA] += self.read_waiting * dt
                cur[S_WRITE_WAITING_AREA] += self.write_waiting * dt
                cur[S_IN_FAULT_AREA] += self.in_fault * dt
                if self.rw_readers > 0:
                    cur[S_READ_BUSY_TIME] += dt
                cur[S_EVENTS] += 1.0
            last = when
            self.now = when
            events += 1
            event = ent_event[e]
            if profile is not None:
                key = (event, ent_cont[e] if event in (EV_BURST, EV_RUN) else 0,
                       burst_rem[e] > 0.0)
                profile[key] = profile.get(key, 0) + 1
            if event == EV_BURST:
                remaining = burst_rem[e]
                if remaining <= 0.0:
                    conts[ent_cont[e]](e)
                else:
                    self._slice_end(e, remaining)
            elif event == EV_RUN:
                if burst_rem[e] > 0.0:
                    self.burst(e, burst_rem[e], ent_cont[e])
                else:
                    conts[ent_cont[e]](e)
            elif event == EV_WAKE:
                self.request_cpu(e, True)
            elif event == EV_IO:
                self.dev_complete(e - first_io)
            elif event == EV_ARRIVAL:
                self.arrival()
            elif event == EV_SPIN:
                self.w_spin_timeout(e)
            elif event == EV_READER_ARRIVAL:
                self.r_arrival()
            if check:
                self._check_invariants()
            if self.halt or events >= max_events:
                break
        self.last_event = last
        self.events = events
        b = self.batch                                 # stats.close_open_batch
        if b >= 0:
            self.stats[b][S_TIME] = self.now - self.batch_start
        return self

    def summary(self, wall):
        return {
            "completed": bool(self.stop),
            "overloaded": bool(self.overload),
            "events": int(self.events),
            "faults": int(self.faults_done),
            "violations": int(self.violations),
            "simulated_time": float(self.now),
            "measured_time": float(self.now - self.warmup_end) if self.warmup_end > 0 else 0.0,
            "wall_time": wall,
            "faults_stuck": self.faults_stuck(),
            **self.walk_extent(),
        }

    def faults_stuck(self):
        """Faults in progress since before the middle of the measured run
        (``simulate.faults_stuck``)."""
        if self.warmup_end <= 0:
            return 0
        middle = self.warmup_end + 0.5 * (self.now - self.warmup_end)
        return sum(1 for t in range(self.T)
                   if self.ent_cont[t] not in (K_THINK_DONE, K_IDLE_DONE)
                   and self.t_fault_start[t] < middle)

    def walk_extent(self):
        """How far a group walk went (``simulate.walk_extent``)."""
        if not self.walk:
            return {"walk_epochs": 0, "walk_wrapped": False}
        most = max(self.t_walk) if self.t_walk else 0
        epochs = -(-most // self.walk_pages)
        pages = epochs * self.walk_groups * self.walk_pages
        return {"walk_epochs": epochs, "walk_wrapped": pages > self.total_pages}


def run_policy(scenario, policy, seed=0, *, operations=100_000, batches=20, warmup=0.2,
               max_events=None, max_time=math.inf, check=False, profile=False, calendar="heapq"):
    """One run, like ``faultlock.model.montecarlo.simulate.run_policy``.

    Returns ``(stats, hist, summary, engine)``: per-batch counters ``(batches, N_S)`` and
    histograms ``(batches, N_H, N_BINS)`` as numpy arrays, and the summary dict.
    """
    eng = Engine(scenario, policy, seed, operations=operations, batches=batches, warmup=warmup,
                 max_events=max_events, max_time=max_time, check=check, profile=profile,
                 calendar=calendar)
    started = time.perf_counter()
    eng.run()
    wall = time.perf_counter() - started
    return np.array(eng.stats), np.array(eng.hist), eng.summary(wall), eng


def simulate_plain(scenario, policies=("mainline",), *, seed=0, operations=100_000, batches=20,
                   warmup=0.2, replications=1, max_events=None, max_time=math.inf, check=False,
                   rel_tolerance=0.05, calendar="heapq"):
    """``faultlock.simulate`` with the plain-Python engine: the same Dataset (scalar scenarios).

    Seeds are derived exactly as ``faultlock.simulate`` derives them, so the same ``seed`` gives the
    same random streams (common random numbers across the two engines).
    """
    policies = check_policies(policies)
    if not scenario.is_scalar:
        raise ValueError("simulate_plain takes a scalar scenario")
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    per_policy = []
    for policy in policies:
        all_stats, all_hist, summaries = [], [], []
        for r in range(replications):
            child = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + (r,))
            stats, hist, summary, _ = run_policy(scenario, policy, child, operations=operations,
                                                 batches=batches, warmup=warmup,
                                                 max_events=max_events, max_time=max_time,
                                                 check=check, calendar=calendar)
            done = stats[:, S_TIME] > 0
            all_stats.append(stats[done])
            all_hist.append(hist[done])
            summaries.append(summary)
        per_policy.append(_sim.pool_replications(all_stats, all_hist, summaries))
    ds = _sim._dataset(scenario, policies, per_policy, root, operations, batches, warmup,
                       replications, rel_tolerance, check)
    ds.attrs["solver"] = "plain_python"
    return ds


if __name__ == "__main__":   # a quick look: python benchmarks/plain_python_engine.py [preset]
    import sys

    import faultlock

    name = sys.argv[1] if len(sys.argv) > 1 else "android_warm_start"
    stats, hist, summary, eng = run_policy(faultlock.Scenario.preset(name), "mainline", 0,
                                           operations=20_000)
    print(name, summary, f"{summary['events'] / summary['wall_time'] / 1e6:.3f} M events/s")
