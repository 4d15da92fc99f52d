"""Page states: absent, locked (faulted in, or read around), cached, mapped.

The time shares of one page's semi-Markov cycle (derived in :func:`derive_page_shares` from the
embedded chain and the mean sojourns), registered as ``page_<state>_share``.  The analytic model
sums them over the nodes of the popularity law, so it uses the unnormalised weights
(:func:`page_state_weights_scalar`, the one numeric kernel; the tests check its ratios against
the registered shares).
"""

from __future__ import annotations

import sympy as sp
from numba import njit

from .registry import MODEL_REFERENCE, Formula, register
from .symbols import (
    fault_locked_time,
    page_access_rate,
    read_time,
    readaround_rate,
    reclaim_cached,
    reclaim_mapped,
)

__all__ = ["derive_page_shares", "page_shares", "page_state_weights_scalar"]


_a, _rho, _thc, _thm, _Tf, _Tr = (page_access_rate, readaround_rate, reclaim_cached,
                                  reclaim_mapped, fault_locked_time, read_time)

_page_assumptions = (
    "One page under independent Poisson accesses at rate a (its share of the threads' accesses), "
    "read-arounds of neighbouring faults covering it at rate rho_ra, reclaim hazards theta_c "
    "(cached: uptodate, unlocked, unmapped, unreferenced) and theta_m (mapped).  Semi-Markov "
    "cycle absent -> (access) locked for a mean T_f while the fault reads and maps it -> mapped; "
    "absent -> (read-around) locked for a mean T_r while the read is in flight -> cached; cached "
    "-> (access: minor fault) mapped or (reclaim) absent; mapped -> (reclaim) absent.  Shares "
    "are time shares, so by PASTA the probability that an access finds the page in that state.  "
    "Time-shares of a semi-Markov process depend on the sojourn laws only through their means.  "
    "Derived in derive_page_shares()."
)

_page_weights = {
    "absent": _thm * (_a + _thc),
    "fault_locked": _a * _Tf * _thm * (_a + _thc),
    "readaround_locked": _rho * _Tr * _thm * (_a + _thc),
    "cached": _rho * _thm,
    "mapped": _a * (_a + _thc + _rho),
}
_page_total = sp.Add(*_page_weights.values())
_page_symbols = (_a, _rho, _thc, _thm, _Tf, _Tr)

page_shares = {
    state: register(Formula(
        name=f"page_{state}_share",
        lhs=sp.Symbol(rf"\pi_{{\mathrm{{{state.replace('_', ' ')}}}}}"),
        expr=weight / _page_total,
        symbols=_page_symbols,
        assumptions=_page_assumptions,
        reference="Semi-Markov time shares (Cinlar, Introduction to Stochastic Processes, 1975, "
                  "ch. 10); kernel.md §4 (reclaim during the retry window); " + MODEL_REFERENCE,
    ))
    for state, weight in _page_weights.items()
}


def derive_page_shares() -> dict[str, sp.Expr]:
    """Derive the page-state time shares from the embedded chain and the mean sojourns.

    Embedded jump chain from absent (visit rate 1): locked-by-fault a/(a+rho), locked-by-read-around
    rho/(a+rho); the latter goes to cached; cached goes to mapped with a/(a+theta_c); every visit
    to mapped and the remaining visits to cached return to absent.  Mean sojourns: absent
    1/(a+rho), fault-locked T_f, read-around-locked T_r, cached 1/(a+theta_c), mapped 1/theta_m.
    Time share = visits x sojourn / sum.  Returns the shares; they equal the registered ones.
    """
    to_fault = _a / (_a + _rho)
    to_readaround = _rho / (_a + _rho)
    cached_to_mapped = _a / (_a + _thc)
    visits = {"absent": 1, "fault_locked": to_fault, "readaround_locked": to_readaround,
              "cached": to_readaround, "mapped": to_fault + to_readaround * cached_to_mapped}
    sojourn = {"absent": 1 / (_a + _rho), "fault_locked": _Tf, "readaround_locked": _Tr,
               "cached": 1 / (_a + _thc), "mapped": 1 / _thm}
    times = {s: visits[s] * sojourn[s] for s in visits}
    total = sp.Add(*times.values())
    return {s: sp.simplify(times[s] / total) for s in times}

@njit(cache=True, error_model="numpy")
def page_state_weights_scalar(a, rho, theta_c, theta_m, fault_locked, read_time_):
    """The unnormalised time weights of the ``page_*_share`` formulas at one point: (absent,
    fault_locked, readaround_locked, cached, mapped), no division.

    Each share is its weight over the sum of the five; the analytic model sums them over the
    nodes of the popularity law, where computing the five ratios separately would cost five times
    the work.  Equal to the registered expressions (tests).
    """
    cached_or_reclaimed = a + theta_c
    base = theta_m * cached_or_reclaimed
    return (base, a * fault_locked * base, rho * read_time_ * base, rho * theta_m,
            a * (cached_or_reclaimed + rho))
