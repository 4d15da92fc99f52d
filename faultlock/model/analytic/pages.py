"""Pages and reclaim: the access classes of a fault from the folio states of each page.

Each page of the Zipf popularity law is a semi-Markov cycle absent -> locked (being faulted in,
or read around) -> cached -> mapped -> absent under the reclaim hazards (``page_*_share`` in
:mod:`faultlock.model.formulas`), so an access is a hit, a minor fault (cached), a major fault
(absent), a zram swap-in, or joins a fault already reading the folio.  The Zipf law is summed
exactly for the hottest ranks and by Gauss-Legendre quadrature in log-rank for the tail
(:func:`zipf_nodes`).  Where the address space exceeds the engine's folio table, a full table
evicts about at random: an extra hazard (:func:`eviction_hazard`, the Che approximation).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .layout import IN, PC, ST
from .numeric import JIT, page_state_weights, safe_div

__all__ = ["zipf_nodes"]

HEAD_RANKS = 8           # Zipf ranks summed exactly
TAIL_NODES = 16          # Gauss-Legendre nodes in log-rank for the rest
EVICTION_STEPS = 40      # bisection steps of the eviction hazard (in log10, over [-12, 12])
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
def _resident(extra, lam, prob, count, rho, th_c, th_m, pages):
    """Expected resident (not absent) pages with the extra hazard ``extra``."""
    total_resident = 0.0
    for k in range(prob.shape[0]):
        a = lam * prob[k]
        w_ab, w_fl, w_ra, w_ca, w_ma = page_state_weights(a, rho, th_c + extra, th_m + extra,
                                                          0.0, 0.0)
        total = w_ab + w_ca + w_ma
        absent = w_ab / total if total > 0 else 1.0
        total_resident += count[k] * (1 - absent)
    return pages * total_resident


@njit(**JIT)
def eviction_hazard(xi, lam, prob, count, rho, th_c, th_m):
    """Extra reclaim hazard that keeps the resident folios within the folio table's capacity.

    Where the address space exceeds the table (a file larger than memory), inserting into a full
    table evicts an unreferenced folio, about at random: the Che approximation for random
    replacement gives each resident folio an eviction hazard 1/T, T the characteristic time, set
    so that the expected number of resident (not absent) pages equals the capacity.  0 where the
    reclaim hazards already keep fewer pages than that.  Found by bisection in log hazard.
    """
    pages = xi[IN.total_pages]
    cap = xi[IN.capacity]
    lo = -12.0
    hi = 12.0
    for _ in range(EVICTION_STEPS):
        mid = 0.5 * (lo + hi)
        if _resident(10.0**mid, lam, prob, count, rho, th_c, th_m, pages) > cap:
            lo = mid
        else:
            hi = mid
    return 10.0**hi if _resident(0.0, lam, prob, count, rho, th_c, th_m, pages) > cap else 0.0


@njit(**JIT)
def page_classes(xi, st, prob, mass, count, t_io, gw, pc):
    """The access classes of a random access (file and swap pages; not group walks).

    Fills ``pc``: the shares of accesses that are major faults, minor faults (cached folio),
    joins of a read in flight (``join_io``) or of a PTE install (``join_up``), zram swap-ins;
    the share of pages absent (``absent_uniform``, what read-around finds) and the pages
    reclaimed per second.  ``t_io`` is the read time, ``gw`` a wake-up until running.
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
    if xi[IN.swap_pages] > 0:  # swap pages: no read-around; locked while zram decompresses
        t_z = xi[IN.zram_latency] + c_f
        s_zram = 0.0
        s_mapped = 0.0
        for k in range(prob.shape[0]):
            a = lam * prob[k]
            ws_ab, ws_fl, ws_ra, ws_ca, ws_ma = page_state_weights(a, 0.0, th_c, th_m, t_z, 0.0)
            total_s = ws_ab + ws_fl + ws_ma
            if total_s <= 0:
                s_zram += mass[k]
            else:
                s_zram += mass[k] / total_s * (ws_ab + ws_fl)
                s_mapped += count[k] / total_s * ws_ma * th_m
        pc[PC.zram] = ss * s_zram
        reclaims = reclaims + xi[IN.swap_pages] * s_mapped
    pc[PC.reclaims_pages] = reclaims
