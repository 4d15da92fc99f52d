"""The fault path of each policy: what a fault costs, holds, reads and retries, per class.

The policies are switches (``policies.py``), the state machines those of kernel.md §6 as coded
in ``montecarlo/threads.py``: every major file fault drops its lock and retries
(``VM_FAULT_RETRY``); the retry costs ``fault_cpu_time`` before its folio lookup; a TRIED retry
re-reads holding its lock; ``vma_wait`` and ``legacy_hold`` never drop.  The refault loop
(``refault_success_window``, ``refault_attempts_truncated``): the exposure window is the re-entry
CPU plus, under mainline, the ``mmap_lock`` wait; under ``vma_retry`` only a VMA-lock fallback;
nil under ``vma_wait``.  Expected latency, CPU time, wake-ups, reads, retries, refaults, lock
acquisitions and holds per fault follow, accumulated in ``acc`` (``layout.ACC``) over the
access classes (minor, zram, major, joiners) and the branches of each.
"""

from __future__ import annotations

import math

from numba import njit

from .layout import ACC, IN, PC, ST
from .numeric import INF, JIT, safe_div, vmax, vmin
from .walks import group_walk


@njit(**JIT)
def _elapsed(acc, wc, wcb):
    """The latency accumulated so far, CPU waits included (a class's is a difference)."""
    return acc[ACC.latency] + acc[ACC.wakes] * wc + acc[ACC.mmap_slow] * wcb


@njit(**JIT)
def first_lock(acc, weight, V, p_ab, w_abort, w_mmap, pb):
    """The first attempt's lock: returns (prob under VMA lock, prob under mmap_lock)."""
    p_vma = V * (1 - p_ab)
    p_abort = V * p_ab
    p_mmap = 1 - V
    acc[ACC.aborts] += weight * p_abort
    acc[ACC.mmap_acq] += weight * (p_abort + p_mmap)
    acc[ACC.mmap_wait] += weight * (p_abort * w_abort + p_mmap * w_mmap)
    acc[ACC.mmap_slow] += weight * (p_abort + p_mmap * pb)
    acc[ACC.latency] += weight * (p_abort * w_abort + p_mmap * w_mmap)
    return p_vma, p_abort + p_mmap


@njit(**JIT)
def hold(acc, weight, is_vma, mean, second, long):
    """A fault-lock hold of the given mean/second moment, weight = expected count."""
    wv = weight * is_vma
    wm = weight * (1 - is_vma)
    acc[ACC.vma_n] += wv
    acc[ACC.vma_s] += wv * mean
    acc[ACC.vma_s2] += wv * second
    if long:
        acc[ACC.hold_long_n] += wm
        acc[ACC.hold_long_s] += wm * mean
        acc[ACC.hold_long_s2] += wm * second
    else:
        acc[ACC.hold_short_n] += wm
        acc[ACC.hold_short_s] += wm * mean
        acc[ACC.hold_short_s2] += wm * second


@njit(**JIT)
def second_lock(acc, weight, from_vma, rV, p_ab, w_abort, w_mmap, pb, q_v, q_m):
    """The lock a retry takes; returns (prob it holds the VMA lock, its window's success q)."""
    again = from_vma * rV
    p_vma = again * (1 - p_ab)
    p_abort = again * p_ab
    p_mmap = 1 - again
    acc[ACC.aborts] += weight * p_abort
    acc[ACC.mmap_acq] += weight * (p_abort + p_mmap)
    wait = p_abort * w_abort + p_mmap * w_mmap
    acc[ACC.mmap_wait] += weight * wait
    acc[ACC.mmap_slow] += weight * (p_abort + p_mmap * pb)
    acc[ACC.latency] += weight * wait
    q = again * q_v + (1 - again) * q_m
    return p_vma, q


@njit(**JIT)
def refault_holding(acc, weight, p_vma2, c_f, t_io, w, read_hold, read_hold2):
    """A TRIED retry found its folio reclaimed: it reads again holding its lock."""
    acc[ACC.refaults] += weight
    acc[ACC.misses] += weight
    acc[ACC.majors] += weight
    acc[ACC.reads] += weight
    acc[ACC.wakes] += weight
    acc[ACC.cpu] += weight * 2 * c_f
    acc[ACC.latency] += weight * (2 * c_f + t_io + w)
    acc[ACC.reads_holding_vma] += weight * p_vma2
    acc[ACC.reads_holding_mmap] += weight * (1 - p_vma2)
    hold(acc, weight, p_vma2, read_hold, read_hold2, True)


@njit(**JIT)
def untried_loop(acc, loose, p_vma2, st, c_f, t_io, w, w_mmap, pb, limit, read_hold,
                  read_hold2):
    """A retry that is not TRIED found its folio reclaimed (tried_after_major False).

    From mmap_lock (mainline): it drops mmap_lock to read again, retries TRIED under mmap_lock
    and, if the folio is gone again, reads holding it.  From the VMA lock (vma_retry): it drops
    and retries under the VMA lock again, a repeat-different loop, until it maps or the retry
    limit makes an attempt TRIED (refault_attempts_truncated).
    """
    q_m, q_v = st[ST.q_mmap_again], st[ST.q_vma_again]      # a reread's window
    acc[ACC.refaults] += loose
    acc[ACC.misses] += loose
    # from mmap_lock
    lm = loose * (1 - p_vma2)
    acc[ACC.majors] += lm
    acc[ACC.reads] += lm
    acc[ACC.retries] += lm
    acc[ACC.retry_io_waits] += lm
    acc[ACC.wakes] += lm
    acc[ACC.cpu] += lm * 2 * c_f
    acc[ACC.latency] += lm * (2 * c_f + t_io + w)
    hold(acc, lm, 0.0, c_f, c_f**2, False)
    acc[ACC.mmap_acq] += lm
    acc[ACC.mmap_wait] += lm * w_mmap
    acc[ACC.mmap_slow] += lm * pb
    acc[ACC.latency] += lm * w_mmap
    acc[ACC.cpu] += lm * q_m * c_f
    acc[ACC.latency] += lm * q_m * c_f
    hold(acc, lm * q_m, 0.0, c_f, c_f**2, False)
    refault_holding(acc, lm * (1 - q_m), 0.0, c_f, t_io, w, read_hold, read_hold2)
    # from the VMA lock: a loop of fresh windows
    lv = loose * p_vma2
    n_attempts = vmax(limit, 1.0) if limit > 0 else INF
    if math.isfinite(n_attempts):
        log_miss = math.log1p(-vmin(1 - q_v, 1 - 1e-300))
        reads = -math.expm1(n_attempts * log_miss) / q_v
        held = math.exp((n_attempts - 1) * log_miss)
    else:
        reads = 1.0 / q_v
        held = 0.0
    if not q_v > 0:
        reads = INF
    dropped = reads - held
    acc[ACC.majors] += lv * reads
    acc[ACC.reads] += lv * reads
    acc[ACC.refaults] += lv * (reads - 1)
    acc[ACC.misses] += lv * (reads - 1)
    acc[ACC.retries] += lv * dropped
    acc[ACC.retry_io_waits] += lv * dropped
    acc[ACC.wakes] += lv * reads
    acc[ACC.cpu] += lv * (reads * c_f + dropped * c_f + c_f)
    acc[ACC.latency] += lv * (reads * (c_f + t_io + w) + dropped * c_f + c_f)
    hold(acc, lv * dropped, 1.0, c_f, c_f**2, False)
    hold(acc, lv * (1 - held), 1.0, c_f, c_f**2, False)
    acc[ACC.reads_holding_vma] += lv * held
    hold(acc, lv * held, 1.0, read_hold, read_hold2, True)



@njit(**JIT)
def fault_paths(xi, st, pc, acc, t_io, t_io2, followers_n, in_read_w):
    """Per-fault expectations of every access class into ``acc`` (zeroed first); the latency of
    each class, the residual read a joiner waits for and the mean extra wait of a walk's
    follower in the folio lock's wake-up chain into ``pc``.

    ``pc`` holds the access classes' shares and ``miss``; ``t_io``, ``t_io2`` are the read
    time's first two moments; ``followers_n``, ``in_read_w`` a group walk's followers per group
    and the probability that one joins the read (0 without a walk).
    """
    c_f = xi[IN.fault_cpu_time]
    w = xi[IN.wakeup_latency]
    wc = st[ST.cpu_wait]                       # CPU wait of a woken thread
    wcb = st[ST.cpu_wait_batch]
    gw = w + wc                                # wake-up to running
    p_ab = st[ST.abort]
    pb, rb = st[ST.block], st[ST.block_residual]
    rab = st[ST.abort_residual]
    q_m, q_v = st[ST.q_mmap], st[ST.q_vma]
    walking = xi[IN.walk] > 0
    miss = pc[PC.miss]
    # ---- the fault path of each policy --------------------------------------------------------
    V, dV, dM = xi[IN.use_vma_lock], xi[IN.drop_on_vma], xi[IN.drop_on_mmap]
    rV, up = xi[IN.retry_on_vma], xi[IN.uptodate_wait]
    tried_major = xi[IN.tried_after_major]
    limit = xi[IN.retry_limit]
    w_mmap = pb * (rb + w)
    w_abort = rab + w
    acc[:] = 0.0
    read_hold = c_f + t_io + gw + c_f
    read_hold2 = (c_f + gw + c_f) ** 2 + 2 * (c_f + gw + c_f) * t_io + t_io2
    miss_div = miss if miss > 0 else 1.0

    # -- class: minor faults (cached folio) and zram swap-ins: no retry --------------------------
    for j in range(2):
        before = _elapsed(acc, wc, wcb)
        if j == 0:
            y, work = pc[PC.minor] / miss_div, c_f
        else:
            y, work = pc[PC.zram] / miss_div, xi[IN.zram_latency] + c_f
        p_vma, p_m = first_lock(acc, y, V, p_ab, w_abort, w_mmap, pb)
        acc[ACC.latency] += y * work
        acc[ACC.cpu] += y * work
        hold(acc, y * p_vma, 1.0, work, work**2, False)
        hold(acc, y * p_m, 0.0, work, work**2, False)
        if j == 1:
            acc[ACC.majors] += y
            acc[ACC.zram_cpu] += y * xi[IN.zram_latency]
        pc[PC.latency_minor if j == 0 else PC.latency_zram] = _elapsed(acc, wc, wcb) - before

    # group walks (mm/filemap.c, 6.18): the leader reads its folio at filemap_fault's
    # page_not_uptodate (no read-around: MADV_RANDOM, which inputs.py requires of a walk) and
    # waits in filemap_read_folio's folio_wait_locked_killable, a shared wait; the followers
    # that dropped their lock sleep in __folio_lock_killable, exclusive.  The read's end
    # (folio_end_read -> folio_wake_bit) wakes the leader and the first follower only; each
    # follower, woken without the lock (sysctl_page_lock_unfairness), takes it, unlocks at once
    # (waking the next) and returns VM_FAULT_RETRY.  Meanwhile the folio is unlocked, so the
    # retries map it without waiting for the chain (montecarlo/folio.py).  The leader pays no
    # chain; the k-th of n followers waits k - 1 wake-ups more than the first: (n - 1) / 2 on
    # average (linearity of the mean, whatever the order of arrival).
    stampede_wakes = 0.0
    if walking:
        joiner_drops = V * dV + (1 - V) * dM
        chain_followers = followers_n * in_read_w * joiner_drops
        stampede_wakes = vmax(chain_followers - 1, 0.0) / 2
    stampede = stampede_wakes * w

    # -- class: major file faults ---------------------------------------------------------------
    before = _elapsed(acc, wc, wcb)
    y = pc[PC.major] / miss_div
    acc[ACC.majors] += y
    p_vma1, p_mmap1 = first_lock(acc, y, V, p_ab, w_abort, w_mmap, pb)
    for j in range(2):
        if j == 0:
            p_branch, is_vma, drop = p_vma1, 1.0, dV
        else:
            p_branch, is_vma, drop = p_mmap1, 0.0, dM
        yb = y * p_branch
        # no drop: wait for the read holding the lock
        keep = yb * (1 - drop)
        acc[ACC.reads] += keep
        acc[ACC.wakes] += keep
        acc[ACC.cpu] += keep * 2 * c_f
        acc[ACC.latency] += keep * (2 * c_f + t_io + w)
        acc[ACC.reads_holding_vma] += keep * is_vma
        acc[ACC.reads_holding_mmap] += keep * (1 - is_vma)
        hold(acc, keep, is_vma, read_hold, read_hold2, True)
        # drop: submit, release, read, wake, retry
        dr = yb * drop
        acc[ACC.reads] += dr
        acc[ACC.retries] += dr
        acc[ACC.retry_io_waits] += dr
        acc[ACC.wakes] += dr
        acc[ACC.cpu] += dr * 2 * c_f
        acc[ACC.latency] += dr * (2 * c_f + t_io + w)
        hold(acc, dr, is_vma, c_f, c_f**2, False)
        tried2 = vmax(vmax(1 - is_vma, tried_major), 1.0 if limit == 1 else 0.0)
        p_vma2, q2 = second_lock(acc, dr, is_vma, rV, p_ab, w_abort, w_mmap, pb, q_v, q_m)
        acc[ACC.cpu] += dr * q2 * c_f
        acc[ACC.latency] += dr * q2 * c_f
        hold(acc, dr * q2, p_vma2, c_f, c_f**2, False)
        miss2 = dr * (1 - q2)
        refault_holding(acc, miss2 * tried2, p_vma2, c_f, t_io, w, read_hold, read_hold2)
        loose = miss2 * (1 - tried2)
        if loose > 0:
            untried_loop(acc, loose, p_vma2, st, c_f, t_io, w, w_mmap, pb, limit,
                          read_hold, read_hold2)

    pc[PC.latency_major] = _elapsed(acc, wc, wcb) - before
    before = _elapsed(acc, wc, wcb)

    # -- class: joiners of a fault in progress: while the read is in flight (join_io) and
    # while the folio is uptodate but locked for the PTE install (join_up)
    residual_io = safe_div((c_f + t_io) ** 2 + (t_io2 - t_io**2), 2 * (c_f + t_io), 0.0)
    residual_up = (gw + c_f) / 2
    if walking:
        residual_io = group_walk(xi, st, c_f, gw, t_io, t_io2)[4]
    for jc in range(2):
        if jc == 0:
            y, residual, uptodate = pc[PC.join_io] / miss_div, residual_io, 0.0
        else:
            y, residual, uptodate = pc[PC.join_up] / miss_div, residual_up, 1.0
        p_vma1, p_mmap1 = first_lock(acc, y, V, p_ab, w_abort, w_mmap, pb)
        for j in range(2):
            if j == 0:
                p_branch, is_vma, drop = p_vma1, 1.0, dV
            else:
                p_branch, is_vma, drop = p_mmap1, 0.0, dM
            yb = y * p_branch
            in_place = vmax(1 - drop, up * uptodate)
            keep = yb * in_place
            acc[ACC.wakes] += keep
            acc[ACC.cpu] += keep * c_f
            acc[ACC.latency] += keep * (residual + w + c_f)
            hold(acc, keep, is_vma, residual + gw + c_f, (residual + gw + c_f) ** 2,
                  uptodate == 0)
            dr = yb * (1 - in_place)
            acc[ACC.retries] += dr
            acc[ACC.retry_io_waits] += dr * (1 - uptodate)
            acc[ACC.wakes] += dr
            acc[ACC.cpu] += dr * c_f
            acc[ACC.latency] += dr * (residual + w + c_f + stampede * (1 - uptodate))
            acc[ACC.wakes] += dr * stampede_wakes * (1 - uptodate)
            p_vma2, q2 = second_lock(acc, dr, is_vma, rV, p_ab, w_abort, w_mmap, pb, q_v, q_m)
            acc[ACC.cpu] += dr * q2 * c_f
            acc[ACC.latency] += dr * q2 * c_f
            hold(acc, dr * q2, p_vma2, c_f, c_f**2, False)
            if uptodate == 0:
                refault_holding(acc, dr * (1 - q2), p_vma2, c_f, t_io, w, read_hold,
                                 read_hold2)
            else:
                acc[ACC.cpu] += dr * (1 - q2) * c_f
                acc[ACC.latency] += dr * (1 - q2) * c_f
                hold(acc, dr * (1 - q2), p_vma2, c_f, c_f**2, False)
    pc[PC.latency_waiter] = _elapsed(acc, wc, wcb) - before
    pc[PC.residual_io] = residual_io
    pc[PC.stampede] = stampede
