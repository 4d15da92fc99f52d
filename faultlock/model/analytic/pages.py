"""Pages and reclaim: the access classes of a fault from the folio states of each page.

Each page of the Zipf popularity law is a semi-Markov cycle absent -> locked (being faulted in,
or read around) -> cached -> mapped -> absent under the reclaim hazards (``page_*_share`` in
:mod:`faultlock.model.formulas`), so an access is a hit, a minor fault (cached), a major fault
(absent), a zram swap-in, or joins a fault already reading the folio.  The Zipf law is summed
exactly for the hottest ranks and by Gauss-Legendre quadrature in log-rank for the tail
(:func:`zipf_nodes`).  Where the address space exceeds the engine's folio table, a full table
evicts about at random: an extra hazard (:func:`eviction_hazard`, the Che approximation).

Under a memory limit (``reclaim = "lru"``, ``memory_limit > 0``) the hazards give way to the
LRU's characteristic time (:func:`characteristic_time`, formulas ``lru_page_*`` and
``two_list_page_*``): every folio lives a near-deterministic T_c after its last reference, T_c
set so that the resident folios (reading, cached, mapped; file and swap) fill the limit.  Both
solves find where an occupancy (:func:`occupancy`, monotone in its parameter: the eviction
hazard for the table, the lifetime for the LRU) crosses its target, in log10 of the parameter
(:func:`_solve_level`): a bracket searched outward from the previous pass's value (the fixed
point's passes move it little), then regula falsi with the Illinois modification
(:func:`numeric.illinois_step`) to a relative accuracy of ``LEVEL_TOLERANCE``.  With two lists
the active list's time T_A is a second such solve around the first (:func:`_solve_active`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .layout import IN, PC, ST
from .numeric import JIT, clip, illinois_step, lru_page_weights, page_state_weights, safe_div

__all__ = ["zipf_nodes"]

HEAD_RANKS = 8           # Zipf ranks summed exactly
TAIL_NODES = 16          # Gauss-Legendre nodes in log-rank for the rest
EVICTION_RANGE = 12.0    # the eviction hazard lies in [1e-12, 1e12] /s
LIFETIME_RANGE = 9.0     # an LRU lifetime lies in [1e-9, 1e9] s
LEVEL_TOLERANCE = 1e-10  # relative accuracy of a solved level (hazard, T_c, T_A)
_LOG_TOLERANCE = LEVEL_TOLERANCE / math.log(10) / 4   # in log10, for the inner solve (T_c)
_FIRST_STEP = (1e-9, 1.0)  # bounds of the bracket search's first step (log10)
_ROOT_STEPS = 200        # at most this many evaluations in the Illinois phase of a solve
NO_PRESSURE = 1e15       # the lifetime (s) that stands for "never reclaimed"
SWAP_CLUSTER_MAX = 32    # folios direct reclaim frees at least (include/linux/swap.h)
_HAZARD, _LRU = 0, 1     # what occupancy()'s level is
_GL_X, _GL_W = np.polynomial.legendre.leggauss(TAIL_NODES)


def zipf_nodes(pages, exponent):
    """Nodes of the Zipf law over ``pages`` ranks: (page probability, access mass, page count).

    Returns three arrays of shape ``pages.shape + (K,)``: the access probability ``p`` of a page at
    each node, the share of accesses the node stands for (sums to 1) and the share of pages it
    stands for (sums to 1).  Ranks ``1..8`` are exact; the tail ``9..n`` is the integral of
    ``x^-s`` over ``[8.5, n + 0.5]`` (midpoint Euler-Maclaurin) by Gauss-Legendre in ``ln x``.
    """
    n = np.asarray(pages, dtype=float)[..., None]
    s = np.asarray(exponent, dtype=float)[..., None]
    head = np.arange(1, HEAD_RANKS + 1, dtype=float)
    in_head = head <= n
    head_weight = np.where(in_head, head ** -s, 0.0)
    head_count = in_head.astype(float)
    lo = np.log(HEAD_RANKS + 0.5)
    hi = np.log(np.maximum(n, HEAD_RANKS) + 0.5)
    half = (hi - lo) / 2
    t = lo + half * (_GL_X + 1)
    x = np.exp(t)
    tail_count = np.where(n > HEAD_RANKS, half * _GL_W * x, 0.0)   # dx = x dt
    tail_weight = tail_count * x ** -s
    weight = np.concatenate([np.broadcast_to(head_weight, np.broadcast_shapes(
        head_weight.shape, tail_weight.shape[:-1] + (1,))), tail_weight], axis=-1)
    count = np.concatenate([np.broadcast_to(head_count, weight[..., :HEAD_RANKS].shape),
                            tail_count], axis=-1)
    total_weight = weight.sum(-1, keepdims=True)
    total_count = count.sum(-1, keepdims=True)
    rank_value = np.concatenate([np.broadcast_to(head, weight[..., :HEAD_RANKS].shape),
                                 np.broadcast_to(x, weight[..., HEAD_RANKS:].shape)], axis=-1)
    probability = rank_value ** -s / total_weight
    return probability, weight / total_weight, count / total_count


@njit(**JIT)
def occupancy(kind, level, active, lam, prob, count, rho, th_c, th_m, t_f, t_r, lists,
              file_share=1.0, t_z=0.0, t_w=0.0):
    """Expected resident pages per page of the space, and those on the active list.

    ``kind`` _HAZARD: ``level`` is an extra reclaim hazard (the folio table's evictions; only
    the cached and mapped folios count, as the table's slots); _LRU: ``level`` is the lifetime
    T_c of the (inactive) list and ``active`` the active list's T_A (``lists`` 2), and a folio
    counts from its insertion (locked while read) to its reclaim, as the memcg charges it;
    a share ``1 - file_share`` of the pages are swap pages (no read-around, locked ``t_z``
    while zram decompresses them); ``t_w`` the refault distance's window (two lists).
    """
    resident = 0.0
    on_active = 0.0
    for k in range(prob.shape[0]):
        a = lam * prob[k]
        if kind == _HAZARD:
            w_ab, w_fl, w_ra, w_ca, w_ma = page_state_weights(a, rho, th_c + level, th_m + level,
                                                              0.0, 0.0)
            total = w_ab + w_ca + w_ma
            absent = w_ab / total if total > 0 else 1.0
            resident += count[k] * (1 - absent)
        else:
            for j in range(2):
                share = file_share if j == 0 else 1.0 - file_share
                if share <= 0:
                    continue
                if j == 0:
                    w_ab, w_fl, w_ra, w_ca, w_ma, w_ac = lru_page_weights(a, rho, level, active,
                                                                          t_f, t_r, t_w, lists)
                else:
                    w_ab, w_fl, w_ra, w_ca, w_ma, w_ac = lru_page_weights(a, 0.0, level, active,
                                                                          t_z, 0.0, t_w, lists)
                total = w_ab + w_fl + w_ra + w_ca + w_ma
                if total > 0:
                    resident += share * count[k] * (1 - w_ab / total)
                    on_active += share * count[k] * w_ac / total
    return resident, on_active


@njit(**JIT)
def _excess(kind, y, target, active, lam, prob, count, rho, th_c, th_m, t_f, t_r, lists, pages,
            file_share, t_z, t_w):
    """``g(y)`` whose root is the level ``10^y`` where ``pages x occupancy`` meets ``target``,
    signed to fall through it (as :func:`numeric.illinois_step` takes it): the resident pages
    less the target for the hazard (more evictions keep fewer folios), the target less them for
    the lifetime (a longer life keeps more)."""
    resident = pages * occupancy(kind, 10.0**y, active, lam, prob, count, rho, th_c, th_m, t_f,
                                 t_r, lists, file_share, t_z, t_w)[0]
    return resident - target if kind == _HAZARD else target - resident


@njit(**JIT)
def _solve_level(kind, target, bound, guess, active, lam, prob, count, rho, th_c, th_m, t_f,
                 t_r, lists, pages, file_share=1.0, t_z=0.0, t_w=0.0):
    """The level in ``[10^-bound, 10^bound]`` at which ``pages x occupancy`` crosses ``target``
    (:func:`_excess`), to ``LEVEL_TOLERANCE`` relative; the nearer end of the range where it
    does not cross inside it.

    The bracket is searched outward from ``guess`` (the previous pass's level; without one
    (not positive): 1), downhill, in steps growing fourfold from the residual's share of the
    target (in decades: the resident pages change by about their own number per decade of the
    level where it binds), so a guess near the root costs two or three evaluations; then regula
    falsi (Illinois) in log10 of the level until the bracket is narrower than the tolerance;
    the middle of it is returned.  ``g`` is continuous and monotone in the level, so the root
    is unique.
    """
    y0 = clip(math.log10(guess), -bound, bound) if guess > 0 and guess < math.inf else 0.0
    g0 = _excess(kind, y0, target, active, lam, prob, count, rho, th_c, th_m, t_f, t_r, lists,
                 pages, file_share, t_z, t_w)
    if g0 == 0:
        return 10.0**y0
    uphill = g0 > 0                            # g falls with y: the root is above y0
    y_near, g_near = y0, g0
    y_far, g_far = y0, g0
    step = clip(abs(g0) / target, _FIRST_STEP[0], _FIRST_STEP[1])
    while (g_far > 0) == uphill and g_far != 0:
        if y_far == (bound if uphill else -bound):
            return 10.0**y_far                 # no crossing inside the range: its end
        y_near, g_near = y_far, g_far
        y_far = clip(y0 + (step if uphill else -step), -bound, bound)
        g_far = _excess(kind, y_far, target, active, lam, prob, count, rho, th_c, th_m, t_f,
                        t_r, lists, pages, file_share, t_z, t_w)
        step *= 4.0
    if g_far == 0:
        return 10.0**y_far
    if uphill:
        lo, g_lo, hi, g_hi = y_near, g_near, y_far, g_far
    else:
        lo, g_lo, hi, g_hi = y_far, g_far, y_near, g_near
    side = 0.0
    y = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
    for _ in range(_ROOT_STEPS):
        if hi - lo <= _LOG_TOLERANCE:
            break
        gy = _excess(kind, y, target, active, lam, prob, count, rho, th_c, th_m, t_f, t_r,
                     lists, pages, file_share, t_z, t_w)
        lo, g_lo, hi, g_hi, side, y = illinois_step(lo, g_lo, hi, g_hi, side, y, gy)
    return 10.0**(0.5 * (lo + hi))


@njit(**JIT)
def eviction_hazard(xi, lam, prob, count, rho, th_c, th_m):
    """Extra reclaim hazard that keeps the resident folios within the folio table's capacity.

    Where the address space exceeds the table (a file larger than memory), inserting into a full
    table evicts an unreferenced folio, about at random: the Che approximation for random
    replacement gives each resident folio an eviction hazard 1/T, T the characteristic time, set
    so that the expected number of resident (not absent) pages equals the capacity.  0 where the
    reclaim hazards already keep fewer pages than that.  Solved in log hazard
    (:func:`_solve_level`, from 1/s).
    """
    pages = xi[IN.total_pages]
    cap = xi[IN.capacity]
    if pages * occupancy(_HAZARD, 0.0, 0.0, lam, prob, count, rho, th_c, th_m, 0.0, 0.0,
                         1)[0] <= cap:
        return 0.0
    return _solve_level(_HAZARD, cap, EVICTION_RANGE, 0.0, 0.0, lam, prob, count, rho, th_c,
                        th_m, 0.0, 0.0, 1, pages)


@njit(**JIT)
def _active_excess(y, target, cap, lifetime_guess, lam, prob, count, rho, t_f, t_r, pages,
                   file_share, t_z, t_w):
    """For an active list's time ``10^y``: (the target of the active list less its pages, the
    inactive list's T_c that fills the limit with it), the first falling through the root."""
    active = 10.0**y
    lifetime = _solve_level(_LRU, cap, LIFETIME_RANGE, lifetime_guess, active, lam, prob, count,
                            rho, 0.0, 0.0, t_f, t_r, 2, pages, file_share, t_z, t_w)
    on_active = pages * occupancy(_LRU, lifetime, active, lam, prob, count, rho, 0.0, 0.0, t_f,
                                  t_r, 2, file_share, t_z, t_w)[1]
    return target - on_active, lifetime


@njit(**JIT)
def _solve_active(target, cap, guess, lifetime_guess, lam, prob, count, rho, t_f, t_r, pages,
                  file_share, t_z, t_w):
    """The active list's FIFO time T_A (in ``[10^-9, 10^9]`` s) at which it holds ``target``
    pages while T_c fills the limit, and that T_c: :func:`_solve_level`'s search and regula
    falsi around it (each evaluation an inner solve of T_c, warm-started from the last one), to
    ``LEVEL_TOLERANCE`` relative in T_A: the last T_A evaluated (an end of the final bracket)
    and its T_c.  The active list's pages grow with T_A."""
    bound = LIFETIME_RANGE
    tolerance = LEVEL_TOLERANCE / math.log(10)
    y0 = clip(math.log10(guess), -bound, bound) if guess > 0 and guess < math.inf else 0.0
    g0, t0 = _active_excess(y0, target, cap, lifetime_guess, lam, prob, count, rho, t_f, t_r,
                            pages, file_share, t_z, t_w)
    if g0 == 0:
        return 10.0**y0, t0
    uphill = g0 > 0
    y_near, g_near, t_near = y0, g0, t0
    y_far, g_far, t_far = y0, g0, t0
    step = clip(abs(g0) / target, _FIRST_STEP[0], _FIRST_STEP[1])
    while (g_far > 0) == uphill and g_far != 0:
        if y_far == (bound if uphill else -bound):
            return 10.0**y_far, t_far
        y_near, g_near, t_near = y_far, g_far, t_far
        y_far = clip(y0 + (step if uphill else -step), -bound, bound)
        g_far, t_far = _active_excess(y_far, target, cap, t_near, lam, prob, count, rho, t_f,
                                      t_r, pages, file_share, t_z, t_w)
        step *= 4.0
    if g_far == 0:
        return 10.0**y_far, t_far
    if uphill:
        lo, g_lo, hi, g_hi = y_near, g_near, y_far, g_far
    else:
        lo, g_lo, hi, g_hi = y_far, g_far, y_near, g_near
    # the last point evaluated (an end of the final bracket) and its T_c: a consistent pair
    y_last, lifetime = y_far, t_far
    side = 0.0
    y = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
    for _ in range(_ROOT_STEPS):
        if hi - lo <= tolerance:
            break
        gy, lifetime = _active_excess(y, target, cap, lifetime, lam, prob, count, rho, t_f, t_r,
                                      pages, file_share, t_z, t_w)
        y_last = y
        lo, g_lo, hi, g_hi, side, y = illinois_step(lo, g_lo, hi, g_hi, side, y, gy)
    return 10.0**y_last, lifetime


@njit(**JIT)
def characteristic_time(xi, lam, prob, count, rho, t_f, t_r, t_z, t_w, guess=0.0,
                        active_guess=0.0):
    """The LRU's characteristic times under ``memory_limit``: (T_c, T_A).

    T_c (``lru_lists`` 1: the list's; 2: the inactive list's) solves Che's equation
    ``sum_i P(page i resident) = C`` with the page shares of ``formulas.lru_cache`` (locked,
    cached and mapped folios count; read-around at rate ``rho``).  With two lists the active
    list fills up under pressure (a folio once promoted would otherwise stay forever) until
    ``inactive_is_low`` deactivates its tail: active = ratio x inactive, which fixes its FIFO
    time T_A (an outer solve around the inner one for T_c).  ``NO_PRESSURE`` where every
    page fits.  Swap pages (anon, ``t_z`` their zram swap-in) share the limit and the lists (one
    LRU for both: memcg reclaim's anon/file balance by swappiness is not modelled).  ``guess``
    and ``active_guess``: the previous pass's T_c and T_A, where the solves start (0: none);
    the result does not depend on them beyond ``LEVEL_TOLERANCE``.
    """
    fs = xi[IN.file_share]
    pages = xi[IN.total_pages]
    limit = xi[IN.memory_limit]
    lists = int(xi[IN.lru_lists])
    big = NO_PRESSURE
    if pages * occupancy(_LRU, big, big, lam, prob, count, rho, 0.0, 0.0, t_f, t_r,
                         lists, fs, t_z, t_w)[0] <= limit:
        return big, big                    # everything fits: the limit is never reached
    # direct reclaim frees SWAP_CLUSTER_MAX folios at a time (try_to_free_mem_cgroup_pages'
    # nr_to_reclaim), so the cache runs between the limit and 32 below it: (32 - 1)/2 below
    cap = limit - (SWAP_CLUSTER_MAX - 1) / 2 if limit > SWAP_CLUSTER_MAX else limit
    if lists == 1:
        return _solve_level(_LRU, cap, LIFETIME_RANGE, guess, 0.0, lam, prob, count, rho, 0.0,
                            0.0, t_f, t_r, 1, pages, fs, t_z, t_w), 0.0
    ratio = xi[IN.inactive_ratio]
    active_target = cap * ratio / (1 + ratio)
    active, lifetime = _solve_active(active_target, cap, active_guess, guess, lam, prob, count,
                                     rho, t_f, t_r, pages, fs, t_z, t_w)
    return lifetime, active


@njit(**JIT)
def page_classes(xi, st, prob, mass, count, t_io, gw, pc):
    """The access classes of a random access (file and swap pages; not group walks).

    Fills ``pc``: the shares of accesses that are major faults, minor faults (cached folio),
    joins of a read in flight (``join_io``) or of a PTE install (``join_up``), zram swap-ins;
    the share of pages absent (``absent_uniform``, what read-around finds) and the pages
    reclaimed per second.  ``t_io`` is the read time, ``gw`` a wake-up until running.

    Under the memory limit (``IN.lru``) the page shares are the LRU's (``lru_page_*``,
    ``two_list_page_*``) at the characteristic time solved here for this pass's access and
    read-around rates and locked times; a fault's locked time then includes the rereads of
    the refault loop (``ST.refaults_per_major``), so that the loop's reads are charged too.
    Every folio brought in (a fault or a read-around) pushes one out: the reclaim rate is the
    insertion rate.  Also fills the resident pages (``cache_pages``) and the lifetimes.
    """
    c_f = xi[IN.fault_cpu_time]
    lam = st[ST.access_rate]
    rho = safe_div((xi[IN.readaround] - 1) * st[ST.read_rate], xi[IN.file_pages], 0.0)
    th_c = xi[IN.reclaim_rate_cached]
    th_m = xi[IN.reclaim_rate_mapped]
    if math.isfinite(xi[IN.capacity]):
        extra = eviction_hazard(xi, lam, prob, count, rho, th_c, th_m)
        th_c = th_c + extra
        th_m = th_m + extra
    t_f = c_f + t_io + gw + c_f
    t_z = xi[IN.zram_latency] + c_f
    lru = xi[IN.lru] > 0
    lists = int(xi[IN.lru_lists])
    lifetime = NO_PRESSURE
    active = 0.0
    if lru:
        t_f = t_f + st[ST.refaults_per_major] * (c_f + t_io + gw)
        # the previous pass's times (in ``pc`` still) are where this pass's solve starts
        lifetime, active = characteristic_time(xi, lam, prob, count, rho, t_f, t_io, t_z,
                                               st[ST.refault_window], pc[PC.lifetime],
                                               pc[PC.active_lifetime])
    t_w = st[ST.refault_window]
    u_active = 0.0
    u_activations = 0.0
    u_unlocked = 0.0
    s_activated = 0.0
    u_resident = 0.0
    s_absent = 0.0
    s_cached = 0.0
    s_fault_locked = 0.0
    s_readaround_locked = 0.0
    s_untouched_mass = 0.0
    u_absent = 0.0
    u_untouched_count = 0.0
    u_reclaimed = 0.0
    for k in range(prob.shape[0]):
        a = lam * prob[k]
        if lru:
            w_ab, w_fl, w_ra, w_ca, w_ma, w_ac = lru_page_weights(a, rho, lifetime, active, t_f,
                                                                  t_io, t_w, lists)
        else:
            w_ab, w_fl, w_ra, w_ca, w_ma = page_state_weights(a, rho, th_c, th_m, t_f, t_io)
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
        u_resident += by_count * (total - w_ab)
        u_unlocked += by_count * (w_ca + w_ma)
        if lru:                    # each insertion (leaving absent) pushes a folio out
            u_reclaimed += by_count * w_ab * (a + rho)
            if lists == 2:
                # the cycle: evictions 1, activations n_A, and the refault distance's share
                # of insertions that go active at once
                u_active += by_count * w_ac
                u_activations += by_count * safe_div(w_ac, active, 0.0)
                s_activated += by_mass * w_ab * -math.expm1(-(a + rho) * t_w)
        else:
            u_reclaimed += by_count * (w_ca * th_c + w_ma * th_m)
    fs, ss = xi[IN.file_share], 1.0 - xi[IN.file_share]
    io_phase = safe_div(c_f + t_io, c_f + t_io + gw + c_f, 0.0)
    pc[PC.major] = fs * (s_absent + s_untouched_mass)
    pc[PC.minor] = fs * s_cached
    pc[PC.join_io] = fs * (s_fault_locked * io_phase + s_readaround_locked)
    pc[PC.join_up] = fs * s_fault_locked * (1 - io_phase)
    pc[PC.zram] = 0.0
    pc[PC.absent_uniform] = u_absent + u_untouched_count
    reclaims = xi[IN.file_pages] * u_reclaimed
    resident = xi[IN.file_pages] * (u_resident + 0.0)
    if xi[IN.swap_pages] > 0:  # swap pages: no read-around; locked while zram decompresses
        s_zram = 0.0
        s_mapped = 0.0
        s_resident = 0.0
        for k in range(prob.shape[0]):
            a = lam * prob[k]
            if lru:
                ws_ab, ws_fl, ws_ra, ws_ca, ws_ma, ws_ac = lru_page_weights(
                    a, 0.0, lifetime, active, t_z, 0.0, t_w, lists)
            else:
                ws_ab, ws_fl, ws_ra, ws_ca, ws_ma = page_state_weights(a, 0.0, th_c, th_m, t_z,
                                                                       0.0)
            total_s = ws_ab + ws_fl + ws_ma
            if total_s <= 0:
                s_zram += mass[k]
            else:
                s_zram += mass[k] / total_s * (ws_ab + ws_fl)
                s_resident += count[k] / total_s * (ws_fl + ws_ma)
                if lru:
                    s_mapped += count[k] / total_s * ws_ab * a
                else:
                    s_mapped += count[k] / total_s * ws_ma * th_m
        pc[PC.zram] = ss * s_zram
        reclaims = reclaims + xi[IN.swap_pages] * s_mapped
        resident = resident + xi[IN.swap_pages] * s_resident
    pc[PC.reclaims_pages] = reclaims
    pc[PC.cache_pages] = resident
    pressure = lru and lifetime < NO_PRESSURE
    pc[PC.lifetime] = lifetime if pressure else math.nan
    pc[PC.active_lifetime] = active if pressure and lists == 2 else math.nan
    # the refault distance's window: active pages over evictions and activations per second
    # (workingset.c: nonresident_age), file pages only
    pc[PC.refault_window] = safe_div(u_active, u_reclaimed + u_activations, 0.0) if pressure \
        else 0.0
    pc[PC.activated_major] = safe_div(s_activated, s_absent, 0.0)
    pc[PC.evictions] = reclaims
    pc[PC.unlocked_pages] = xi[IN.file_pages] * u_unlocked
