"""Group walks: the page the next access of a walking thread touches (SCENARIO_SPEC.md §1).

The measurement harness (``faultlock/measure/harness.c``, command ``faults``) maps a cold file
read-only with ``MADV_RANDOM`` and lets T reader threads in groups of G walk it: every member of
group g touches the same N pages (region g of the file) in the same order, a permutation drawn once
per group (``--order random``) or the identity (``--order sequential``). Nothing synchronises the
members: lock step emerges because followers find the leader's folio locked under read (they wait
for it, and retry under ``mmap_lock`` in mainline) or already mapped (no fault).

The model keeps walking after N accesses, in *epochs* of fresh pages, so that a stationary run keeps
the harness's cold walk: thread t (group g = t // G) touches at its k-th access (counted from the
start of the run) the page

    P(g, k) = (e * (T / G) + g) * N + perm_{g,e}[k mod N],   e = k // N,

modulo the address space (page p is page p mod ``pages_per_vma`` of VMA p // ``pages_per_vma``).

Common random numbers: ``perm_{g,e}`` is a Fisher-Yates shuffle driven by a SplitMix64 whose state
is the run's walk key (the initial state of a stream nobody draws from, the same for every policy)
hashed with g and e. It does not depend on which member needs it first, nor on the policy. Memory
does not grow with epochs: a group keeps the permutations of two epochs, its current one and the
one before (a member lagging behind its leader); a member lagging further regenerates the one it
needs, which gives the same permutation and only costs time.
"""

import numpy as np
from numba import njit

from . import rng
from .state import (Q_GROUP_SIZE, Q_TOTAL_PAGES, Q_WALK_GROUPS, Q_WALK_KEY_STREAM, Q_WALK_PAGES,
                    Q_WALK_SEQUENTIAL)

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _mix(z):
    """SplitMix64's finaliser (Stafford's Mix13): a bijection of 64-bit words."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def permutation_seed(key, group, epoch):
    """The SplitMix64 state that drives ``perm_{group,epoch}``: a hash of (key, group, epoch)."""
    h = _mix(np.uint64(key) ^ (np.uint64(group) * _MIX1 + _GOLDEN))
    return _mix(h ^ (np.uint64(epoch) * _MIX2 + _GOLDEN))


@njit(cache=True)
def shuffle(out, key, group, epoch):
    """Fill ``out`` with ``perm_{group,epoch}`` of 0 .. len(out)-1 (Fisher-Yates, Durstenfeld)."""
    n = out.shape[0]
    for i in range(n):
        out[i] = i
    state = np.empty(1, dtype=np.uint64)
    state[0] = permutation_seed(key, group, epoch)
    for i in range(n - 1, 0, -1):
        j = np.int64(rng.uniform(state, 0) * (i + 1))
        j = min(j, i)
        tmp = out[i]
        out[i] = out[j]
        out[j] = tmp


@njit(cache=True)
def walk_page(S, Q, t):
    """The page of thread ``t``'s next access in its group walk; advances its access count."""
    k = S.t_walk[t]
    S.t_walk[t] = k + 1
    n = Q[Q_WALK_PAGES]
    epoch = k // n
    i = k - epoch * n
    group = t // Q[Q_GROUP_SIZE]
    if Q[Q_WALK_SEQUENTIAL]:
        j = i
    else:
        row = 2 * group + (epoch & 1)
        if S.walk_epoch[row] != epoch:
            shuffle(S.walk_perm[row], S.streams[Q[Q_WALK_KEY_STREAM]], group, epoch)
            S.walk_epoch[row] = epoch
        j = np.int64(S.walk_perm[row, i])
    return ((epoch * Q[Q_WALK_GROUPS] + group) * n + j) % Q[Q_TOTAL_PAGES]
