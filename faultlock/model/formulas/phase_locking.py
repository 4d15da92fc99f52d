"""An exponential lag against a gamma period: phase locking of closed readers, group walks.

A period S (gamma: mean S, cv c_S) starts, and a thread's next request comes an exponential lag
X later: P(X < S) and E[S - X | X < S] (issue 3 item 5: few threads that come back quickly
phase-lock to a periodic writer).  :func:`lag_inside_scalar` is the one numeric kernel of both
registry entries (series where S/m is small: no cancellation); the array forms are ufuncs of its
two scalar projections.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from numba import njit, vectorize

from .registry import Formula, register, scalar_or_array
from .symbols import lag_mean, period_cv, period_mean

__all__ = ["lag_inside_pair_scalar", "lag_inside_probability", "lag_inside_probability_formula",
           "lag_inside_probability_scalar", "lag_inside_residual", "lag_inside_residual_formula",
           "lag_inside_residual_scalar", "lag_inside_scalar"]


# E[exp(-S/m)] for S ~ Gamma(mean S, cv c_S): the Laplace-Stieltjes transform at 1/m
_period_lst = (1 + period_cv**2 * period_mean / lag_mean) ** (-1 / period_cv**2)


@njit(cache=True, error_model="numpy")
def lag_inside_scalar(s, cv, m):
    """(P(X < S), E[(S - X)^+]) for X ~ Exp(mean m), S ~ Gamma(mean s, cv), at one point.

    Without cancellation: where S/m is small, E[(S - X)^+] = E[S^2]/(2m) (1 + O(S/m)) comes from
    the series of m (S/m - 1 + e^{-S/m}); cv = 0 is the deterministic period; m = inf gives 0;
    m = 0 (no lag at all) is always inside, with the whole period left.
    """
    finite = math.isfinite(m) and m > 0 and math.isfinite(s) and s > 0
    mm = m if finite else 1.0
    x = (s if finite else 0.0) / mm
    c2 = cv**2 if math.isfinite(cv) else 0.0
    safe_c2 = c2 if c2 > 0 else 1.0
    inside = -math.expm1(-math.log1p(safe_c2 * x) / safe_c2) if c2 > 0 else -math.expm1(-x)
    inside = inside if finite else 0.0
    series = mm * (x**2 * (1 + c2) / 2 - x**3 * (1 + c2) * (1 + 2 * c2) / 6)
    excess = series if x < 1e-3 else s - mm * inside
    if finite:
        excess = excess if (excess != excess or excess > 0.0) else 0.0   # np.maximum(, 0)
    else:
        excess = 0.0
    if m == 0 and math.isfinite(s) and s > 0:
        inside = 1.0
        excess = s
    return inside, excess


@njit(cache=True, error_model="numpy")
def lag_inside_pair_scalar(period_mean_, period_cv_, lag_mean_):
    """(P(X < S), E[S - X | X < S]) at one point: both registry entries.

    Where the lag is long, E[(S - X)^+]/P(X < S) -> E[S^2]/(2 E[S]), the PASTA residual.
    """
    inside, excess = lag_inside_scalar(period_mean_, period_cv_, lag_mean_)
    pasta = period_mean_ * (1 + period_cv_**2) / 2
    return inside, excess / (inside if inside > 0 else 1.0) if inside > 1e-12 else pasta


@njit(cache=True, error_model="numpy")
def lag_inside_probability_scalar(period_mean_, period_cv_, lag_mean_):
    """P(X < S) at one point: the kernel of ``lag_inside_probability``."""
    return lag_inside_scalar(period_mean_, period_cv_, lag_mean_)[0]


@njit(cache=True, error_model="numpy")
def lag_inside_residual_scalar(period_mean_, period_cv_, lag_mean_):
    """E[S - X | X < S] at one point: the kernel of ``lag_inside_residual``."""
    return lag_inside_pair_scalar(period_mean_, period_cv_, lag_mean_)[1]


@vectorize(["float64(float64, float64, float64)"], cache=True)
def _lag_inside_probability_ufunc(period_mean_, period_cv_, lag_mean_):
    return lag_inside_probability_scalar(period_mean_, period_cv_, lag_mean_)


def lag_inside_probability(period_mean_, period_cv_, lag_mean_):
    """P(X < S): the lag ends inside the period (registry entry), on arrays:
    :func:`lag_inside_probability_scalar` elementwise (its ufunc)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scalar_or_array(_lag_inside_probability_ufunc(period_mean_, period_cv_, lag_mean_))


@vectorize(["float64(float64, float64, float64)"], cache=True)
def _lag_inside_residual_ufunc(period_mean_, period_cv_, lag_mean_):
    return lag_inside_residual_scalar(period_mean_, period_cv_, lag_mean_)


def lag_inside_residual(period_mean_, period_cv_, lag_mean_):
    """E[S - X | X < S]: what is left of the period when the lag ends inside it (registry entry),
    on arrays: :func:`lag_inside_residual_scalar` elementwise (its ufunc)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scalar_or_array(_lag_inside_residual_ufunc(period_mean_, period_cv_, lag_mean_))


lag_inside_probability_formula = register(Formula(
    name="lag_inside_probability",
    lhs=sp.Symbol(r"P(X < S)"),
    expr=1 - _period_lst,
    symbols=(period_mean, period_cv, lag_mean),
    implementation=lag_inside_probability,
    compiled_implementation=lag_inside_probability_scalar,
    assumptions="A period S (gamma law: mean S, cv c_S; c_S -> 0 is deterministic) starts, and a "
                "thread's next request comes after an exponential lag X of mean m_x, independent "
                "of S: P(X < S) = 1 - E[e^{-S/m_x}].  Two uses.  (1) Closed readers against "
                "mmap_lock writers: a thread can be blocked at most once per writer period, when "
                "its next acquisition falls inside it, so its block probability per acquisition "
                "is r_p T_a P(X < S) (r_p periods per second, T_a the thread's mean time between "
                "acquisitions, m_x that time without the blocked waits); m_x >> S gives PASTA "
                "(rho_w), m_x << S gives one block per period per thread: few threads phase-lock "
                "to the writer.  (2) Group walks: a follower touches the leader's page a lag X "
                "after it; it waits for the read if X < S (S the leader's fault up to the end of "
                "its read).",
    reference="Takacs (1962) / Kleinrock Vol. 1 §5 (residual life); the closed-population "
              "(arrival theorem) correction to PASTA of Reiser & Lavenberg (1980); queueing.md "
              "§1.3-1.4; issue 3 item 5 (phase locking against a periodic writer).",
))

lag_inside_residual_formula = register(Formula(
    name="lag_inside_residual",
    lhs=sp.Symbol(r"\mathbb{E}[S - X \mid X < S]"),
    expr=(period_mean - lag_mean * (1 - _period_lst)) / (1 - _period_lst),
    symbols=(period_mean, period_cv, lag_mean),
    implementation=lag_inside_residual,
    compiled_implementation=lag_inside_residual_scalar,
    assumptions="As lag_inside_probability: E[(S - X)^+] = E[S] - m_x (1 - E[e^{-S/m_x}]), divided "
                "by P(X < S).  The wait of a request that falls inside the period.  Limits: "
                "m_x -> inf gives E[S^2]/(2E[S]) (PASTA's residual: half a deterministic period); "
                "m_x -> 0 gives the whole period S (a thread that comes back at once waits "
                "nearly a whole writer hold, not half of one).",
    reference="As lag_inside_probability.",
))
