"""The memory limit: LRU lists under the characteristic-time (Che) approximation.

Under a memcg limit of C pages every folio brought in pushes one out (``mm/vmscan.c:
shrink_folio_list`` from ``try_charge -> try_to_free_mem_cgroup_pages``).  The characteristic-time
approximation (Che, Tung and Wang 2002; justified for large caches by Fricker, Robert and Roberts
2012) replaces the LRU's state by one number, the time T_c a folio survives on the list without
a reference: a page of reference rate ``a`` under the independent reference model is resident
iff it was referenced in the last T_c, so it is hit with probability ``1 - e^{-a T_c}``, and T_c
solves ``sum_i P(page i resident) = C``.  Given T_c the pages are independent; the lifetime is
near-deterministic (not exponential), which is what sets the refault loop's threshold: a retry
whose exposure window exceeds T_c misses (:data:`lru_retry_miss`).

Each page is a semi-Markov cycle, like :mod:`.pages` (hazard reclaim), with deterministic
residence times instead of the hazards; the time shares are visits x mean sojourns, so only the
sojourns' means matter.  The means are derived in sympy from the Poisson reference stream:

* **one list** (``lru_lists = 1``, exact LRU: a reference moves the folio to the head):
  absent -> (access) locked for T_f while the fault reads and maps it -> mapped, resident until
  T_c passes without a reference, mean ``(e^{a T_c} - 1)/a`` (the first gap longer than T_c of
  a Poisson stream, plus T_c); absent -> (read-around) locked T_r -> cached, until an access
  (minor fault: mapped) or the rest of its life, T_c - T_r (the folio went on the list when it
  was charged, before its read).  ``lru_page_<state>_share``.
* **two lists** (``lru_lists = 2``, active and inactive, ``mm/vmscan.c`` as
  ``montecarlo/lru.py`` runs it): a folio is charged at the inactive head and reaches the tail
  T_c later (a reference does not move a folio inside a list); there ``folio_check_references``
  reclaims it if its PTE was not accessed since the last check, activates it if it was and
  ``PG_referenced`` is set, and else sets ``PG_referenced`` and puts it back at the head (one
  more pass).  A faulted folio is accessed by the fault that maps it, so it always takes two
  passes and is activated iff accessed again in the second (1 - e^{-a T_c}); a read-around or a
  deactivated folio (its accessed bits cleared) needs an access in each of two passes.  The
  active list is a FIFO of T_A (``shrink_active_list`` deactivates its tail while
  ``inactive_is_low``: active = ratio x inactive, which fixes T_A).  A folio read again within
  T_w of its eviction (``mm/workingset.c``: refault distance at most the active list's size,
  T_w = active pages / (evictions + activations per second)) goes to the active list at once.
  This is the kernel's counterpart of the 2-LRU of Martina, Garetto and Leonardi (2014): content
  in both lists (both count against C), promotion on a second reference, demotion instead of
  eviction from the second list.  ``two_list_page_<state>_share``.

State what is counted: a page is resident (counts against C) while its folio is being read
(locked, by a fault or a read-around), cached (read around, not yet mapped) or mapped.  A
retry's folio between the end of its read and its mapping is on the list, exposed for the
retry's window; the time it spends locked is in T_f.
"""

from __future__ import annotations

import math

import sympy as sp
from numba import njit

from .registry import MODEL_REFERENCE, Formula, register
from .symbols import (
    active_lifetime,
    block_probability,
    cache_lifetime,
    fault_cpu,
    fault_locked_time,
    page_access_rate,
    read_time,
    readaround_rate,
    refault_window,
    residual_mean,
    wake_time,
)

__all__ = ["derive_lru_page_shares", "derive_lru_resident_period", "derive_two_list_page_shares",
           "lru_hit_probability", "lru_page_shares", "lru_page_weights_scalar", "lru_retry_miss",
           "lru_retry_miss_scalar", "two_list_page_shares"]

_a, _rho, _T, _TA, _Tf, _Tr, _Tw = (page_access_rate, readaround_rate, cache_lifetime,
                                    active_lifetime, fault_locked_time, read_time,
                                    refault_window)
_E = sp.exp(-_a * _T)                 # P(no reference in T_c)
_E1 = sp.exp(-_a * (_T - _Tr))        # ... in the rest of a read-around folio's life

_CHE_REFERENCE = ("Che, Tung & Wang, IEEE JSAC 20(7) 2002; Fricker, Robert & Roberts, ITC 24 "
                  "(2012); Martina, Garetto & Leonardi, INFOCOM 2014 (2-LRU); ")
_IRM = ("Independent reference model: each page is referenced by a Poisson stream of rate a (its "
        "share of the threads' accesses), independently of the others; the cache is large "
        "(C >> 1), so the list's characteristic time T_c is deterministic and the same for "
        "every page (Fricker, Robert & Roberts 2012).  ")

#: Che's approximation: a page of rate a is resident iff referenced in the last T_c.
lru_hit_probability = register(Formula(
    name="lru_hit_probability",
    lhs=sp.Symbol("h"),
    expr=1 - _E,
    symbols=(_a, _T),
    assumptions=_IRM + "One exact LRU list; no read-around, a fault maps at once.  T_c solves "
                       "sum_i (1 - e^{-a_i T_c}) = C.",
    reference=_CHE_REFERENCE + "queueing.md; " + MODEL_REFERENCE,
))


def derive_lru_resident_period() -> sp.Expr:
    """The mean time a folio stays resident from a reference until T_c passes without one.

    Renewal at the first reference after time 0: m = T P(S > T) + int_0^T (t + m) a e^{-a t} dt
    (S ~ Exp(a) the next reference); solved for m it is (e^{a T} - 1)/a.
    """
    m, t = sp.symbols("m t", positive=True)
    equation = sp.Eq(m, _T * _E + sp.integrate((t + m) * _a * sp.exp(-_a * t), (t, 0, _T)))
    return sp.simplify(sp.solve(equation, m)[0])


def _min_mean(survival, upper) -> sp.Expr:
    """E[min(S, upper)] = int_0^upper P(S > t) dt."""
    t = sp.Symbol("t", positive=True)
    return sp.simplify(sp.integrate(survival(t), (t, 0, upper)))


def derive_lru_page_shares() -> dict[str, sp.Expr]:
    """The one-list page shares from the embedded chain and the mean sojourns (derived here).

    From absent (visit rate 1): fault a/(a+rho) or read-around rho/(a+rho); a read-around folio
    is cached until an access within the rest of its life T_c - T_r (prob 1 - e^{-a (T_c -
    T_r)}: a minor fault maps it) or reclaimed; every mapped period starts at a reference and
    lasts the resident period.  T_r < T_c.  Returns the time shares.
    """
    to_fault = _a / (_a + _rho)
    to_readaround = _rho / (_a + _rho)
    touched = 1 - _E1
    visits = {"absent": 1, "fault_locked": to_fault, "readaround_locked": to_readaround,
              "cached": to_readaround, "mapped": to_fault + to_readaround * touched}
    sojourn = {"absent": 1 / (_a + _rho), "fault_locked": _Tf, "readaround_locked": _Tr,
               "cached": _min_mean(lambda t: sp.exp(-_a * t), _T - _Tr),
               "mapped": derive_lru_resident_period()}
    times = {s: visits[s] * sojourn[s] for s in visits}
    total = sp.Add(*times.values())
    return {s: sp.simplify(times[s] / total) for s in times}


def derive_two_list_page_shares() -> dict[str, sp.Expr]:
    """The two-list page shares (see the module), from visits and mean sojourns, derived here.

    From absent (visit rate 1): an insertion (fault f = a/(a+rho), read-around r =
    rho/(a+rho)) ends an absence Exp(a + rho) after the eviction, so it is activated at once by
    its refault distance with w = 1 - e^{-(a+rho) T_w}; otherwise it goes inactive: a faulted
    folio passes twice (T_c - T_f, then T_c) and is activated by an access in the second, p =
    1 - e^{-a T_c}; a read-around folio is cached until its first access S1 within T_c - T_r (a
    minor fault maps it, p1), then passes again and is activated with p; a deactivated folio
    passes, is accessed (p), passes again and is activated (p).  Active visits solve
    n_A = (f + r) w + f (1 - w) p + r (1 - w) p1 p + n_A p^2; each lasts T_A, the locked time of
    an activated insertion included.  T_f, T_r < T_c < T_A.  Returns the time shares (states
    absent, fault_locked, readaround_locked, cached, mapped) and ``on_active`` (the active
    list's share of the time, locked or not, a part of the others).
    """
    n_active = sp.Symbol("n_A", positive=True)
    f = _a / (_a + _rho)
    r = _rho / (_a + _rho)
    w = 1 - sp.exp(-(_a + _rho) * _Tw)
    t = sp.Symbol("t", positive=True)
    p = sp.simplify(sp.integrate(_a * sp.exp(-_a * t), (t, 0, _T)))                # S1 < T_c
    p1 = sp.simplify(sp.integrate(_a * sp.exp(-_a * t), (t, 0, _T - _Tr)))
    first = _min_mean(lambda u: sp.exp(-_a * u), _T - _Tr)                       # min(S1, .)
    actives = sp.solve(sp.Eq(n_active, (f + r) * w + f * (1 - w) * p + r * (1 - w) * p1 * p
                             + n_active * p**2), n_active)[0]
    inactive_mapped = (f * (1 - w) * (_T - _Tf + _T)
                       + r * (1 - w) * (_T - _Tr - first + p1 * _T)
                       + actives * (_T + p * _T))
    times = {
        "absent": 1 / (_a + _rho),
        "fault_locked": f * _Tf,
        "readaround_locked": r * _Tr,
        "cached": r * (1 - w) * first,
        "mapped": inactive_mapped + actives * _TA - w * (f * _Tf + r * _Tr),
    }
    total = sp.Add(*times.values())
    # (left unsimplified: sympy's simplify takes minutes on these; the tests compare them with
    # the registered shares at random points)
    shares = {s: times[s] / total for s in times}
    shares["on_active"] = actives * _TA / total
    return shares


# The registered shares: the derivations' results, written in the form the numeric kernel
# evaluates (the one-list weights multiplied by (a + rho) e^{-a T_c}, the two-list ones by
# (a + rho)(1 - p^2), so nothing overflows for a hot page); the tests check them against the
# derivations.
_om = 1 - _E
_om1 = 1 - _E1
_lru_weights = {
    "absent": _E,
    "fault_locked": _a * _Tf * _E,
    "readaround_locked": _rho * _Tr * _E,
    "cached": _rho * _E * _om1 / _a,
    "mapped": (_a + _rho * _om1) * _om / _a,
}
_D = _E * (2 - _E)                                  # 1 - p^2
_W = 1 - sp.exp(-(_a + _rho) * _Tw)                 # activated by the refault distance
_N = (_a + _rho) * _W + (1 - _W) * (_a * _om + _rho * _om1 * _om)   # (a+rho)(1-p^2) n_A
_two_list_weights = {
    "absent": _D,
    "fault_locked": _a * _Tf * _D,
    "readaround_locked": _rho * _Tr * _D,
    "cached": _rho * (1 - _W) * _D * _om1 / _a,
    "mapped": (_D * (1 - _W) * (_a * (2 * _T - _Tf) + _rho * (_T - _Tr - _om1 / _a + _om1 * _T))
               + _N * (1 + _om) * _T + _N * _TA - _W * _D * (_a * _Tf + _rho * _Tr)),
}
_two_list_on_active = _N * _TA

_cycle = ("Semi-Markov time shares (Cinlar 1975, ch. 10): by PASTA the probability that an "
          "access finds the page in that state.  Read-arounds of neighbouring faults cover the "
          "page at rate rho_ra; a fault keeps it locked a mean T_f (its read and mapping, the "
          "refault loop's reads included), a read-around T_r.  ")

lru_page_shares = {
    state: register(Formula(
        name=f"lru_page_{state}_share",
        lhs=sp.Symbol(rf"\pi^{{LRU}}_{{\mathrm{{{state.replace('_', ' ')}}}}}"),
        expr=weight / sp.Add(*_lru_weights.values()),
        symbols=(_a, _rho, _T, _Tf, _Tr),
        assumptions=_IRM + _cycle + "One exact LRU list (lru_lists = 1): every reference moves "
                    "the folio to the head; reclaim takes the tail, mapped or not.  Derived in "
                    "derive_lru_page_shares().",
        reference=_CHE_REFERENCE + MODEL_REFERENCE,
    ))
    for state, weight in _lru_weights.items()
}

two_list_page_shares = {
    state: register(Formula(
        name=f"two_list_page_{state}_share",
        lhs=sp.Symbol(rf"\pi^{{2}}_{{\mathrm{{{state.replace('_', ' ')}}}}}"),
        expr=weight / sp.Add(*_two_list_weights.values()),
        symbols=(_a, _rho, _T, _TA, _Tf, _Tr, _Tw),
        assumptions=_IRM + _cycle + "Active and inactive lists (lru_lists = 2, mm/vmscan.c as "
                    "montecarlo/lru.py runs it): the inactive list a FIFO of T_c whose tail "
                    "check (folio_check_references) activates a folio accessed in two passes, "
                    "the active list a FIFO of T_A (shrink_active_list), a refault within T_w "
                    "of the eviction activated at once (workingset_refault).  T_f, T_r < T_c "
                    "(the kernel rotates a locked folio at the tail; the numeric kernel clips "
                    "the rest of its life at 0).  ``on_active`` is the share of the time on the "
                    "active list (within the others).  Derived in derive_two_list_page_shares().",
        reference=_CHE_REFERENCE + "mm/vmscan.c, mm/workingset.c; " + MODEL_REFERENCE,
    ))
    for state, weight in {**_two_list_weights, "on_active": _two_list_on_active}.items()
}


# ----------------------------------------------------------------------------------------------
# The refault loop's threshold: a retry misses when its window exceeds the lifetime
# ----------------------------------------------------------------------------------------------

_cf, _P, _g, _r = fault_cpu, block_probability, wake_time, residual_mean

#: P(W > T_c) for the retry's window W = c_f + B, B = 0 w.p. 1 - P_b, else g + Exp(mean r).
lru_retry_miss = register(Formula(
    name="lru_retry_miss",
    lhs=sp.Symbol(r"P_{\mathrm{miss}}"),
    expr=sp.Piecewise((1, _T < _cf), (_P, _T < _cf + _g),
                      (_P * sp.exp(-(_T - _cf - _g) / _r), True)),
    symbols=(_T, _cf, _P, _g, _r),
    assumptions="The folio a retry waits for ends its read unlocked on the LRU list and is "
                "reclaimed a near-deterministic T_c later unless referenced (Che's lifetime, not "
                "an exponential one); the retry finds it iff its exposure window W, from the "
                "read's end to its folio lookup, is shorter: P(miss) = P(W > T_c).  The window "
                "is the one of refault_success_window: the re-entry CPU c_f plus, with "
                "probability P_b, a lock wait g + Exp(mean r) (mainline: the mmap_lock read "
                "wait; vma_retry: only a VMA-lock fallback; vma_wait: none).  The deterministic-"
                "lifetime counterpart of refault_success_window's 1 - E[e^{-theta W}].",
    reference=_CHE_REFERENCE + "kernel.md §4 (the window); queueing.md §1.6; " + MODEL_REFERENCE,
))


@njit(cache=True, error_model="numpy")
def lru_retry_miss_scalar(lifetime, c_f, p_block, wake, residual):
    """:data:`lru_retry_miss` at one point (a residual of 0: a step at c_f + g)."""
    if lifetime < c_f:
        return 1.0
    if lifetime < c_f + wake:
        return p_block
    if residual <= 0:
        return 0.0
    return p_block * math.exp(-(lifetime - c_f - wake) / residual)


@njit(cache=True, error_model="numpy")
def lru_page_weights_scalar(a, rho, lifetime, active, fault_locked, read_time_, refault_window,
                            lists):
    """The unnormalised time weights of the ``lru_page_*`` (``lists`` 1) or
    ``two_list_page_*`` (``lists`` 2) shares at one point: (absent, fault_locked,
    readaround_locked, cached, mapped, on_active); each share is its weight over the sum of the
    first five, ``on_active`` (0 with one list) is a part of them.

    The one numeric kernel of those formulas (expm1 for small ``a T_c``; the rest of a locked
    folio's life clipped at 0; ``a = 0``: a page never accessed, resident only while read
    around).  Equal to the registered expressions where those hold (tests).
    """
    x = a * lifetime
    e = math.exp(-x)
    om = -math.expm1(-x)                               # 1 - e^{-a T_c}
    rest = max(lifetime - read_time_, 0.0)             # a read-around folio's life after its read
    x1 = a * rest
    om1 = -math.expm1(-x1)
    om1_a = om1 / a if x1 > 1e-12 else rest            # E[min(S1, rest)]
    if lists == 1:
        om_a = om / a if x > 1e-12 else lifetime
        return (e, a * fault_locked * e, rho * read_time_ * e, rho * e * om1_a,
                (a + rho * om1) * om_a, 0.0)
    d = e * (2.0 - e)                                  # 1 - p^2
    w = -math.expm1(-(a + rho) * refault_window)       # activated by its refault distance
    n = (a + rho) * w + (1 - w) * (a * om + rho * om1 * om)
    inactive = (d * (1 - w) * (a * (lifetime + max(lifetime - fault_locked, 0.0))
                               + rho * (rest - om1_a + om1 * lifetime))
                + n * (1 + om) * lifetime)
    locked_active = w * d * (a * fault_locked + rho * read_time_)
    mapped = inactive + max(n * active - locked_active, 0.0)
    return (d, a * fault_locked * d, rho * read_time_ * d, rho * (1 - w) * d * om1_a, mapped,
            n * active)
