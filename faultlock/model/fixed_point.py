"""The analytic model's fixed-point iteration, compiled: one (policy, cell) element at a time.

What it is: a scalar (numba ``@njit``) port of the iteration of :func:`analytic._solve`: the
pass of every sub-model (``_model_pass``, ``_group_walk``, ``_eviction_hazard``,
``_untried_loop``, ``_storage``, ``_writer_rates``, ``_cpu``, ``_locks``, ``_pass``), the inner
solves (``_share_fixed_point``'s regula falsi with the bisection-cell snap, the eviction
hazard's bisection, the storage depth loop) and the outer safeguarded secant on
``log(access_rate)`` with the damping and the convergence test of ``_solve``.  The functions
keep the names and the order of operations of the numpy code so that the two read side by side;
the closed forms come from :mod:`faultlock.model.symbolic` (``Formula.compiled()`` and the scalar
kernels next to the numpy implementations), so every formula still lives once.

Why it exists: the numpy pass is vectorised over the elements, but the fixed point takes ~26
passes per element and every pass of the numpy code pays for dozens of temporaries per line;
one element at a time in compiled code, the same iteration runs an order of magnitude faster.
The numpy ``_pass`` stays the readable reference: ``analytic._solve`` runs this iteration to the
converged state, then makes one numpy ``_pass`` there for the pieces the metrics and the latency
distribution read (``predict(..., compiled=False)`` runs the numpy iteration instead; the tests
hold the two together).

Layout: the inputs are a float64 array ``(E, len(INPUTS))`` (flags as 0/1) with the column
indices below, the Zipf nodes three ``(E, K)`` arrays, the state a float64 array
``(E, len(STATE))``.  Where the numpy code broadcasts a chunk-wide switch (``x.any_swap``,
``bounded.any()``, the group walk present, ``np.any(loose > 0)``), this code takes the
element's own branch: the other elements' share of it is an exact zero in the numpy code.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import symbolic as sym

__all__ = ["INPUTS", "STATE", "pack_inputs", "pack_state", "unpack_state", "pass_once", "solve"]

_JIT = {"cache": True, "error_model": "numpy"}
_INF = math.inf
_BIG = np.finfo(float).max                      # what np.nan_to_num makes of inf

# ----------------------------------------------------------------------------------------------
# Column indices
# ----------------------------------------------------------------------------------------------

#: scenario fields (``_Elements.f``), derived quantities, flags (0/1) and the policy's switches.
INPUTS = (
    "fault_cpu_time", "wakeup_latency", "reclaim_rate_cached", "reclaim_rate_mapped",
    "zram_latency", "tried_after_major", "retry_limit", "threads", "io_parallelism",
    "io_latency", "io_page_time", "io_depth_slope", "vmas", "writer_threads", "writer_hold",
    "writer_vma_share", "writer_fork_share", "reader_rate", "reader_hold", "handoff_timeout",
    "writer_locks_per_op", "writer_gap_cpu", "writer_op_rate", "writer_rate", "cpus",
    "think_time", "idle_time", "group_size",
    "readaround", "file_pages", "swap_pages", "file_share", "capacity", "total_pages", "io_cv",
    "writer_cv",
    "walk", "periodic", "writer_loop", "writer_process", "linux", "spin", "drain_blocks",
    "handover", "writer_pref",
    "use_vma_lock", "drop_on_vma", "drop_on_mmap", "retry_on_vma", "uptodate_wait",
)
(FAULT_CPU_TIME, WAKEUP_LATENCY, RECLAIM_RATE_CACHED, RECLAIM_RATE_MAPPED,
 ZRAM_LATENCY, TRIED_AFTER_MAJOR, RETRY_LIMIT, THREADS, IO_PARALLELISM,
 IO_LATENCY, IO_PAGE_TIME, IO_DEPTH_SLOPE, VMAS, WRITER_THREADS, WRITER_HOLD,
 WRITER_VMA_SHARE, WRITER_FORK_SHARE, READER_RATE, READER_HOLD, HANDOFF_TIMEOUT,
 WRITER_LOCKS_PER_OP, WRITER_GAP_CPU, WRITER_OP_RATE, WRITER_RATE, CPUS,
 THINK_TIME, IDLE_TIME, GROUP_SIZE,
 READAROUND, FILE_PAGES, SWAP_PAGES, FILE_SHARE, CAPACITY, TOTAL_PAGES, IO_CV,
 WRITER_CV,
 WALK, PERIODIC, WRITER_LOOP, WRITER_PROCESS, LINUX, SPIN, DRAIN_BLOCKS,
 HANDOVER, WRITER_PREF,
 USE_VMA_LOCK, DROP_ON_VMA, DROP_ON_MMAP, RETRY_ON_VMA, UPTODATE_WAIT) = range(len(INPUTS))

#: the state of the fixed point (``st`` of ``analytic._solve``).
STATE = (
    "access_rate", "cpu_wait", "cpu_wait_writer", "think", "cpu_wait_batch", "cpu_wait_p",
    "batch", "read_time", "read_time_m2", "read_rate", "reads_per_fault", "abort",
    "abort_residual", "block", "block_residual", "block_open", "block_open_residual",
    "writer_util", "writer_queued", "q_mmap", "q_vma", "writer_acquisition", "thinking_share",
    "writer_rate",
)
(ACCESS_RATE, CPU_WAIT, CPU_WAIT_WRITER, THINK, CPU_WAIT_BATCH, CPU_WAIT_P,
 BATCH, READ_TIME, READ_TIME_M2, READ_RATE, READS_PER_FAULT, ABORT,
 ABORT_RESIDUAL, BLOCK, BLOCK_RESIDUAL, BLOCK_OPEN, BLOCK_OPEN_RESIDUAL,
 WRITER_UTIL, WRITER_QUEUED, Q_MMAP, Q_VMA, WRITER_ACQUISITION, THINKING_SHARE,
 WRITER_RATE_) = range(len(STATE))

#: the fields of ``analytic._Acc`` (per-fault expectations), same order.
(LATENCY, CPU, WAKES, READS, RETRIES, RETRY_IO_WAITS, REFAULTS,
 MISSES, MAJORS, ABORTS, MMAP_ACQ, MMAP_WAIT, MMAP_SLOW,
 HOLD_SHORT_N, HOLD_SHORT_S, HOLD_SHORT_S2, HOLD_LONG_N, HOLD_LONG_S,
 HOLD_LONG_S2, VMA_N, VMA_S, VMA_S2, READS_HOLDING_MMAP,
 READS_HOLDING_VMA, ZRAM_CPU) = range(25)
_ACC_SIZE = 25

# ----------------------------------------------------------------------------------------------
# Formulas (from symbolic.py, compiled from the same source)
# ----------------------------------------------------------------------------------------------

_finite_source_wait = sym.FORMULAS["finite_source_wait"].compiled()
_lag_inside_probability = sym.FORMULAS["lag_inside_probability"].compiled()
_lag_inside_residual = sym.FORMULAS["lag_inside_residual"].compiled()
_mg1_busy_period_residual = sym.FORMULAS["mg1_busy_period_residual"].compiled()
_mg1_wait = sym.FORMULAS["mg1_wait"].compiled()
_mginf_busy_period = sym.FORMULAS["mginf_busy_period"].compiled()
_mginf_max_residual = sym.FORMULAS["mginf_max_residual"].compiled()
_read_service_time = sym.FORMULAS["read_service_time"].compiled()
_refault_success_window = sym.FORMULAS["refault_success_window"].compiled()
_vma_abort_probability = sym.FORMULAS["vma_abort_probability"].compiled()
_writer_utilisation = sym.FORMULAS["writer_utilisation"].compiled()
_fs_tail = sym.finite_source_tail_scalar
_fs_excess = sym.finite_source_excess_scalar
_page_state_weights = sym.page_state_weights_scalar
_lag_inside_pair = sym.lag_inside_pair_scalar         # both lag_inside formulas at one point

_HALF_STEPS = 24                 # _share_fixed_point's steps
_EVICTION_STEPS = 40             # _eviction_hazard's steps

# ----------------------------------------------------------------------------------------------
# numpy's elementwise semantics, on scalars (nan propagates through minimum/maximum/clip)
# ----------------------------------------------------------------------------------------------


@njit(**_JIT)
def _safe_div(a, b, default):
    """``a / b`` where ``b > 0``, else ``default`` (analytic._safe_div)."""
    return a / b if b > 0 else default


@njit(**_JIT)
def _min(a, b):
    """np.minimum: nan if either is nan."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


@njit(**_JIT)
def _max(a, b):
    """np.maximum: nan if either is nan."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@njit(**_JIT)
def _clip(a, lo, hi):
    return _min(_max(a, lo), hi)


@njit(**_JIT)
def _nan_to_num(v, nan, posinf, neginf):
    if v != v:
        return nan
    if v == _INF:
        return posinf
    if v == -_INF:
        return neginf
    return v


# ----------------------------------------------------------------------------------------------
# _share_fixed_point: u = rhs(u) for a time share, regula falsi (Illinois) + the bisection snap
# ----------------------------------------------------------------------------------------------

_RHS_STORAGE = 0                 # rate (S + W(u)) / N at the device (analytic._storage)
_RHS_CPU = 1                     # the computing threads' CPU share (analytic._cpu)


@njit(**_JIT)
def _share_rhs(kind, u, p0, p1, p2, p3, p4, p5):
    if kind == _RHS_STORAGE:     # p: rate, s_, c, n, cv_, pop
        return p0 * (p1 + _finite_source_wait(p2, p3, u, p1, p4)) / p5
    # _RHS_CPU, p: lam, z, pop, c
    return p0 * p1 * (1 + _fs_excess(p2 - 1, u, p3 - 1) / p3) / p2


@njit(**_JIT)
def _share_fixed_point(kind, p0, p1, p2, p3, p4, p5, has_guess, guess):
    """Scalar analytic._share_fixed_point (same brackets, same Illinois steps, same snap)."""
    steps = _HALF_STEPS
    tol = 0.5 ** (steps + 1)
    r1 = _share_rhs(kind, 1.0, p0, p1, p2, p3, p4, p5)
    if r1 >= 1.0:                                            # saturated
        return 1.0
    lo, g_lo = 0.0, math.nan
    hi, g_hi = 1.0, r1 - 1.0
    if has_guess:
        u0 = _clip(_nan_to_num(guess, 0.5, _BIG, -_BIG), tol, 1 - tol)
        g0 = _share_rhs(kind, u0, p0, p1, p2, p3, p4, p5) - u0
        u1 = _clip(u0 + (1.0 if g0 >= 0 else -1.0) * (2 * abs(g0) + 4 * tol), 0.0, 1.0)
        g1 = _share_rhs(kind, u1, p0, p1, p2, p3, p4, p5) - u1
        for j in range(2):
            u, gu = (u0, g0) if j == 0 else (u1, g1)
            above, inside = gu >= 0, (u > lo) and (u < hi)
            if above and inside:
                lo, g_lo = u, gu
            if (not above) and inside:
                hi, g_hi = u, gu
    if g_lo != g_lo:
        g_lo = _share_rhs(kind, lo, p0, p1, p2, p3, p4, p5) - lo
    side = 0.0
    if g_lo != g_lo or g_hi != g_hi:
        result = tol
        pending = False
    else:
        result = 0.5 * (lo + hi)
        pending = not (hi - lo <= tol)
    if pending:
        for _ in range(4 * steps):
            x = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)      # regula falsi
            if not ((x > lo) and (x < hi)):
                x = 0.5 * (lo + hi)
            gx = _share_rhs(kind, x, p0, p1, p2, p3, p4, p5) - x
            above = gx >= 0
            # Illinois: halve the value of the end kept twice in a row
            if above and side > 0:
                g_hi = 0.5 * g_hi
            if (not above) and side < 0:
                g_lo = 0.5 * g_lo
            if above:
                lo, g_lo = x, gx
            else:
                hi, g_hi = x, gx
            if gx == 0:
                hi = x                                       # an exact root: both ends
            side = 1.0 if above else -1.0
            nan = gx != gx
            result = tol if nan else 0.5 * (lo + hi)
            if (hi - lo <= 0.5 * tol) or nan:
                break
    # the bisection's answer: the middle of the cell k 2^-steps .. (k+1) 2^-steps with the root
    if result != tol:
        cells = 2.0 ** steps
        k = _clip(np.floor(result * cells), 0.0, cells - 1)
        if k > 0 and _share_rhs(kind, k / cells, p0, p1, p2, p3, p4, p5) - k / cells < 0:
            k -= 1
        if k < cells - 1 and (_share_rhs(kind, (k + 1) / cells, p0, p1, p2, p3, p4, p5)
                              - (k + 1) / cells >= 0):
            k += 1
        result = (k + 0.5) / cells
    return result


# ----------------------------------------------------------------------------------------------
# One pass of the model, given the current estimates of the coupled quantities
# ----------------------------------------------------------------------------------------------


@njit(**_JIT)
def _first_lock(acc, weight, V, p_ab, w_abort, w_mmap, pb):
    """The first attempt's lock: returns (prob under VMA lock, prob under mmap_lock)."""
    p_vma = V * (1 - p_ab)
    p_abort = V * p_ab
    p_mmap = 1 - V
    acc[ABORTS] += weight * p_abort
    acc[MMAP_ACQ] += weight * (p_abort + p_mmap)
    acc[MMAP_WAIT] += weight * (p_abort * w_abort + p_mmap * w_mmap)
    acc[MMAP_SLOW] += weight * (p_abort + p_mmap * pb)
    acc[LATENCY] += weight * (p_abort * w_abort + p_mmap * w_mmap)
    return p_vma, p_abort + p_mmap


@njit(**_JIT)
def _hold(acc, weight, is_vma, mean, second, long):
    """A fault-lock hold of the given mean/second moment, weight = expected count."""
    wv = weight * is_vma
    wm = weight * (1 - is_vma)
    acc[VMA_N] += wv
    acc[VMA_S] += wv * mean
    acc[VMA_S2] += wv * second
    if long:
        acc[HOLD_LONG_N] += wm
        acc[HOLD_LONG_S] += wm * mean
        acc[HOLD_LONG_S2] += wm * second
    else:
        acc[HOLD_SHORT_N] += wm
        acc[HOLD_SHORT_S] += wm * mean
        acc[HOLD_SHORT_S2] += wm * second


@njit(**_JIT)
def _second_lock(acc, weight, from_vma, rV, p_ab, w_abort, w_mmap, pb, q_v, q_m):
    """The lock a retry takes; returns (prob it holds the VMA lock, its window's success q)."""
    again = from_vma * rV
    p_vma = again * (1 - p_ab)
    p_abort = again * p_ab
    p_mmap = 1 - again
    acc[ABORTS] += weight * p_abort
    acc[MMAP_ACQ] += weight * (p_abort + p_mmap)
    wait = p_abort * w_abort + p_mmap * w_mmap
    acc[MMAP_WAIT] += weight * wait
    acc[MMAP_SLOW] += weight * (p_abort + p_mmap * pb)
    acc[LATENCY] += weight * wait
    q = again * q_v + (1 - again) * q_m
    return p_vma, q


@njit(**_JIT)
def _refault_holding(acc, weight, p_vma2, c_f, t_io, w, read_hold, read_hold2):
    """A TRIED retry found its folio reclaimed: it reads again holding its lock."""
    acc[REFAULTS] += weight
    acc[MISSES] += weight
    acc[MAJORS] += weight
    acc[READS] += weight
    acc[WAKES] += weight
    acc[CPU] += weight * 2 * c_f
    acc[LATENCY] += weight * (2 * c_f + t_io + w)
    acc[READS_HOLDING_VMA] += weight * p_vma2
    acc[READS_HOLDING_MMAP] += weight * (1 - p_vma2)
    _hold(acc, weight, p_vma2, read_hold, read_hold2, True)


@njit(**_JIT)
def _model_pass(xi, prob, mass, count, st, acc, io):
    """analytic._model_pass for one element: fills ``acc`` (per fault) and ``io`` (storage:
    read_service, read_wait, read_wait_p, read_time, read_time_m2, pages_per_read); returns
    (miss, fault_rate, latency)."""
    c_f = xi[FAULT_CPU_TIME]
    w = xi[WAKEUP_LATENCY]
    wc = st[CPU_WAIT]                          # CPU wait of a woken thread
    gw = w + wc                                # wake-up to running
    t_io = st[READ_TIME]                       # device wait + service (for the page model)
    lam = st[ACCESS_RATE]
    p_ab = st[ABORT]
    pb, rb = st[BLOCK], st[BLOCK_RESIDUAL]
    rab = st[ABORT_RESIDUAL]
    q_m, q_v = st[Q_MMAP], st[Q_VMA]

    # ---- pages --------------------------------------------------------------------------------
    rho = _safe_div((xi[READAROUND] - 1) * st[READ_RATE], xi[FILE_PAGES], 0.0)
    th_c = xi[RECLAIM_RATE_CACHED]
    th_m = xi[RECLAIM_RATE_MAPPED]
    if math.isfinite(xi[CAPACITY]):
        extra = _eviction_hazard(xi, lam, prob, count, rho, th_c, th_m)
        th_c = th_c + extra
        th_m = th_m + extra
    t_f = c_f + t_io + gw + c_f
    s_absent = 0.0
    s_cached = 0.0
    s_fault_locked = 0.0
    s_readaround_locked = 0.0
    s_untouched_mass = 0.0
    u_absent = 0.0
    u_untouched_count = 0.0
    for k in range(prob.shape[0]):
        a = lam * prob[k]
        w_ab, w_fl, w_ra, w_ca, w_ma = _page_state_weights(a, rho, th_c, th_m, t_f, t_io)
        total = w_ab + w_fl + w_ra + w_ca + w_ma
        if total <= 0:                         # a page never accessed (a = 0, no reclaim)
            s_untouched_mass += mass[k]
            u_untouched_count += count[k]
            continue
        by_mass = mass[k] / total
        by_count = count[k] / total
        s_absent += by_mass * w_ab
        s_cached += by_mass * w_ca
        s_fault_locked += by_mass * w_fl
        s_readaround_locked += by_mass * w_ra
        u_absent += by_count * w_ab
    fs, ss = xi[FILE_SHARE], 1.0 - xi[FILE_SHARE]
    io_phase = _safe_div(c_f + t_io, c_f + t_io + gw + c_f, 0.0)
    locked_fault = s_fault_locked
    per_major = fs * (s_absent + s_untouched_mass)
    per_minor = fs * s_cached
    per_join_io = fs * (locked_fault * io_phase + s_readaround_locked)
    per_join_up = fs * locked_fault * (1 - io_phase)
    per_zram = 0.0
    absent_uniform = u_absent + u_untouched_count
    if xi[SWAP_PAGES] > 0:     # swap pages: no read-around; locked while zram decompresses
        t_z = xi[ZRAM_LATENCY] + c_f
        s_zram = 0.0
        for k in range(prob.shape[0]):
            a = lam * prob[k]
            ws_ab, ws_fl, ws_ra, ws_ca, ws_ma = _page_state_weights(a, 0.0, th_c, th_m, t_z, 0.0)
            total_s = ws_ab + ws_fl + ws_ma
            if total_s <= 0:
                s_zram += mass[k]
            else:
                s_zram += mass[k] / total_s * (ws_ab + ws_fl)
        per_zram = ss * s_zram
    walking = xi[WALK] > 0
    followers_n = 0.0
    in_read_w = 0.0
    if walking:
        (followers_n, per_major, per_join_io, per_join_up, per_minor, per_zram, _res,
         in_read_w) = _group_walk(xi, st, c_f, gw, t_io, st[READ_TIME_M2])
        absent_uniform = 1.0
    miss = per_major + per_minor + per_join_io + per_join_up + per_zram

    # ---- storage at this access rate (reads per fault from the previous pass) -----------------
    _storage(xi, lam * miss * st[READS_PER_FAULT], absent_uniform, io)
    t_io, t_io2 = io[3], io[4]

    # ---- the fault path of each policy --------------------------------------------------------
    V, dV, dM = xi[USE_VMA_LOCK], xi[DROP_ON_VMA], xi[DROP_ON_MMAP]
    rV, up = xi[RETRY_ON_VMA], xi[UPTODATE_WAIT]
    tried_major = xi[TRIED_AFTER_MAJOR]
    limit = xi[RETRY_LIMIT]
    w_mmap = pb * (rb + w)
    w_abort = rab + w
    acc[:] = 0.0
    read_hold = c_f + t_io + gw + c_f
    read_hold2 = (c_f + gw + c_f) ** 2 + 2 * (c_f + gw + c_f) * t_io + t_io2
    miss_div = miss if miss > 0 else 1.0

    # -- class: minor faults (cached folio) and zram swap-ins: no retry --------------------------
    for j in range(2):
        if j == 0:
            y, work = per_minor / miss_div, c_f
        else:
            y, work = per_zram / miss_div, xi[ZRAM_LATENCY] + c_f
        p_vma, p_m = _first_lock(acc, y, V, p_ab, w_abort, w_mmap, pb)
        acc[LATENCY] += y * work
        acc[CPU] += y * work
        _hold(acc, y * p_vma, 1.0, work, work**2, False)
        _hold(acc, y * p_m, 0.0, work, work**2, False)
        if j == 1:
            acc[MAJORS] += y
            acc[ZRAM_CPU] += y * xi[ZRAM_LATENCY]

    # group walks: the folio lock passed along a chain of wake-ups (see analytic._model_pass)
    stampede_wakes = 0.0
    if walking:
        joiner_drops = V * dV + (1 - V) * dM
        contenders = 1 + followers_n * in_read_w * joiner_drops
        stampede_wakes = contenders - 1
    stampede = stampede_wakes * (w + c_f)

    # -- class: major file faults ---------------------------------------------------------------
    y = per_major / miss_div
    acc[MAJORS] += y
    p_vma1, p_mmap1 = _first_lock(acc, y, V, p_ab, w_abort, w_mmap, pb)
    for j in range(2):
        if j == 0:
            p_branch, is_vma, drop = p_vma1, 1.0, dV
        else:
            p_branch, is_vma, drop = p_mmap1, 0.0, dM
        yb = y * p_branch
        # no drop: wait for the read holding the lock
        keep = yb * (1 - drop)
        acc[READS] += keep
        acc[WAKES] += keep
        acc[CPU] += keep * 2 * c_f
        acc[LATENCY] += keep * (2 * c_f + t_io + w)
        acc[READS_HOLDING_VMA] += keep * is_vma
        acc[READS_HOLDING_MMAP] += keep * (1 - is_vma)
        _hold(acc, keep, is_vma, read_hold, read_hold2, True)
        # drop: submit, release, read, wake, retry
        dr = yb * drop
        acc[READS] += dr
        acc[RETRIES] += dr
        acc[RETRY_IO_WAITS] += dr
        acc[WAKES] += dr
        acc[CPU] += dr * 2 * c_f
        acc[LATENCY] += dr * (2 * c_f + t_io + w + stampede)
        acc[WAKES] += dr * stampede_wakes
        _hold(acc, dr, is_vma, c_f, c_f**2, False)
        tried2 = _max(_max(1 - is_vma, tried_major), 1.0 if limit == 1 else 0.0)
        p_vma2, q2 = _second_lock(acc, dr, is_vma, rV, p_ab, w_abort, w_mmap, pb, q_v, q_m)
        acc[CPU] += dr * q2 * c_f
        acc[LATENCY] += dr * q2 * c_f
        _hold(acc, dr * q2, p_vma2, c_f, c_f**2, False)
        miss2 = dr * (1 - q2)
        _refault_holding(acc, miss2 * tried2, p_vma2, c_f, t_io, w, read_hold, read_hold2)
        loose = miss2 * (1 - tried2)
        if loose > 0:
            _untried_loop(acc, loose, p_vma2, st, c_f, t_io, w, w_mmap, pb, limit,
                          read_hold, read_hold2)

    # -- class: joiners while the read is in flight (not uptodate) -----------------------------
    residual_io = _safe_div((c_f + t_io) ** 2 + (t_io2 - t_io**2), 2 * (c_f + t_io), 0.0)
    residual_up = (gw + c_f) / 2
    if walking:
        residual_io = _group_walk(xi, st, c_f, gw, t_io, t_io2)[6]
    for jc in range(2):
        if jc == 0:
            y, residual, uptodate = per_join_io / miss_div, residual_io, 0.0
        else:
            y, residual, uptodate = per_join_up / miss_div, residual_up, 1.0
        p_vma1, p_mmap1 = _first_lock(acc, y, V, p_ab, w_abort, w_mmap, pb)
        for j in range(2):
            if j == 0:
                p_branch, is_vma, drop = p_vma1, 1.0, dV
            else:
                p_branch, is_vma, drop = p_mmap1, 0.0, dM
            yb = y * p_branch
            in_place = _max(1 - drop, up * uptodate)
            keep = yb * in_place
            acc[WAKES] += keep
            acc[CPU] += keep * c_f
            acc[LATENCY] += keep * (residual + w + c_f)
            _hold(acc, keep, is_vma, residual + gw + c_f, (residual + gw + c_f) ** 2,
                  uptodate == 0)
            dr = yb * (1 - in_place)
            acc[RETRIES] += dr
            acc[RETRY_IO_WAITS] += dr * (1 - uptodate)
            acc[WAKES] += dr
            acc[CPU] += dr * c_f
            acc[LATENCY] += dr * (residual + w + c_f + stampede * (1 - uptodate))
            acc[WAKES] += dr * stampede_wakes * (1 - uptodate)
            p_vma2, q2 = _second_lock(acc, dr, is_vma, rV, p_ab, w_abort, w_mmap, pb, q_v, q_m)
            acc[CPU] += dr * q2 * c_f
            acc[LATENCY] += dr * q2 * c_f
            _hold(acc, dr * q2, p_vma2, c_f, c_f**2, False)
            if uptodate == 0:
                _refault_holding(acc, dr * (1 - q2), p_vma2, c_f, t_io, w, read_hold,
                                 read_hold2)
            else:
                acc[CPU] += dr * (1 - q2) * c_f
                acc[LATENCY] += dr * (1 - q2) * c_f
                _hold(acc, dr * (1 - q2), p_vma2, c_f, c_f**2, False)

    # ---- rates ----------------------------------------------------------------------------------
    fault_rate = lam * miss
    latency = acc[LATENCY] + acc[WAKES] * wc + acc[MMAP_SLOW] * st[CPU_WAIT_BATCH]
    return miss, fault_rate, latency


@njit(**_JIT)
def _group_walk(xi, st, c_f, gw, t_io, t_io2):
    """analytic._group_walk for a walking element: (followers, per major, join_io, join_up,
    minor, zram, residual_io, in_read)."""
    threads = xi[THREADS]
    group = xi[GROUP_SIZE] if xi[GROUP_SIZE] > 0 else threads   # 0: every thread
    followers = 1 - 1 / group
    to_read = c_f + t_io
    think = st[THINK] + st[CPU_WAIT]
    drift = think**2 / _max(to_read, 1e-12)
    lag = (think**4 + drift**4) ** 0.25
    read_cv = _safe_div(math.sqrt(_max(t_io2 - t_io**2, 0.0)), to_read, 0.0)
    to_map = to_read + gw + c_f
    map_cv = _safe_div(math.sqrt(_max(t_io2 - t_io**2, 0.0)), to_map, 0.0)
    in_read, residual_io = _lag_inside_pair(to_read, read_cv, lag)
    in_fault = _max(_lag_inside_probability(to_map, map_cv, lag), in_read)
    lead = 1 - followers
    return (group - 1, lead + 0.0, followers * in_read, followers * (in_fault - in_read), 0.0,
            0.0, residual_io, in_read)


@njit(**_JIT)
def _resident(extra, lam, prob, count, rho, th_c, th_m, pages):
    total_resident = 0.0
    for k in range(prob.shape[0]):
        a = lam * prob[k]
        w_ab, w_fl, w_ra, w_ca, w_ma = _page_state_weights(a, rho, th_c + extra, th_m + extra,
                                                           0.0, 0.0)
        total = w_ab + w_ca + w_ma
        absent = w_ab / total if total > 0 else 1.0
        total_resident += count[k] * (1 - absent)
    return pages * total_resident


@njit(**_JIT)
def _eviction_hazard(xi, lam, prob, count, rho, th_c, th_m):
    """analytic._eviction_hazard for one bounded element (bisection in log hazard)."""
    pages = xi[TOTAL_PAGES]
    cap = xi[CAPACITY]
    lo = -12.0
    hi = 12.0
    for _ in range(_EVICTION_STEPS):
        mid = 0.5 * (lo + hi)
        if _resident(10.0**mid, lam, prob, count, rho, th_c, th_m, pages) > cap:
            lo = mid
        else:
            hi = mid
    return 10.0**hi if _resident(0.0, lam, prob, count, rho, th_c, th_m, pages) > cap else 0.0


@njit(**_JIT)
def _untried_loop(acc, loose, p_vma2, st, c_f, t_io, w, w_mmap, pb, limit, read_hold,
                  read_hold2):
    """analytic._untried_loop: a retry that is not TRIED found its folio reclaimed."""
    q_m, q_v = st[Q_MMAP], st[Q_VMA]
    acc[REFAULTS] += loose
    acc[MISSES] += loose
    # from mmap_lock
    lm = loose * (1 - p_vma2)
    acc[MAJORS] += lm
    acc[READS] += lm
    acc[RETRIES] += lm
    acc[RETRY_IO_WAITS] += lm
    acc[WAKES] += lm
    acc[CPU] += lm * 2 * c_f
    acc[LATENCY] += lm * (2 * c_f + t_io + w)
    _hold(acc, lm, 0.0, c_f, c_f**2, False)
    acc[MMAP_ACQ] += lm
    acc[MMAP_WAIT] += lm * w_mmap
    acc[MMAP_SLOW] += lm * pb
    acc[LATENCY] += lm * w_mmap
    acc[CPU] += lm * q_m * c_f
    acc[LATENCY] += lm * q_m * c_f
    _hold(acc, lm * q_m, 0.0, c_f, c_f**2, False)
    _refault_holding(acc, lm * (1 - q_m), 0.0, c_f, t_io, w, read_hold, read_hold2)
    # from the VMA lock: a loop of fresh windows
    lv = loose * p_vma2
    n_attempts = _max(limit, 1.0) if limit > 0 else _INF
    if math.isfinite(n_attempts):
        log_miss = math.log1p(-_min(1 - q_v, 1 - 1e-300))
        reads = -math.expm1(n_attempts * log_miss) / q_v
        held = math.exp((n_attempts - 1) * log_miss)
    else:
        reads = 1.0 / q_v
        held = 0.0
    if not q_v > 0:
        reads = _INF
    dropped = reads - held
    acc[MAJORS] += lv * reads
    acc[READS] += lv * reads
    acc[REFAULTS] += lv * (reads - 1)
    acc[MISSES] += lv * (reads - 1)
    acc[RETRIES] += lv * dropped
    acc[RETRY_IO_WAITS] += lv * dropped
    acc[WAKES] += lv * reads
    acc[CPU] += lv * (reads * c_f + dropped * c_f + c_f)
    acc[LATENCY] += lv * (reads * (c_f + t_io + w) + dropped * c_f + c_f)
    _hold(acc, lv * dropped, 1.0, c_f, c_f**2, False)
    _hold(acc, lv * (1 - held), 1.0, c_f, c_f**2, False)
    acc[READS_HOLDING_VMA] += lv * held
    _hold(acc, lv * held, 1.0, read_hold, read_hold2, True)


# ----------------------------------------------------------------------------------------------
# The coupled sub-models: storage, mmap_lock and the VMA locks, CPUs
# ----------------------------------------------------------------------------------------------


@njit(**_JIT)
def _storage(xi, read_rate, absent_uniform, io):
    """analytic._storage; fills ``io``: read_service, read_wait, read_wait_p, read_time,
    read_time_m2, pages_per_read."""
    threads = xi[THREADS]
    n_others = threads - 1
    slots = xi[IO_PARALLELISM]
    io_latency = xi[IO_LATENCY]
    pages = 1 + (xi[READAROUND] - 1) * absent_uniform
    service = io_latency + xi[IO_PAGE_TIME] * (pages - 1)
    for _ in range(3):                                  # depth seen depends on the service time
        busy = _clip(read_rate * service / threads, 0.0, 1.0)
        depth = n_others * busy
        if slots > 0:
            depth = depth - _fs_excess(n_others, busy, slots - 1)
        service = _read_service_time(io_latency, xi[IO_DEPTH_SLOPE], depth, xi[IO_PAGE_TIME],
                                     pages)
    cv = xi[IO_CV] * io_latency / service
    wait = 0.0
    at_device = _clip(read_rate * service / threads, 0.0, 1.0) + wait
    if slots > 0:
        share = _share_fixed_point(_RHS_STORAGE, read_rate, service, slots, n_others, cv,
                                   threads, False, 0.0)
        wait = _finite_source_wait(slots, n_others, share, service, cv)
        at_device = share
    p_wait = _fs_tail(n_others, at_device, _max(slots, 1.0)) if slots > 0 else 0.0
    wait_m2 = _safe_div(2 * wait**2, p_wait, 0.0)
    total = service + wait
    m2 = service**2 * (1 + cv**2) + 2 * service * wait + wait_m2
    io[0] = service
    io[1] = wait
    io[2] = p_wait
    io[3] = total
    io[4] = m2
    io[5] = pages


@njit(**_JIT)
def _writer_rates(xi, st):
    """analytic._writer_rates: (ops, acquisitions, lock, cpu_holds, cpu_gaps)."""
    k = xi[WRITER_LOCKS_PER_OP]
    gap = xi[WRITER_GAP_CPU]
    op_time = k * (gap + st[WRITER_ACQUISITION])
    flat_out = 1.0 / _max(op_time, 1e-12)
    per_thread = _min(xi[WRITER_OP_RATE], flat_out) if xi[PERIODIC] > 0 else flat_out
    loop = xi[WRITER_LOOP] > 0
    ops = xi[WRITER_THREADS] * per_thread if loop else xi[WRITER_RATE]
    acquisitions = ops * k if loop else xi[WRITER_RATE]
    lock = 0.0 if xi[WRITER_PROCESS] > 0 else acquisitions
    return ops, acquisitions, lock, acquisitions * xi[WRITER_HOLD], acquisitions * gap


@njit(**_JIT)
def _cpu(xi, miss, acc, access_rate, batch, cpu_holds, cpu_gaps, guess):
    """analytic._cpu: (single, batch_wait, writer, think_time, single_p, thinking)."""
    cpus = xi[CPUS]
    limited = cpus > 0
    n = xi[THREADS]
    think = xi[THINK_TIME]
    u_fault = access_rate * miss * acc[CPU]                     # CPUs busy with fault work
    u_writer = (cpu_holds                                       # CPUs busy with writers and
                + xi[READER_RATE] * xi[READER_HOLD])            # other mmap_lock readers
    low_servers = _max(cpus - u_fault - u_writer - cpu_gaps, 1e-9)
    thinking = 0.0
    if limited and n > low_servers:                             # fewer threads: no queue
        thinking = _share_fixed_point(_RHS_CPU, access_rate, think, n, low_servers, 0.0, 0.0,
                                      True, guess)
    queued = _fs_excess(n - 1, thinking, low_servers - 1)
    stretch = 1 + queued / low_servers
    think_time = think * stretch if limited else think
    demand = think + miss * acc[CPU]                             # CPU time per access
    sleeps = miss * (acc[WAKES] + acc[MMAP_SLOW]) + (1.0 if xi[IDLE_TIME] > 0 else 0.0)
    run = _safe_div(demand, sleeps, 0.0) if sleeps > 0 else 0.0
    cpus1 = cpus if limited else 1.0
    tail = (queued + 1) * run / cpus1                           # wait at the run queue's tail
    run_fault = _safe_div(miss * acc[CPU], sleeps, 0.0)          # fault work between two sleeps
    front = run_fault / cpus1                                   # wait at the run queue's front
    if not limited:
        return 0.0, 0.0, 0.0, think_time, 0.0, thinking
    busy_high = _clip((u_fault + u_writer) / n, 0.0, 1.0)
    no_victim = _fs_tail(n - 1, busy_high, cpus1)
    single = no_victim * front
    single_p = no_victim
    writer = _fs_tail(n, busy_high, cpus1) * front
    if xi[WRITER_LOOP] > 0:
        queue_nonempty = _fs_tail(n, thinking, np.floor(low_servers) + 1)
        writer = _max(writer, queue_nonempty * tail)
    size = 1 + batch
    big = _max(np.ceil(8 * size + 64), n)
    beyond = _fs_excess(big, _safe_div(batch, big, 0.0), cpus - 1) / size
    beyond = _clip(beyond, 0.0, 1.0)
    batch_wait = single + beyond * front * (1 + 0.5 * beyond * size)
    return single, batch_wait, writer, think_time, single_p, thinking


@njit(**_JIT)
def _mean_second(n, s, s2):
    return _safe_div(s, n, 0.0), _safe_div(s2, n, 0.0)


@njit(**_JIT)
def _locks(xi, acc, fault_rate, st, cpu_wait, cpu_wait_writer, lk):
    """analytic._locks; fills ``lk``: abort, abort_residual, block, block_residual, block_open,
    block_open_residual, writer_util, writer_queued, write_wait, writer_hold, batch."""
    w = xi[WAKEUP_LATENCY]
    vmas = xi[VMAS]
    n_w = xi[WRITER_THREADS]
    lam_w = st[WRITER_RATE_]
    h_w = xi[WRITER_HOLD]
    var_h = (xi[WRITER_CV] * h_w) ** 2
    s1, sf = xi[WRITER_VMA_SHARE], xi[WRITER_FORK_SHARE]
    s0 = 1 - s1 - sf
    wake = w + st[CPU_WAIT_BATCH]          # a batch-woken reader, until it runs
    wake_w = w + cpu_wait_writer           # a woken writer
    spins = xi[SPIN] > 0
    linux = xi[LINUX] > 0
    writer_loop = xi[WRITER_LOOP] > 0
    writer_pref = xi[WRITER_PREF] > 0

    # VMA-lock holders of one VMA (M/G/infinity): the drain a writer waits for
    lam_v = fault_rate * acc[VMA_N] / vmas
    m_v, m2_v = _mean_second(acc[VMA_N], acc[VMA_S], acc[VMA_S2])
    load_v = lam_v * m_v
    res_v = _safe_div(m2_v, 2 * m_v, 0.0)
    drain1 = _nan_to_num(_mginf_max_residual(_safe_div(load_v, res_v, 0.0), res_v),
                         0.0, _BIG, -_BIG)
    drain1 = drain1 + (-math.expm1(-load_v)) * wake_w          # it sleeps, then is woken
    hold_one = h_w + drain1
    hold_fork = h_w + vmas * drain1
    locked_fork = h_w + (vmas + 1) / 2 * drain1
    hold_mean = s0 * h_w + s1 * hold_one + sf * hold_fork
    hold_m2 = (s0 * (h_w**2 + var_h) + s1 * (hold_one**2 + var_h + drain1**2)
               + sf * (hold_fork**2 + var_h + (vmas * drain1) ** 2))
    abort = _vma_abort_probability(lam_w, s1, hold_one, vmas, sf, locked_fork)
    abort = _min(_nan_to_num(abort, 0.0, _BIG, -_BIG), 0.99)
    one_w = s1 / vmas * hold_one
    fork_w = sf * locked_fork
    res_one = _safe_div(hold_one**2 + var_h + drain1**2, 2 * hold_one, 0.0)
    res_fork = _safe_div(locked_fork**2 + var_h + (vmas * drain1) ** 2, 2 * locked_fork, 0.0)
    abort_residual = _safe_div(one_w * res_one + fork_w * res_fork, one_w + fork_w, 0.0)

    # mmap_lock read holders: short (CPU work) and long (a read waited for holding it)
    lam_bg, m_bg = xi[READER_RATE], xi[READER_HOLD]
    slow = _safe_div(fault_rate * acc[MMAP_SLOW] + lam_bg * st[BLOCK_OPEN],
                     fault_rate * acc[MMAP_ACQ] + lam_bg, 0.0)
    extra = slow * wake
    lam_s = fault_rate * acc[HOLD_SHORT_N] + lam_bg
    m_s = _safe_div(fault_rate * acc[HOLD_SHORT_S] + lam_bg * m_bg, lam_s, 0.0)
    m2_s = _safe_div(fault_rate * acc[HOLD_SHORT_S2] + lam_bg * 2 * m_bg**2, lam_s, 0.0)
    m2_s = m2_s + 2 * m_s * extra + slow * wake**2
    m_s = m_s + extra
    lam_l = fault_rate * acc[HOLD_LONG_N]
    m_l, m2_l = _mean_second(acc[HOLD_LONG_N], acc[HOLD_LONG_S], acc[HOLD_LONG_S2])
    m2_l = m2_l + 2 * m_l * extra + slow * wake**2
    m_l = m_l + extra
    lam_r = lam_s + lam_l

    # writers: the hold (chained), and the time readers are shut out
    wakes_held = st[WRITER_QUEUED] * wake_w if xi[HANDOVER] > 0 else 0.0
    hold_x = hold_mean + wakes_held                          # exclusive, per writer
    hold_x2 = hold_m2 + 2 * hold_mean * wakes_held + wakes_held * wake_w
    rho_h = lam_w * hold_x
    empty = _min(rho_h, 0.99)                                # writers keep the lock empty
    open_scale = 1 / (1 - empty)
    load_s, load_l = lam_s * m_s * open_scale, lam_l * m_l * open_scale
    res_s, res_l = _safe_div(m2_s, 2 * m_s, 0.0), _safe_div(m2_l, 2 * m_l, 0.0)
    drain_s = _nan_to_num(_mginf_max_residual(_safe_div(load_s, res_s, 0.0), res_s),
                          0.0, _BIG, -_BIG)
    drain_l = _nan_to_num(_mginf_max_residual(_safe_div(load_l, res_l, 0.0), res_l),
                          0.0, _BIG, -_BIG)
    present_l = -math.expm1(-load_l)
    present_s = -math.expm1(-load_s)
    busy_s = _nan_to_num(_mginf_busy_period(_max(lam_s * open_scale, 1e-300), m_s),
                         0.0, _BIG, -_BIG)
    spin_limit = (20.0 + _min(load_s + load_l, 30.0)) * 0.5e-6
    short_queue = present_s * math.exp(-spin_limit / _max(busy_s, 1e-300))
    if spins:
        p_queue_r = present_l + (1 - present_l) * short_queue
        drain_q = drain_l + (1 - present_l) * short_queue * drain_s
    else:
        p_queue_r = -math.expm1(-(load_s + load_l))
        drain_q = drain_l + (1 - present_l) * drain_s
    if not xi[DRAIN_BLOCKS] > 0:
        drain_q = 0.0
    chained = _safe_div(lam_w, lam_w + lam_r, 0.0)
    sharing = 1 + lam_w * _safe_div(drain_q, p_queue_r, 0.0) * chained
    drain_q = drain_q / sharing
    steal = -math.expm1(-lam_r * wake_w) if linux else 0.0
    long_share = _safe_div(lam_l, lam_r, 0.0)
    batch_drain = long_share * _safe_div(drain_l, present_l, 0.0) + (1 - long_share) * m_s
    cycle = wake + batch_drain + wake_w
    steals = np.ceil(_safe_div(xi[HANDOFF_TIMEOUT], cycle, 1.0)) + 1
    steal_c = _min(steal, 1 - 1e-12)
    steal_extra = cycle * steal_c * -math.expm1(steals * math.log(steal_c)) / (1 - steal_c)
    queued = p_queue_r if linux else 1.0
    excl = drain_q + queued * steal_extra + hold_x
    excl2 = (hold_x2 + 2 * drain_q * hold_x + 2 * drain_q**2
             + 2 * queued * steal_extra * (drain_q + hold_x) + queued * steal_extra**2)
    rho_w = _writer_utilisation(lam_w, excl)
    shut = drain_q + hold_x
    shut2 = hold_x2 + 2 * drain_q * hold_x + 2 * drain_q**2
    block = _min(_writer_utilisation(lam_w, shut), 1.0)
    rho_c = _min(rho_h, 0.999)
    hold_b = _safe_div(hold_x, 1 - rho_c, 0.0)
    hold_b2 = _safe_div(hold_x2, (1 - rho_c) ** 3, 0.0)
    spin_shut = drain_q + hold_b
    spin_shut2 = hold_b2 + 2 * drain_q * hold_b + 2 * drain_q**2
    if spins:
        block_residual = _safe_div(spin_shut2, 2 * spin_shut, 0.0)
    elif writer_pref:
        block_residual = _mg1_busy_period_residual(lam_w, shut, math.sqrt(_max(
            _safe_div(shut2, shut**2, 0.0) - 1, 0.0)))
    else:
        block_residual = _safe_div(shut2, 2 * shut, 0.0)
    block_residual = _nan_to_num(block_residual, 0.0, 0.0, -_BIG)
    if spins:
        period = spin_shut
    elif writer_pref:
        period = _safe_div(shut, 1 - _min(_writer_utilisation(lam_w, shut), 0.999), 0.0)
    else:
        period = shut
    chain = _max(n_w, 1.0) if xi[PERIODIC] > 0 else 1.0
    if writer_loop:
        period = drain_q + chain * hold_x
        period_cv = _safe_div(math.sqrt(_max(hold_x2 - hold_x**2, 0.0)), hold_x,
                              0.0) / math.sqrt(chain)
        periods = lam_w / chain
    else:
        period_cv = math.sqrt(_max(_safe_div(2 * block_residual, period, 0.0) - 1, 0.0))
        periods = _safe_div(block, period, 0.0)
    per_thread = fault_rate * acc[MMAP_ACQ] / xi[THREADS]
    blocked = st[BLOCK] * (st[BLOCK_RESIDUAL] + wake)         # per acquisition, last pass
    gap = 1 / per_thread - blocked if per_thread > 0 else _INF
    gap = _max(gap, 1e-3 * _safe_div(1.0, per_thread, _INF))
    closed = per_thread * period > 1e-9
    block_thread, residual_thread = block, block_residual
    if closed:
        inside, residual = _lag_inside_pair(period, period_cv, gap)
        block_thread = _min(periods * inside / per_thread, 1.0)
        if inside > 0:
            residual_thread = residual

    # the writer's own wait
    excl_cv = math.sqrt(_max(_safe_div(excl2, excl**2, 0.0) - 1, 0.0))
    if not lam_w > 0:
        pk = 0.0
    elif not writer_loop:
        pk = _mg1_wait(lam_w, excl, excl_cv)
    elif xi[PERIODIC] > 0:
        pk = (n_w - 1) / 2 * excl
    else:
        at_lock = _clip(_safe_div(lam_w * excl, n_w, 0.0), 0.0, 1.0)
        pk = _finite_source_wait(1.0, _max(n_w - 1, 0.0), at_lock, excl, excl_cv)
    spin_wait = present_s * (1 - present_l) * _min(busy_s, spin_limit)
    writer_busy = _min(rho_w, 1.0)
    any_wait = 1 - (1 - writer_busy) * math.exp(-(load_s + load_l))
    if linux:
        write_wait = pk + spin_wait + p_queue_r * (_safe_div(drain_q, p_queue_r, 0.0) + wake_w
                                                   + steal_extra)
    else:
        reader_pref_drain = present_s * busy_s + present_l * _safe_div(drain_l, present_l, 0.0)
        write_wait = (pk + (drain_q if xi[DRAIN_BLOCKS] > 0 else reader_pref_drain)
                      + any_wait * wake_w)
    blocked_rate = fault_rate * acc[MMAP_ACQ] * block_thread + lam_bg * block
    batch_size = _safe_div(blocked_rate, periods, 0.0)
    comeback = ((1 - 1 / xi[WRITER_LOCKS_PER_OP]) if xi[PERIODIC] > 0 else 1.0) * xi[WRITER_LOOP]
    batch_hold = (wake + long_share * _safe_div(drain_l, present_l, 0.0)
                  + (1 - long_share) * (m_s - extra))
    write_wait = write_wait + comeback * -math.expm1(-batch_size) * _max(
        batch_hold - xi[WRITER_GAP_CPU], 0.0)
    writer_queued = p_queue_r if linux else any_wait
    lk[0] = abort
    lk[1] = abort_residual
    lk[2] = block_thread
    lk[3] = residual_thread
    lk[4] = block
    lk[5] = block_residual
    lk[6] = _min(rho_w, 1.0)
    lk[7] = writer_queued
    lk[8] = write_wait
    lk[9] = hold_mean
    lk[10] = lam_r * (hold_x + spin_wait)


@njit(**_JIT)
def _pass(xi, prob, mass, count, st, new, acc, io, lk):
    """analytic._pass for one element: fills ``new`` (every state quantity but access_rate)
    and returns the target access rate."""
    miss, fault_rate, latency = _model_pass(xi, prob, mass, count, st, acc, io)
    ops, acquisitions, lock, cpu_holds, cpu_gaps = _writer_rates(xi, st)
    cpu_wait, cpu_wait_batch, cpu_wait_writer, think, cpu_wait_p, thinking = _cpu(
        xi, miss, acc, st[ACCESS_RATE], st[BATCH], cpu_holds, cpu_gaps, st[THINKING_SHARE])
    _locks(xi, acc, fault_rate, st, cpu_wait, cpu_wait_writer, lk)
    if xi[WRITER_PROCESS] > 0:
        acquisition = cpu_wait_writer + xi[WRITER_HOLD]
    else:
        acquisition = cpu_wait_writer + (lk[8] + lk[9])
    gw = xi[WAKEUP_LATENCY] + cpu_wait
    q_mmap = _refault_success_window(xi[RECLAIM_RATE_CACHED], xi[FAULT_CPU_TIME], lk[2], gw,
                                     lk[3])
    q_vma = _refault_success_window(xi[RECLAIM_RATE_CACHED], xi[FAULT_CPU_TIME], lk[0], gw,
                                    lk[1])
    idle = xi[IDLE_TIME] + xi[WAKEUP_LATENCY] + cpu_wait if xi[IDLE_TIME] > 0 else 0.0
    target = xi[THREADS] / (think + idle + miss * latency)
    new[READ_RATE] = fault_rate * acc[READS]
    new[READ_TIME] = io[3]
    new[READ_TIME_M2] = io[4]
    new[READS_PER_FAULT] = acc[READS]
    new[CPU_WAIT] = cpu_wait
    new[CPU_WAIT_WRITER] = cpu_wait_writer
    new[THINK] = think
    new[CPU_WAIT_BATCH] = cpu_wait_batch
    new[CPU_WAIT_P] = cpu_wait_p
    new[BATCH] = lk[10]
    new[ABORT] = lk[0]
    new[ABORT_RESIDUAL] = lk[1]
    new[BLOCK] = lk[2]
    new[BLOCK_RESIDUAL] = lk[3]
    new[BLOCK_OPEN] = lk[4]
    new[BLOCK_OPEN_RESIDUAL] = lk[5]
    new[WRITER_UTIL] = lk[6]
    new[WRITER_QUEUED] = lk[7]
    new[Q_MMAP] = _nan_to_num(q_mmap, 1.0, _BIG, -_BIG)
    new[Q_VMA] = _nan_to_num(q_vma, 1.0, _BIG, -_BIG)
    new[WRITER_ACQUISITION] = _nan_to_num(acquisition, 0.0, 1.0, -_BIG)
    new[WRITER_RATE_] = lock
    new[THINKING_SHARE] = thinking
    return target


# ----------------------------------------------------------------------------------------------
# The fixed point (analytic._solve), one element at a time
# ----------------------------------------------------------------------------------------------


@njit(**_JIT)
def _solve_one(xi, prob, mass, count, st, iterations, tolerance, checked, damped, undamped,
               new, acc, io, lk):
    """The outer iteration of analytic._solve for one element; returns (used, converged)."""
    lo, hi = -_INF, _INF
    x_prev, value_prev = math.nan, math.nan
    for it in range(iterations):
        target = _pass(xi, prob, mass, count, st, new, acc, io, lk)
        x_now = math.log(st[ACCESS_RATE])
        value = math.log(target) - x_now
        if value > 0:
            lo = _max(lo, x_now)
        else:
            hi = _min(hi, x_now)
        # a bracket set while the other quantities were still far from consistent can exclude
        # the root: when it has collapsed but the residual has not, reopen the wrong side
        collapsed = (hi - lo < 1e-4) and (abs(value) > 10 * tolerance)
        if collapsed and value < 0:
            lo = -_INF
        if collapsed and value > 0:
            hi = _INF
        if lo > hi:
            lo, hi = -_INF, _INF
        secant = x_now - value * (x_now - x_prev) / (value - value_prev)
        candidate = secant if math.isfinite(secant) else x_now + value
        bracketed = math.isfinite(lo) and math.isfinite(hi)
        if not ((candidate > lo) and (candidate < hi)):
            candidate = 0.5 * (lo + hi) if bracketed else x_now + value
        x_prev, value_prev = x_now, value
        moved = abs(value)
        for k in checked:
            moved = _max(moved, abs(_safe_div(new[k] - st[k], abs(st[k]) + 1e-12, 0.0)))
        for k in undamped:
            st[k] = new[k]
        for k in damped:
            st[k] = 0.5 * (st[k] + new[k])
        done = (moved < tolerance) or ((hi - lo < 1e-9) and (moved - abs(value) < tolerance))
        if done:
            return it + 1, True
        st[ACCESS_RATE] = math.exp(candidate)
    return iterations, False


@njit(**_JIT)
def _solve_all(inputs, prob, mass, count, state, iterations, tolerance, checked, damped,
               undamped):
    n = inputs.shape[0]
    used = np.zeros(n, dtype=np.int64)
    converged = np.zeros(n, dtype=np.bool_)
    new = np.empty(state.shape[1])
    acc = np.zeros(_ACC_SIZE)
    io = np.zeros(6)
    lk = np.zeros(11)
    for e in range(n):
        new[:] = state[e]
        used[e], converged[e] = _solve_one(inputs[e], prob[e], mass[e], count[e], state[e],
                                           iterations, tolerance, checked, damped, undamped,
                                           new, acc, io, lk)
    return used, converged


@njit(**_JIT)
def _pass_all(inputs, prob, mass, count, state):
    n = inputs.shape[0]
    new = state.copy()
    target = np.empty(n)
    acc = np.zeros(_ACC_SIZE)
    io = np.zeros(6)
    lk = np.zeros(11)
    for e in range(n):
        target[e] = _pass(inputs[e], prob[e], mass[e], count[e], state[e], new[e], acc, io, lk)
    return new, target


# ----------------------------------------------------------------------------------------------
# Packing (numpy side)
# ----------------------------------------------------------------------------------------------

_DERIVED = ("readaround", "file_pages", "swap_pages", "file_share", "capacity", "total_pages",
            "io_cv", "writer_cv", "walk", "periodic", "writer_loop", "writer_process", "linux",
            "spin", "drain_blocks", "handover")


def pack_inputs(x) -> np.ndarray:
    """The inputs of ``analytic._Elements`` ``x`` as a float64 array (E, len(INPUTS))."""
    n = x.f["threads"].size
    out = np.empty((n, len(INPUTS)))
    for i, name in enumerate(INPUTS):
        if name in x.f:
            value = x.f[name]
        elif name in _DERIVED:
            value = getattr(x, name)
        elif name == "writer_pref":
            value = x.rwsem == "writer_pref"
        else:
            value = x.sw[name]
        out[:, i] = np.broadcast_to(np.asarray(value, dtype=float), (n,))
    return out


def pack_state(st: dict) -> np.ndarray:
    """The state dict of ``analytic._solve`` as a float64 array (E, len(STATE))."""
    return np.ascontiguousarray(np.stack([np.asarray(st[k], dtype=float) for k in STATE],
                                         axis=1))


def unpack_state(state: np.ndarray) -> dict:
    return {k: state[:, i].copy() for i, k in enumerate(STATE)}


def _nodes(x):
    return tuple(np.ascontiguousarray(np.asarray(v, dtype=float)) for v in x.nodes)


def pass_once(x, st: dict):
    """One compiled pass at the state ``st`` for every element of ``x``: (new state dict with
    ``access_rate`` unchanged, target access rate).  The debug harness's half."""
    new, target = _pass_all(pack_inputs(x), *_nodes(x), pack_state(st))
    return unpack_state(new), target


def solve(x, st: dict, iterations: int, tolerance: float, checked, undamped):
    """Run the fixed point from the state ``st`` (dict of arrays over the elements of ``x``).

    ``checked``: the state quantities whose relative change decides convergence; ``undamped``:
    those taken as they come, every other one (but the access rate, which the secant moves) is
    damped by half (``analytic._CHECKED``, ``analytic._UNDAMPED``).
    Returns (state dict at the end, iterations used per element, converged per element).
    """
    index = {name: i for i, name in enumerate(STATE)}
    damped = [i for name, i in index.items() if name not in undamped and name != "access_rate"]
    state = pack_state(st)
    used, converged = _solve_all(pack_inputs(x), *_nodes(x), state, iterations, tolerance,
                                 np.array([index[k] for k in checked]), np.array(damped),
                                 np.array([index[k] for k in undamped]))
    return unpack_state(state), used, converged
