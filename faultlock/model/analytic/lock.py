"""mmap_lock (a Linux rwsem or a textbook discipline), the per-VMA locks, and the writers.

Writers are vacations of the reader server: each writer shuts readers out for its hold (VMA
drains included) plus, when it must queue, the drain of long read holders (reads under a TRIED
retry, ``legacy_hold``); linux writers that spin on a running owner chain into writer busy
periods (like ``writer_pref``), the textbook disciplines hand over directly and keep the lock
through the grantee's wake-up.  ``rho_w >= 1`` is unstable.  A fault falls back to
``mmap_lock`` while its VMA is write-locked or draining (``vma_abort_probability``); under
``vma_wait`` a writer's drain waits for the reads of the VMA's readers (the largest residual of
an M/G/infinity system).  Other mmap_lock readers (``reader_rate``) are an open stream (PASTA).
The spin limit is the engine's (``montecarlo/rwsem.reader_spin_limit``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..montecarlo.rwsem import reader_spin_limit
from .layout import ACC, IN, LK, ST
from .numeric import (
    BIG,
    INF,
    JIT,
    clip,
    finite_source_wait,
    lag_inside_pair,
    mg1_busy_period_residual,
    mg1_wait,
    mginf_busy_period,
    mginf_max_residual,
    nan_to_num,
    safe_div,
    vma_abort_probability,
    vmax,
    vmin,
    writer_utilisation,
)


@njit(**JIT)
def writer_rates(xi, st):
    """Writer operations and acquisitions per second, and the CPUs they keep busy.

    Poisson writers arrive at ``writer_rate``, one acquisition each.  Writer threads
    (``montecarlo/writers.py``) loop over operations of ``writer_locks_per_op`` acquisitions,
    each after ``writer_gap_cpu`` of CPU; one acquisition takes ``st[ST.writer_acquisition]``
    (its CPU wait, lock wait and hold, from the last pass).  A flat-out thread starts the next
    operation at once; a periodic one makes ``writer_op_rate`` operations a second, or fewer
    when an operation outlasts its period (it restarts from now, no catch-up).  Writers in
    another process take no lock of ours: their holds are CPU only.

    Returns (operations, acquisitions, acquisitions of our mmap_lock, CPUs busy holding,
    CPUs busy between acquisitions), per second.
    """
    k = xi[IN.writer_locks_per_op]
    gap = xi[IN.writer_gap_cpu]
    op_time = k * (gap + st[ST.writer_acquisition])
    flat_out = 1.0 / vmax(op_time, 1e-12)
    per_thread = vmin(xi[IN.writer_op_rate], flat_out) if xi[IN.periodic] > 0 else flat_out
    loop = xi[IN.writer_loop] > 0
    ops = xi[IN.writer_threads] * per_thread if loop else xi[IN.writer_rate]
    acquisitions = ops * k if loop else xi[IN.writer_rate]
    lock = 0.0 if xi[IN.writer_process] > 0 else acquisitions
    return ops, acquisitions, lock, acquisitions * xi[IN.writer_hold], acquisitions * gap


@njit(**JIT)
def _mean_second(n, s, s2):
    return safe_div(s, n, 0.0), safe_div(s2, n, 0.0)


@njit(**JIT)
def locks(xi, acc, fault_rate, st, cpu_wait, cpu_wait_writer, lk):
    """mmap_lock reader and writer waits, the writers' VMA drains and the VMA-lock fallbacks.

    Fills ``lk``.  A reader granted while asleep holds mmap_lock from the grant, through its
    wake-up, to its release (``rwsem_mark_wake`` grants before the task runs), so slow-path
    holds are longer by the wake-up.  Each writer shuts readers out for its hold (VMA drains
    included) and, when it must queue behind long read holds (a read waited for holding
    mmap_lock), for their drain: the longest residual hold of the holders it finds
    (``mginf_max_residual``), with the holders seen during open periods (Little's law corrected
    for the time writers keep the lock empty).  Linux writers spin on short holds and on a
    running writer owner, so holds of writers that arrive during a hold chain into busy periods
    (``mg1_busy_period_residual``); a queued linux writer is woken, not granted: readers may
    steal the lock during its wake-up.  The textbook disciplines hand over directly, holding the
    lock through the grantee's wake-up.  A thread of the closed population is blocked at most
    once per closed period, when its next acquisition falls inside it
    (``lag_inside_probability``): few threads that come back quickly phase-lock to the writer.
    """
    w = xi[IN.wakeup_latency]
    vmas = xi[IN.vmas]
    n_w = xi[IN.writer_threads]
    lam_w = st[ST.writer_rate]
    h_w = xi[IN.writer_hold]
    var_h = (xi[IN.writer_cv] * h_w) ** 2
    s1, sf = xi[IN.writer_vma_share], xi[IN.writer_fork_share]
    s0 = 1 - s1 - sf
    wake = w + st[ST.cpu_wait_batch]          # a batch-woken reader, until it runs
    wake_w = w + cpu_wait_writer           # a woken writer
    spins = xi[IN.spin] > 0
    linux = xi[IN.linux] > 0
    writer_loop = xi[IN.writer_loop] > 0
    writer_pref = xi[IN.writer_pref] > 0

    # VMA-lock holders of one VMA (M/G/infinity): the drain a writer waits for
    lam_v = fault_rate * acc[ACC.vma_n] / vmas
    m_v, m2_v = _mean_second(acc[ACC.vma_n], acc[ACC.vma_s], acc[ACC.vma_s2])
    load_v = lam_v * m_v
    res_v = safe_div(m2_v, 2 * m_v, 0.0)
    drain1 = nan_to_num(mginf_max_residual(safe_div(load_v, res_v, 0.0), res_v),
                         0.0, BIG, -BIG)
    drain1 = drain1 + (-math.expm1(-load_v)) * wake_w          # it sleeps, then is woken
    hold_one = h_w + drain1
    hold_fork = h_w + vmas * drain1
    locked_fork = h_w + (vmas + 1) / 2 * drain1
    hold_mean = s0 * h_w + s1 * hold_one + sf * hold_fork
    hold_m2 = (s0 * (h_w**2 + var_h) + s1 * (hold_one**2 + var_h + drain1**2)
               + sf * (hold_fork**2 + var_h + (vmas * drain1) ** 2))
    abort = vma_abort_probability(lam_w, s1, hold_one, vmas, sf, locked_fork)
    abort = vmin(nan_to_num(abort, 0.0, BIG, -BIG), 0.99)
    one_w = s1 / vmas * hold_one
    fork_w = sf * locked_fork
    res_one = safe_div(hold_one**2 + var_h + drain1**2, 2 * hold_one, 0.0)
    res_fork = safe_div(locked_fork**2 + var_h + (vmas * drain1) ** 2, 2 * locked_fork, 0.0)
    abort_residual = safe_div(one_w * res_one + fork_w * res_fork, one_w + fork_w, 0.0)

    # mmap_lock read holders: short (CPU work) and long (a read waited for holding it)
    lam_bg, m_bg = xi[IN.reader_rate], xi[IN.reader_hold]
    slow = safe_div(fault_rate * acc[ACC.mmap_slow] + lam_bg * st[ST.block_open],
                     fault_rate * acc[ACC.mmap_acq] + lam_bg, 0.0)
    extra = slow * wake
    lam_s = fault_rate * acc[ACC.hold_short_n] + lam_bg
    m_s = safe_div(fault_rate * acc[ACC.hold_short_s] + lam_bg * m_bg, lam_s, 0.0)
    m2_s = safe_div(fault_rate * acc[ACC.hold_short_s2] + lam_bg * 2 * m_bg**2, lam_s, 0.0)
    m2_s = m2_s + 2 * m_s * extra + slow * wake**2
    m_s = m_s + extra
    lam_l = fault_rate * acc[ACC.hold_long_n]
    m_l, m2_l = _mean_second(acc[ACC.hold_long_n], acc[ACC.hold_long_s], acc[ACC.hold_long_s2])
    m2_l = m2_l + 2 * m_l * extra + slow * wake**2
    m_l = m_l + extra
    lam_r = lam_s + lam_l

    # writers: the hold (chained), and the time readers are shut out
    wakes_held = st[ST.writer_queued] * wake_w if xi[IN.handover] > 0 else 0.0
    hold_x = hold_mean + wakes_held                          # exclusive, per writer
    hold_x2 = hold_m2 + 2 * hold_mean * wakes_held + wakes_held * wake_w
    rho_h = lam_w * hold_x
    empty = vmin(rho_h, 0.99)                                # writers keep the lock empty
    open_scale = 1 / (1 - empty)
    load_s, load_l = lam_s * m_s * open_scale, lam_l * m_l * open_scale
    res_s, res_l = safe_div(m2_s, 2 * m_s, 0.0), safe_div(m2_l, 2 * m_l, 0.0)
    drain_s = nan_to_num(mginf_max_residual(safe_div(load_s, res_s, 0.0), res_s),
                          0.0, BIG, -BIG)
    drain_l = nan_to_num(mginf_max_residual(safe_div(load_l, res_l, 0.0), res_l),
                          0.0, BIG, -BIG)
    present_l = -math.expm1(-load_l)
    present_s = -math.expm1(-load_s)
    busy_s = nan_to_num(mginf_busy_period(vmax(lam_s * open_scale, 1e-300), m_s),
                         0.0, BIG, -BIG)
    spin_limit = reader_spin_limit(load_s + load_l)         # rwsem_rspin_threshold
    short_queue = present_s * math.exp(-spin_limit / vmax(busy_s, 1e-300))
    if spins:
        p_queue_r = present_l + (1 - present_l) * short_queue
        drain_q = drain_l + (1 - present_l) * short_queue * drain_s
    else:
        p_queue_r = -math.expm1(-(load_s + load_l))
        drain_q = drain_l + (1 - present_l) * drain_s
    if not xi[IN.drain_blocks] > 0:
        drain_q = 0.0
    chained = safe_div(lam_w, lam_w + lam_r, 0.0)
    sharing = 1 + lam_w * safe_div(drain_q, p_queue_r, 0.0) * chained
    drain_q = drain_q / sharing
    steal = -math.expm1(-lam_r * wake_w) if linux else 0.0
    long_share = safe_div(lam_l, lam_r, 0.0)
    batch_drain = long_share * safe_div(drain_l, present_l, 0.0) + (1 - long_share) * m_s
    cycle = wake + batch_drain + wake_w
    steals = np.ceil(safe_div(xi[IN.handoff_timeout], cycle, 1.0)) + 1
    steal_c = vmin(steal, 1 - 1e-12)
    steal_extra = cycle * steal_c * -math.expm1(steals * math.log(steal_c)) / (1 - steal_c)
    queued = p_queue_r if linux else 1.0
    excl = drain_q + queued * steal_extra + hold_x
    excl2 = (hold_x2 + 2 * drain_q * hold_x + 2 * drain_q**2
             + 2 * queued * steal_extra * (drain_q + hold_x) + queued * steal_extra**2)
    rho_w = writer_utilisation(lam_w, excl)
    shut = drain_q + hold_x
    shut2 = hold_x2 + 2 * drain_q * hold_x + 2 * drain_q**2
    block = vmin(writer_utilisation(lam_w, shut), 1.0)
    rho_c = vmin(rho_h, 0.999)
    hold_b = safe_div(hold_x, 1 - rho_c, 0.0)
    hold_b2 = safe_div(hold_x2, (1 - rho_c) ** 3, 0.0)
    spin_shut = drain_q + hold_b
    spin_shut2 = hold_b2 + 2 * drain_q * hold_b + 2 * drain_q**2
    if spins:
        block_residual = safe_div(spin_shut2, 2 * spin_shut, 0.0)
    elif writer_pref:
        block_residual = mg1_busy_period_residual(lam_w, shut, math.sqrt(vmax(
            safe_div(shut2, shut**2, 0.0) - 1, 0.0)))
    else:
        block_residual = safe_div(shut2, 2 * shut, 0.0)
    block_residual = nan_to_num(block_residual, 0.0, 0.0, -BIG)
    if spins:
        period = spin_shut
    elif writer_pref:
        period = safe_div(shut, 1 - vmin(writer_utilisation(lam_w, shut), 0.999), 0.0)
    else:
        period = shut
    chain = vmax(n_w, 1.0) if xi[IN.periodic] > 0 else 1.0
    if writer_loop:
        period = drain_q + chain * hold_x
        period_cv = safe_div(math.sqrt(vmax(hold_x2 - hold_x**2, 0.0)), hold_x,
                              0.0) / math.sqrt(chain)
        periods = lam_w / chain
    else:
        period_cv = math.sqrt(vmax(safe_div(2 * block_residual, period, 0.0) - 1, 0.0))
        periods = safe_div(block, period, 0.0)
    per_thread = fault_rate * acc[ACC.mmap_acq] / xi[IN.threads]
    blocked = st[ST.block] * (st[ST.block_residual] + wake)         # per acquisition, last pass
    gap = 1 / per_thread - blocked if per_thread > 0 else INF
    gap = vmax(gap, 1e-3 * safe_div(1.0, per_thread, INF))
    closed = per_thread * period > 1e-9
    block_thread, residual_thread = block, block_residual
    if closed:
        inside, residual = lag_inside_pair(period, period_cv, gap)
        block_thread = vmin(periods * inside / per_thread, 1.0)
        if inside > 0:
            residual_thread = residual

    # the writer's own wait
    excl_cv = math.sqrt(vmax(safe_div(excl2, excl**2, 0.0) - 1, 0.0))
    if not lam_w > 0:
        pk = 0.0
    elif not writer_loop:
        pk = mg1_wait(lam_w, excl, excl_cv)
    elif xi[IN.periodic] > 0:
        pk = (n_w - 1) / 2 * excl
    else:
        at_lock = clip(safe_div(lam_w * excl, n_w, 0.0), 0.0, 1.0)
        pk = finite_source_wait(1.0, vmax(n_w - 1, 0.0), at_lock, excl, excl_cv)
    spin_wait = present_s * (1 - present_l) * vmin(busy_s, spin_limit)
    writer_busy = vmin(rho_w, 1.0)
    any_wait = 1 - (1 - writer_busy) * math.exp(-(load_s + load_l))
    if linux:
        write_wait = pk + spin_wait + p_queue_r * (safe_div(drain_q, p_queue_r, 0.0) + wake_w
                                                   + steal_extra)
    else:
        reader_pref_drain = present_s * busy_s + present_l * safe_div(drain_l, present_l, 0.0)
        write_wait = (pk + (drain_q if xi[IN.drain_blocks] > 0 else reader_pref_drain)
                      + any_wait * wake_w)
    blocked_rate = fault_rate * acc[ACC.mmap_acq] * block_thread + lam_bg * block
    batch_size = safe_div(blocked_rate, periods, 0.0)
    comeback = (((1 - 1 / xi[IN.writer_locks_per_op]) if xi[IN.periodic] > 0 else 1.0)
                * xi[IN.writer_loop])
    batch_hold = (wake + long_share * safe_div(drain_l, present_l, 0.0)
                  + (1 - long_share) * (m_s - extra))
    write_wait = write_wait + comeback * -math.expm1(-batch_size) * vmax(
        batch_hold - xi[IN.writer_gap_cpu], 0.0)
    writer_queued = p_queue_r if linux else any_wait
    # share of time mmap_lock is read-held: fast-path holds while it is open, plus the batches
    # granted at each writer's release (they overlap: one wake-up and hold per batch)
    fast_load = (1 - slow) * (lam_s * (m_s - extra) + lam_l * (m_l - extra))
    batches = lam_w * -math.expm1(-lam_r * excl)
    held = vmin((1 - block) * -math.expm1(-fast_load * open_scale) + batches * batch_hold, 1.0)
    load_r = lam_s * m_s + lam_l * m_l                      # mean holders (Little)
    lk[LK.abort] = abort
    lk[LK.abort_residual] = abort_residual
    lk[LK.block] = block_thread
    lk[LK.block_residual] = residual_thread
    lk[LK.block_open] = block
    lk[LK.block_open_residual] = block_residual
    lk[LK.writer_util] = vmin(rho_w, 1.0)
    lk[LK.writer_queued] = writer_queued
    lk[LK.write_wait] = write_wait
    lk[LK.writer_hold] = hold_mean
    lk[LK.batch] = lam_r * (hold_x + spin_wait)
    # a closed loop of writers cannot pile up; an open (Poisson) stream piles up past the lock's
    # capacity for writers: its exclusive time, and where the next writer sleeps in the queue
    # (no optimistic spinning on the owner) each hand-off to it costs a wake-up, so queued back
    # to back they pass at most 1 / (hold + wake-up) a second (rwsem_wake -> the writer runs;
    # the Monte Carlo's writers_past_capacity finds the backlog by flow conservation)
    handoff_capacity = spins or lam_w * (hold_mean + wake_w) < 1
    lk[LK.stable] = 1.0 if writer_loop or (rho_w < 1 and handoff_capacity) else 0.0
    lk[LK.read_held_share] = held
    lk[LK.read_rate] = lam_r
    lk[LK.read_hold_mean] = safe_div(load_r, lam_r, 0.0)
    lk[LK.drain_vma] = drain1
