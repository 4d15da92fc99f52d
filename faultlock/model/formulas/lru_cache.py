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
  (minor fault: mapped) or T_c (reclaimed).  ``lru_page_<state>_share``.
* **two lists** (``lru_lists = 2``, active and inactive, ``mm/vmscan.c``): a folio enters the
  inactive list at its head and reaches the tail T_I later (a reference does not move a folio
  inside the inactive list); a second reference while inactive promotes it to the active list
  (``folio_check_references``: activation needs two references, the instantiating fault being
  the first); the active list is a FIFO of T_A (``shrink_active_list`` deactivates referenced
  file folios too, executables aside) after which the folio returns to the inactive head, where
  one reference promotes it again.  The two-list cycle is the counterpart, for the kernel's
  lists, of the 2-LRU of Martina, Garetto and Leonardi (2014), with content in both lists (both
  count against C) and demotion instead of eviction from the second list.  T_A is infinite
  while the active list is short; when full, ``inactive_is_low`` balances the lists as
  ``active = inactive_ratio x inactive`` (``mm/vmscan.c``), which fixes T_A.
  ``two_list_page_<state>_share``.

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
    residual_mean,
    wake_time,
)

__all__ = ["derive_lru_page_shares", "derive_lru_resident_period", "derive_two_list_page_shares",
           "lru_hit_probability", "lru_page_shares", "lru_page_weights_scalar", "lru_retry_miss",
           "lru_retry_miss_scalar", "two_list_page_shares"]

_a, _rho, _T, _TA, _Tf, _Tr = (page_access_rate, readaround_rate, cache_lifetime, active_lifetime,
                               fault_locked_time, read_time)
_E = sp.exp(-_a * _T)                 # P(no reference in T_c)
_x = _a * _T

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


def _min_mean(survival) -> sp.Expr:
    """E[min(S, T_c)] = int_0^T_c P(S > t) dt."""
    t = sp.Symbol("t", positive=True)
    return sp.simplify(sp.integrate(survival(t), (t, 0, _T)))


def derive_lru_page_shares() -> dict[str, sp.Expr]:
    """The one-list page shares from the embedded chain and the mean sojourns (derived here).

    From absent (visit rate 1): fault a/(a+rho) or read-around rho/(a+rho); a read-around folio
    is cached until an access (prob 1 - e^{-a T_c}, a minor fault maps it) or T_c; every mapped
    period starts at a reference and lasts the resident period.  Returns the time shares.
    """
    to_fault = _a / (_a + _rho)
    to_readaround = _rho / (_a + _rho)
    touched = 1 - _E
    visits = {"absent": 1, "fault_locked": to_fault, "readaround_locked": to_readaround,
              "cached": to_readaround, "mapped": to_fault + to_readaround * touched}
    sojourn = {"absent": 1 / (_a + _rho), "fault_locked": _Tf, "readaround_locked": _Tr,
               "cached": _min_mean(lambda t: sp.exp(-_a * t)),
               "mapped": derive_lru_resident_period()}
    times = {s: visits[s] * sojourn[s] for s in visits}
    total = sp.Add(*times.values())
    return {s: sp.simplify(times[s] / total) for s in times}


def derive_two_list_page_shares() -> dict[str, sp.Expr]:
    """The two-list page shares (inactive FIFO of T_c with promotion, active FIFO of T_A).

    From absent (visit rate 1): a fault inserts a referenced folio (a/(a+rho)); a read-around
    an unreferenced one (rho/(a+rho)), cached until its first access S1 (a minor fault maps it)
    and promoted by the second, S2, if S2 < T_c: P = 1 - e^{-x}(1 + x), x = a T_c.  A referenced
    inactive folio (from a fault or demoted from the active list) is promoted by one reference
    within T_c (1 - e^{-x}), else reclaimed; an active folio returns to the inactive list after
    T_A.  Active visits n_A = p1 (f + n_A) + r p2, solved here.  Returns the time shares
    (states absent, fault_locked, readaround_locked, cached, inactive_mapped, active).
    """
    t = sp.Symbol("t", positive=True)
    n_active = sp.Symbol("n_A", positive=True)
    f = _a / (_a + _rho)
    r = _rho / (_a + _rho)
    p1 = sp.simplify(sp.integrate(_a * sp.exp(-_a * t), (t, 0, _T)))                 # S1 < T
    p2 = sp.simplify(sp.integrate(_a**2 * t * sp.exp(-_a * t), (t, 0, _T)))          # S2 < T
    first = _min_mean(lambda u: sp.exp(-_a * u))                                      # min(S1,T)
    second = _min_mean(lambda u: sp.exp(-_a * u) * (1 + _a * u))                     # min(S2,T)
    actives = sp.solve(sp.Eq(n_active, p1 * (f + n_active) + r * p2), n_active)[0]
    times = {
        "absent": 1 / (_a + _rho),
        "fault_locked": f * _Tf,
        "readaround_locked": r * _Tr,
        "cached": r * first,
        "inactive_mapped": r * (second - first) + (f + actives) * first,
        "active": actives * _TA,
    }
    total = sp.Add(*times.values())
    return {s: sp.simplify(times[s] / total) for s in times}


# The registered shares: the derivations' results, written in the form the numeric kernel
# evaluates (all weights multiplied by (a + rho) e^{-a T_c}, so nothing overflows for a
# hot page); the tests check them against the derivations.
_om = 1 - _E
_lru_weights = {
    "absent": _E,
    "fault_locked": _a * _Tf * _E,
    "readaround_locked": _rho * _Tr * _E,
    "cached": _rho * _E * _om / _a,
    "mapped": (_a + _rho * _om) * _om / _a,
}
_promoted = _om - _x * _E              # 1 - e^{-x}(1 + x): two references within T_c
_two_list_weights = {
    "absent": _E,
    "fault_locked": _a * _Tf * _E,
    "readaround_locked": _rho * _Tr * _E,
    "cached": _rho * _E * _om / _a,
    "inactive_mapped": _rho * _E * _promoted / _a + (_a + _rho * _promoted) * _om / _a,
    "active": (_a * _om + _rho * _promoted) * _TA,
}

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
        symbols=(_a, _rho, _T, _TA, _Tf, _Tr),
        assumptions=_IRM + _cycle + "Active and inactive lists (lru_lists = 2, mm/vmscan.c): "
                    "the inactive list a FIFO of T_c (the inactive list's characteristic time), "
                    "promotion on a second reference, the active list a FIFO of T_A "
                    "(shrink_active_list), demotion to the inactive head.  Derived in "
                    "derive_two_list_page_shares().",
        reference=_CHE_REFERENCE + MODEL_REFERENCE,
    ))
    for state, weight in _two_list_weights.items()
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
def lru_page_weights_scalar(a, rho, lifetime, active, fault_locked, read_time_, lists):
    """The unnormalised time weights of the ``lru_page_*`` (``lists`` 1) or
    ``two_list_page_*`` (``lists`` 2) shares at one point: (absent, fault_locked,
    readaround_locked, cached, mapped, active); with one list ``active`` is 0 and mapped holds
    every mapped folio, with two ``mapped`` is the inactive mapped ones.

    The one numeric kernel of those formulas (expm1 for small ``a T_c``; ``a = 0``: a page never
    accessed, resident only while read around).  Equal to the registered expressions (tests).
    """
    x = a * lifetime
    e = math.exp(-x)
    om = -math.expm1(-x)                       # 1 - e^{-x}
    om_a = om / a if x > 1e-12 else lifetime   # (1 - e^{-x}) / a
    absent = e
    locked = a * fault_locked * e
    around = rho * read_time_ * e
    cached = rho * e * om_a
    if lists == 1:
        return absent, locked, around, cached, (a + rho * om) * om_a, 0.0
    # 1 - e^{-x}(1 + x), by its series where it cancels
    promoted = om - x * e if x > 1e-4 else x * x * (0.5 - x / 3.0)
    promoted_a = promoted / a if a > 0 else 0.0
    mapped = rho * e * promoted_a + (a + rho * promoted) * om_a
    return absent, locked, around, cached, mapped, (a * om + rho * promoted) * active
