"""Open queues: M/M/1, M/G/1 (Pollaczek-Khinchine), M/G/1 with vacations, M/M/c (Erlang C).

The single-server forms are the building blocks of queueing.md §1.3 (the writer as a vacation of
the reader server of mmap_lock); M/M/c is the device queue with ``io_parallelism`` servers.
:func:`erlang_c` and :func:`mmc_wait` are the numeric forms of the ``mmc_wait`` entry, whose
lambdified finite ``Sum`` overflows for a few hundred servers.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy import stats

from .registry import Formula, register, scalar_or_array
from .symbols import (
    arrival_rate,
    servers,
    service_cv,
    service_mean,
    service_rate,
    vacation_cv,
    vacation_mean,
)

__all__ = ["erlang_c", "erlang_c_expr", "mg1_vacation_wait", "mg1_wait", "mm1_wait", "mmc_wait"]

# --------------------------------------------------------------------------------------------
# Single-server building blocks (queueing.md §1.3)
# --------------------------------------------------------------------------------------------

_lam, _mu, _m, _cv = arrival_rate, service_rate, service_mean, service_cv

#: M/M/1 mean wait in queue, Wq = rho/(mu - lambda), rho = lambda/mu.
mm1_wait = register(Formula(
    name="mm1_wait",
    lhs=sp.Symbol("W_q"),
    expr=(_lam / _mu) / (_mu - _lam),
    symbols=(_lam, _mu),
    condition=sp.StrictLessThan(_lam, _mu),
    assumptions="Poisson arrivals, exponential service, one FCFS server, steady state "
                "(lambda < mu).",
    reference="Kleinrock, Queueing Systems Vol. 1 (1975) §3.2; queueing.md §1.3 and §2 (M/M/1 "
              "lambda=0.8, mu=1: Wq = 4).",
))

#: Pollaczek-Khinchine: Wq = lambda E[S^2] / (2 (1 - rho)), E[S^2] = m^2 (1 + cv^2), rho = lambda m.
mg1_wait = register(Formula(
    name="mg1_wait",
    lhs=sp.Symbol("W_q"),
    expr=_lam * _m**2 * (1 + _cv**2) / 2 / (1 - _lam * _m),
    symbols=(_lam, _m, _cv),
    condition=sp.StrictLessThan(_lam * _m, 1),
    assumptions="Poisson arrivals, i.i.d. general service with mean m and coefficient of variation "
                "c_v, one FCFS (any work-conserving non-anticipating) server, rho = lambda m < 1.",
    reference="Pollaczek (1930), Khinchine (1932); Kleinrock Vol. 1 §5.6; queueing.md §1.3 "
              "(Lq = (rho^2 + lambda^2 Var S)/(2(1-rho)), LINE qsys_mg1).",
))

#: Fuhrmann-Cooper: M/G/1 with multiple vacations V (mean v, cv c_V):
#: W = W_{M/G/1} + E[V^2]/(2E[V]).
mg1_vacation_wait = register(Formula(
    name="mg1_vacation_wait",
    lhs=sp.Symbol("W_q"),
    expr=mg1_wait.expr + vacation_mean * (1 + vacation_cv**2) / 2,
    symbols=(_lam, _m, _cv, vacation_mean, vacation_cv),
    condition=sp.StrictLessThan(_lam * _m, 1),
    assumptions="M/G/1 with multiple vacations (server leaves whenever empty), vacations i.i.d. "
                "and independent of arrivals; E[V^2]/(2E[V]) = v (1 + c_V^2)/2.  The 'writer = "
                "vacation of the reader server' view of queueing.md §1.3.",
    reference="Fuhrmann & Cooper, Oper. Res. 33(5) (1985); Baccelli & Coffman (1982); "
              "queueing.md §1.3.",
))


# --------------------------------------------------------------------------------------------
# M/M/c (device queue with io_parallelism servers)
# --------------------------------------------------------------------------------------------

_k = sp.Symbol("k", integer=True, nonnegative=True)
_offered = _lam / _mu  # offered load a in Erlangs
_erlang_tail = _offered**servers / sp.factorial(servers) * servers / (servers - _offered)
#: Erlang C probability of waiting, C(c, a) = tail / (sum_{k<c} a^k/k! + tail).
erlang_c_expr = _erlang_tail / (
    sp.Sum(_offered**_k / sp.factorial(_k), (_k, 0, servers - 1)) + _erlang_tail
)


def erlang_c(servers: np.ndarray | int, offered_load: np.ndarray | float) -> np.ndarray | float:
    """Erlang C: probability that an M/M/c arrival waits, c servers, a = lambda/mu Erlangs.

    Vectorised and stable for large c, through Erlang B written with the Poisson law,
    B(c, a) = P(Poisson(a) = c) / P(Poisson(a) <= c), and C = B / (1 - (a/c)(1 - B)).
    Returns 1 where a >= c (every arrival waits: unstable).
    """
    c = np.asarray(servers)
    a = np.asarray(offered_load, dtype=float)
    if np.any(c < 1) or np.any(c != np.floor(c)):
        raise ValueError("servers must be a positive integer")
    if np.any(a < 0):
        raise ValueError("offered_load must be >= 0")
    c = c.astype(float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        blocking = np.exp(stats.poisson.logpmf(c, a) - stats.poisson.logcdf(c, a))
        rho = a / c
        wait = blocking / (1.0 - rho * (1.0 - blocking))
    return scalar_or_array(np.where(a >= c, 1.0, wait))


def mmc_wait(arrival_rate: np.ndarray | float, service_rate: np.ndarray | float,
             servers: np.ndarray | int) -> np.ndarray | float:
    """M/M/c mean wait in queue Wq = C(c, lambda/mu) / (c mu - lambda); inf if lambda >= c mu."""
    lam = np.asarray(arrival_rate, dtype=float)
    mu = np.asarray(service_rate, dtype=float)
    c = np.asarray(servers)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = erlang_c(c, lam / mu) / (c * mu - lam)
    return scalar_or_array(np.where(lam < c * mu, w, np.inf))


mmc_wait_formula = register(Formula(
    name="mmc_wait",
    lhs=sp.Symbol("W_q"),
    expr=erlang_c_expr / (servers * _mu - _lam),
    symbols=(_lam, _mu, servers),
    condition=sp.StrictLessThan(_lam, servers * _mu),
    implementation=mmc_wait,
    assumptions="Poisson arrivals, c identical exponential FCFS servers, lambda < c mu.  numeric() "
                "uses the Poisson form of Erlang B (stable for large c); the lambdified Sum "
                "overflows for c of a few hundred.",
    reference="Erlang (1917); Kleinrock Vol. 1 §3.5; LINE qsys_mmk.",
))
