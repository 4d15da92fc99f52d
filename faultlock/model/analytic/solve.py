"""One solve loop over (cell, policy) elements: the fixed point, then everything it implies.

For each element (compiled, the elements spread over the cores with ``prange``): the pass of
every sub-model (:func:`model_pass`: pages or walks, storage, the fault paths, writers, CPUs,
locks) is iterated to a fixed point of the coupled quantities (state ``layout.ST``).  The
access rate is found by a safeguarded secant (regula falsi) on ``F(log rate) =
log(target/rate)`` (decreasing in the rate: more load, longer cycles); the other coupled
quantities follow it, those of the locks damped by half.  A last pass at the state reached gives
the pieces (``acc``, ``io``, ``lk``, ``pc``) from which :func:`metrics` and the latency
distribution (:mod:`.distribution`) are computed, in the same loop.

Convergence: the residual and the relative change of the ``CHECKED`` quantities below
``tolerance``.  Where a station saturates at some access rate (the storage device's share, the
mmap_lock blocking, the CPU wait jump there), the target rate jumps across the rate itself:
there is no fixed point, the secant's bracket collapses onto the jump again and again while the
iterates oscillate.  That is detected (six collapses at one rate, the target over 1 % away) and
reported (``layout.JUMP``), so such an element costs ~40 passes, not the whole budget.
An element with a finite device whose rate solve fails is then solved for the device's time
share instead (:func:`solve_share`: the closed population's surplus waits at the device), the
rate solve nested inside; what still fails (``mmap_lock`` blocking that flips between none and
all) keeps the rate solve's reason.  Elements the rate solve converges never take it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .cpu import cpus
from .device import storage
from .distribution import distribution
from .fault_paths import fault_paths
from .layout import ACC, BUDGET, CHECKED, CONVERGED, IN, IO, JUMP, LK, OUT, PC, ST, UNDAMPED
from .lock import locks, writer_rates
from .numeric import (
    BIG,
    INF,
    JIT,
    clip,
    illinois_step,
    lru_retry_miss,
    mginf_busy_period,
    nan_to_num,
    refault_success_window,
    safe_div,
    vmax,
    vmin,
)
from .pages import page_classes
from .walks import walk_classes

_COLLAPSED = 1e-4        # a bracket narrower than this in log rate has collapsed
_SAME_JUMP = 0.05        # collapses closer than this in log rate are at one jump
_JUMP_COLLAPSES = 6      # collapses at one jump that make it one
_JUMP_RESIDUAL = 1e-2    # ... each with the target this far (in log) from the rate


@njit(**JIT)
def _faults(xi, prob, mass, count, st, acc, io, pc):
    """Access classes (pages or a group walk), storage at the resulting read rate, then the
    fault path of each class: returns (miss share, fault rate, mean fault latency)."""
    c_f = xi[IN.fault_cpu_time]
    gw = xi[IN.wakeup_latency] + st[ST.cpu_wait]
    t_io = st[ST.read_time]                    # device wait + service (for the page model)
    lam = st[ST.access_rate]
    followers_n = 0.0
    in_read_w = 0.0
    if xi[IN.walk] > 0:
        followers_n, in_read_w = walk_classes(xi, st, c_f, gw, t_io, st[ST.read_time_m2], pc)
    else:
        page_classes(xi, st, prob, mass, count, t_io, gw, pc)
    miss = pc[PC.major] + pc[PC.minor] + pc[PC.join_io] + pc[PC.join_up] + pc[PC.zram]
    pc[PC.miss] = miss
    # storage at this access rate (reads per fault from the previous pass)
    storage(xi, lam * miss * st[ST.reads_per_fault], pc[PC.absent_uniform], io,
            st[ST.device_share])
    fault_paths(xi, st, pc, acc, io[IO.read_time], io[IO.read_time_m2], followers_n, in_read_w)
    fault_rate = lam * miss
    pc[PC.pages_per_read] = io[IO.pages_per_read]
    # direct reclaim under the memory limit (mm/memcontrol.c: try_charge ->
    # try_to_free_mem_cgroup_pages): the thread that allocates a folio for a read (its own,
    # the read-around's, a refault's) reclaims one first, on its CPU, inside its fault; the
    # major faults pay it
    pc[PC.reclaim_cpu] = 0.0
    if xi[IN.lru] > 0 and math.isfinite(pc[PC.lifetime]) and fault_rate > 0:
        reclaimed = pc[PC.reclaims_pages] / fault_rate + acc[ACC.refaults]   # per fault
        extra = reclaimed * xi[IN.reclaim_cpu_time]
        acc[ACC.cpu] += extra
        acc[ACC.latency] += extra
        pc[PC.latency_major] += extra
        pc[PC.reclaim_cpu] = extra
    latency = acc[ACC.latency] + acc[ACC.wakes] * st[ST.cpu_wait] \
        + acc[ACC.mmap_slow] * st[ST.cpu_wait_batch]
    pc[PC.fault_rate] = fault_rate
    pc[PC.latency] = latency
    return miss, fault_rate, latency


@njit(**JIT)
def _remaining_life(lifetime, held):
    """What is left of a folio's life on the list at the end of its read: it went on the list
    when charged, ``held`` (the read) earlier; a folio still locked at the tail is put back at
    the head (``shrink_folio_list`` keeps it), so its life restarts there."""
    if not lifetime > 0:
        return 0.0
    return lifetime - (held - lifetime * math.floor(held / lifetime))


@njit(**JIT)
def lru_retry_success(xi, st, lk, pc, gw):
    """The retry windows' success under the memory limit: (q_mmap, q_vma) of a retry after the
    fault's first read, and (the same) after a refault's reread.

    The folio lives a near-deterministic time after its read's end (Che's lifetime less the
    read, ``_remaining_life``), so a retry misses iff its window exceeds it (``lru_retry_miss``,
    not a hazard's LST).  With two lists a folio whose refault distance fits the active list
    (``activated_major`` of the first reads, every reread after a miss: its distance is the
    evictions of one window) goes to the active list and lives T_A + T_c.
    """
    c_f = xi[IN.fault_cpu_time]
    held = c_f + st[ST.read_time]
    inactive = _remaining_life(pc[PC.lifetime], held)
    p_mmap = lru_retry_miss(inactive, c_f, lk[LK.block], gw, lk[LK.block_residual])
    p_vma = lru_retry_miss(inactive, c_f, lk[LK.abort], gw, lk[LK.abort_residual])
    if xi[IN.lru_lists] < 2:
        return 1 - p_mmap, 1 - p_vma, 1 - p_mmap, 1 - p_vma
    both = _remaining_life(pc[PC.lifetime] + pc[PC.active_lifetime], held)
    a_mmap = lru_retry_miss(both, c_f, lk[LK.block], gw, lk[LK.block_residual])
    a_vma = lru_retry_miss(both, c_f, lk[LK.abort], gw, lk[LK.abort_residual])
    w = pc[PC.activated_major]
    return (1 - ((1 - w) * p_mmap + w * a_mmap), 1 - ((1 - w) * p_vma + w * a_vma),
            1 - a_mmap, 1 - a_vma)


@njit(**JIT)
def model_pass(xi, prob, mass, count, st, new, acc, io, lk, pc):
    """One pass of every sub-model at the state ``st``: fills ``new`` (every state quantity but
    the access rate), ``acc``, ``io``, ``lk`` and ``pc``, and returns the target access rate of
    the closed loop (``interactive_response_time_law``: N threads, each cycle a think, an idle
    period and ``miss`` x the fault latency)."""
    miss, fault_rate, latency = _faults(xi, prob, mass, count, st, acc, io, pc)
    ops, acquisitions, lock, cpu_holds, cpu_gaps = writer_rates(xi, st)
    cpu_wait, cpu_wait_batch, cpu_wait_writer, think, cpu_wait_p, thinking = cpus(
        xi, miss, acc, st[ST.access_rate], st[ST.batch], cpu_holds, cpu_gaps,
        st[ST.thinking_share])
    locks(xi, acc, fault_rate, st, cpu_wait, cpu_wait_writer, lk)
    pc[PC.writer_ops] = ops
    pc[PC.writer_acquisitions] = acquisitions
    pc[PC.writer_lock] = lock
    pc[PC.writer_cpu_holds] = cpu_holds
    pc[PC.writer_cpu_gaps] = cpu_gaps
    pc[PC.cpu_wait_writer] = cpu_wait_writer
    if xi[IN.writer_process] > 0:
        acquisition = cpu_wait_writer + xi[IN.writer_hold]
    else:
        acquisition = cpu_wait_writer + (lk[LK.write_wait] + lk[LK.writer_hold])
    gw = xi[IN.wakeup_latency] + cpu_wait
    # the refault windows: re-entry CPU plus the lock wait (mmap_lock, or a VMA-lock abort)
    if xi[IN.lru] > 0 and math.isfinite(pc[PC.lifetime]):
        q_mmap, q_vma, q_mmap_again, q_vma_again = lru_retry_success(xi, st, lk, pc, gw)
    else:
        q_mmap = refault_success_window(xi[IN.reclaim_rate_cached], xi[IN.fault_cpu_time],
                                        lk[LK.block], gw, lk[LK.block_residual])
        q_vma = refault_success_window(xi[IN.reclaim_rate_cached], xi[IN.fault_cpu_time],
                                       lk[LK.abort], gw, lk[LK.abort_residual])
        q_mmap_again, q_vma_again = q_mmap, q_vma
    idle = xi[IN.idle_time] + xi[IN.wakeup_latency] + cpu_wait if xi[IN.idle_time] > 0 else 0.0
    target = xi[IN.threads] / (think + idle + miss * latency)
    pc[PC.target] = target
    new[ST.read_rate] = fault_rate * acc[ACC.reads]
    new[ST.read_time] = io[IO.read_time]
    new[ST.read_time_m2] = io[IO.read_time_m2]
    new[ST.reads_per_fault] = acc[ACC.reads]
    # the refault loop's rereads per major fault: they keep the page locked (and charged)
    new[ST.refaults_per_major] = safe_div(acc[ACC.refaults] * miss, pc[PC.major], 0.0)
    new[ST.cpu_wait] = cpu_wait
    new[ST.cpu_wait_writer] = cpu_wait_writer
    new[ST.think] = think
    new[ST.cpu_wait_batch] = cpu_wait_batch
    new[ST.cpu_wait_p] = cpu_wait_p
    new[ST.batch] = lk[LK.batch]
    new[ST.abort] = lk[LK.abort]
    new[ST.abort_residual] = lk[LK.abort_residual]
    new[ST.block] = lk[LK.block]
    new[ST.block_residual] = lk[LK.block_residual]
    new[ST.block_open] = lk[LK.block_open]
    new[ST.block_open_residual] = lk[LK.block_open_residual]
    new[ST.writer_util] = lk[LK.writer_util]
    new[ST.writer_queued] = lk[LK.writer_queued]
    new[ST.q_mmap] = nan_to_num(q_mmap, 1.0, BIG, -BIG)
    new[ST.q_vma] = nan_to_num(q_vma, 1.0, BIG, -BIG)
    new[ST.q_mmap_again] = nan_to_num(q_mmap_again, 1.0, BIG, -BIG)
    new[ST.q_vma_again] = nan_to_num(q_vma_again, 1.0, BIG, -BIG)
    new[ST.refault_window] = pc[PC.refault_window]
    new[ST.writer_acquisition] = nan_to_num(acquisition, 0.0, 1.0, -BIG)
    new[ST.writer_rate] = lock
    new[ST.thinking_share] = thinking
    return target


# ----------------------------------------------------------------------------------------------
# The fixed point, one element at a time
# ----------------------------------------------------------------------------------------------

_CHECKED = np.array([getattr(ST, k) for k in CHECKED])
_UNDAMPED = np.array([getattr(ST, k) for k in UNDAMPED])
_DAMPED = np.array([i for k, i in ST._asdict().items()
                    if k not in UNDAMPED and k != "access_rate"])


@njit(**JIT)
def initial_state(xi, st):
    """Where the iteration starts: no waits, every thread's cycle a think and one read."""
    st[:] = 0.0
    st[ST.access_rate] = xi[IN.threads] / (xi[IN.think_time] + xi[IN.idle_time]
                                           + xi[IN.io_latency])
    st[ST.think] = xi[IN.think_time]
    st[ST.read_time] = xi[IN.io_latency]
    st[ST.read_time_m2] = xi[IN.io_latency] ** 2 * (1 + xi[IN.io_cv] ** 2)
    st[ST.reads_per_fault] = 1.0
    st[ST.q_mmap] = 1.0
    st[ST.q_vma] = 1.0
    st[ST.q_mmap_again] = 1.0
    st[ST.q_vma_again] = 1.0
    st[ST.writer_acquisition] = xi[IN.writer_hold]
    st[ST.thinking_share] = math.nan          # where the CPU share's solve starts (nan: none)
    st[ST.writer_rate] = writer_rates(xi, st)[2]
    st[ST.device_share] = -1.0                # the device's share follows the read rate


@njit(**JIT)
def solve_one(xi, prob, mass, count, st, iterations, tolerance, new, acc, io, lk, pc):
    """Iterate from ``st`` (updated in place); returns (passes used, layout reason code)."""
    lo, hi = -INF, INF
    x_prev, value_prev = math.nan, math.nan
    jump_at, collapses = math.nan, 0
    for it in range(iterations):
        new[:] = st
        target = model_pass(xi, prob, mass, count, st, new, acc, io, lk, pc)
        x_now = math.log(st[ST.access_rate])
        value = math.log(target) - x_now
        if value > 0:
            lo = vmax(lo, x_now)
        else:
            hi = vmin(hi, x_now)
        # a bracket set while the other quantities were still far from consistent can exclude
        # the root: when it has collapsed but the residual has not, reopen the wrong side
        collapsed = (hi - lo < _COLLAPSED) and (abs(value) > 10 * tolerance)
        if collapsed and abs(value) > _JUMP_RESIDUAL:
            # ... unless it keeps collapsing at one rate: the target jumps there (no root)
            if collapses > 0 and abs(x_now - jump_at) < _SAME_JUMP:
                collapses += 1
            else:
                jump_at, collapses = x_now, 1
            if collapses >= _JUMP_COLLAPSES:
                return it + 1, JUMP
        if collapsed and value < 0:
            lo = -INF
        if collapsed and value > 0:
            hi = INF
        if lo > hi:
            lo, hi = -INF, INF
        secant = x_now - value * (x_now - x_prev) / (value - value_prev)
        candidate = secant if math.isfinite(secant) else x_now + value
        bracketed = math.isfinite(lo) and math.isfinite(hi)
        if not ((candidate > lo) and (candidate < hi)):
            candidate = 0.5 * (lo + hi) if bracketed else x_now + value
        x_prev, value_prev = x_now, value
        moved = abs(value)
        for k in _CHECKED:
            moved = vmax(moved, abs(safe_div(new[k] - st[k], abs(st[k]) + 1e-12, 0.0)))
        for k in _UNDAMPED:
            st[k] = new[k]
        for k in _DAMPED:
            st[k] = 0.5 * (st[k] + new[k])
        done = (moved < tolerance) or ((hi - lo < 1e-9) and (moved - abs(value) < tolerance))
        if done:
            return it + 1, CONVERGED
        st[ST.access_rate] = math.exp(candidate)
    return iterations, BUDGET


_SHARE_BUDGET = 4         # the share solve's passes, in units of the rate solve's budget


@njit(**JIT)
def solve_share(xi, prob, mass, count, st, iterations, tolerance, new, acc, io, lk, pc):
    """The closed loop solved for the device's time share ``u`` around the rate solve.

    Where the device (``io_parallelism`` slots) saturates, the read time is a near-vertical
    function of the read rate, and where longer reads bring more reads per fault (pages
    reclaimed while their threads wait, retries) the target access rate has no fixed point in
    the rate at all: it jumps from above the rate to far below it.  A closed population cannot
    drive its device past capacity; the surplus threads wait at the device (the asymptotic
    behaviour of closed networks, Lazowska et al. ch. 5).  So the outer unknown here is the
    share ``u`` of its time a thread spends at the device: its wait ``W(u)`` is the
    finite-source wait (continuous, up to every thread queued at ``u = 1``); at each ``u`` the
    rate solve (:func:`solve_one`) finds the access rate and the other quantities, and ``u``
    solves ``u = X_read(u) (S + W(u)) / N`` (Little's law at the device) by regula falsi
    (Illinois) kept inside a bracket of [0, 1].  Returns (passes used, reason code); ``st``
    holds the state.
    """
    threads = xi[IN.threads]
    u = clip(safe_div(st[ST.read_rate] * st[ST.read_time], threads, 0.5), 1e-3, 0.999)
    u = nan_to_num(u, 0.5, 0.999, 1e-3)
    initial_state(xi, st)
    lo, g_lo, hi, g_hi = 0.0, math.nan, 1.0, math.nan
    side = 0.0
    u_prev, value_prev = math.nan, math.nan
    used = 0
    budget = _SHARE_BUDGET * iterations
    while used < budget:
        st[ST.device_share] = u
        passes, reason = solve_one(xi, prob, mass, count, st, vmin(iterations, budget - used),
                                   tolerance, new, acc, io, lk, pc)
        new[:] = st
        target = model_pass(xi, prob, mass, count, st, new, acc, io, lk, pc)
        used += passes + 1
        # Little's law at the device: the share the closed loop's rate gives at this wait
        value = target * pc[PC.miss] * acc[ACC.reads] * io[IO.read_time] / threads - u
        if not math.isfinite(value):
            return used, BUDGET
        if abs(value) < tolerance * u:
            return used, reason
        # (value == 0 returned above: the step's ``gx >= 0`` is ``value > 0`` here)
        lo, g_lo, hi, g_hi, side, u_next = illinois_step(lo, g_lo, hi, g_hi, side, u, value)
        if hi - lo < tolerance * tolerance:
            return used, reason
        if not (math.isfinite(g_lo) and math.isfinite(g_hi)):   # one side known: the secant
            u_next = u - value * (u - u_prev) / (value - value_prev)
            if not math.isfinite(u_next):
                u_next = u + value
        u_prev, value_prev = u, value
        u = u_next
        if not ((u > lo) and (u < hi)):
            u = 0.5 * (lo + hi)
    return used, BUDGET


# ----------------------------------------------------------------------------------------------
# The metrics of an element, from the last pass at its state
# ----------------------------------------------------------------------------------------------

@njit(**JIT)
def metrics(xi, st, acc, lk, pc, m):
    """The mean metrics (``layout.OUT``) of an element into ``m``; nan where undefined (no
    faults, no writers)."""
    nan = math.nan
    fault_rate = pc[PC.fault_rate]
    faults = fault_rate > 0
    w = xi[IN.wakeup_latency]
    read_wait_sum = acc[ACC.mmap_wait] + acc[ACC.mmap_slow] * st[ST.cpu_wait_batch]
    bg_rate = xi[IN.reader_rate]
    bg_wait = st[ST.block_open] * (st[ST.block_open_residual] + w + st[ST.cpu_wait_batch])
    read_rate = fault_rate * acc[ACC.mmap_acq] + bg_rate
    read_wait_total = fault_rate * read_wait_sum + bg_rate * bg_wait     # per second
    write_rate = st[ST.writer_rate]
    has_writers = write_rate > 0
    writer_loop = xi[IN.writer_loop] > 0
    cpu_wait_writer = pc[PC.cpu_wait_writer]
    write_wait = lk[LK.write_wait]
    # a Poisson writer's latency runs from its arrival (CPU wait included); a writer thread's
    # from down_write, on its CPU (montecarlo/writers.py)
    writer_latency = ((0.0 if writer_loop else cpu_wait_writer) + write_wait
                      + lk[LK.writer_hold])
    if xi[IN.writer_process] > 0:
        acquisition = cpu_wait_writer + xi[IN.writer_hold]
    else:
        acquisition = cpu_wait_writer + write_wait + lk[LK.writer_hold]
    # each acquisition of an operation first gives way to queued entities (a yield at the
    # syscall boundary, montecarlo/writers.py next_acquisition): a CPU wait each
    if writer_loop:
        op_latency = xi[IN.writer_locks_per_op] * (xi[IN.writer_gap_cpu] + acquisition)
    else:
        op_latency = writer_latency
    ops = pc[PC.writer_ops]
    m[OUT.fault_latency_mean] = pc[PC.latency] if faults else nan
    m[OUT.fault_rate] = fault_rate
    m[OUT.mmap_read_rate] = read_rate
    m[OUT.mmap_read_wait_mean] = safe_div(read_wait_total, read_rate, nan)
    m[OUT.mmap_write_rate] = write_rate
    m[OUT.mmap_write_wait_mean] = write_wait if has_writers else nan
    m[OUT.writer_latency_mean] = writer_latency if has_writers else nan
    m[OUT.writer_ops_rate] = ops
    m[OUT.writer_op_latency_mean] = op_latency if ops > 0 else nan
    m[OUT.writer_cpu_share] = pc[PC.writer_cpu_holds] + pc[PC.writer_cpu_gaps]
    m[OUT.retries_per_fault] = acc[ACC.retries] if faults else nan
    m[OUT.refaults_per_fault] = acc[ACC.refaults] if faults else nan
    m[OUT.retry_miss_ratio] = safe_div(acc[ACC.misses], acc[ACC.retry_io_waits], nan)
    m[OUT.io_read_rate] = fault_rate * acc[ACC.reads]
    m[OUT.major_faults_per_fault] = acc[ACC.majors] if faults else nan
    m[OUT.vma_abort_rate] = fault_rate * acc[ACC.aborts]
    m[OUT.access_rate] = st[ST.access_rate]
    m[OUT.reclaim_rate] = pc[PC.reclaims_pages] + fault_rate * acc[ACC.refaults]
    m[OUT.mmap_read_waiters_mean] = read_wait_total
    m[OUT.mmap_read_waiters_little] = read_wait_total
    m[OUT.mmap_write_waiters_mean] = write_rate * write_wait if has_writers else 0.0
    m[OUT.mmap_write_waiters_little] = write_rate * write_wait if has_writers else 0.0
    m[OUT.threads_in_fault_mean] = fault_rate * pc[PC.latency]
    m[OUT.mmap_read_held_share] = lk[LK.read_held_share]
    m[OUT.mmap_read_busy_period_mean] = (mginf_busy_period(read_rate, lk[LK.read_hold_mean])
                                         if read_rate > 0 else nan)
    m[OUT.reads_holding_mmap_per_fault] = acc[ACC.reads_holding_mmap] if faults else nan
    m[OUT.reads_holding_vma_per_fault] = acc[ACC.reads_holding_vma] if faults else nan
    # access classes (the harness's): the first attempt found the folio absent (a major fault,
    # zram swap-ins included), locked by another thread, or cached; the latency of each
    miss = pc[PC.miss]
    major = pc[PC.major] + pc[PC.zram]
    waiter = pc[PC.join_io] + pc[PC.join_up]
    minor = pc[PC.minor]
    m[OUT.major_share] = major
    m[OUT.waiter_share] = waiter
    m[OUT.minor_share] = minor
    m[OUT.major_latency_mean] = safe_div((pc[PC.latency_major] + pc[PC.latency_zram]) * miss,
                                         major, nan)
    m[OUT.waiter_latency_mean] = safe_div(pc[PC.latency_waiter] * miss, waiter, nan)
    m[OUT.minor_latency_mean] = safe_div(pc[PC.latency_minor] * miss, minor, nan)
    m[OUT.nofault_share] = 1 - miss
    # the memory: resident folios, the LRU's lifetime, folios brought in per fault
    m[OUT.cache_pages_mean] = pc[PC.cache_pages]
    # the mean time from a folio's last release (its fault's or read's end) to its reclaim:
    # Little's law over the unlocked resident folios and the folios reclaimed (a refault's
    # folio reclaimed in its window lived what was left of T_c after its read)
    refault_evictions = fault_rate * acc[ACC.refaults]
    m[OUT.cache_lifetime_mean] = (
        safe_div(pc[PC.unlocked_pages] + refault_evictions * pc[PC.lifetime],
                 pc[PC.evictions] + refault_evictions, nan)
        if math.isfinite(pc[PC.lifetime]) else nan)
    m[OUT.reclaim_cpu_share] = fault_rate * pc[PC.reclaim_cpu]
    m[OUT.pages_read_per_fault] = (acc[ACC.reads] * pc[PC.pages_per_read]
                                   + safe_div(pc[PC.zram], miss, 0.0)) if faults else nan


# ----------------------------------------------------------------------------------------------
# Every element
# ----------------------------------------------------------------------------------------------

@njit(**JIT)
def solve_element(xi, prob, mass, count, iterations, tolerance, st):
    """Solve one element into ``st``; returns the pieces of a last pass at the state reached
    (acc, io, lk, pc), the passes used and the reason code."""
    new = np.empty(len(ST))
    acc = np.zeros(len(ACC))
    io = np.zeros(len(IO))
    lk = np.zeros(len(LK))
    pc = np.zeros(len(PC))
    initial_state(xi, st)
    used, reason = solve_one(xi, prob, mass, count, st, iterations, tolerance, new, acc, io, lk,
                             pc)
    if reason != CONVERGED and xi[IN.io_parallelism] > 0:
        more, share_reason = solve_share(xi, prob, mass, count, st, iterations, tolerance, new,
                                         acc, io, lk, pc)
        used += more
        if share_reason == CONVERGED:
            reason = CONVERGED
    new[:] = st
    model_pass(xi, prob, mass, count, st, new, acc, io, lk, pc)   # the pieces
    return acc, io, lk, pc, used, reason


@njit(parallel=True, **JIT)
def solve_all(inputs, prob, mass, count, strata, iterations, tolerance, with_distribution,
              latency_edges, wait_edges, levels):
    """Solve every element (rows of ``inputs``) and compute its metrics (and distribution).

    Returns (state, outputs ``layout.OUT``, latency histogram, read- and write-wait histograms,
    passes used, reason code, stable) per element.
    """
    n = inputs.shape[0]
    state = np.empty((n, len(ST)))
    out = np.full((n, len(OUT)), np.nan)
    n_hist = latency_edges.shape[0] if with_distribution else 0
    n_wait = wait_edges.shape[0] if with_distribution else 0
    hist = np.full((n, n_hist), np.nan)
    read_hist = np.full((n, n_wait), np.nan)
    write_hist = np.full((n, n_wait), np.nan)
    used = np.zeros(n, dtype=np.int64)
    reason = np.zeros(n, dtype=np.int64)
    stable = np.zeros(n, dtype=np.bool_)
    for e in prange(n):
        xi = inputs[e]
        st = state[e]
        acc, io, lk, pc, used[e], reason[e] = solve_element(xi, prob[e], mass[e], count[e],
                                                            iterations, tolerance, st)
        metrics(xi, st, acc, lk, pc, out[e])
        stable[e] = lk[LK.stable] > 0
        if with_distribution:
            distribution(xi, st, acc, io, lk, pc, strata[int(xi[IN.strata_row])], levels,
                         latency_edges, wait_edges, out[e], hist[e], read_hist[e],
                         write_hist[e])
    return state, out, hist, read_hist, write_hist, used, reason, stable
