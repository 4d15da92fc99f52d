"""Group walks (``access_pattern='group_walk'``, ``montecarlo/access.py``): who faults on a page.

Every page of a walk is fresh: the first member of its group to touch it (the leader) takes a
major fault; each of the G - 1 others touches it a lag later.  A lag inside the leader's read
(``c_f + read``) joins the read and waits for the rest of it; inside the leader's retry (wake-up
and ``c_f`` more) waits for the folio lock; later finds the page mapped (no fault).  The lag is
exponential (``lag_inside_probability``): members released together by the folio unlock each
think an exponential ``think_time`` before their next touch, so by memorylessness each follower
trails the first of them by an exponential think (plus its CPU wait).  With thinks longer than a
read the group spreads out: the gap is a reflected random walk (steps: the difference of two
thinks, variance 2 Z^2; drift: the leader pays each fault, ~to_read, so the others catch up),
whose spread is Kingman's sigma^2/(2 drift) = Z^2/to_read; the two regimes blended (a 4-norm).
Read-around (``readaround_pages > 1``) and swap VMAs are refused by ``inputs.py``.
"""

from __future__ import annotations

import math

from numba import njit

from .layout import IN, PC, ST
from .numeric import JIT, lag_inside_pair, lag_inside_probability, safe_div, vmax


@njit(**JIT)
def group_walk(xi, st, c_f, gw, t_io, t_io2):
    """(followers per group, leader share, joins of the read, joins of the install, the
    residual read a joiner waits for, P(a follower joins the read))."""
    threads = xi[IN.threads]
    group = xi[IN.group_size] if xi[IN.group_size] > 0 else threads   # 0: every thread
    followers = 1 - 1 / group
    to_read = c_f + t_io
    think = st[ST.think] + st[ST.cpu_wait]
    drift = think**2 / vmax(to_read, 1e-12)
    lag = (think**4 + drift**4) ** 0.25
    read_cv = safe_div(math.sqrt(vmax(t_io2 - t_io**2, 0.0)), to_read, 0.0)
    to_map = to_read + gw + c_f
    map_cv = safe_div(math.sqrt(vmax(t_io2 - t_io**2, 0.0)), to_map, 0.0)
    in_read, residual_io = lag_inside_pair(to_read, read_cv, lag)
    in_fault = vmax(lag_inside_probability(to_map, map_cv, lag), in_read)
    lead = 1 - followers
    return (group - 1, lead + 0.0, followers * in_read, followers * (in_fault - in_read),
            residual_io, in_read)


@njit(**JIT)
def walk_classes(xi, st, c_f, gw, t_io, t_io2, pc):
    """The access classes of a walk into ``pc`` (as ``pages.page_classes``); returns
    (followers per group, P(a follower joins the read))."""
    followers, lead, join_io, join_up, _residual, in_read = group_walk(xi, st, c_f, gw, t_io,
                                                                      t_io2)
    pc[PC.major] = lead
    pc[PC.join_io] = join_io
    pc[PC.join_up] = join_up
    pc[PC.minor] = 0.0
    pc[PC.zram] = 0.0
    pc[PC.absent_uniform] = 1.0
    # every folio brought in leaves again where anything reclaims (or the table is full)
    lru = xi[IN.lru] > 0
    leaves = (xi[IN.reclaim_rate_cached] > 0 or xi[IN.reclaim_rate_mapped] > 0
              or math.isfinite(xi[IN.capacity]) or lru)
    inserted = st[ST.access_rate] * lead
    pc[PC.reclaims_pages] = inserted if leaves else 0.0
    # under the memory limit a walk's pages are each referenced once (by the group, within a
    # read): the list is a FIFO of its insertions, and Little's law for the full cache gives
    # the lifetime of a folio, T_c = memory_limit / insertion rate
    # (the cache runs from the limit to direct reclaim's 32-folio batch below it, as pages.py)
    limit = xi[IN.memory_limit]
    resident = limit - 15.5 if limit > 32 else limit
    pc[PC.lifetime] = safe_div(resident, inserted, math.nan) if lru else math.nan
    pc[PC.active_lifetime] = math.nan
    pc[PC.cache_pages] = resident if lru else math.nan
    pc[PC.unlocked_pages] = resident if lru else 0.0
    pc[PC.evictions] = inserted if lru else 0.0
    return followers, in_read
