"""A closed population at a multi-server station (CPUs, device slots): the finite-source wait.

A thread arriving at a station of c servers finds K ~ Binomial(n, u) of the n other threads
there (arrival theorem, independence approximation), taken as normal with continuity
correction.  :func:`finite_source_tail_scalar` (P(K >= c)), :func:`finite_source_excess_scalar`
(E[(K - c)^+]) and :func:`finite_source_wait_scalar` are the one numeric kernel of the
``finite_source_wait`` entry (compiled: the analytic model calls them some thirty times per pass
of its fixed point); the array forms are their ufuncs.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from numba import njit, vectorize

from .registry import MODEL_REFERENCE, Formula, register, scalar_or_array
from .symbols import busy_share, population_others, servers, service_cv, service_mean

__all__ = ["finite_source_excess", "finite_source_excess_scalar", "finite_source_tail",
           "finite_source_tail_scalar", "finite_source_wait", "finite_source_wait_formula",
           "finite_source_wait_scalar"]

_m, _cv = service_mean, service_cv


_n, _u = population_others, busy_share
_fs_mean = _n * _u
_fs_sd = sp.sqrt(_n * _u * (1 - _u))


def _phi_cdf(x: sp.Expr) -> sp.Expr:
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


_fs_d = (_fs_mean - servers) / _fs_sd
_fs_tail = _phi_cdf((_fs_mean - servers + sp.Rational(1, 2)) / _fs_sd)
_fs_excess = (_fs_sd * sp.exp(-_fs_d**2 / 2) / sp.sqrt(2 * sp.pi)
              + (_fs_mean - servers) * _phi_cdf(_fs_d))


_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@njit(cache=True, inline="always")
def _binomial_mean_sd(n, u):
    """Mean and standard deviation of Binomial(n, u), the share u clipped to [0, 1]."""
    u = u if math.isnan(u) else min(max(u, 0.0), 1.0)
    return n * u, math.sqrt(n * u * (1.0 - u))


@njit(cache=True, error_model="numpy")
def finite_source_tail_scalar(n, u, c):
    """P(K >= c), K ~ Binomial(n, u), normal approximation with continuity correction (the
    registry's tail term), at one point.

    Exactly 0 when ``n < c`` and 1 when ``u = 1`` and ``n >= c``; nan in, nan out.
    """
    if n < c:
        return 0.0
    mean, sd = _binomial_mean_sd(n, u)
    top = mean - c + 0.5
    if sd > 0.0:
        return 0.5 * math.erfc(-(top / sd) * _SQRT1_2)       # Phi(z) = erfc(-z/sqrt 2)/2
    return 1.0 if top >= 0.0 else 0.0                        # Phi(+-inf); nan: 0


@njit(cache=True, error_model="numpy")
def finite_source_excess_scalar(n, u, c):
    """E[(K - c)^+], K ~ Binomial(n, u), normal approximation (the registry's excess term), at
    one point.

    sd phi(d) + (mean - c) Phi(d), d = (mean - c)/sd; 0 when ``n < c`` (K cannot exceed the
    level); (mean - c)^+ when the spread vanishes.
    """
    if n < c:
        return 0.0
    mean, sd = _binomial_mean_sd(n, u)
    if sd > 0.0:
        d = (mean - c) / sd
        out = sd * math.exp(-0.5 * d * d) * _INV_SQRT_2PI + (mean - c) * 0.5 * math.erfc(
            -d * _SQRT1_2)
    else:
        out = mean - c
    return out if not out < 0.0 else 0.0                     # max(out, 0), nan kept


@njit(cache=True, error_model="numpy")
def finite_source_wait_scalar(servers_, others, busy, visit_mean, visit_cv):
    """Mean queueing wait per visit at a ``servers_``-server station of a closed population (the
    registry entry ``finite_source_wait``), at one point; ``servers_ = 0`` means unlimited (no
    wait)."""
    safe_c = servers_ if servers_ > 0 else 1.0
    tail = finite_source_tail_scalar(others, busy, safe_c)
    excess = finite_source_excess_scalar(others, busy, safe_c)
    out = visit_mean / safe_c * ((1.0 + visit_cv**2) / 2.0 * tail + excess)
    return out if servers_ > 0 else 0.0


@vectorize(["float64(float64, float64, float64)"], cache=True)
def _finite_source_tail_ufunc(others, busy, level):
    return finite_source_tail_scalar(others, busy, level)


def finite_source_tail(others, busy, level):
    """:func:`finite_source_tail_scalar` elementwise (its ufunc)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scalar_or_array(_finite_source_tail_ufunc(others, busy, level))


@vectorize(["float64(float64, float64, float64)"], cache=True)
def _finite_source_excess_ufunc(others, busy, level):
    return finite_source_excess_scalar(others, busy, level)


def finite_source_excess(others, busy, level):
    """:func:`finite_source_excess_scalar` elementwise (its ufunc)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scalar_or_array(_finite_source_excess_ufunc(others, busy, level))


@vectorize(["float64(float64, float64, float64, float64, float64)"], cache=True)
def _finite_source_wait_ufunc(servers_, others, busy, visit_mean, visit_cv):
    return finite_source_wait_scalar(servers_, others, busy, visit_mean, visit_cv)


def finite_source_wait(servers_, others, busy, visit_mean, visit_cv):
    """:func:`finite_source_wait_scalar` elementwise (its ufunc)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scalar_or_array(_finite_source_wait_ufunc(servers_, others, busy, visit_mean,
                                                         visit_cv))


finite_source_wait_formula = register(Formula(
    name="finite_source_wait",
    lhs=sp.Symbol("W_c"),
    expr=sp.Piecewise(
        (0, _n < servers),
        (_m / servers * ((1 + _cv**2) / 2 * _fs_tail + _fs_excess), True)),
    symbols=(servers, _n, _u, _m, _cv),
    implementation=finite_source_wait,
    compiled_implementation=finite_source_wait_scalar,
    assumptions="A thread arriving at a station of c servers (CPUs, or device slots) finds K of "
                "the n = N - 1 other threads there, each independently with probability u (its "
                "time share at the station: the arrival theorem with an independence "
                "approximation), K ~ Binomial(n, u), taken as normal with continuity correction.  "
                "It waits the residual of the first completion, m (1 + c_v^2)/(2c), when K >= c, "
                "plus m/c per thread queued ahead, E[(K - c)^+].  Exact limits: no wait when "
                "n < c; (N - c) m / c + residual when every thread is always there (saturation "
                "X = c/m).  Against exact M/M/c//N (mva_multiserver) it is within ~15 % on the "
                "response and ~6 % on the throughput at the knee, exact far from it.",
    reference="Reiser & Lavenberg (1980) arrival theorem; Lazowska et al., Quantitative System "
              "Performance (1984) ch. 6 and 8; queueing.md §1.4; " + MODEL_REFERENCE,
))
