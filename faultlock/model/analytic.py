"""The analytic model: the same metrics as :func:`faultlock.simulate`, from formulas, fast.

``predict(scenario, policies)`` solves, for every cell of the scenario's grid and every policy at
once (numpy arrays over the (policy, cell) elements), one fixed point that ties together the pieces
derived in :mod:`faultlock.model.symbolic` (each formula lives there once, with its assumptions):

* **pages** (``page_*_share``): each page of the Zipf popularity law is a semi-Markov cycle absent ->
  locked (being faulted in, or read around) -> cached -> mapped -> absent under the reclaim hazards,
  so an access is a hit, a minor fault (cached), a major fault (absent), a zram swap-in, or joins a
  fault already reading the folio.  The Zipf law is summed exactly for the hottest ranks and by
  Gauss-Legendre quadrature in log-rank for the tail (:func:`zipf_nodes`).
* **the fault path of each policy** (``policies.py`` switches, the state machines of kernel.md §6
  as coded in ``montecarlo/threads.py``): every major file fault drops its lock and retries
  (``VM_FAULT_RETRY``); the retry costs ``fault_cpu_time`` before its folio lookup; a TRIED retry
  re-reads holding its lock; ``vma_wait`` and ``legacy_hold`` never drop.  Expected latency, CPU
  time, wake-ups, reads, retries, refaults, lock acquisitions and holds per fault class follow.
* **the refault loop** (``refault_success_window``, ``refault_attempts_truncated``): the exposure
  window is the re-entry CPU plus, under mainline, the ``mmap_lock`` wait; under ``vma_retry`` only
  a VMA-lock fallback; nil under ``vma_wait``.  The window depends on the lock wait, which depends
  on the refault reads holding the lock: solved jointly.
* **mmap_lock** (``writer_utilisation``, ``mg1_busy_period_residual``, ``blocked_wait_mean``,
  ``mginf_max_residual``): writers are vacations of the reader server; each writer shuts readers
  out for its hold (VMA drains included) plus, when it must queue, the drain of long read holders
  (reads under a TRIED retry, ``legacy_hold``); linux writers that spin on a running owner chain
  into writer busy periods (like ``writer_pref``), the textbook disciplines hand over directly and
  keep the lock through the grantee's wake-up.  ``rho_w >= 1`` is unstable: inf.
* **closed readers** (``lag_inside_probability``, ``lag_inside_residual``): a thread is blocked
  at most once per writer period, when its next acquisition falls inside it; few threads that
  come back quickly phase-lock to a (periodic) writer and wait nearly a whole hold, many slow
  ones give PASTA back.  Other mmap_lock readers (``reader_rate``) are an open stream: PASTA.
* **writer threads** (``_writer_rates``): periodic or flat out, ``writer_locks_per_op``
  acquisitions an operation, in this process or another (CPU only); periodic ones arrive
  together and chain, a flat-out one comes back to find the readers its last hold blocked.
* **group walks** (``_group_walk``): one major fault per page and group, followers that trail
  the leader by an exponential lag join its read or find the page mapped, and the retries pass
  the folio lock along a chain of wake-ups.
* **the per-VMA lock** (``vma_abort_probability``): a fault falls back to ``mmap_lock`` while its
  VMA is write-locked or draining; under ``vma_wait`` a writer's drain waits for the reads of the
  VMA's readers (the largest residual of an M/G/infinity system).
* **storage** (``read_service_time``, ``finite_source_wait``): the device-depth curve and
  ``io_parallelism`` slots, seen by a thread's read among the other threads' reads.
* **CPUs** (``finite_source_wait``, ``finite_source_excess``): as in the engine, a woken thread
  preempts a thread that is only computing, so it waits only while every CPU runs fault work,
  writers or other readers, and then at the front of the run queue, until a CPU's fault work
  ends; readers granted together at a writer's release wake together, and those beyond the CPUs
  queue there one behind the other.  The computing between accesses shares what is left of the
  CPUs (processor sharing), which is where CPU saturation shows.
* **the closed loop** (``interactive_response_time_law``): N threads, access rate
  ``N / (think_time + miss x fault latency)``, so the model saturates as N grows.
* **the latency distribution**: a mixture over fault classes of fixed CPU and wake-up times, the
  read time (its law's CDF, linear between quantile levels) and an atom-or-exponential wait
  (``uniform_plus_wait_cdf``); quantiles, the jank share and the histogram are read from it.

What is not modelled (and so absent from the dataset): the engine's event rate and the longest
waits of a run (``mmap_read_wait_max``, ``mmap_write_wait_max``: they grow with the run length),
and the engine's newer metrics that need per-thread histories (``METRICS_ABSENT`` and any other
``simulate`` variable not produced here).  Group walks with read-around
(``readaround_pages > 1``) or swap VMAs are refused (ValueError).  The model is a steady state:
a scenario without reclaim (``reclaim_rate_mapped = 0``) maps every page it touches and has no
faults in steady state (the Monte Carlo then measures its cold start).

Where it holds and where it does not: see ``faultlock.model.validation`` and the README.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import checks, fixed_point
from . import symbolic as sym
from .montecarlo import output
from .montecarlo.state import FOLIO_DIRECT_LIMIT, H_FAULT_LATENCY
from .policies import POLICIES, check_policies, get_policy
from .scenario import Scenario

__all__ = ["METRICS_ABSENT", "predict", "zipf_nodes"]

#: metrics of ``simulate`` that the analytic model does not give, and why.
METRICS_ABSENT = {
    "events_rate": "a property of the simulation engine, not of the system",
    "mmap_read_wait_max": "the longest wait of a run grows with the run's length",
    "mmap_write_wait_max": "the longest wait of a run grows with the run's length",
    "converged": "a Monte Carlo run-length criterion",
    "events": "a Monte Carlo counter",
    "simulated_time": "a Monte Carlo counter",
    "wall_time": "a Monte Carlo counter",
}

_HEAD_RANKS = 8          # Zipf ranks summed exactly
_TAIL_NODES = 16         # Gauss-Legendre nodes in log-rank for the rest
_ITERATIONS = 200        # fixed-point iterations, at most
_CHUNK = 1 << 17         # (policy, cell) elements solved together (each pass of the fixed
                         # point costs ~3 ms of interpreter overhead however few elements remain
                         # active, so one large chunk pays the slow tail once, not per chunk)
_DIST_CHUNK = 8192       # elements whose latency distribution is built together (memory)
_TOLERANCE = 1e-5        # relative residual and change that count as converged
_UNDAMPED = ("read_time", "read_time_m2", "read_rate", "reads_per_fault", "think",
             "thinking_share")
_LAW_CV = {"exponential": 1.0, "deterministic": 0.0}
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_TAIL_NODES)

_F = {name: f.numeric() for name, f in sym.FORMULAS.items()}
_PAGE = {state: sym.FORMULAS[f"page_{state}_share"].lambdified()
         for state in ("absent", "fault_locked", "readaround_locked", "cached", "mapped")}


# ----------------------------------------------------------------------------------------------
# Zipf popularity as a quadrature
# ----------------------------------------------------------------------------------------------

def zipf_nodes(pages, exponent):
    """Nodes of the Zipf law over ``pages`` ranks: (page probability, access mass, page count).

    Returns three arrays of shape ``pages.shape + (K,)``: the access probability ``p`` of a page at
    each node, the share of accesses the node stands for (sums to 1) and the share of pages it
    stands for (sums to 1).  Ranks ``1..8`` are exact; the tail ``9..n`` is the integral of
    ``x^-s`` over ``[8.5, n + 0.5]`` (midpoint Euler-Maclaurin) by Gauss-Legendre in ``ln x``.
    """
    n = np.asarray(pages, dtype=float)[..., None]
    s = np.asarray(exponent, dtype=float)[..., None]
    head = np.arange(1, _HEAD_RANKS + 1, dtype=float)
    in_head = head <= n
    head_weight = np.where(in_head, head ** -s, 0.0)
    head_count = in_head.astype(float)
    lo = np.log(_HEAD_RANKS + 0.5)
    hi = np.log(np.maximum(n, _HEAD_RANKS) + 0.5)
    half = (hi - lo) / 2
    t = lo + half * (_GL_X + 1)
    x = np.exp(t)
    tail_count = np.where(n > _HEAD_RANKS, half * _GL_W * x, 0.0)   # dx = x dt
    tail_weight = tail_count * x ** -s
    weight = np.concatenate([np.broadcast_to(head_weight, np.broadcast_shapes(
        head_weight.shape, tail_weight.shape[:-1] + (1,))), tail_weight], axis=-1)
    count = np.concatenate([np.broadcast_to(head_count, weight[..., :_HEAD_RANKS].shape),
                            tail_count], axis=-1)
    total_weight = weight.sum(-1, keepdims=True)
    total_count = count.sum(-1, keepdims=True)
    rank_value = np.concatenate([np.broadcast_to(head, weight[..., :_HEAD_RANKS].shape),
                                 np.broadcast_to(x, weight[..., _HEAD_RANKS:].shape)], axis=-1)
    probability = rank_value ** -s / total_weight
    return probability, weight / total_weight, count / total_count


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------

_SWITCHES = ("use_vma_lock", "drop_on_vma", "drop_on_mmap", "retry_on_vma", "uptodate_wait")


class _Inputs:
    """The scenario's grid flattened to cells, the policies, and their switches."""

    def __init__(self, scenario: Scenario, policies: tuple[str, ...]):
        arrays, dims = scenario.as_arrays()
        walks = np.asarray(arrays["access_pattern"]) == "group_walk"
        for name, allowed in (("readaround_pages", 1), ("swap_share", 0)):
            values = np.broadcast_to(np.asarray(arrays[name]), np.broadcast_shapes(
                walks.shape, np.shape(arrays[name])))[np.broadcast_to(walks, np.broadcast_shapes(
                    walks.shape, np.shape(arrays[name])))]
            if np.any(values != allowed):
                bad = values[values != allowed][0].item()
                raise ValueError(
                    f"{name}={bad!r} is not allowed by the analytic model with "
                    f"access_pattern='group_walk': it models group walks with {name}={allowed} "
                    f"(the harness's MADV_RANDOM file walk); use faultlock.simulate")
        self.dims = dims
        self.shape = tuple(scenario.dims.values())
        self.flat = {k: np.asarray(v).reshape(-1) for k, v in arrays.items()}
        self.cells = self.flat["threads"].size
        self.policies = policies
        pols = [get_policy(p) for p in policies]
        self.switches = {k: np.array([float(getattr(p, k)) for p in pols]) for k in _SWITCHES}
        f = self.flat
        total = f["vmas"].astype(float) * f["pages_per_vma"].astype(float)
        self.nodes = zipf_nodes(total, f["page_popularity"].astype(float))   # (cells, K)

    def elements(self, index: np.ndarray) -> _Elements:
        """Elements (policy, cell) numbered policy-major: e = policy * cells + cell."""
        return _Elements(self, index // self.cells, index % self.cells)


class _Elements:
    """One-dimensional arrays over a set of (policy, cell) elements: what the solver works on."""

    def __init__(self, inputs: _Inputs | None, policy=None, cell=None):
        if inputs is None:
            return
        flat = inputs.flat
        self.policy, self.cell = policy, cell
        f = {k: v[cell].astype(float) for k, v in flat.items()
             if Scenario.FIELDS[k].kind != "name"}
        self.f = f
        self.sw = {k: v[policy] for k, v in inputs.switches.items()}
        self.io_law = flat["io_distribution"][cell]
        rw = flat["rwsem"][cell]
        self.rwsem = rw
        self.io_cv = _law_cv(self.io_law, f["io_latency_cv"])
        self.writer_cv = _law_cv(flat["writer_hold_distribution"][cell], f["writer_hold_cv"])
        swap_vmas = np.round(f["swap_share"] * f["vmas"])          # as the engine: int(round())
        total = f["vmas"] * f["pages_per_vma"]
        self.file_pages = (f["vmas"] - swap_vmas) * f["pages_per_vma"]
        self.swap_pages = swap_vmas * f["pages_per_vma"]
        self.file_share = self.file_pages / total
        self.readaround = np.minimum(f["readaround_pages"], f["pages_per_vma"])
        mode = flat["writer_mode"][cell]
        self.walk = flat["access_pattern"][cell] == "group_walk"
        self.periodic = mode == "periodic"
        self.writer_loop = mode != "poisson"                       # writer threads
        self.writer_process = self.writer_loop & (flat["writer_where"][cell] == "process")
        self.linux = rw == "linux"
        self.spin = self.linux & flat["writer_spin"][cell].astype(bool)
        self.chain = self.spin | (rw == "writer_pref")             # writer busy periods
        self.drain_blocks = rw != "reader_pref"                    # a queued writer stops readers
        self.handover = ~self.linux                                # lock held through wake-ups
        self.nodes = tuple(a[cell] for a in inputs.nodes)
        self.any_swap = bool(np.any(self.swap_pages > 0))
        # memory: the engine keeps every page when the space is small, else a folio table of
        # this many slots (montecarlo/simulate.py), which evicts when full
        table = np.maximum(2.0**20, 2.0 ** np.ceil(np.log2(16 * f["threads"] * self.readaround)))
        self.capacity = np.where(total <= FOLIO_DIRECT_LIMIT, np.inf, table)
        self.total_pages = total

    def take(self, index: np.ndarray) -> _Elements:
        sub = _Elements(None)
        for name, value in vars(self).items():
            if isinstance(value, dict):
                setattr(sub, name, {k: v[index] for k, v in value.items()})
            elif isinstance(value, tuple):
                setattr(sub, name, tuple(v[index] for v in value))
            elif isinstance(value, np.ndarray):
                setattr(sub, name, value[index])
            else:
                setattr(sub, name, value)
        sub.any_swap = bool(np.any(sub.swap_pages > 0))
        return sub


def _law_cv(law: np.ndarray, cv: np.ndarray) -> np.ndarray:
    out = cv.copy()
    for name, value in _LAW_CV.items():
        out = np.where(law == name, value, out)
    return out


def _share_fixed_point(rhs, shape, steps: int = 24, guess=None, args=()):
    """Solve ``u = rhs(u, *args)`` for a time share ``u`` in [0, 1], ``rhs`` increasing.

    ``rhs(0) >= 0``; where ``rhs(1) >= 1`` the station is saturated and 1 is returned.  The root
    is kept bracketed, ``rhs(lo) >= lo`` and ``rhs(hi) < hi``, as by a bisection of [0, 1] whose
    ``steps`` halvings (2^-25 in u) give the accuracy asked for; the bracket shrinks by regula
    falsi with the Illinois modification (superlinear).  With ``guess`` (the share at the
    previous pass of the outer fixed point) it starts from a bracket around the guess: the guess
    and a step past it, twice the residual there (enough while ``rhs`` has a slope below 1/2).
    ``args`` (arrays of ``shape``) are passed to ``rhs``, restricted to the elements still being
    solved, so that the few slow elements do not make every element pay.  The result is the
    bisection's, bit for bit (the middle of its last interval: two more evaluations check
    which), so that the outer fixed point follows the same path.  Elements where ``rhs`` is
    not a number get what the bisection gives them (its lower end, 2^-25).
    """
    tol = 0.5 ** (steps + 1)
    out = np.ones(shape)
    r1 = rhs(np.ones(shape), *args)
    idx = np.flatnonzero(~(r1 >= 1.0))                       # not saturated
    args = tuple(np.broadcast_to(a, shape)[idx] for a in args) if args else ()
    full = not args                                          # rhs only takes whole arrays

    def g(u, sub):
        if full:
            whole = np.full(shape, 0.5)
            whole[idx[sub] if sub is not None else idx] = u
            value = rhs(whole)
            value = value[idx[sub] if sub is not None else idx]
        else:
            value = rhs(u, *(a if sub is None else a[sub] for a in args))
        return value - u

    n = idx.size
    lo, g_lo = np.zeros(n), np.full(n, np.nan)
    hi, g_hi = np.ones(n), r1[idx] - 1.0
    if guess is not None and n:
        u0 = np.clip(np.nan_to_num(np.broadcast_to(guess, shape)[idx], nan=0.5), tol, 1 - tol)
        g0 = g(u0, None)
        u1 = np.clip(u0 + np.where(g0 >= 0, 1, -1) * (2 * np.abs(g0) + 4 * tol), 0.0, 1.0)
        g1 = g(u1, None)
        for u, gu in ((u0, g0), (u1, g1)):
            above, inside = gu >= 0, (u > lo) & (u < hi)
            lo, g_lo = np.where(above & inside, u, lo), np.where(above & inside, gu, g_lo)
            hi, g_hi = np.where(~above & inside, u, hi), np.where(~above & inside, gu, g_hi)
    missing = np.isnan(g_lo)
    if missing.any():
        g_lo[missing] = g(lo[missing], np.flatnonzero(missing))
    side = np.zeros(n)
    result = np.where(np.isnan(g_lo) | np.isnan(g_hi), tol, 0.5 * (lo + hi))
    pending = np.flatnonzero(~((hi - lo <= tol) | np.isnan(g_lo) | np.isnan(g_hi)))
    lo, g_lo, hi, g_hi, side = (v[pending] for v in (lo, g_lo, hi, g_hi, side))
    for _ in range(4 * steps):
        if pending.size == 0:
            break
        x = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)          # regula falsi
        x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
        gx = g(x, pending)
        above = gx >= 0
        below = ~above
        # Illinois: halve the value of the end kept twice in a row
        g_hi = np.where(above & (side > 0), 0.5 * g_hi, g_hi)
        g_lo = np.where(below & (side < 0), 0.5 * g_lo, g_lo)
        lo, g_lo = np.where(above, x, lo), np.where(above, gx, g_lo)
        hi, g_hi = np.where(below, x, hi), np.where(below, gx, g_hi)
        hi = np.where(gx == 0, x, hi)                        # an exact root: both ends
        side = np.where(above, 1.0, -1.0)
        nan = np.isnan(gx)
        finished = (hi - lo <= 0.5 * tol) | nan
        result[pending] = np.where(nan, tol, 0.5 * (lo + hi))
        if finished.any():
            keep = ~finished
            pending = pending[keep]
            lo, g_lo, hi, g_hi, side = (v[keep] for v in (lo, g_lo, hi, g_hi, side))
    # return what the bisection returns, the middle of the cell k 2^-steps .. (k+1) 2^-steps
    # that holds the root: the root is known within 2^-(steps+2), so k is right or one off, and
    # the signs at the cell's ends say which
    cells = 2.0 ** steps
    ok = np.flatnonzero(result != tol)
    if ok.size:
        k = np.clip(np.floor(result[ok] * cells), 0, cells - 1)
        k -= (k > 0) & (g(k / cells, ok) < 0)
        k += (k < cells - 1) & (g((k + 1) / cells, ok) >= 0)
        result[ok] = (k + 0.5) / cells
    out[idx] = result
    return out


def _safe_div(a, b, default=0.0):
    """``a / b`` where ``b > 0``, else ``default`` (no division elsewhere, so no warnings)."""
    out = np.full(np.broadcast_shapes(np.shape(a), np.shape(b)), default, dtype=float)
    return np.divide(a, b, out=out, where=np.asarray(b) > 0)


# ----------------------------------------------------------------------------------------------
# One pass of the model, given the current estimates of the coupled quantities
# ----------------------------------------------------------------------------------------------

class _Acc:
    """Per-fault expectations accumulated over fault classes and branches."""

    FIELDS = ("latency", "cpu", "wakes", "reads", "retries", "retry_io_waits", "refaults",
              "misses", "majors", "aborts", "mmap_acq", "mmap_wait", "mmap_slow",
              "hold_short_n", "hold_short_s", "hold_short_s2", "hold_long_n", "hold_long_s",
              "hold_long_s2", "vma_n", "vma_s", "vma_s2", "reads_holding_mmap",
              "reads_holding_vma", "zram_cpu")

    def __init__(self, shape):
        for k in self.FIELDS:
            setattr(self, k, np.zeros(shape))


def _model_pass(x: _Inputs, st: dict) -> dict:
    """Everything that follows from the current state ``st``; returns the new quantities."""
    f, sw = x.f, x.sw
    c_f = f["fault_cpu_time"]
    w = f["wakeup_latency"]
    wc = st["cpu_wait"]                      # CPU wait of a woken thread
    gw = w + wc                              # wake-up to running
    t_io = st["read_time"]                   # device wait + service (for the page model)
    lam = st["access_rate"]
    p_ab = st["abort"]
    pb, rb = st["block"], st["block_residual"]
    rab = st["abort_residual"]
    q_m, q_v = st["q_mmap"], st["q_vma"]

    # ---- pages ------------------------------------------------------------------------------
    prob, mass, count = x.nodes                                     # (E, K)
    a = lam[:, None] * prob
    rho = _safe_div((x.readaround - 1) * st["read_rate"], x.file_pages)[:, None]
    th_c = f["reclaim_rate_cached"][:, None]
    th_m = f["reclaim_rate_mapped"][:, None]
    bounded = np.isfinite(x.capacity)
    if bounded.any():
        extra = _eviction_hazard(x, a, rho, th_c, th_m, bounded)
        th_c = th_c + extra[:, None]
        th_m = th_m + extra[:, None]
    wf = sym.page_state_weights(a, rho, th_c, th_m, (c_f + t_io + gw + c_f)[:, None],
                                t_io[:, None])
    total = wf["absent"] + wf["fault_locked"] + wf["readaround_locked"] + wf["cached"] \
        + wf["mapped"]
    untouched = total <= 0                       # a page never accessed (a = 0, no reclaim)
    by_mass = np.where(untouched, 0.0, mass / np.where(untouched, 1.0, total))
    by_count = np.where(untouched, 0.0, count / np.where(untouched, 1.0, total))
    fs, ss = x.file_share, 1.0 - x.file_share
    io_phase = _safe_div(c_f + t_io, c_f + t_io + gw + c_f)
    locked_fault = (by_mass * wf["fault_locked"]).sum(-1)
    per = {
        "major": fs * ((by_mass * wf["absent"]).sum(-1) + np.where(untouched, mass, 0.0).sum(-1)),
        "minor": fs * (by_mass * wf["cached"]).sum(-1),
        "join_io": fs * (locked_fault * io_phase + (by_mass * wf["readaround_locked"]).sum(-1)),
        "join_up": fs * locked_fault * (1 - io_phase),
        "zram": np.zeros_like(lam),
    }
    absent_uniform = (by_count * wf["absent"]).sum(-1) + np.where(untouched, count, 0.0).sum(-1)
    reclaims_pages = x.file_pages * (by_count * (wf["cached"] * th_c
                                                 + wf["mapped"] * th_m)).sum(-1)
    if x.any_swap:       # swap pages: no read-around; locked while zram decompresses
        ws = sym.page_state_weights(a, 0.0, th_c, th_m, (f["zram_latency"] + c_f)[:, None], 0.0)
        total_s = ws["absent"] + ws["fault_locked"] + ws["mapped"]
        untouched_s = total_s <= 0
        mass_s = np.where(untouched_s, 0.0, mass / np.where(untouched_s, 1.0, total_s))
        per["zram"] = ss * ((mass_s * (ws["absent"] + ws["fault_locked"])).sum(-1)
                            + np.where(untouched_s, mass, 0.0).sum(-1))
        count_s = np.where(untouched_s, 0.0, count / np.where(untouched_s, 1.0, total_s))
        reclaims_pages = reclaims_pages + x.swap_pages * (count_s * ws["mapped"] * th_m).sum(-1)
    walk = _group_walk(x, st, c_f, gw, t_io, st["read_time_m2"])
    if walk is not None:
        on = x.walk
        for name, share in walk["per"].items():
            per[name] = np.where(on, share, per[name])
        absent_uniform = np.where(on, 1.0, absent_uniform)
        reclaims_pages = np.where(on, walk["reclaims_pages"], reclaims_pages)
    miss = per["major"] + per["minor"] + per["join_io"] + per["join_up"] + per["zram"]

    # ---- storage at this access rate (reads per fault from the previous pass) ----------------
    io = _storage(x, lam * miss * st["reads_per_fault"], absent_uniform)
    t_io, t_io2 = io["read_time"], io["read_time_m2"]

    # ---- the fault path of each policy --------------------------------------------------------
    V, dV, dM = sw["use_vma_lock"], sw["drop_on_vma"], sw["drop_on_mmap"]
    rV, up = sw["retry_on_vma"], sw["uptodate_wait"]
    tried_major = f["tried_after_major"]
    limit = f["retry_limit"]
    w_mmap = pb * (rb + w)                # PASTA mmap_lock wait, CPU wait excluded (wakes count)
    w_abort = rab + w                     # after a VMA abort: always sleeps
    shape = np.broadcast_shapes(lam.shape, V.shape)
    acc = _Acc(shape)

    def first_lock(weight):
        """The first attempt's lock: returns (prob under VMA lock, prob under mmap_lock)."""
        p_vma = V * (1 - p_ab)
        p_abort = V * p_ab
        p_mmap = 1 - V
        acc.aborts += weight * p_abort
        acc.mmap_acq += weight * (p_abort + p_mmap)
        acc.mmap_wait += weight * (p_abort * w_abort + p_mmap * w_mmap)
        acc.mmap_slow += weight * (p_abort + p_mmap * pb)
        acc.latency += weight * (p_abort * w_abort + p_mmap * w_mmap)
        return p_vma, p_abort + p_mmap

    def hold(weight, is_vma, mean, second, long):
        """A fault-lock hold of the given mean/second moment, weight = expected count."""
        wv = weight * is_vma
        wm = weight * (1 - is_vma)
        acc.vma_n += wv
        acc.vma_s += wv * mean
        acc.vma_s2 += wv * second
        if long:
            acc.hold_long_n += wm
            acc.hold_long_s += wm * mean
            acc.hold_long_s2 += wm * second
        else:
            acc.hold_short_n += wm
            acc.hold_short_s += wm * mean
            acc.hold_short_s2 += wm * second

    def second_lock(weight, from_vma):
        """The lock a retry takes: VMA lock again (retry_on_vma) unless it aborts, else mmap_lock.

        Returns the probability the retry holds the VMA lock, and its window's success q.
        """
        again = from_vma * rV
        p_vma = again * (1 - p_ab)
        p_abort = again * p_ab
        p_mmap = 1 - again
        acc.aborts += weight * p_abort
        acc.mmap_acq += weight * (p_abort + p_mmap)
        wait = p_abort * w_abort + p_mmap * w_mmap
        acc.mmap_wait += weight * wait
        acc.mmap_slow += weight * (p_abort + p_mmap * pb)
        acc.latency += weight * wait
        q = again * q_v + (1 - again) * q_m
        return p_vma, q

    # read with the lock dropped, then the retry (both the major's own read and a joiner's wait)
    read_hold = c_f + t_io + gw + c_f                     # a read waited for holding the lock
    read_hold2 = (c_f + gw + c_f) ** 2 + 2 * (c_f + gw + c_f) * t_io + t_io2

    def refault_holding(weight, p_vma2):
        """A TRIED retry found its folio reclaimed: it reads again holding its lock."""
        acc.refaults += weight
        acc.misses += weight
        acc.majors += weight
        acc.reads += weight
        acc.wakes += weight
        acc.cpu += weight * 2 * c_f
        acc.latency += weight * (2 * c_f + t_io + w)
        acc.reads_holding_vma += weight * p_vma2
        acc.reads_holding_mmap += weight * (1 - p_vma2)
        hold(weight, p_vma2, read_hold, read_hold2, True)

    class_latency = {}

    def elapsed():
        return acc.latency + acc.wakes * wc + acc.mmap_slow * st["cpu_wait_batch"]

    # -- class: minor faults (cached folio) and zram swap-ins: no retry ------------------------
    for name, work in (("minor", c_f), ("zram", f["zram_latency"] + c_f)):
        before = elapsed()
        y = per[name] / np.where(miss > 0, miss, 1.0)
        p_vma, p_m = first_lock(y)
        acc.latency += y * work
        acc.cpu += y * work
        hold(y * p_vma, 1.0, work, work**2, False)
        hold(y * p_m, 0.0, work, work**2, False)
        if name == "zram":
            acc.majors += y
            acc.zram_cpu += y * f["zram_latency"]
        class_latency[name] = elapsed() - before

    # group walks: the leader and the followers that dropped their lock to wait for its read
    # all sleep in __folio_lock (exclusive waiters, montecarlo/threads.py).  The end of the read
    # hands the folio lock to the first of them; each, woken owning it, unlocks at once and
    # returns VM_FAULT_RETRY, handing it to the next; a retry that finds the folio still locked
    # by the chain waits TRIED behind it.  The page is mapped once the chain has passed: every
    # contender waits about n - 1 hand-overs (a wake-up and c_f each).
    stampede_wakes = np.zeros_like(lam)
    if walk is not None:
        joiner_drops = V * dV + (1 - V) * dM
        contenders = 1 + walk["followers"] * walk["in_read"] * joiner_drops
        stampede_wakes = np.where(x.walk, contenders - 1, 0.0)
    stampede = stampede_wakes * (w + c_f)

    # -- class: major file faults ---------------------------------------------------------------
    before = elapsed()
    y = per["major"] / np.where(miss > 0, miss, 1.0)
    acc.majors += y
    p_vma1, p_mmap1 = first_lock(y)
    for p_branch, is_vma, drop in ((p_vma1, 1.0, dV), (p_mmap1, 0.0, dM)):
        yb = y * p_branch
        # no drop: wait for the read holding the lock
        keep = yb * (1 - drop)
        acc.reads += keep
        acc.wakes += keep
        acc.cpu += keep * 2 * c_f
        acc.latency += keep * (2 * c_f + t_io + w)
        acc.reads_holding_vma += keep * is_vma
        acc.reads_holding_mmap += keep * (1 - is_vma)
        hold(keep, is_vma, read_hold, read_hold2, True)
        # drop: submit, release, read, wake, retry
        dr = yb * drop
        acc.reads += dr
        acc.retries += dr
        acc.retry_io_waits += dr
        acc.wakes += dr
        acc.cpu += dr * 2 * c_f                            # submit, re-entry
        acc.latency += dr * (2 * c_f + t_io + w + stampede)
        acc.wakes += dr * stampede_wakes
        hold(dr, is_vma, c_f, c_f**2, False)
        tried2 = np.maximum(np.maximum(1 - is_vma, tried_major), (limit == 1).astype(float))
        p_vma2, q2 = second_lock(dr, is_vma)
        acc.cpu += dr * q2 * c_f                           # success: install
        acc.latency += dr * q2 * c_f
        hold(dr * q2, p_vma2, c_f, c_f**2, False)
        miss2 = dr * (1 - q2)
        refault_holding(miss2 * tried2, p_vma2)
        # not TRIED (tried_after_major False, from the VMA lock)
        loose = miss2 * (1 - tried2)
        if np.any(loose > 0):
            _untried_loop(acc, loose, p_vma2, x, st, c_f, t_io, w, gw, w_mmap, pb, limit, hold,
                          refault_holding, read_hold, read_hold2)

    class_latency["major"] = elapsed() - before
    before = elapsed()

    # -- class: joiners while the read is in flight (not uptodate) -----------------------------
    residual_io = _safe_div((c_f + t_io) ** 2 + (t_io2 - t_io**2), 2 * (c_f + t_io))
    residual_up = (gw + c_f) / 2
    if walk is not None:       # a follower joins a read its leader started a lag earlier
        residual_io = np.where(x.walk, _group_walk(x, st, c_f, gw, t_io, t_io2)["residual_io"],
                               residual_io)
    for name, residual, uptodate in (("join_io", residual_io, 0.0),
                                     ("join_up", residual_up, 1.0)):
        y = per[name] / np.where(miss > 0, miss, 1.0)
        p_vma1, p_mmap1 = first_lock(y)
        for p_branch, is_vma, drop in ((p_vma1, 1.0, dV), (p_mmap1, 0.0, dM)):
            yb = y * p_branch
            in_place = np.maximum(1 - drop, up * uptodate)
            keep = yb * in_place
            acc.wakes += keep
            acc.cpu += keep * c_f
            acc.latency += keep * (residual + w + c_f)
            hold(keep, is_vma, residual + gw + c_f, (residual + gw + c_f) ** 2, uptodate == 0)
            dr = yb * (1 - in_place)
            acc.retries += dr
            acc.retry_io_waits += dr * (1 - uptodate)
            acc.wakes += dr
            acc.cpu += dr * c_f
            acc.latency += dr * (residual + w + c_f + stampede * (1 - uptodate))
            acc.wakes += dr * stampede_wakes * (1 - uptodate)
            p_vma2, q2 = second_lock(dr, is_vma)
            acc.cpu += dr * q2 * c_f
            acc.latency += dr * q2 * c_f
            hold(dr * q2, p_vma2, c_f, c_f**2, False)
            if uptodate == 0:
                refault_holding(dr * (1 - q2), p_vma2)     # approximation: re-read held
            else:
                acc.cpu += dr * (1 - q2) * c_f
                acc.latency += dr * (1 - q2) * c_f
                hold(dr * (1 - q2), p_vma2, c_f, c_f**2, False)

    class_latency["waiter"] = elapsed() - before

    # ---- rates ----------------------------------------------------------------------------------
    fault_rate = lam * miss
    latency = acc.latency + acc.wakes * wc + acc.mmap_slow * st["cpu_wait_batch"]
    out = {"per_fault": acc, "miss": miss, "per": per, "fault_rate": fault_rate,
               "latency": latency, "io": io, "residual_io": residual_io, "stampede": stampede,
               "class_latency": class_latency,
               "absent_uniform": absent_uniform, "reclaims_pages": reclaims_pages}
    return out


def _group_walk(x: _Elements, st: dict, c_f, gw, t_io, t_io2):
    """Access classes of a group walk (``montecarlo/access.py``), or None if no element walks.

    Every page of a walk is fresh: the first member of its group to touch it (the leader) takes
    a major fault; each of the G - 1 others touches it a lag later.  A lag inside the leader's
    read (``c_f + read``) joins the read and waits for the rest of it; inside the leader's
    retry (wake-up and ``c_f`` more) waits for the folio lock; later finds the page mapped (no
    fault).  The lag is exponential (``lag_inside_probability``): members released together by
    the folio unlock each think an exponential ``think_time`` before their next touch, so by
    memorylessness each follower trails the first of them by an exponential think (plus its CPU
    wait); with thinks longer than a read the group spreads out (see below).  Read-around
    (``readaround_pages > 1``) and swap VMAs are refused by ``_Inputs``.
    """
    if not np.any(x.walk):
        return None
    f = x.f
    group = np.where(f["group_size"] > 0, f["group_size"], f["threads"])   # 0: every thread
    followers = 1 - 1 / group
    to_read = c_f + t_io
    # the lag behind the leader: in lock step (think << read), an exponential think after the
    # common release; with long thinks the members drift apart between meetings, their gap a
    # reflected random walk (steps: the difference of two thinks, variance 2 Z^2; drift: the
    # leader pays each fault, ~to_read, so the others catch up), whose spread is Kingman's
    # sigma^2/(2 drift) = Z^2/to_read.  The two regimes blended (a 4-norm).
    think = st["think"] + st["cpu_wait"]
    drift = think**2 / np.maximum(to_read, 1e-12)
    lag = (think**4 + drift**4) ** 0.25
    read_cv = _safe_div(np.sqrt(np.maximum(t_io2 - t_io**2, 0.0)), to_read)
    to_map = to_read + gw + c_f
    map_cv = _safe_div(np.sqrt(np.maximum(t_io2 - t_io**2, 0.0)), to_map)
    in_read = _F["lag_inside_probability"](to_read, read_cv, lag)
    in_fault = np.maximum(_F["lag_inside_probability"](to_map, map_cv, lag), in_read)
    zero = np.zeros_like(in_read)
    lead = 1 - followers
    # every folio brought in leaves again where anything reclaims (or the table is full)
    leaves = ((f["reclaim_rate_cached"] > 0) | (f["reclaim_rate_mapped"] > 0)
              | np.isfinite(x.capacity))
    per = {"major": lead + zero, "join_io": followers * in_read,
           "join_up": followers * (in_fault - in_read), "minor": zero, "zram": zero}
    return {"followers": group - 1, "per": per,
            "residual_io": _F["lag_inside_residual"](to_read, read_cv, lag), "in_read": in_read,
            "reclaims_pages": np.where(leaves, st["access_rate"] * lead, 0.0)}


def _eviction_hazard(x: _Elements, a, rho, th_c, th_m, bounded, steps: int = 40):
    """Extra reclaim hazard that keeps the resident folios within the folio table's capacity.

    Where the address space exceeds the table (a file larger than memory), inserting into a full
    table evicts an unreferenced folio, about at random: the Che approximation for random
    replacement gives each resident folio an eviction hazard 1/T, T the characteristic time, set so
    that the expected number of resident (not absent) pages equals the capacity.  0 where the
    reclaim hazards already keep fewer pages than that.  Found by bisection in log hazard.
    """
    out = np.zeros(a.shape[0])
    idx = np.flatnonzero(bounded)
    a_, rho_, c_, m_ = a[idx], rho[idx], th_c[idx], th_m[idx]
    count = x.nodes[2][idx]
    pages = x.total_pages[idx]
    cap = x.capacity[idx]

    def resident(extra):
        w = sym.page_state_weights(a_, rho_, c_ + extra[:, None], m_ + extra[:, None], 0.0, 0.0)
        total = w["absent"] + w["cached"] + w["mapped"]
        absent = np.where(total > 0, w["absent"] / np.where(total > 0, total, 1.0), 1.0)
        return pages * (count * (1 - absent)).sum(-1)

    lo = np.full(idx.size, -12.0)
    hi = np.full(idx.size, 12.0)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        over = resident(10.0**mid) > cap
        lo = np.where(over, mid, lo)
        hi = np.where(over, hi, mid)
    out[idx] = np.where(resident(np.zeros(idx.size)) > cap, 10.0**hi, 0.0)
    return out


def _untried_loop(acc, loose, p_vma2, x, st, c_f, t_io, w, gw, w_mmap, pb, limit, hold,
                  refault_holding, read_hold, read_hold2):
    """A retry that is not TRIED found its folio reclaimed (tried_after_major False).

    From mmap_lock (mainline): it drops mmap_lock to read again, retries TRIED under mmap_lock
    and, if the folio is gone again, reads holding it.  From the VMA lock (vma_retry): it drops
    and retries under the VMA lock again, a repeat-different loop, until it maps or the retry
    limit makes an attempt TRIED (refault_attempts_truncated).
    """
    q_m, q_v = st["q_mmap"], st["q_vma"]
    acc.refaults += loose
    acc.misses += loose
    # from mmap_lock
    lm = loose * (1 - p_vma2)
    acc.majors += lm
    acc.reads += lm
    acc.retries += lm
    acc.retry_io_waits += lm
    acc.wakes += lm
    acc.cpu += lm * 2 * c_f
    acc.latency += lm * (2 * c_f + t_io + w)
    hold(lm, 0.0, c_f, c_f**2, False)
    acc.mmap_acq += lm
    acc.mmap_wait += lm * w_mmap
    acc.mmap_slow += lm * pb
    acc.latency += lm * w_mmap
    acc.cpu += lm * q_m * c_f
    acc.latency += lm * q_m * c_f
    hold(lm * q_m, 0.0, c_f, c_f**2, False)
    refault_holding(lm * (1 - q_m), 0.0)
    # from the VMA lock: a loop of fresh windows
    lv = loose * p_vma2
    n_attempts = np.where(limit > 0, np.maximum(limit, 1.0), np.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        reads = np.where(np.isfinite(n_attempts),
                         -np.expm1(n_attempts * np.log1p(-np.minimum(1 - q_v, 1 - 1e-300))) / q_v,
                         1.0 / q_v)
        held = np.where(np.isfinite(n_attempts),
                        np.exp((n_attempts - 1) * np.log1p(-np.minimum(1 - q_v, 1 - 1e-300))),
                        0.0)
    reads = np.where(q_v > 0, reads, np.inf)
    dropped = reads - held
    acc.majors += lv * reads
    acc.reads += lv * reads
    acc.refaults += lv * (reads - 1)
    acc.misses += lv * (reads - 1)
    acc.retries += lv * dropped
    acc.retry_io_waits += lv * dropped
    acc.wakes += lv * reads
    acc.cpu += lv * (reads * c_f + dropped * c_f + c_f)
    acc.latency += lv * (reads * (c_f + t_io + w) + dropped * c_f + c_f)
    hold(lv * dropped, 1.0, c_f, c_f**2, False)
    hold(lv * (1 - held), 1.0, c_f, c_f**2, False)
    acc.reads_holding_vma += lv * held
    hold(lv * held, 1.0, read_hold, read_hold2, True)


# ----------------------------------------------------------------------------------------------
# The coupled sub-models: storage, mmap_lock and the VMA locks, CPUs, windows
# ----------------------------------------------------------------------------------------------

def _storage(x: _Inputs, read_rate, absent_uniform):
    """Read service, device wait and the read time's first two moments.

    The depth a read sees and the device wait are finite-source results (the other threads'
    reads); the share of time a thread spends at the device (service and queue) solves
    ``u = X_read (S + W(u)) / N`` (bisection).
    """
    f = x.f
    n_others = f["threads"] - 1
    slots = f["io_parallelism"]
    pages = 1 + (x.readaround - 1) * absent_uniform
    service = f["io_latency"] + f["io_page_time"] * (pages - 1)
    for _ in range(3):                                  # depth seen depends on the service time
        busy = np.clip(read_rate * service / f["threads"], 0.0, 1.0)
        depth = n_others * busy
        depth = np.where(slots > 0, depth - sym.finite_source_excess(n_others, busy, slots - 1),
                         depth)
        service = _F["read_service_time"](f["io_latency"], f["io_depth_slope"], depth,
                                          f["io_page_time"], pages)
    cv = x.io_cv * f["io_latency"] / service
    shape = np.broadcast_shapes(read_rate.shape, service.shape)
    limited = np.broadcast_to(slots > 0, shape)
    wait = np.zeros(shape)
    at_device = np.clip(read_rate * service / f["threads"], 0.0, 1.0) + wait
    if limited.any():
        sub = lambda v: np.broadcast_to(v, shape)[limited]
        c, n, rate, s_, cv_, pop = (sub(v) for v in (slots, n_others, read_rate, service, cv,
                                                     f["threads"]))
        share = _share_fixed_point(
            lambda u: rate * (s_ + sym.finite_source_wait(c, n, u, s_, cv_)) / pop, c.shape)
        wait[limited] = sym.finite_source_wait(c, n, share, s_, cv_)
        at_device = np.array(at_device)
        at_device[limited] = share
    p_wait = np.where(slots > 0, sym.finite_source_tail(n_others, at_device,
                                                        np.maximum(slots, 1)), 0.0)
    wait_m2 = _safe_div(2 * wait**2, p_wait)
    total = service + wait
    m2 = service**2 * (1 + cv**2) + 2 * service * wait + wait_m2
    return {"read_service": service, "read_wait": wait, "read_wait_p": p_wait, "read_time": total,
                "read_time_m2": m2, "pages_per_read": pages}


def _mean_second(n, s, s2):
    return _safe_div(s, n), _safe_div(s2, n)


def _locks(x: _Inputs, acc: _Acc, fault_rate, st, cpu_wait, cpu_wait_writer):
    """mmap_lock reader and writer waits, the writers' VMA drains and the VMA-lock fallbacks.

    A reader granted while asleep holds mmap_lock from the grant, through its wake-up, to its
    release (``rwsem_mark_wake`` grants before the task runs), so slow-path holds are longer by the
    wake-up.  Each writer shuts readers out for its hold (VMA drains included) and, when it must
    queue behind long read holds (a read waited for holding mmap_lock), for their drain: the
    longest residual hold of the holders it finds (``mginf_max_residual``), with the holders seen
    during open periods (``rho_open``: Little's law corrected for the time writers keep the lock
    empty).  Linux writers spin on short holds and on a running writer owner, so holds of writers
    that arrive during a hold chain into busy periods (``mg1_busy_period_residual``); a queued
    linux writer is woken, not granted: readers may steal the lock during its wake-up.  The
    textbook disciplines hand over directly, holding the lock through the grantee's wake-up.
    """
    f = x.f
    w = f["wakeup_latency"]
    vmas = f["vmas"]
    n_w = f["writer_threads"]
    lam_w = st["writer_rate"]
    h_w = f["writer_hold"]
    var_h = (x.writer_cv * h_w) ** 2
    s1, sf = f["writer_vma_share"], f["writer_fork_share"]
    s0 = 1 - s1 - sf
    wake = w + st["cpu_wait_batch"]        # a batch-woken reader, until it runs
    wake_w = w + cpu_wait_writer           # a woken writer

    # VMA-lock holders of one VMA (M/G/infinity): the drain a writer waits for
    lam_v = fault_rate * acc.vma_n / vmas
    m_v, m2_v = _mean_second(acc.vma_n, acc.vma_s, acc.vma_s2)
    load_v = lam_v * m_v
    res_v = _safe_div(m2_v, 2 * m_v)
    drain1 = np.nan_to_num(_F["mginf_max_residual"](_safe_div(load_v, res_v), res_v))
    drain1 = drain1 + (-np.expm1(-load_v)) * wake_w          # it sleeps, then is woken
    hold_one = h_w + drain1
    hold_fork = h_w + vmas * drain1
    locked_fork = h_w + (vmas + 1) / 2 * drain1
    hold_mean = s0 * h_w + s1 * hold_one + sf * hold_fork
    hold_m2 = (s0 * (h_w**2 + var_h) + s1 * (hold_one**2 + var_h + drain1**2)
               + sf * (hold_fork**2 + var_h + (vmas * drain1) ** 2))
    abort = _F["vma_abort_probability"](lam_w, s1, hold_one, vmas, sf, locked_fork)
    abort = np.minimum(np.nan_to_num(abort), 0.99)
    one_w = s1 / vmas * hold_one
    fork_w = sf * locked_fork
    res_one = _safe_div(hold_one**2 + var_h + drain1**2, 2 * hold_one)
    res_fork = _safe_div(locked_fork**2 + var_h + (vmas * drain1) ** 2, 2 * locked_fork)
    abort_residual = _safe_div(one_w * res_one + fork_w * res_fork, one_w + fork_w)

    # mmap_lock read holders: short (CPU work) and long (a read waited for holding it); slow-path
    # acquisitions hold through their wake-up
    # other readers (reader_rate, Poisson, exponential CPU holds) join the short holds
    lam_bg, m_bg = f["reader_rate"], f["reader_hold"]
    slow = _safe_div(fault_rate * acc.mmap_slow + lam_bg * st["block_open"],
                     fault_rate * acc.mmap_acq + lam_bg)    # share of acquisitions that slept
    extra = slow * wake
    lam_s = fault_rate * acc.hold_short_n + lam_bg
    m_s = _safe_div(fault_rate * acc.hold_short_s + lam_bg * m_bg, lam_s)
    m2_s = _safe_div(fault_rate * acc.hold_short_s2 + lam_bg * 2 * m_bg**2, lam_s)
    m2_s = m2_s + 2 * m_s * extra + slow * wake**2
    m_s = m_s + extra
    lam_l = fault_rate * acc.hold_long_n
    m_l, m2_l = _mean_second(acc.hold_long_n, acc.hold_long_s, acc.hold_long_s2)
    m2_l = m2_l + 2 * m_l * extra + slow * wake**2
    m_l = m_l + extra
    lam_r = lam_s + lam_l
    load_r = lam_s * m_s + lam_l * m_l                      # mean holders (Little)

    # writers: the hold (chained), and the time readers are shut out
    wakes_held = np.where(x.handover, st["writer_queued"] * wake_w, 0.0)
    hold_x = hold_mean + wakes_held                          # exclusive, per writer
    hold_x2 = hold_m2 + 2 * hold_mean * wakes_held + wakes_held * wake_w
    rho_h = lam_w * hold_x
    empty = np.minimum(rho_h, 0.99)                          # writers keep the lock empty
    open_scale = 1 / (1 - empty)
    load_s, load_l = lam_s * m_s * open_scale, lam_l * m_l * open_scale
    res_s, res_l = _safe_div(m2_s, 2 * m_s), _safe_div(m2_l, 2 * m_l)
    drain_s = np.nan_to_num(_F["mginf_max_residual"](_safe_div(load_s, res_s), res_s))
    drain_l = np.nan_to_num(_F["mginf_max_residual"](_safe_div(load_l, res_l), res_l))
    present_l = -np.expm1(-load_l)
    present_s = -np.expm1(-load_s)
    busy_s = np.nan_to_num(_F["mginf_busy_period"](np.maximum(lam_s * open_scale, 1e-300),
                                                   m_s))
    spin_limit = (20.0 + np.minimum(load_s + load_l, 30.0)) * 0.5e-6
    # a linux writer queues (and stops new readers) when long holders are there, or when the
    # short readers' busy period outlasts its spin
    spins = x.spin
    short_queue = present_s * np.exp(-spin_limit / np.maximum(busy_s, 1e-300))
    p_queue_r = np.where(spins, present_l + (1 - present_l) * short_queue,
                         -np.expm1(-(load_s + load_l)))
    drain_q = np.where(spins, drain_l + (1 - present_l) * short_queue * drain_s,
                       drain_l + (1 - present_l) * drain_s)
    drain_q = np.where(x.drain_blocks, drain_q, 0.0)
    # writers that queue one behind the other, with no reader between them, share one drain:
    # the next arrival after a writer is a writer with probability lam_w/(lam_w + lam_r)
    chained = _safe_div(lam_w, lam_w + lam_r)
    sharing = 1 + lam_w * _safe_div(drain_q, p_queue_r) * chained
    drain_q = drain_q / sharing
    # a queued linux writer is woken, not granted: a reader arriving during its wake-up steals
    # the lock and wakes every queued reader, which the writer must then drain again
    steal = np.where(x.linux, -np.expm1(-lam_r * wake_w), 0.0)
    long_share = _safe_div(lam_l, lam_r)
    batch_drain = long_share * _safe_div(drain_l, present_l) + (1 - long_share) * m_s
    # the steals repeat (each a wake-up, the stolen batch's drain and the writer's wake-up) until
    # one fails, but not past the handoff timeout: then RWSEM_FLAG_HANDOFF stops them
    # (rwsem_down_write_slowpath), so at most n = ceil(timeout / cycle) of them
    cycle = wake + batch_drain + wake_w
    steals = np.ceil(_safe_div(f["handoff_timeout"], cycle, 1.0)) + 1
    steal_c = np.minimum(steal, 1 - 1e-12)
    steal_extra = cycle * steal_c * -np.expm1(steals * np.log(steal_c)) / (1 - steal_c)
    # one writer's exclusive period: its queued drain, the steals, its hold (and the hand-over
    # wake-up of the textbook disciplines)
    queued = np.where(x.linux, p_queue_r, 1.0)
    excl = drain_q + queued * steal_extra + hold_x
    excl2 = (hold_x2 + 2 * drain_q * hold_x + 2 * drain_q**2
             + 2 * queued * steal_extra * (drain_q + hold_x) + queued * steal_extra**2)
    rho_w = _F["writer_utilisation"](lam_w, excl)
    # readers are shut out by a writer's queued drain and its hold; a steal during the writer's
    # wake-up lets the queued readers in, so the steals' extra drains block the writer, not them
    shut = drain_q + hold_x
    shut2 = hold_x2 + 2 * drain_q * hold_x + 2 * drain_q**2
    block = np.minimum(_F["writer_utilisation"](lam_w, shut), 1.0)
    # the period a blocked reader waits out: one writer's, the holds of linux writers spinning on
    # a running owner chained onto it, or a whole writer busy period under writer preference
    rho_c = np.minimum(rho_h, 0.999)
    hold_b = _safe_div(hold_x, 1 - rho_c)
    hold_b2 = _safe_div(hold_x2, (1 - rho_c) ** 3)
    spin_shut = drain_q + hold_b
    spin_shut2 = hold_b2 + 2 * drain_q * hold_b + 2 * drain_q**2
    busy_res = _F["mg1_busy_period_residual"](lam_w, shut, np.sqrt(np.maximum(
        _safe_div(shut2, shut**2) - 1, 0.0)))
    block_residual = np.where(x.spin, _safe_div(spin_shut2, 2 * spin_shut),
                              np.where(x.rwsem == "writer_pref", busy_res,
                                       _safe_div(shut2, 2 * shut)))
    block_residual = np.nan_to_num(block_residual, posinf=0.0)
    # that is what an open stream sees (PASTA: the other mmap_lock readers).  A thread of the
    # closed population is blocked at most once per closed period: when its next acquisition, a
    # lag after the period starts, falls inside it (lag_inside_probability).  Few threads that
    # come back quickly phase-lock to the writer: nearly every period blocks each of them, for
    # nearly the whole period; many slow threads give PASTA back.
    period = np.where(x.spin, spin_shut,
                      np.where(x.rwsem == "writer_pref", _safe_div(shut, 1 - np.minimum(
                          _F["writer_utilisation"](lam_w, shut), 0.999)), shut))
    # writer threads chain only with each other: periodic ones arrive together and spin on the
    # running owner (one period of their holds per deadline); a flat-out one comes back after
    # the readers granted at its release (one period per hold)
    chain = np.where(x.periodic, np.maximum(n_w, 1.0), 1.0)
    period = np.where(x.writer_loop, drain_q + chain * hold_x, period)
    period_cv = np.sqrt(np.maximum(_safe_div(2 * block_residual, period) - 1, 0.0))
    period_cv = np.where(x.writer_loop, _safe_div(np.sqrt(np.maximum(hold_x2 - hold_x**2, 0.0)),
                                                  hold_x) / np.sqrt(chain), period_cv)
    periods = np.where(x.writer_loop, lam_w / chain, _safe_div(block, period))   # per second
    per_thread = fault_rate * acc.mmap_acq / f["threads"]    # a thread's acquisitions per second
    blocked = st["block"] * (st["block_residual"] + wake)     # per acquisition, last pass
    gap = np.where(per_thread > 0, 1 / np.where(per_thread > 0, per_thread, 1.0) - blocked, np.inf)
    gap = np.maximum(gap, 1e-3 * _safe_div(1.0, per_thread, np.inf))
    inside = _F["lag_inside_probability"](period, period_cv, gap)
    closed = per_thread * period > 1e-9
    block_thread = np.where(closed, np.minimum(periods * inside / np.where(
        closed, per_thread, 1.0), 1.0), block)
    residual_thread = np.where(closed & (inside > 0), _F["lag_inside_residual"](
        period, period_cv, gap), block_residual)

    # the writer's own wait, from down_write on a CPU to running with the lock: the writers ahead
    # of it (M/G/1, P-K), its spin on short holders, its drain and wake-up when it queued
    excl_cv = np.sqrt(np.maximum(_safe_div(excl2, excl**2) - 1, 0.0))
    pk = _F["mg1_wait"](lam_w, excl, excl_cv)
    # writer threads: at most writer_threads - 1 ahead.  Periodic ones share their deadlines
    # (montecarlo/writers.py: one period apart from t = 0), so they arrive together and queue
    # one behind the other; flat-out ones find each other at the lock independently
    # (finite_source_wait, one server)
    at_lock = np.clip(_safe_div(lam_w * excl, n_w), 0.0, 1.0)
    pk = np.where(x.writer_loop, np.where(
        x.periodic, (n_w - 1) / 2 * excl,
        _F["finite_source_wait"](1.0, np.maximum(n_w - 1, 0.0), at_lock, excl, excl_cv)), pk)
    pk = np.where(lam_w > 0, pk, 0.0)
    spin_wait = present_s * (1 - present_l) * np.minimum(busy_s, spin_limit)
    linux_wait = pk + spin_wait + p_queue_r * (_safe_div(drain_q, p_queue_r) + wake_w
                                               + steal_extra)
    reader_pref_drain = present_s * busy_s + present_l * _safe_div(drain_l, present_l)
    writer_busy = np.minimum(rho_w, 1.0)
    any_wait = 1 - (1 - writer_busy) * np.exp(-(load_s + load_l))
    textbook_wait = (pk + np.where(x.drain_blocks, drain_q, reader_pref_drain)
                     + any_wait * wake_w)
    write_wait = np.where(x.linux, linux_wait, textbook_wait)
    # a writer thread's acquisition that follows its own release (the next of an operation's
    # acquisitions; every one of a flat-out thread) finds the readers its last hold blocked,
    # granted at that release (rwsem_mark_wake), still there: it waits for their wake-up and
    # hold.  B readers per period on average: the batch is non-empty with 1 - e^-B.
    blocked_rate = fault_rate * acc.mmap_acq * block_thread + lam_bg * block
    batch_size = _safe_div(blocked_rate, periods)
    comeback = np.where(x.periodic, 1 - 1 / f["writer_locks_per_op"], 1.0) * x.writer_loop
    # a batch granted at a writer's release holds for one wake-up and one hold
    batch_hold = wake + long_share * _safe_div(drain_l, present_l) + (1 - long_share) * (m_s - extra)
    write_wait = write_wait + comeback * -np.expm1(-batch_size) * np.maximum(
        batch_hold - f["writer_gap_cpu"], 0.0)
    writer_queued = np.where(x.linux, p_queue_r, any_wait)
    stable = (rho_w < 1) | x.writer_loop           # a closed loop of writers cannot pile up
    # share of time mmap_lock is read-held: fast-path holds while it is open, plus the batches
    # granted at each writer's release (they overlap: one wake-up and hold per batch)
    fast_load = (1 - slow) * (lam_s * (m_s - extra) + lam_l * (m_l - extra))
    batches = lam_w * -np.expm1(-lam_r * excl)
    held = np.minimum((1 - block) * -np.expm1(-fast_load * open_scale) + batches * batch_hold,
                      1.0)
    return {"abort": abort, "abort_residual": abort_residual, "block": block_thread,
                "block_residual": residual_thread, "block_open": block,
                "block_open_residual": block_residual,
                "writer_util": np.minimum(rho_w, 1.0), "writer_queued": writer_queued,
                "write_wait": write_wait, "writer_hold": hold_mean,
                "writer_cpu_wait": cpu_wait_writer, "stable": stable, "read_held_share": held,
                "read_rate": lam_r, "read_hold_mean": _safe_div(load_r, lam_r), "drain_vma": drain1,
                "batch": lam_r * (hold_x + spin_wait)}


def _writer_rates(x: _Elements, st: dict) -> dict:
    """Writer operations and acquisitions per second, and the CPUs they keep busy.

    Poisson writers arrive at ``writer_rate``, one acquisition each.  Writer threads
    (``montecarlo/writers.py``) loop over operations of ``writer_locks_per_op`` acquisitions,
    each after ``writer_gap_cpu`` of CPU; one acquisition takes ``st["writer_acquisition"]``
    (its CPU wait, lock wait and hold, from the last pass).  A flat-out thread starts the next
    operation at once; a periodic one makes ``writer_op_rate`` operations a second, or fewer when
    an operation outlasts its period (it restarts from now, no catch-up).  Writers in another
    process take no lock of ours: their holds are CPU only.  Holds are not preempted; the CPU
    outside the lock is, like a thread's computing (``montecarlo/cpu.py``).
    """
    f = x.f
    k = f["writer_locks_per_op"]
    gap = f["writer_gap_cpu"]
    op_time = k * (gap + st["writer_acquisition"])
    flat_out = 1.0 / np.maximum(op_time, 1e-12)
    per_thread = np.where(x.periodic, np.minimum(f["writer_op_rate"], flat_out), flat_out)
    ops = np.where(x.writer_loop, f["writer_threads"] * per_thread, f["writer_rate"])
    acquisitions = np.where(x.writer_loop, ops * k, f["writer_rate"])
    return {"ops": ops, "acquisitions": acquisitions,
            "lock": np.where(x.writer_process, 0.0, acquisitions),
            "cpu_holds": acquisitions * f["writer_hold"], "cpu_gaps": acquisitions * gap}


def _cpu(x: _Inputs, miss, acc: _Acc, access_rate, think_stretched, batch, writers,
         guess=None):
    """CPU waits, with wake-up preemption (``montecarlo/cpu.py``).

    A woken thread (or an arriving writer) takes a free CPU or preempts a thread that is only
    computing between accesses; it waits only if every CPU runs work that is not preempted
    (fault CPU work, zram decompression, writer critical sections, spinning).  It then waits at
    the front of the run queue (EEVDF: its lag) for the first CPU whose task ends its fault
    work, the minimum of ``c`` residual stretches: ``run_fault / c``.  A writer thread that
    gives way at an acquisition boundary queues at the tail instead, behind every computing
    thread there, and gets a CPU after ``Q + 1`` CPU releases, a release each ``run/c``
    (``run``: a thread's time on a CPU between two sleeps).  The computing between accesses is
    the low-priority class: it shares what is left, ``cpus - U_fault - U_writers`` CPUs, as a
    processor-sharing station (a thread computing with K others progresses at rate
    min(1, c/(K + 1)): ``finite_source_excess``).

    Readers granted ``mmap_lock`` together at a writer's release (``batch``: the mean number of
    others granted with one) wake at the same instant; the first ``c`` preempt computing threads,
    the others find every CPU busy with fault work and queue at the front, one behind the other:
    P = E[(B - c)^+]/E[B] for a batch B = 1 + Poisson(batch).

    Returns the CPU wait of an isolated wake-up, of a batch-woken reader, of an arriving writer,
    the mean computing time per access including its queueing, the probability that an
    isolated wake-up waits at all, and the computing threads' CPU time share (``guess``: its
    value at the previous pass, where the solve for it starts).
    """
    f = x.f
    cpus = f["cpus"]
    limited = cpus > 0
    n = f["threads"]
    think = f["think_time"]
    u_fault = access_rate * miss * acc.cpu                       # CPUs busy with fault work
    u_writer = (writers["cpu_holds"]                            # CPUs busy with writers and
                + f["reader_rate"] * f["reader_hold"])          # other mmap_lock readers
    # a writer thread's CPU outside the lock is preempted like computing: it shares the rest
    # (taken off it here: the computing threads see those CPUs as busy)
    low_servers = np.maximum(cpus - u_fault - u_writer - writers["cpu_gaps"], 1e-9)
    shape = np.broadcast_shapes(access_rate.shape, low_servers.shape)
    thinking = np.zeros(shape)
    mask = np.broadcast_to(limited & (n > low_servers), shape)   # fewer threads: no queue
    if mask.any():
        sub = lambda v: np.broadcast_to(v, shape)[mask]
        lam, z, pop, c = (sub(v) for v in (access_rate, think, n, low_servers))
        thinking[mask] = _share_fixed_point(
            lambda u, lam, z, pop, c: lam * z * (1 + sym.finite_source_excess(pop - 1, u, c - 1)
                                                 / c) / pop,
            lam.shape, guess=None if guess is None else sub(guess), args=(lam, z, pop, c))
    queued = sym.finite_source_excess(n - 1, thinking, low_servers - 1)
    stretch = 1 + queued / low_servers
    think_time = np.where(limited, think * stretch, think)
    demand = think + miss * acc.cpu                              # CPU time per access
    sleeps = miss * (acc.wakes + acc.mmap_slow) + (f["idle_time"] > 0)
    run = np.where(sleeps > 0, _safe_div(demand, sleeps), 0.0)
    tail = (queued + 1) * run / np.where(limited, cpus, 1.0)     # wait at the run queue's tail
    run_fault = _safe_div(miss * acc.cpu, sleeps)                # fault work between two sleeps
    front = run_fault / np.where(limited, cpus, 1.0)            # wait at the run queue's front
    busy_high = np.clip((u_fault + u_writer) / n, 0.0, 1.0)
    no_victim = sym.finite_source_tail(n - 1, busy_high, np.where(limited, cpus, 1.0))
    single = np.where(limited, no_victim * front, 0.0)
    single_p = np.where(limited, no_victim, 0.0)
    writer = np.where(limited, sym.finite_source_tail(n, busy_high, np.where(limited, cpus, 1.0))
                      * front, 0.0)
    # a writer thread gives way at each acquisition when anyone waits for a CPU (a computing
    # thread queued behind the others: more than low_servers computing), then queues at the tail
    queue_nonempty = sym.finite_source_tail(n, thinking, np.floor(low_servers) + 1)
    writer = np.where(limited & x.writer_loop, np.maximum(writer, queue_nonempty * tail), writer)
    size = 1 + batch
    beyond = sym.finite_source_excess(np.maximum(np.ceil(8 * size + 64), n), _safe_div(
        batch, np.maximum(np.ceil(8 * size + 64), n)), cpus - 1) / size
    beyond = np.clip(beyond, 0.0, 1.0)
    batch_wait = np.where(limited, single + beyond * front * (1 + 0.5 * beyond * size), 0.0)
    return single, batch_wait, writer, think_time, single_p, thinking


def _pass(x: _Elements, st: dict):
    """One pass of every sub-model at the state ``st``; returns the new state and the pieces."""
    f = x.f
    out = _model_pass(x, st)
    acc = out["per_fault"]
    miss = out["miss"]
    fault_rate = out["fault_rate"]
    io = out["io"]
    writers = _writer_rates(x, st)
    cpu_wait, cpu_wait_batch, cpu_wait_writer, think, cpu_wait_p, thinking = _cpu(
        x, miss, acc, st["access_rate"], st["think"], st["batch"], writers,
        st.get("thinking_share"))
    lk = _locks(x, acc, fault_rate, st, cpu_wait, cpu_wait_writer)
    # one acquisition of a writer thread: CPU wait, lock wait, hold (no lock: CPU wait, hold)
    acquisition = cpu_wait_writer + np.where(x.writer_process, f["writer_hold"],
                                             lk["write_wait"] + lk["writer_hold"])
    gw = f["wakeup_latency"] + cpu_wait
    q_mmap = _F["refault_success_window"](f["reclaim_rate_cached"], f["fault_cpu_time"],
                                          lk["block"], gw, lk["block_residual"])
    q_vma = _F["refault_success_window"](f["reclaim_rate_cached"], f["fault_cpu_time"],
                                         lk["abort"], gw, lk["abort_residual"])
    idle = np.where(f["idle_time"] > 0, f["idle_time"] + f["wakeup_latency"] + cpu_wait, 0.0)
    target = f["threads"] / (think + idle + miss * out["latency"])
    new = {"read_rate": fault_rate * acc.reads, "read_time": io["read_time"],
               "read_time_m2": io["read_time_m2"], "reads_per_fault": acc.reads,
               "cpu_wait": cpu_wait, "cpu_wait_writer": cpu_wait_writer, "think": think,
               "cpu_wait_batch": cpu_wait_batch, "cpu_wait_p": cpu_wait_p, "batch": lk["batch"],
               "abort": lk["abort"],
               "abort_residual": lk["abort_residual"], "block": lk["block"],
               "block_residual": lk["block_residual"], "block_open": lk["block_open"],
               "block_open_residual": lk["block_open_residual"], "writer_util": lk["writer_util"],
               "writer_queued": lk["writer_queued"],
               "q_mmap": np.nan_to_num(q_mmap, nan=1.0), "q_vma": np.nan_to_num(q_vma, nan=1.0),
               "writer_acquisition": np.nan_to_num(acquisition, posinf=1.0),
               "writer_rate": writers["lock"], "thinking_share": thinking}
    return new, target, out, io, lk


_CHECKED = ("read_time", "block", "cpu_wait_batch", "think", "abort", "writer_rate")


#: run the fixed point's iteration compiled (fixed_point.py), else the numpy reference below
COMPILED = True


def _solve(x: _Elements, iterations: int = _ITERATIONS, compiled: bool | None = None):
    """The fixed point for every element; converged elements leave the active set.

    The access rate is found by a safeguarded secant (regula falsi) on
    ``F(log rate) = log(target/rate)`` (decreasing in the rate: more load, longer cycles); the
    other coupled quantities follow it, those of the locks damped by half.  Returns the state,
    the pieces of a last pass at it, the iterations used and which elements converged.

    ``compiled`` (default :data:`COMPILED`): the iteration runs in :mod:`fixed_point` (the same
    steps, compiled, one element at a time); the numpy loop below is the reference.  Either way
    the pieces come from one numpy :func:`_pass` at the state reached.
    """
    f = x.f
    n = f["threads"].size
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()
    st = {
        "access_rate": full(f["threads"] / (f["think_time"] + f["idle_time"] + f["io_latency"])),
        "cpu_wait": full(0.0), "cpu_wait_writer": full(0.0), "think": full(f["think_time"]),
        "cpu_wait_batch": full(0.0), "cpu_wait_p": full(0.0), "batch": full(0.0),
        "read_time": full(f["io_latency"]),
        "read_time_m2": full(f["io_latency"] ** 2 * (1 + x.io_cv**2)),
        "read_rate": full(0.0), "reads_per_fault": full(1.0), "abort": full(0.0), "abort_residual": full(0.0),
        "block": full(0.0), "block_residual": full(0.0), "block_open": full(0.0),
        "block_open_residual": full(0.0), "writer_util": full(0.0), "writer_queued": full(0.0),
        "q_mmap": full(1.0), "q_vma": full(1.0),
        "writer_acquisition": full(f["writer_hold"]),
        "thinking_share": full(np.nan),        # where the CPU share's solve starts (nan: none)
    }
    st["writer_rate"] = _writer_rates(x, st)["lock"]
    if COMPILED if compiled is None else compiled:
        st, used, converged = fixed_point.solve(x, st, iterations, _TOLERANCE, _CHECKED,
                                                _UNDAMPED)
        _, _, out, io, lk = _pass(x, st)
        return st, out, io, lk, int(used.max(initial=0)), converged
    solver = {"lo": full(-np.inf), "hi": full(np.inf), "x_prev": full(np.nan),
                  "value_prev": full(np.nan)}
    converged = np.zeros(n, dtype=bool)
    active = np.arange(n)
    xa, sa, va = x, {k: v.copy() for k, v in st.items()}, {k: v.copy() for k, v in solver.items()}
    used = 0
    for it in range(iterations):
        used = it + 1
        new, target, _, _, _ = _pass(xa, sa)
        x_now = np.log(sa["access_rate"])
        value = np.log(target) - x_now
        below = value > 0
        lo = np.where(below, np.maximum(va["lo"], x_now), va["lo"])
        hi = np.where(below, va["hi"], np.minimum(va["hi"], x_now))
        # a bracket set while the other quantities were still far from consistent can exclude
        # the root: when it has collapsed but the residual has not, reopen the wrong side
        collapsed = (hi - lo < 1e-4) & (np.abs(value) > 10 * _TOLERANCE)
        lo = np.where(collapsed & (value < 0), -np.inf, lo)
        hi = np.where(collapsed & (value > 0), np.inf, hi)
        bad = lo > hi
        lo = np.where(bad, -np.inf, lo)
        hi = np.where(bad, np.inf, hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            secant = x_now - value * (x_now - va["x_prev"]) / (value - va["value_prev"])
        candidate = np.where(np.isfinite(secant), secant, x_now + value)
        bracketed = np.isfinite(lo) & np.isfinite(hi)
        inside = (candidate > lo) & (candidate < hi)
        candidate = np.where(inside, candidate,
                             np.where(bracketed, 0.5 * (lo + hi), x_now + value))
        va = {"lo": lo, "hi": hi, "x_prev": x_now, "value_prev": value}
        moved = np.abs(value)
        for k, v in new.items():
            if k in _CHECKED:
                moved = np.maximum(moved, np.abs(_safe_div(v - sa[k], np.abs(sa[k]) + 1e-12)))
            sa[k] = v if k in _UNDAMPED else 0.5 * (sa[k] + v)
        with np.errstate(invalid="ignore"):            # inf - inf in an open bracket
            done = (moved < _TOLERANCE) | ((hi - lo < 1e-9)
                                           & (moved - np.abs(value) < _TOLERANCE))
        sa["access_rate"] = np.where(done, sa["access_rate"], np.exp(candidate))
        for k, v in st.items():
            v[active] = sa[k]
        if done.any():
            converged[active[done]] = True
            keep = ~done
            active = active[keep]
            if active.size == 0:
                break
            xa = xa.take(keep)
            sa = {k: v[keep] for k, v in sa.items()}
            va = {k: v[keep] for k, v in va.items()}
    _, _, out, io, lk = _pass(x, st)
    return st, out, io, lk, used, converged


# ----------------------------------------------------------------------------------------------
# predict
# ----------------------------------------------------------------------------------------------

def _metrics(x: _Elements, st, out, io, lk) -> dict[str, np.ndarray]:
    f = x.f
    acc = out["per_fault"]
    fault_rate = out["fault_rate"]
    read_wait_sum = acc.mmap_wait + acc.mmap_slow * st["cpu_wait_batch"]   # per fault
    bg_rate = f["reader_rate"]
    bg_wait = st["block_open"] * (st["block_open_residual"] + f["wakeup_latency"]
                                  + st["cpu_wait_batch"])
    read_rate = fault_rate * acc.mmap_acq + bg_rate
    read_wait_total = fault_rate * read_wait_sum + bg_rate * bg_wait     # per second
    writers = _writer_rates(x, st)
    write_rate = np.broadcast_to(st["writer_rate"], fault_rate.shape)
    has_writers = write_rate > 0
    # a Poisson writer's latency runs from its arrival (CPU wait included); a writer thread's
    # from down_write, on its CPU (montecarlo/writers.py)
    writer_latency = (np.where(x.writer_loop, 0.0, lk["writer_cpu_wait"]) + lk["write_wait"]
                      + lk["writer_hold"])
    acquisition = np.where(x.writer_process, lk["writer_cpu_wait"] + f["writer_hold"],
                           lk["writer_cpu_wait"] + lk["write_wait"] + lk["writer_hold"])
    # each acquisition of an operation first gives way to queued entities (a yield at the
    # syscall boundary, montecarlo/writers.py next_acquisition): a CPU wait each
    op_latency = np.where(x.writer_loop, f["writer_locks_per_op"] * (
        f["writer_gap_cpu"] + acquisition), writer_latency)
    nan = np.full(fault_rate.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = {
            "fault_latency_mean": np.where(fault_rate > 0, out["latency"], np.nan),
            "fault_rate": fault_rate,
            "mmap_read_rate": read_rate,
            "mmap_read_wait_mean": _safe_div(read_wait_total, read_rate, np.nan),
            "mmap_write_rate": write_rate + 0.0,
            "mmap_write_wait_mean": np.where(has_writers, lk["write_wait"], np.nan),
            "writer_latency_mean": np.where(has_writers, writer_latency, np.nan),
            "writer_ops_rate": writers["ops"] + 0.0 * fault_rate,
            "writer_op_latency_mean": np.where(writers["ops"] > 0, op_latency, np.nan),
            "writer_cpu_share": writers["cpu_holds"] + writers["cpu_gaps"] + 0.0 * fault_rate,
            "retries_per_fault": np.where(fault_rate > 0, acc.retries, np.nan),
            "refaults_per_fault": np.where(fault_rate > 0, acc.refaults, np.nan),
            "retry_miss_ratio": _safe_div(acc.misses, acc.retry_io_waits, np.nan),
            "io_read_rate": fault_rate * acc.reads,
            "major_faults_per_fault": np.where(fault_rate > 0, acc.majors, np.nan),
            "vma_abort_rate": fault_rate * acc.aborts,
            "access_rate": st["access_rate"] + 0.0,
            "reclaim_rate": out["reclaims_pages"] + fault_rate * acc.refaults,
            "mmap_read_waiters_mean": read_wait_total,
            "mmap_read_waiters_little": read_wait_total,
            "mmap_write_waiters_mean": np.where(has_writers, write_rate * lk["write_wait"], 0.0),
            "mmap_write_waiters_little": np.where(has_writers, write_rate * lk["write_wait"], 0.0),
            "threads_in_fault_mean": fault_rate * out["latency"],
            "mmap_read_held_share": lk["read_held_share"],
            "mmap_read_busy_period_mean": np.where(read_rate > 0, _F["mginf_busy_period"](
                np.where(read_rate > 0, read_rate, 1.0), lk["read_hold_mean"]), np.nan),
            "reads_holding_mmap_per_fault": np.where(fault_rate > 0, acc.reads_holding_mmap,
                                                     np.nan),
            "reads_holding_vma_per_fault": np.where(fault_rate > 0, acc.reads_holding_vma,
                                                    np.nan),
        }
    # access classes (the harness's classes): the first attempt found the folio absent (a major
    # fault, zram swap-ins included), locked by another thread, or cached; latency per class
    per, cl = out["per"], out["class_latency"]
    classes = {"major": per["major"] + per["zram"], "waiter": per["join_io"] + per["join_up"],
               "minor": per["minor"]}
    miss = out["miss"]
    for name, share in classes.items():
        if f"{name}_share" in output.RATIOS:
            m[f"{name}_share"] = share
        if f"{name}_latency_mean" in output.RATIOS:
            parts = {"major": cl["major"] + cl["zram"], "waiter": cl["waiter"],
                     "minor": cl["minor"]}[name]
            m[f"{name}_latency_mean"] = _safe_div(parts * miss, share, np.nan)
    if "nofault_share" in output.RATIOS:
        m["nofault_share"] = 1 - miss
    del nan
    return m


def predict(scenario: Scenario, policies=POLICIES, *, distribution: bool = True,
            compiled: bool | None = None) -> xr.Dataset:
    """The analytic model's metrics for every policy (and every cell of a grid scenario).

    Parameters
    ----------
    scenario : Scenario
        A scalar scenario, or one with DataArray fields: the result broadcasts over their
        dimensions.
    policies : str or sequence of str
        Policies to solve, in the order wanted (default: all of ``POLICIES``).
    distribution : bool
        Also give the latency distribution: ``fault_latency_p50/p90/p99/p999``, ``jank_share``,
        the lock-wait 99th percentiles and the histograms.  ``False`` gives the closed forms and
        fixed points only (means, rates, ratios), several times faster.
    compiled : bool or None
        Run the fixed point's iteration compiled (:mod:`faultlock.model.fixed_point`; None:
        :data:`COMPILED`, True unless changed) or in numpy (the reference implementation; the
        same results within the fixed point's tolerance, about 3x slower).

    Returns
    -------
    xarray.Dataset
        The variables of :func:`faultlock.simulate` with the same names, ``units`` and
        ``long_name`` (no ``_ci``), dimension ``policy`` first, then the scenario's dimensions;
        a ``stable`` flag per policy and cell.  Where ``mmap_lock`` writers exceed its capacity
        (``writer_rate`` times their exclusive time >= 1) every time is ``inf``, other metrics
        ``nan``, and ``stable`` is False.  Metrics the model cannot derive (``METRICS_ABSENT``)
        are not in the dataset.  ``attrs["fixed_point_unconverged"]`` counts the (policy, cell)
        elements whose fixed point did not converge within the iteration budget (their numbers
        are the last iterate).

    Raises
    ------
    ValueError
        If ``scenario`` is not a Scenario, or a policy name is unknown (naming it and the
        allowed ones).
    """
    # Cells past capacity or without faults produce inf/nan on the way; they are reported through
    # ``stable`` and NaN, so numpy's warnings would only be noise.
    with np.errstate(all="ignore"):
        return _predict(scenario, policies, distribution, compiled)


def _predict(scenario: Scenario, policies, distribution: bool,
             compiled: bool | None = None) -> xr.Dataset:
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario={scenario!r} is not allowed: a faultlock.Scenario")  # noqa: TRY004
    policies = check_policies(policies)
    if not isinstance(distribution, (bool, np.bool_)):
        raise ValueError(f"distribution={distribution!r} is not allowed: True or False")  # noqa: TRY004
    if compiled is not None and not isinstance(compiled, (bool, np.bool_)):
        raise ValueError(f"compiled={compiled!r} is not allowed: True, False or None")  # noqa: TRY004
    inputs = _Inputs(scenario, policies)
    total = len(policies) * inputs.cells
    metrics: dict[str, np.ndarray] = {}
    stable = np.empty(total, dtype=bool)
    converged = np.empty(total, dtype=bool)
    iterations = 0
    for start in range(0, total, _CHUNK):
        index = np.arange(start, min(total, start + _CHUNK))
        x = inputs.elements(index)
        st, out, io, lk, used, ok = _solve(x, compiled=compiled)
        iterations = max(iterations, used)
        parts = [(index, _metrics(x, st, out, io, lk))]
        if distribution:
            for sub in range(0, index.size, _DIST_CHUNK):
                keep = np.arange(sub, min(index.size, sub + _DIST_CHUNK))
                pieces = (_subset(v, keep, index.size) for v in (st, out, io, lk))
                parts.append((index[keep], _distribution(x.take(keep), *pieces)))
        for where, part in parts:
            for name, value in part.items():
                value = np.asarray(value, dtype=float)
                if name not in metrics:
                    metrics[name] = np.empty((total,) + value.shape[1:])
                metrics[name][where] = value
        stable[index] = lk["stable"]
        converged[index] = ok
    ds = _dataset(scenario, inputs, metrics, stable, distribution, iterations,
                  int((~converged).sum()))
    return checks.check(ds, scenario, converged=converged)


def _subset(value, index: np.ndarray, n: int):
    """The elements ``index`` of the per-element arrays (first axis of length ``n``) in a
    result of :func:`_solve` (dicts, :class:`_Acc`, arrays); anything else unchanged."""
    if isinstance(value, dict):
        return {k: _subset(v, index, n) for k, v in value.items()}
    if isinstance(value, _Acc):
        sub = _Acc.__new__(_Acc)
        for k, v in vars(value).items():
            setattr(sub, k, _subset(v, index, n))
        return sub
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
        return value[index]
    return value


def _units(name: str) -> tuple[str, str]:
    if name in output.RATIOS:
        return output.RATIOS[name][2], output.RATIOS[name][3]
    if name in output.QUANTILES:
        return "s", output.QUANTILES[name][2]
    raise KeyError(name)


def _dataset(scenario, x: _Inputs, metrics, stable, distribution, iterations,
             unconverged) -> xr.Dataset:
    dims = ("policy",) + x.dims
    shape = (len(x.policies),) + x.shape
    data_vars = {}
    # A stable steady state without faults (nothing is ever reclaimed: every page stays mapped)
    # has no fault-latency distribution: its quantiles are undefined, not infinite.
    no_faults = np.asarray(metrics.get("fault_rate", np.ones(shape)), dtype=float).reshape(shape)
    no_faults = stable.reshape(shape) & (no_faults == 0)
    for name in list(output.RATIOS) + list(output.QUANTILES):
        if name not in metrics:
            continue
        units, long_name = _units(name)
        values = np.asarray(metrics[name], dtype=float).reshape(shape)
        if name in output.QUANTILES and output.QUANTILES[name][0] == H_FAULT_LATENCY:
            values = np.where(no_faults, np.nan, values)
        if units == "s":
            values = np.where(stable.reshape(shape), values, np.inf)
        else:
            values = np.where(stable.reshape(shape), values, np.nan)
        data_vars[name] = (dims, values, {"units": units, "long_name": long_name})
    for name, (which, edges, dim, long_name) in output.HISTOGRAMS.items():
        if name not in metrics:
            continue
        values = np.asarray(metrics[name]).reshape(shape + (len(edges),))
        values = np.where(stable.reshape(shape)[..., None], values, np.nan)
        data_vars[name] = (dims + (dim,), values, {"units": "1", "long_name": long_name})
    data_vars["stable"] = (dims, stable.reshape(shape).copy(),
                           {"long_name": "mmap_lock writers below capacity (steady state exists)"})
    coords = {"policy": list(x.policies)}
    coords.update({d: v for d, v in scenario.coords.items()})
    if distribution:
        coords["latency_bin"] = ("latency_bin", output.LATENCY_EDGES,
                                 {"units": "s", "long_name": "lower edge of the fault-latency bin"})
        coords["wait_bin"] = ("wait_bin", output.WAIT_DECADE_EDGES,
                              {"units": "s", "long_name": "lower edge of the decade wait bin"})
    ds = xr.Dataset(data_vars, coords=coords)
    from .. import __version__
    ds.attrs.update({
        "solver": "analytic",
        "faultlock_version": __version__,
        "scenario": scenario.to_json(indent=None),
        "formulas": ",".join(sorted(sym.FORMULAS)),
        "formula_hashes": ",".join(f"{n}:{sym.FORMULAS[n].hash()[:16]}" for n in sorted(sym.FORMULAS)),
        "fixed_point_iterations": int(iterations),
        "fixed_point_unconverged": unconverged,
    })
    return ds


# ----------------------------------------------------------------------------------------------
# The latency distribution
# ----------------------------------------------------------------------------------------------

#: quantile levels that cut a read time's law into strata (its CDF is taken linear inside each)
_LEVELS = np.concatenate([[0.0, 1e-3, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                           0.8, 0.85], 1 - 10 ** -(0.9 + np.arange(1, 36) / 5)])
_GRID = 64                 # CDF points per (policy, cell) from which quantiles are interpolated
_QUANTILE_LEVELS = {"fault_latency_p50": 0.5, "fault_latency_p90": 0.9,
                    "fault_latency_p99": 0.99, "fault_latency_p999": 0.999}


def _law_strata(x: _Elements, reads: int):
    """Quantiles of the read time's random part (its law at io_latency, io_latency_cv) at
    ``_LEVELS``, for the sum of ``reads`` reads: shape (elements, levels)."""
    f = x.f
    out = np.zeros(f["io_latency"].shape + (_LEVELS.size,))
    for law in np.unique(x.io_law):
        rows = x.io_law == law
        name, cv = sym.sum_of_reads_law(law, x.io_cv[rows], reads)
        mean = reads * f["io_latency"][rows]
        q = sym.law_quantile(name, mean[:, None], cv[:, None], _LEVELS[None, :])
        out[rows] = np.maximum.accumulate(np.nan_to_num(q, posinf=0.0), axis=-1)
    return out


class _Component:
    """One path of a fault: weight, fixed time, reads (0, 1, 2) and an atom-or-exponential wait;
    ``kind`` is the access class of the harness it belongs to (major, waiter, minor)."""

    def __init__(self, weight, shift, reads, p_zero, wait_mean, kind):
        self.weight, self.shift, self.reads, self.kind = weight, shift, reads, kind
        self.p_zero = np.clip(p_zero, 0.0, 1.0)
        self.wait_mean = np.maximum(wait_mean, 0.0)

    @property
    def mean_wait(self):
        return self.wait_mean


def _combine(*parts):
    """Independent atom-or-exponential waits (p_zero, mean): the sum as one (p_zero, mean)."""
    p0 = np.ones(1)
    mean = np.zeros(1)
    for p_zero, m in parts:
        p0 = p0 * p_zero
        mean = mean + m
    return p0, mean


def _cdf(components, strata, t):
    """Mixture CDF at ``t`` (shape (P, cells, T)) of the components."""
    total = np.zeros(t.shape)
    for comp in components:
        if not np.any(comp.weight > 0):
            continue
        w = comp.weight[..., None]
        u = t - comp.shift[..., None]
        p0 = comp.p_zero[..., None]
        cond = _safe_div(comp.wait_mean, 1 - comp.p_zero)[..., None]
        if comp.reads == 0:
            with np.errstate(over="ignore"):
                body = np.where(u >= 0, 1 - (1 - p0) * np.exp(-u / np.where(cond > 0, cond, 1.0)),
                                0.0)
            body = np.where((cond <= 0) & (u >= 0), 1.0, body)
            total += w * body
            continue
        q = strata[comp.reads]
        acc = np.zeros(t.shape)
        for k in range(_LEVELS.size - 1):
            x0 = q[..., k][..., None]
            width = (q[..., k + 1] - q[..., k])[..., None]
            acc += (_LEVELS[k + 1] - _LEVELS[k]) * sym.uniform_plus_wait(u, x0, width, p0, cond)
        total += w * acc
    return total


def _fault_components(x: _Inputs, st, out, lk):
    """The fault latency as a mixture of paths (classes of ``_model_pass``), with the same mean."""
    f = x.f
    sw = x.sw
    acc = out["per_fault"]
    io = out["io"]
    miss = out["miss"]
    y = {k: _safe_div(v, miss) for k, v in out["per"].items()}
    c_f, w = f["fault_cpu_time"], f["wakeup_latency"]
    wc, wcb = st["cpu_wait"], st["cpu_wait_batch"]
    V, dV, dM, rV = sw["use_vma_lock"], sw["drop_on_vma"], sw["drop_on_mmap"], sw["retry_on_vma"]
    p_ab, pb, rb, rab = st["abort"], st["block"], st["block_residual"], st["abort_residual"]
    # first attempt: an mmap_lock wait if it aborts (always sleeps) or under legacy (PASTA)
    first = (V * p_ab + (1 - V) * pb,
             V * p_ab * (rab + w + wcb) + (1 - V) * pb * (rb + w + wcb))
    lock1 = (1 - first[0], first[1])
    # retry of a dropped read: VMA lock again (vma_retry) or mmap_lock
    again = V * (1 - p_ab) * dV * rV
    retry_slow = again * p_ab + (1 - again) * pb
    retry_mean = again * p_ab * (rab + w + wcb) + (1 - again) * pb * (rb + w + wcb)
    lock2 = (1 - retry_slow, retry_mean)
    drops = V * (1 - p_ab) * dV + (1 - V * (1 - p_ab)) * dM          # share of majors dropping
    device = (1 - io["read_wait_p"], io["read_wait"])
    cpu = (1 - st["cpu_wait_p"], wc)
    read_const = io["read_service"] - f["io_latency"]
    p_ref = np.clip(_safe_div(acc.refaults, y["major"] + y["join_io"]), 0.0, 1.0)
    comps = []
    comps.append(_Component(y["minor"], c_f + 0 * miss, 0, *lock1, "minor"))
    comps.append(_Component(y["zram"], f["zram_latency"] + c_f + 0 * miss, 0, *lock1, "major"))
    base_shift = 3 * c_f + w + read_const
    wait1 = _combine(lock1, (1 - drops + drops * lock2[0], drops * lock2[1]), device, cpu)
    # a group walk's hand-over chain (_model_pass): a fixed extra for the retries that dropped
    chain = out["stampede"]
    comps.append(_Component(y["major"] * (1 - p_ref), base_shift + drops * chain, 1, *wait1,
                            "major"))
    wait2 = _combine(wait1, device, cpu)
    comps.append(_Component(y["major"] * p_ref, base_shift + c_f + w + read_const, 2, *wait2,
                            "major"))
    join = _combine(lock1, lock2, (np.zeros(1), out["residual_io"]), cpu)
    walk = x.walk.astype(float)
    comps.append(_Component(y["join_io"] * (1 - walk), 2 * c_f + w, 0, *join, "waiter"))
    # a follower of a group walk joins its leader's read a short lag after it started: it waits
    # for nearly the whole read, so its wait has the read's law (less the lag, in the mean)
    lag = np.maximum(c_f + io["read_time"] - out["residual_io"], 0.0)
    comps.append(_Component(y["join_io"] * walk, 2 * c_f + w + read_const - lag + drops * chain,
                            1, *_combine(lock1, lock2, cpu), "waiter"))
    comps.append(_Component(y["join_up"], 2 * c_f + w, 0,
                            *_combine(lock1, (np.zeros(1), (w + wc + c_f) / 2)), "waiter"))
    # the paths above are a simplification of the accounting of _model_pass: put the difference
    # of means into the waits, so that the mixture has exactly the model's mean latency
    mix_mean = sum(c.weight * (c.shift + c.mean_wait + c.reads * f["io_latency"]) for c in comps)
    delta = out["latency"] - mix_mean
    for c in comps:
        c.wait_mean = np.maximum(c.wait_mean + delta, 0.0)
        c.p_zero = np.where(c.wait_mean > 0, c.p_zero, 1.0)
    return comps


def _quantiles(t, cdf, levels, exact_cdf, refine: int = 6):
    """The times at which the CDF reaches each level: bracketed by the grid ``t`` (where the CDF
    was evaluated), then refined on the exact mixture CDF by regula falsi (Illinois) in log t."""
    out = {}
    logt = np.log(t)
    for name, p in levels.items():
        above = cdf >= p
        idx = np.argmax(above, axis=-1)
        none = ~above.any(axis=-1)
        i1 = np.clip(idx, 1, t.shape[-1] - 1)
        i0 = i1 - 1
        f0 = np.take_along_axis(cdf, i0[..., None], -1)[..., 0] - p
        f1 = np.take_along_axis(cdf, i1[..., None], -1)[..., 0] - p
        l0 = np.take_along_axis(logt, i0[..., None], -1)[..., 0]
        l1 = np.take_along_axis(logt, i1[..., None], -1)[..., 0]
        side = np.zeros_like(l0)
        for _ in range(refine):
            frac = np.clip(_safe_div(-f0, f1 - f0, 0.5), 0.0, 1.0)
            lm = l0 + frac * (l1 - l0)
            fm = exact_cdf(np.exp(lm)[..., None])[..., 0] - p
            left = fm < 0
            # Illinois: halve the value kept twice in a row, so the bracket shrinks from both ends
            f1 = np.where(left & (side < 0), f1 / 2, f1)
            f0 = np.where(~left & (side > 0), f0 / 2, f0)
            l0, f0 = np.where(left, lm, l0), np.where(left, fm, f0)
            l1, f1 = np.where(left, l1, lm), np.where(left, f1, fm)
            side = np.where(left, -1.0, 1.0)
        frac = np.clip(_safe_div(-f0, f1 - f0, 0.5), 0.0, 1.0)
        value = np.exp(l0 + frac * (l1 - l0))
        value = np.where(idx == 0, t[..., 0], value)
        out[name] = np.where(none, np.inf, value)
    # The refinement stops after ``refine`` steps, so each value is only known to lie in its
    # final bracket, and at a jump of the CDF (an atom: a fixed CPU time, a wait that is often
    # zero) regula falsi leaves wide brackets that overlap between levels: p90 could come out
    # above p99.  The quantile function is non-decreasing, so take the running maximum over the
    # levels in increasing order: the order then holds by construction, and each value stays
    # within its level's bracket error (if q_a > q_b for levels a < b, the true quantiles satisfy
    # x_b >= x_a > q_a - err_a and x_b <= q_b + err_b < q_a + err_b).
    running = None
    for name in sorted(levels, key=levels.get):
        running = out[name] if running is None else np.fmax(running, out[name])
        out[name] = running
    return out


def _atom_exp_quantile(p_zero, shift, mean, level):
    """Quantile of a wait that is 0 with probability p_zero, else shift + Exp(mean)."""
    tail = 1 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        q = shift + mean * np.log(np.maximum(1 - p_zero, 1e-300) / tail)
    return np.where(1 - p_zero <= tail, 0.0, np.maximum(q, shift))


def _atom_exp_shares(p_zero, shift, mean, edges):
    """Shares of such a wait in bins with lower edges ``edges`` (the last bin is open)."""
    e = edges.reshape((1,) * p_zero.ndim + (-1,))
    upper = np.concatenate([e[..., 1:], np.full(e[..., :1].shape, np.inf)], axis=-1)

    def cdf(v):
        with np.errstate(over="ignore", invalid="ignore"):
            body = 1 - (1 - p_zero[..., None]) * np.exp(
                -np.maximum(v - shift[..., None], 0.0) / np.where(mean > 0, mean, 1.0)[..., None])
        body = np.where(v >= shift[..., None], body, p_zero[..., None])
        return np.where(np.isinf(v), 1.0, body)

    lower = np.where(e <= 0, 0.0, cdf(e))
    return cdf(upper) - lower


def _distribution(x: _Inputs, st, out, io, lk):
    f = x.f
    comps = _fault_components(x, st, out, lk)
    strata = {1: _law_strata(x, 1), 2: _law_strata(x, 2)}
    shape = out["latency"].shape
    low = np.full(shape, np.inf)
    high = np.zeros(shape)
    for c in comps:
        has = c.weight > 0
        cond = _safe_div(c.wait_mean, 1 - c.p_zero)
        top = c.shift + (strata[c.reads][..., -1] if c.reads else 0.0) + cond * 25
        low = np.where(has, np.minimum(low, c.shift), low)
        high = np.where(has, np.maximum(high, top), high)
    low = np.where(np.isfinite(low), np.maximum(low * 0.9, 1e-9), 1e-9)
    high = np.maximum(high, low * 10)
    t = np.exp(np.linspace(np.log(low), np.log(high), _GRID, axis=-1))
    cdf = _cdf(comps, strata, t)
    norm = _cdf(comps, strata, np.full(shape + (1,), np.inf))[..., 0]   # total weight (1)
    cdf = cdf / np.where(norm > 0, norm, 1.0)[..., None]
    scale = np.where(norm > 0, norm, 1.0)[..., None]
    result = _quantiles(t, np.maximum.accumulate(cdf, axis=-1), _QUANTILE_LEVELS,
                        lambda v: _cdf(comps, strata, v) / scale)
    jank = _cdf(comps, strata, np.broadcast_to(f["jank_threshold"], shape)[..., None])[..., 0]
    # without faults (norm 0: no path has weight) there is no latency law: no jank share, no
    # histogram (the Monte Carlo's ratio over zero faults is NaN too), not "every fault janks"
    has_faults = norm > 0
    result["jank_share"] = np.where(has_faults, np.clip(
        1 - jank / np.where(has_faults, norm, 1.0), 0.0, 1.0), np.nan)
    edges = output.LATENCY_EDGES
    at_edges = _cdf(comps, strata, np.broadcast_to(edges, shape + edges.shape)) \
        / np.where(norm > 0, norm, 1.0)[..., None]
    at_edges = np.maximum.accumulate(np.clip(at_edges, 0.0, 1.0), axis=-1)
    upper = np.concatenate([at_edges[..., 1:], np.ones(shape + (1,))], axis=-1)
    result["fault_latency_hist"] = np.where(has_faults[..., None],
                                            np.maximum(upper - at_edges, 0.0), np.nan)
    # the latency of each access class of the harness: the same mixture, restricted to its paths
    for kind in ("major", "waiter", "minor"):
        part = [c for c in comps if c.kind == kind]
        weight = _cdf(part, strata, np.full(shape + (1,), np.inf))[..., 0]
        present = weight > 1e-12
        scale_k = np.where(present, weight, 1.0)[..., None]
        cdf_k = np.maximum.accumulate(_cdf(part, strata, t) / scale_k, axis=-1)
        levels = {f"{kind}_latency_p{q}": q / 100 for q in (50, 90, 99)}
        for name, value in _quantiles(t, cdf_k, levels,
                                      lambda v, part=part, scale_k=scale_k:
                                      _cdf(part, strata, v) / scale_k).items():
            result[name] = np.where(present, value, np.nan)
    # mmap_lock read wait per acquisition: 0, or the wake-up plus an exponential residual
    acc = out["per_fault"]
    fr, bg = out["fault_rate"], f["reader_rate"]
    acquisitions = fr * acc.mmap_acq + bg
    slept = fr * acc.mmap_slow + bg * st["block_open"]
    waited = (fr * acc.mmap_wait + bg * st["block_open"] * (st["block_open_residual"]
                                                            + f["wakeup_latency"]))
    slow = np.clip(_safe_div(slept, acquisitions), 0.0, 1.0)
    cond = np.maximum(_safe_div(waited, slept) - f["wakeup_latency"], 0.0)
    shift = f["wakeup_latency"] + st["cpu_wait_batch"]
    result["mmap_read_wait_p99"] = np.where(acquisitions > 0, _atom_exp_quantile(
        1 - slow, shift, cond, 0.99), np.nan)
    result["mmap_read_wait_hist"] = np.where((acquisitions > 0)[..., None], _atom_exp_shares(
        1 - slow, shift, cond, output.WAIT_DECADE_EDGES), np.nan)
    # mmap_lock write wait: 0 when the lock is free, else an exponential of the same mean
    ww = lk["write_wait"]
    busy = np.clip(1 - (1 - lk["writer_util"]) * np.exp(-lk["read_held_share"]), 1e-12, 1.0)
    zero = np.zeros(shape)
    has_w = np.broadcast_to(st["writer_rate"] > 0, shape)
    result["mmap_write_wait_p99"] = np.where(has_w, _atom_exp_quantile(
        1 - busy, zero, _safe_div(ww, busy), 0.99), np.nan)
    result["mmap_write_wait_hist"] = np.where(has_w[..., None], _atom_exp_shares(
        1 - busy, zero, _safe_div(ww, busy), output.WAIT_DECADE_EDGES), np.nan)
    # writer latency: CPU wait, lock wait and hold; the hold's spread plus an exponential wait
    hold = lk["writer_hold"]
    hold_sd = x.writer_cv * f["writer_hold"]
    lat_mean = lk["writer_cpu_wait"] + ww + hold
    lat_sd = np.sqrt(hold_sd**2 + _safe_div(ww, busy) ** 2 * (2 * busy - busy**2))
    result["writer_latency_p99"] = np.where(has_w, _lognormal_p99(lat_mean, lat_sd), np.nan)
    return result


def _lognormal_p99(mean, sd):
    """99th percentile of the log-normal with this mean and standard deviation."""
    cv = _safe_div(sd, mean)
    sigma2 = np.log1p(cv**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, np.exp(np.log(np.maximum(mean, 1e-300)) - sigma2 / 2
                                          + np.sqrt(sigma2) * 2.3263478740408408), 0.0)
