"""The latency distribution of an element: quantiles, jank share, histograms (compiled).

The fault latency is a mixture over the paths of a fault (the classes of the fault paths) of a
fixed CPU and wake-up time, the read time (its law's CDF taken linear between the quantile
levels ``LEVELS``, one stratum each: ``uniform_plus_wait_cdf``) and an atom-or-exponential
wait; the waits of the paths are shifted together so that the mixture has exactly the model's
mean latency.  Quantiles are bracketed on a grid of ``GRID`` points in log time and refined on
the exact mixture CDF by regula falsi (Illinois) in log time; the jank share and the
log-binned histogram are read from the same CDF.  The lock waits are atom-or-exponential, the
writer latency log-normal.  The read time's quantiles for one and two reads come from the law's
quantile function (``laws.quantile``), computed once per (law, cv) in
:func:`read_strata`: each law is a scale family, so an element's are its mean times those.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import laws
from ..formulas import uniform_plus_wait_scalar as uniform_plus_wait
from .layout import ACC, IN, IO, LK, OUT, PC, ST
from .numeric import JIT, clip, safe_div, vmax, vmin

#: quantile levels that cut a read time's law into strata (its CDF is taken linear inside each)
LEVELS = np.concatenate([[0.0, 1e-3, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                          0.8, 0.85, 0.875, 0.89, 0.9, 0.91],
                         1 - 10 ** -(0.9 + np.arange(1, 36) / 5)])
# (0.875-0.91: a read law with stalls jumps from its body to its stalls at 1 - io_stall_share,
# a few per cent of reads; a stratum across that gap would spread the jump over it)
GRID = 64                  # CDF points per element from which quantiles are bracketed
REFINE = 6                 # regula falsi steps on the exact CDF per quantile
LOGNORMAL_Z99 = 2.3263478740408408          # the standard normal's 99th percentile

# the paths of a fault: columns of the component table
_W, _SHIFT, _READS, _P0, _MEAN, _KIND = range(6)
_MAJOR, _WAITER, _MINOR = range(3)         # the harness's access classes
_PATHS = 7


def read_strata(law_names, cvs, stall_shares=None, stall_ratios=None, stall_cvs=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles at ``LEVELS`` of the read time's law for one and two reads of mean 1, per
    distinct (law, cv, stalls): (table (U, 2, len(LEVELS)), row of each input).

    With stalls (``io_stall_share`` > 0) a read is B + S (``laws.stall_cdf``) and the element's
    ``io_latency`` is its whole mean; ``cvs`` is then the body's cv and ``stall_ratios`` the
    stall's mean over the body's. Two reads: the body's sum (``laws.sum_of_reads``) held up
    with probability 1 - (1 - share)^2 by one stall (two stalls, share^2, are taken as one).
    """
    n = np.size(law_names)
    shares = np.zeros(n) if stall_shares is None else np.asarray(stall_shares, float).ravel()
    ratios = np.ones(n) if stall_ratios is None else np.asarray(stall_ratios, float).ravel()
    s_cvs = np.zeros(n) if stall_cvs is None else np.asarray(stall_cvs, float).ravel()
    keys = list(zip(np.asarray(law_names).ravel().tolist(),
                    np.asarray(cvs, dtype=float).ravel().tolist(),
                    shares.tolist(), np.where(shares > 0, ratios, 0.0).tolist(),
                    np.where(shares > 0, s_cvs, 0.0).tolist()))
    unique = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    table = np.zeros((len(unique), 2, LEVELS.size))
    top = LEVELS < 1
    for (law, cv, share, ratio, stall_cv), i in unique.items():
        for reads in (1, 2):
            name, sum_cv = laws.sum_of_reads(law, np.array([cv]), reads)
            if share > 0:
                # unit mean: body of mean `reads` and the stall, scaled by the reads' whole mean
                held = 1 - (1 - share) ** reads
                total = reads * (1 + share * ratio)
                q = np.full(LEVELS.size, np.inf)
                q[top] = laws.stall_quantile(LEVELS[top], name, float(reads), float(sum_cv[0]),
                                             held, ratio, stall_cv) / total
            else:
                q = laws.quantile(name, 1.0, sum_cv[:, None], LEVELS[None, :])[0]
            table[i, reads - 1] = np.maximum.accumulate(np.nan_to_num(q, posinf=0.0))
    return table, np.array([unique[k] for k in keys], dtype=float)


@njit(**JIT)
def _path_cdf(comp, c, q1, q2, levels, t):
    """P(latency <= t) of path ``c`` times its weight."""
    u = t - comp[c, _SHIFT]
    p0 = comp[c, _P0]
    cond = safe_div(comp[c, _MEAN], 1 - p0, 0.0)
    reads = comp[c, _READS]
    if reads == 0:
        if not u >= 0:
            return 0.0
        if cond <= 0:
            return comp[c, _W]
        return comp[c, _W] * (1 - (1 - p0) * math.exp(-u / cond))
    acc = 0.0
    q = q1 if reads == 1 else q2
    for k in range(levels.shape[0] - 1):
        if u < q[k]:             # the strata are ordered: this one and the rest are ahead
            break
        acc += (levels[k + 1] - levels[k]) * uniform_plus_wait(u, q[k], q[k + 1] - q[k], p0,
                                                               cond)
    return comp[c, _W] * acc


@njit(**JIT)
def _cdf(comp, kind, q1, q2, levels, t):
    """The mixture's CDF (weights not normalised) at ``t`` over the paths of ``kind`` (-1: all)."""
    total = 0.0
    for c in range(_PATHS):
        if not comp[c, _W] > 0:
            continue
        if kind >= 0 and comp[c, _KIND] != kind:
            continue
        total += _path_cdf(comp, c, q1, q2, levels, t)
    return total


@njit(**JIT)
def _quantile(t, logt, cdf, p, comp, kind, q1, q2, levels, scale):
    """The time at which the CDF reaches ``p``: bracketed by the grid ``t`` (where the CDF,
    made monotone, is ``cdf``), then refined on the exact CDF by regula falsi (Illinois) in
    log t."""
    n = t.shape[0]
    idx = -1
    for i in range(n):
        if cdf[i] >= p:
            idx = i
            break
    if idx < 0:
        return math.inf
    if idx == 0:
        return t[0]
    i1 = idx
    i0 = i1 - 1
    f0 = cdf[i0] - p
    f1 = cdf[i1] - p
    l0 = logt[i0]
    l1 = logt[i1]
    side = 0.0
    for _ in range(REFINE):
        frac = clip(safe_div(-f0, f1 - f0, 0.5), 0.0, 1.0)
        lm = l0 + frac * (l1 - l0)
        fm = _cdf(comp, kind, q1, q2, levels, math.exp(lm)) / scale - p
        left = fm < 0
        # Illinois: halve the value kept twice in a row, so the bracket shrinks from both ends
        if left and side < 0:
            f1 = f1 / 2
        if (not left) and side > 0:
            f0 = f0 / 2
        if left:
            l0, f0 = lm, fm
        else:
            l1, f1 = lm, fm
        side = -1.0 if left else 1.0
    frac = clip(safe_div(-f0, f1 - f0, 0.5), 0.0, 1.0)
    return math.exp(l0 + frac * (l1 - l0))


@njit(**JIT)
def _ordered(previous, value):
    """``value``, raised to the quantile of the previous (lower) level when below it.

    :func:`_quantile` stops after ``REFINE`` steps, so each value is only known to lie in its
    final bracket, and at a jump of the CDF (an atom: a fixed CPU time, a wait that is often
    zero) regula falsi leaves wide brackets that overlap between levels: p90 could come out
    above p99.  The quantile function is non-decreasing, so a running maximum over the levels
    in increasing order keeps the order by construction, and each value stays within its
    level's bracket error (if q_a > q_b for levels a < b, the true quantiles satisfy
    x_b >= x_a > q_a - err_a and x_b <= q_b + err_b < q_a + err_b).
    """
    if value != value:
        return value
    return value if previous != previous or value >= previous else previous


@njit(**JIT)
def _combine(p_a, m_a, p_b, m_b):
    """Independent atom-or-exponential waits (p_zero, mean): their sum as one."""
    return p_a * p_b, m_a + m_b


@njit(**JIT)
def _set_path(comp, c, weight, shift, reads, p_zero, wait_mean, kind):
    comp[c, _W] = weight
    comp[c, _SHIFT] = shift
    comp[c, _READS] = reads
    comp[c, _P0] = clip(p_zero, 0.0, 1.0)
    comp[c, _MEAN] = vmax(wait_mean, 0.0)
    comp[c, _KIND] = kind


@njit(**JIT)
def fault_paths_mixture(xi, st, acc, io, pc, comp):
    """The fault latency as a mixture of paths (the classes of ``fault_paths``), same mean."""
    miss = pc[PC.miss]
    y_major = safe_div(pc[PC.major], miss, 0.0)
    y_minor = safe_div(pc[PC.minor], miss, 0.0)
    y_join_io = safe_div(pc[PC.join_io], miss, 0.0)
    y_join_up = safe_div(pc[PC.join_up], miss, 0.0)
    y_zram = safe_div(pc[PC.zram], miss, 0.0)
    c_f, w = xi[IN.fault_cpu_time], xi[IN.wakeup_latency]
    wc, wcb = st[ST.cpu_wait], st[ST.cpu_wait_batch]
    V, dV, dM = xi[IN.use_vma_lock], xi[IN.drop_on_vma], xi[IN.drop_on_mmap]
    rV = xi[IN.retry_on_vma]
    p_ab, pb, rb, rab = st[ST.abort], st[ST.block], st[ST.block_residual], st[ST.abort_residual]
    # first attempt: an mmap_lock wait if it aborts (always sleeps) or under legacy (PASTA)
    first_p = V * p_ab + (1 - V) * pb
    first_m = V * p_ab * (rab + w + wcb) + (1 - V) * pb * (rb + w + wcb)
    lock1_p, lock1_m = 1 - first_p, first_m
    # retry of a dropped read: VMA lock again (vma_retry) or mmap_lock
    again = V * (1 - p_ab) * dV * rV
    retry_slow = again * p_ab + (1 - again) * pb
    retry_mean = again * p_ab * (rab + w + wcb) + (1 - again) * pb * (rb + w + wcb)
    lock2_p, lock2_m = 1 - retry_slow, retry_mean
    drops = V * (1 - p_ab) * dV + (1 - V * (1 - p_ab)) * dM          # share of majors dropping
    device_p, device_m = 1 - io[IO.read_wait_p], io[IO.read_wait]
    cpu_p, cpu_m = 1 - st[ST.cpu_wait_p], wc
    read_const = io[IO.read_service] - xi[IN.io_latency]
    p_ref = clip(safe_div(acc[ACC.refaults], y_major + y_join_io, 0.0), 0.0, 1.0)
    _set_path(comp, 0, y_minor, c_f, 0, lock1_p, lock1_m, _MINOR)
    _set_path(comp, 1, y_zram, xi[IN.zram_latency] + c_f, 0, lock1_p, lock1_m, _MAJOR)
    base_shift = 3 * c_f + w + read_const
    p, m = _combine(1.0 * lock1_p, 0.0 + lock1_m, 1 - drops + drops * lock2_p, drops * lock2_m)
    p, m = _combine(p, m, device_p, device_m)
    w1_p, w1_m = _combine(p, m, cpu_p, cpu_m)
    # a group walk's wake-up chain: a fixed extra for the followers that dropped (the leader
    # waits shared and is woken by the read's end: fault_paths)
    chain = pc[PC.stampede]
    _set_path(comp, 2, y_major * (1 - p_ref), base_shift, 1, w1_p, w1_m, _MAJOR)
    p, m = _combine(1.0 * w1_p, 0.0 + w1_m, device_p, device_m)
    w2_p, w2_m = _combine(p, m, cpu_p, cpu_m)
    _set_path(comp, 3, y_major * p_ref, base_shift + c_f + w + read_const, 2, w2_p, w2_m, _MAJOR)
    p, m = _combine(1.0 * lock1_p, 0.0 + lock1_m, lock2_p, lock2_m)
    p, m = _combine(p, m, 0.0, pc[PC.residual_io])
    j_p, j_m = _combine(p, m, cpu_p, cpu_m)
    walk = xi[IN.walk]
    _set_path(comp, 4, y_join_io * (1 - walk), 2 * c_f + w, 0, j_p, j_m, _WAITER)
    # a follower of a group walk joins its leader's read a short lag after it started: it waits
    # for nearly the whole read, so its wait has the read's law (less the lag, in the mean)
    lag = vmax(c_f + io[IO.read_time] - pc[PC.residual_io], 0.0)
    p, m = _combine(1.0 * lock1_p, 0.0 + lock1_m, lock2_p, lock2_m)
    p, m = _combine(p, m, cpu_p, cpu_m)
    _set_path(comp, 5, y_join_io * walk, 2 * c_f + w + read_const - lag + drops * chain, 1, p, m,
              _WAITER)
    p, m = _combine(1.0 * lock1_p, 0.0 + lock1_m, 0.0, (w + wc + c_f) / 2)
    _set_path(comp, 6, y_join_up, 2 * c_f + w, 0, p, m, _WAITER)
    # the paths are a simplification of the fault paths' accounting: put the difference of
    # means into the waits, so that the mixture has exactly the model's mean latency
    mix_mean = 0.0
    for c in range(_PATHS):
        mix_mean += comp[c, _W] * (comp[c, _SHIFT] + comp[c, _MEAN]
                                   + comp[c, _READS] * xi[IN.io_latency])
    delta = pc[PC.latency] - mix_mean
    for c in range(_PATHS):
        comp[c, _MEAN] = vmax(comp[c, _MEAN] + delta, 0.0)
        if not comp[c, _MEAN] > 0:
            comp[c, _P0] = 1.0


@njit(**JIT)
def atom_exp_quantile(p_zero, shift, mean, level):
    """Quantile of a wait that is 0 with probability p_zero, else shift + Exp(mean)."""
    tail = 1 - level
    if 1 - p_zero <= tail:
        return 0.0
    q = shift + mean * math.log(vmax(1 - p_zero, 1e-300) / tail)
    return vmax(q, shift)


@njit(**JIT)
def _atom_exp_cdf(p_zero, shift, mean, v):
    if v == math.inf:
        return 1.0
    if not v >= shift:
        return p_zero
    return 1 - (1 - p_zero) * math.exp(-vmax(v - shift, 0.0) / (mean if mean > 0 else 1.0))


@njit(**JIT)
def atom_exp_shares(p_zero, shift, mean, edges, out):
    """Shares of such a wait in bins with lower edges ``edges`` (the last bin is open)."""
    n = edges.shape[0]
    for j in range(n):
        upper = edges[j + 1] if j + 1 < n else math.inf
        lower = 0.0 if edges[j] <= 0 else _atom_exp_cdf(p_zero, shift, mean, edges[j])
        out[j] = _atom_exp_cdf(p_zero, shift, mean, upper) - lower


@njit(**JIT)
def lognormal_p99(mean, sd):
    """99th percentile of the log-normal with this mean and standard deviation."""
    if not mean > 0:
        return 0.0
    cv = safe_div(sd, mean, 0.0)
    sigma2 = math.log1p(cv**2)
    return math.exp(math.log(vmax(mean, 1e-300)) - sigma2 / 2 + math.sqrt(sigma2) * LOGNORMAL_Z99)


@njit(**JIT)
def distribution(xi, st, acc, io, lk, pc, unit_strata, levels, latency_edges, wait_edges, m,
                 hist, read_hist, write_hist):
    """The distribution of an element into ``m`` (``layout.OUT``) and the three histograms."""
    comp = np.zeros((_PATHS, 6))
    fault_paths_mixture(xi, st, acc, io, pc, comp)
    q1 = unit_strata[0] * xi[IN.io_latency]
    q2 = unit_strata[1] * (2 * xi[IN.io_latency])
    # the grid: from below the shortest path to well past the longest
    low, high = math.inf, 0.0
    for c in range(_PATHS):
        if comp[c, _W] > 0:
            cond = safe_div(comp[c, _MEAN], 1 - comp[c, _P0], 0.0)
            reads = comp[c, _READS]
            top = comp[c, _SHIFT] + ((q1[-1] if reads == 1 else q2[-1]) if reads > 0 else 0.0) \
                + cond * 25
            low = vmin(low, comp[c, _SHIFT])
            high = vmax(high, top)
    low = vmax(low * 0.9, 1e-9) if math.isfinite(low) else 1e-9
    high = vmax(high, low * 10)
    start, stop = math.log(low), math.log(high)
    step = (stop - start) / (GRID - 1)
    t = np.empty(GRID)
    for i in range(GRID):
        t[i] = math.exp(i * step + start if i < GRID - 1 else stop)
    logt = np.log(t)
    # every path's CDF on the grid, once: the whole mixture and each class sum them
    on_grid = np.zeros((_PATHS, GRID))
    for c in range(_PATHS):
        if comp[c, _W] > 0:
            for i in range(GRID):
                on_grid[c, i] = _path_cdf(comp, c, q1, q2, levels, t[i])
    norm = _cdf(comp, -1, q1, q2, levels, math.inf)            # total weight (1)
    scale = norm if norm > 0 else 1.0
    cdf = np.zeros(GRID)
    running = -math.inf
    for i in range(GRID):
        total = 0.0
        for c in range(_PATHS):
            if comp[c, _W] > 0:
                total += on_grid[c, i]
        running = vmax(running, total / scale)
        cdf[i] = running
    running = -math.inf
    for out, p in ((OUT.fault_latency_p50, 0.5), (OUT.fault_latency_p90, 0.9),
                   (OUT.fault_latency_p99, 0.99), (OUT.fault_latency_p999, 0.999)):
        running = _ordered(running, _quantile(t, logt, cdf, p, comp, -1, q1, q2, levels, scale))
        m[out] = running
    n_edges = latency_edges.shape[0]
    if norm > 0:
        jank = _cdf(comp, -1, q1, q2, levels, xi[IN.jank_threshold])
        m[OUT.jank_share] = clip(1 - jank / scale, 0.0, 1.0)
        running = -math.inf
        for j in range(n_edges):
            value = clip(_cdf(comp, -1, q1, q2, levels, latency_edges[j]) / scale, 0.0, 1.0)
            running = vmax(running, value)
            hist[j] = running
        for j in range(n_edges):
            upper = hist[j + 1] if j + 1 < n_edges else 1.0
            hist[j] = vmax(upper - hist[j], 0.0)
    else:
        # without faults (no path has weight) there is no latency law: no jank share and no
        # histogram (the Monte Carlo's ratio over zero faults is NaN too), not "every fault
        # janks"
        m[OUT.jank_share] = math.nan
        hist[:] = math.nan
    # the latency of each access class of the harness: the same mixture, restricted to its paths
    first = (OUT.major_latency_p50, OUT.waiter_latency_p50, OUT.minor_latency_p50)
    for kind in range(3):
        weight = _cdf(comp, kind, q1, q2, levels, math.inf)
        present = weight > 1e-12
        scale_k = weight if present else 1.0
        running = -math.inf
        for i in range(GRID):
            total = 0.0
            for c in range(_PATHS):
                if comp[c, _W] > 0 and comp[c, _KIND] == kind:
                    total += on_grid[c, i]
            running = vmax(running, total / scale_k)
            cdf[i] = running
        running = -math.inf
        for j, level in enumerate((0.5, 0.9, 0.99)):
            if present:
                running = _ordered(running, _quantile(t, logt, cdf, level, comp, kind, q1, q2,
                                                      levels, scale_k))
            m[first[kind] + j] = running if present else math.nan
    # mmap_lock read wait per acquisition: 0, or the wake-up plus an exponential residual
    fr, bg = pc[PC.fault_rate], xi[IN.reader_rate]
    w = xi[IN.wakeup_latency]
    acquisitions = fr * acc[ACC.mmap_acq] + bg
    slept = fr * acc[ACC.mmap_slow] + bg * st[ST.block_open]
    waited = fr * acc[ACC.mmap_wait] + bg * st[ST.block_open] * (st[ST.block_open_residual] + w)
    slow = clip(safe_div(slept, acquisitions, 0.0), 0.0, 1.0)
    cond = vmax(safe_div(waited, slept, 0.0) - w, 0.0)
    shift = w + st[ST.cpu_wait_batch]
    m[OUT.mmap_read_wait_p99] = (atom_exp_quantile(1 - slow, shift, cond, 0.99)
                                 if acquisitions > 0 else math.nan)
    if acquisitions > 0:
        atom_exp_shares(1 - slow, shift, cond, wait_edges, read_hist)
    else:
        read_hist[:] = math.nan         # no acquisition, no wait law (as in the Monte Carlo)
    # mmap_lock write wait: 0 when the lock is free, else an exponential of the same mean
    ww = lk[LK.write_wait]
    busy = clip(1 - (1 - lk[LK.writer_util]) * math.exp(-lk[LK.read_held_share]), 1e-12, 1.0)
    if st[ST.writer_rate] > 0:
        m[OUT.mmap_write_wait_p99] = atom_exp_quantile(1 - busy, 0.0, safe_div(ww, busy, 0.0),
                                                       0.99)
        atom_exp_shares(1 - busy, 0.0, safe_div(ww, busy, 0.0), wait_edges, write_hist)
        # writer latency: CPU wait, lock wait and hold; the hold's spread plus an exponential
        hold = lk[LK.writer_hold]
        hold_sd = xi[IN.writer_cv] * xi[IN.writer_hold]
        lat_mean = pc[PC.cpu_wait_writer] + ww + hold
        lat_sd = math.sqrt(hold_sd**2 + safe_div(ww, busy, 0.0) ** 2 * (2 * busy - busy**2))
        m[OUT.writer_latency_p99] = lognormal_p99(lat_mean, lat_sd)
    else:
        m[OUT.mmap_write_wait_p99] = math.nan
        m[OUT.writer_latency_p99] = math.nan
        write_hist[:] = math.nan
