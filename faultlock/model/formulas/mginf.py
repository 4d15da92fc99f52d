"""M/G/infinity: lock holders that share (readers), their busy periods and the longest residual.

Readers of a lock are an M/G/infinity system: the number holding it is Poisson, insensitive to
the hold law (busy period, mean number, busy share).  The time until the last current holder
leaves (:data:`mginf_max_residual`: the drain a writer waits for after shutting new readers out,
``vma_start_write`` or a queued rwsem writer) is m Ein(lambda m): :func:`ein` is its one numeric
kernel (power series, or E1 by its continued fraction: no cancellation), compiled; the array form
is its ufunc.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from numba import njit, vectorize

from .registry import MODEL_REFERENCE, Formula, register, scalar_or_array
from .symbols import arrival_rate, service_mean

__all__ = ["derive_mginf_max_residual", "ein", "mginf_busy_period", "mginf_busy_share",
           "mginf_max_residual", "mginf_max_residual_formula", "mginf_max_residual_scalar",
           "mginf_mean_busy"]

_lam, _m = arrival_rate, service_mean

#: M/G/infinity busy period E[B] = (exp(lambda E[S]) - 1)/lambda (insensitive to the law of S).
mginf_busy_period = register(Formula(
    name="mginf_busy_period",
    lhs=sp.Symbol(r"\mathbb{E}[B]"),
    expr=(sp.exp(_lam * _m) - 1) / _lam,
    symbols=(_lam, _m),
    assumptions="Poisson arrivals, infinitely many servers (readers sharing a lock), i.i.d. "
                "general service with mean m; insensitive to the service law beyond its mean.",
    reference="Takacs (1962); Kulkarni & Puryear, Queueing Systems 15 (1994), "
              "DOI 10.1007/BF01189233; queueing.md §1.3 (busy-period table).",
))

#: M/G/infinity mean number busy = lambda E[S] (number busy is Poisson with this mean).
mginf_mean_busy = register(Formula(
    name="mginf_mean_busy",
    lhs=sp.Symbol(r"\mathbb{E}[N_{busy}]"),
    expr=_lam * _m,
    symbols=(_lam, _m),
    assumptions="Poisson arrivals, infinitely many servers, i.i.d. general service with mean m; "
                "the number busy is Poisson(lambda m), insensitive to the service law.",
    reference="Kleinrock Vol. 1 §3.3 / Takacs (1962); queueing.md §1.3.",
))


# --------------------------------------------------------------------------------------------
# Lock holders as an M/G/infinity system: the longest residual hold (writer drains)
# --------------------------------------------------------------------------------------------


_EIN_SERIES = tuple((-1.0) ** (k + 1) / (k * math.factorial(k)) for k in range(1, 40))


@njit(cache=True, error_model="numpy")
def ein(x):
    """Ein(x) = int_0^x (1 - e^{-u})/u du = E1(x) + ln x + gamma, without cancellation (scalar).

    Its power series below 2, else E1 by its continued fraction (compiled: the analytic model
    calls it three times per pass of its fixed point).
    """
    if x != x:
        return x
    if x == 0.0:  # the series' value, without its 39 zero terms (no holders: no drain)
        return 0.0
    if x < 2.0:   # sum (-1)^(k+1) x^k / (k k!): to 1e-17 (13 terms at 0.5, 25 at 2)
        total = 0.0
        power = 1.0
        for k in range(39):
            power *= x
            term = _EIN_SERIES[k] * power
            total += term
            if abs(term) < 1e-18 * abs(total):
                break
        return total
    if x == math.inf:
        return math.inf
    # E1(x) by its continued fraction (modified Lentz; Numerical Recipes 6.3), fast for x >= 1
    b = x + 1.0
    c = 1e300
    d = 1.0 / b
    h = d
    for i in range(1, 200):
        an = -float(i * i)
        b += 2.0
        d = 1.0 / (an * d + b)
        c = b + an / c
        delta = c * d
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h * math.exp(-x) + math.log(x) + 0.5772156649015329


@njit(cache=True, error_model="numpy")
def mginf_max_residual_scalar(arrival_rate_, service_mean_):
    """E[max residual hold] m Ein(lambda m) at one point: the kernel of the registry entry."""
    return service_mean_ * ein(arrival_rate_ * service_mean_)


@vectorize(["float64(float64, float64)"], cache=True)
def _mginf_max_residual_ufunc(arrival_rate_, service_mean_):
    return mginf_max_residual_scalar(arrival_rate_, service_mean_)


def mginf_max_residual(arrival_rate_, service_mean_):
    """E[max residual hold] of an M/M/infinity system seen at a random time (see the registry
    entry), on arrays: :func:`mginf_max_residual_scalar` elementwise (its ufunc)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scalar_or_array(_mginf_max_residual_ufunc(arrival_rate_, service_mean_))


mginf_max_residual_formula = register(Formula(
    name="mginf_max_residual",
    lhs=sp.Symbol(r"\mathbb{E}[D]"),
    expr=_m * (sp.expint(1, _lam * _m) + sp.log(_lam * _m) + sp.EulerGamma),
    symbols=(_lam, _m),
    implementation=mginf_max_residual,
    compiled_implementation=mginf_max_residual_scalar,
    assumptions="Holders arrive as Poisson(lambda) and hold Exp(mean m), any number at once "
                "(M/M/infinity; readers of a lock).  Seen at a random time, the time until the "
                "last current holder leaves, D, has P(D > t) = 1 - exp(-lambda int_t^oo P(S > u) "
                "du) = 1 - exp(-lambda m e^{-t/m}), so E[D] = m Ein(lambda m) with "
                "Ein(x) = E1(x) + ln x + gamma (derive_mginf_max_residual()).  Light load: "
                "lambda E[S^2]/2.  This is the drain a writer waits for after excluding new "
                "holders (vma_start_write; a queued rwsem writer); the analytic model uses it "
                "with m the mean residual hold E[S^2]/(2E[S]) for non-exponential holds, exact in "
                "light load.",
    reference="Takacs (1962) M/G/infinity; Kulkarni & Puryear (1994); queueing.md §1.3; "
              "kernel.md §6.3 (writers wait for the VMA's readers' I/O); " + MODEL_REFERENCE,
))


def derive_mginf_max_residual() -> sp.Expr:
    """E[D] = int_0^oo (1 - exp(-a e^{-t/m})) dt with a = lambda m, done in sympy."""
    t = sp.Symbol("t", positive=True)
    a = sp.Symbol("a", positive=True)
    result = sp.integrate(1 - sp.exp(-a * sp.exp(-t / _m)), (t, 0, sp.oo))
    return sp.simplify(result.subs(a, _lam * _m))


#: share of time at least one holder is present: P(N > 0) = 1 - exp(-lambda m).
mginf_busy_share = register(Formula(
    name="mginf_busy_share",
    lhs=sp.Symbol(r"P(N>0)"),
    expr=1 - sp.exp(-_lam * _m),
    symbols=(_lam, _m),
    assumptions="M/G/infinity: the number of holders is Poisson(lambda m), insensitive to the "
                "hold law.  Used for the share of time mmap_lock is held for read.",
    reference="Takacs (1962); queueing.md §1.3.",
))
