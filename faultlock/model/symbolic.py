"""Symbolic formulas: the single source of every closed form the project uses.

Each formula is a sympy expression built once at import, registered in :data:`FORMULAS` as a
:class:`Formula` with its ordered symbols, assumptions and reference (a paper, and the section of
``reference/queueing.md`` that quotes it).  The analytic model evaluates them through
:meth:`Formula.numeric` (a cached, numpy-vectorised ``sp.lambdify``); sweep provenance records
:meth:`Formula.hash`; the paper prints :meth:`Formula.latex`.

The symbols live here, next to the public parameter names they stand for
(:data:`PARAMETER_NAMES`).  All times are in seconds, all rates per second.

Alongside the registry, this module holds the numeric building blocks that have no useful closed
form in sympy but are still "formulas" of the model:

* closed N-thread models (queueing.md §1.4): :func:`machine_repairman`, :func:`mva_single_station`,
  :func:`mva_multiserver` -- exact and numerically stable up to N = 10^5 (log-space normalising
  constants, O(N));
* (the laws of random times -- parameters, the Laplace-Stieltjes transform, quantiles, sums of
  reads -- live in :mod:`faultlock.model.laws`; the refault formulas below use its ``lst``);
* the general (any window distribution) refault-loop moments of queueing.md §1.6;
* :func:`erlang_c` and :func:`mmc_wait` (device queue with ``io_parallelism`` servers).

Stability convention (DESIGN.md): a formula whose regime can be unstable carries a ``condition``;
outside it :meth:`Formula.numeric` returns ``inf``, never a meaningless finite number.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp
from numba import njit, vectorize
from scipy import special, stats

from .laws import lst

__all__ = [
    # registry
    "Formula",
    "FORMULAS",
    "PARAMETER_NAMES",
    "SYMBOLS",
    # derivations
    "derive_fcfs_rw_capacity",
    "derive_refault_time_fresh",
    "derive_refault_attempts_same",
    # closed models
    "ClosedModelResult",
    "machine_repairman",
    "mva_single_station",
    "mva_multiserver",
    # refault loop, general window distribution
    "RefaultMoments",
    "refault_success_probability",
    "refault_attempts_mean",
    "refault_attempts_var",
    "refault_time_mean",
    "refault_fresh",
    "refault_attempts_same",
    # multi-server queue
    "erlang_c",
    "mmc_wait",
]


# --------------------------------------------------------------------------------------------
# Symbols and the public parameter names they stand for
# --------------------------------------------------------------------------------------------

arrival_rate = sp.Symbol("lambda", positive=True)  # Poisson arrival rate (1/s)
service_rate = sp.Symbol("mu", positive=True)  # exponential service rate (1/s)
service_mean = sp.Symbol("m", positive=True)  # mean service (hold) time E[S] (s)
service_cv = sp.Symbol("c_v", nonnegative=True)  # coefficient of variation of S
servers = sp.Symbol("c", integer=True, positive=True)  # number of servers (io_parallelism)
vacation_mean = sp.Symbol("v", positive=True)  # mean server vacation (a writer hold, for readers)
vacation_cv = sp.Symbol("c_V", nonnegative=True)  # coefficient of variation of the vacation

writer_share = sp.Symbol("p_w", positive=True)  # share of arrivals that are writers, in (0, 1]
reader_service_rate = sp.Symbol("mu_r", positive=True)  # reader hold rate 1/E[S_r]
writer_service_rate = sp.Symbol("mu_w", positive=True)  # writer hold rate 1/E[S_w]
writer_hold_max = sp.Symbol("L_w^max", positive=True)  # longest writer critical section (s)
reader_hold_max = sp.Symbol("L_r^max", positive=True)  # longest reader critical section (s)

io_latency = sp.Symbol("L", positive=True)  # mean storage read latency (s)
reclaim_rate = sp.Symbol("theta", positive=True)  # reclaim hazard on an exposed folio (1/s)
window_mean = sp.Symbol("h", positive=True)  # mean exposure window after the read (s)

threads = sp.Symbol("N", integer=True, positive=True)  # closed population of threads
think_time = sp.Symbol("Z", positive=True)  # mean think time between station visits (s)

#: symbol -> public parameter name (the names used by Scenario and the analytic model).
PARAMETER_NAMES: dict[sp.Symbol, str] = {
    arrival_rate: "arrival_rate",
    service_rate: "service_rate",
    service_mean: "service_mean",
    service_cv: "service_cv",
    servers: "servers",
    vacation_mean: "vacation_mean",
    vacation_cv: "vacation_cv",
    writer_share: "writer_share",
    reader_service_rate: "reader_service_rate",
    writer_service_rate: "writer_service_rate",
    writer_hold_max: "writer_hold_max",
    reader_hold_max: "reader_hold_max",
    io_latency: "io_latency",
    reclaim_rate: "reclaim_rate",
    window_mean: "window_mean",
    threads: "threads",
    think_time: "think_time",
}

#: public parameter name -> symbol.
SYMBOLS: dict[str, sp.Symbol] = {name: sym for sym, name in PARAMETER_NAMES.items()}


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Formula:
    """One closed-form result: ``lhs = expr`` (valid where ``condition`` holds).

    Attributes
    ----------
    name : registry key.
    lhs : symbol printed on the left-hand side by :meth:`latex`.
    expr : the sympy expression.
    symbols : its free symbols, in the positional order of :meth:`numeric`.
    assumptions : the modelling assumptions under which it is exact.
    reference : where it comes from (paper; section of reference/queueing.md).
    condition : stability / validity condition; where it is false, :meth:`numeric` gives ``inf``.
    implementation : optional vectorised numeric implementation that :meth:`numeric` returns
        instead of the lambdified expression (used when the expression, e.g. a finite ``Sum``,
        overflows in floating point); it must agree with :meth:`lambdified` where both are finite.
    compiled_implementation : optional scalar numba function that :meth:`compiled` returns for a
        formula with an ``implementation`` (the same computation, one point at a time; tests).
    """

    name: str
    lhs: sp.Symbol
    expr: sp.Expr
    symbols: tuple[sp.Symbol, ...]
    assumptions: str
    reference: str
    condition: sp.Basic | None = None
    implementation: Callable[..., np.ndarray] | None = field(default=None, compare=False)
    compiled_implementation: Callable[..., float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        free = set(self.expr.free_symbols)
        if self.condition is not None:
            free |= set(self.condition.free_symbols)
        if free - set(self.symbols):
            raise ValueError(f"{self.name}: symbols {free - set(self.symbols)} not declared")

    @property
    def parameters(self) -> tuple[str, ...]:
        """Public parameter names, in the order of :attr:`symbols`."""
        return tuple(PARAMETER_NAMES[s] for s in self.symbols)

    def latex(self, with_condition: bool = False) -> str:
        """``sp.latex(Eq(lhs, expr))``, optionally followed by the validity condition."""
        text = sp.latex(sp.Eq(self.lhs, self.expr, evaluate=False))
        if with_condition and self.condition is not None:
            text += r"\quad \text{for } " + sp.latex(self.condition)
        return text

    def hash(self) -> str:
        """Stable sha256 hex digest of ``sp.srepr(expr)`` (plus the condition's, if any).

        ``srepr`` is canonical (args in sympy's sort-key order, not Python hash order), so the
        digest is the same across processes and ``PYTHONHASHSEED`` values; it changes exactly when
        the expression or its validity condition changes.
        """
        text = sp.srepr(self.expr)
        if self.condition is not None:
            text += "\n" + sp.srepr(self.condition)
        return hashlib.sha256(text.encode()).hexdigest()

    def lambdified(self) -> Callable[..., np.ndarray]:
        """The expression as a numpy callable (``sp.lambdify(symbols, expr, "numpy")``), cached.

        Expressions containing a ``Sum`` with a symbolic bound are wrapped in ``np.vectorize``
        (integer symbols cast to ``int``) so that they broadcast like the others.
        """
        return _lambdify(self.expr, self.symbols)

    def numeric(self) -> Callable[..., np.ndarray | float]:
        """A numpy-vectorised callable of :attr:`symbols` (positional) or parameter names
        (keywords); ``inf`` where :attr:`condition` fails; cached."""
        return _numeric(self)

    def compiled(self) -> Callable[..., float]:
        """A scalar numba function of :attr:`symbols` (positional, floats), for compiled code.

        Built from the same expression as :meth:`numeric` (``sp.lambdify(symbols, expr,
        "math")`` under ``numba.njit``), ``inf`` where :attr:`condition` fails (``nan`` in,
        ``nan`` out, as :meth:`numeric`); a formula with an ``implementation`` returns its
        ``compiled_implementation``.  Cached; compiled at the first call from compiled code (the
        callers' ``cache=True`` keeps the machine code between processes).
        """
        return _compiled(self)

    def __call__(self, *args, **kwargs):
        return self.numeric()(*args, **kwargs)


@functools.cache
def _lambdify(expr: sp.Expr, symbols: tuple[sp.Symbol, ...]) -> Callable[..., np.ndarray]:
    f = sp.lambdify(symbols, expr, "numpy")
    if not expr.has(sp.Sum):
        return f
    integer = [bool(s.is_integer) for s in symbols]

    def scalar(*args):
        return f(*(int(a) if is_int else float(a) for a, is_int in zip(args, integer)))

    return np.vectorize(scalar, otypes=[float])


@functools.cache
def _numeric(formula: Formula) -> Callable[..., np.ndarray | float]:
    value = formula.implementation or formula.lambdified()
    cond = None
    if formula.condition is not None:
        cond = sp.lambdify(formula.symbols, formula.condition, "numpy")
    params = formula.parameters

    def evaluate(*args, **kwargs):
        if kwargs:
            extra = set(kwargs) - set(params[len(args):])
            if extra:
                raise TypeError(f"{formula.name}: unexpected parameters {sorted(extra)}; "
                                f"expected {params}")
            missing = [p for p in params[len(args):] if p not in kwargs]
            if missing:
                raise TypeError(f"{formula.name}: missing parameters {missing}")
            args = args + tuple(kwargs[p] for p in params[len(args):])
        if len(args) != len(params):
            raise TypeError(f"{formula.name}: expected {len(params)} arguments {params}")
        args = tuple(np.asarray(a, dtype=float) for a in args)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(value(*args), dtype=float)
            if cond is not None:
                ok = np.asarray(cond(*args), dtype=bool)
                missing = np.zeros((), dtype=bool)
                for a in args:
                    missing = missing | np.isnan(a)
                out = np.where(ok | missing, out, np.inf)  # nan in, nan out
            # broadcast constant expressions to the shape of the inputs
            out = out + np.zeros(np.broadcast_shapes(*(np.shape(a) for a in args)))
        return _scalar_or_array(out)

    evaluate.__name__ = formula.name
    evaluate.__doc__ = f"{formula.name}({', '.join(params)}) = {formula.expr}"
    return evaluate


@functools.cache
def _compiled(formula: Formula) -> Callable[..., float]:
    if formula.implementation is not None:
        if formula.compiled_implementation is None:
            raise NotImplementedError(f"{formula.name}: no compiled_implementation")
        return formula.compiled_implementation
    if formula.expr.has(sp.Sum):
        raise NotImplementedError(f"{formula.name}: a Sum has no scalar compiled form")
    value = njit(error_model="numpy")(sp.lambdify(formula.symbols, formula.expr, "math"))
    if formula.condition is None:
        return value
    cond = njit(error_model="numpy")(sp.lambdify(formula.symbols, formula.condition, "math"))
    names = [f"a{i}" for i in range(len(formula.symbols))]
    args = ", ".join(names)
    nan_in = " or ".join(f"{a} != {a}" for a in names)
    source = (f"def {formula.name}({args}):\n"
              f"    out = value({args})\n"
              f"    if cond({args}) or {nan_in}:\n"
              f"        return out\n"
              f"    return math.inf\n")
    scope = {"value": value, "cond": cond, "math": math}
    exec(source, scope)  # noqa: S102 -- a fixed arity wrapper, the text above
    return njit(error_model="numpy")(scope[formula.name])


FORMULAS: dict[str, Formula] = {}


def _register(formula: Formula) -> Formula:
    if formula.name in FORMULAS:
        raise ValueError(f"duplicate formula {formula.name}")
    FORMULAS[formula.name] = formula
    return formula


# --------------------------------------------------------------------------------------------
# Single-server building blocks (queueing.md §1.3)
# --------------------------------------------------------------------------------------------

_lam, _mu, _m, _cv = arrival_rate, service_rate, service_mean, service_cv

#: M/M/1 mean wait in queue, Wq = rho/(mu - lambda), rho = lambda/mu.
mm1_wait = _register(Formula(
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
mg1_wait = _register(Formula(
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

#: M/G/infinity busy period E[B] = (exp(lambda E[S]) - 1)/lambda (insensitive to the law of S).
mginf_busy_period = _register(Formula(
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
mginf_mean_busy = _register(Formula(
    name="mginf_mean_busy",
    lhs=sp.Symbol(r"\mathbb{E}[N_{busy}]"),
    expr=_lam * _m,
    symbols=(_lam, _m),
    assumptions="Poisson arrivals, infinitely many servers, i.i.d. general service with mean m; "
                "the number busy is Poisson(lambda m), insensitive to the service law.",
    reference="Kleinrock Vol. 1 §3.3 / Takacs (1962); queueing.md §1.3.",
))

#: Fuhrmann-Cooper: M/G/1 with multiple vacations V (mean v, cv c_V):
#: W = W_{M/G/1} + E[V^2]/(2E[V]).
mg1_vacation_wait = _register(Formula(
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
    return _scalar_or_array(np.where(a >= c, 1.0, wait))


def mmc_wait(arrival_rate: np.ndarray | float, service_rate: np.ndarray | float,
             servers: np.ndarray | int) -> np.ndarray | float:
    """M/M/c mean wait in queue Wq = C(c, lambda/mu) / (c mu - lambda); inf if lambda >= c mu."""
    lam = np.asarray(arrival_rate, dtype=float)
    mu = np.asarray(service_rate, dtype=float)
    c = np.asarray(servers)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = erlang_c(c, lam / mu) / (c * mu - lam)
    return _scalar_or_array(np.where(lam < c * mu, w, np.inf))


_register(Formula(
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


# --------------------------------------------------------------------------------------------
# Reader/writer locks (queueing.md §1.1-§1.2)
# --------------------------------------------------------------------------------------------

_pw, _mur, _muw = writer_share, reader_service_rate, writer_service_rate

#: Johnson's FCFS R/W saturation rate lambda_max = (1/p_w) / (ln(1/p_w)/mu_r + 1/mu_w).
fcfs_rw_capacity = _register(Formula(
    name="fcfs_rw_capacity",
    lhs=sp.Symbol(r"\lambda_{max}"),
    expr=(1 / _pw) / (sp.log(1 / _pw) / _mur + 1 / _muw),
    symbols=(_pw, _mur, _muw),
    assumptions="Saturated strict-FCFS reader/writer queue (a head reader admits all readers up to "
                "the first writer); each arrival a writer with probability p_w independently; "
                "exponential reader holds (rate mu_r), writer holds of mean 1/mu_w.  Derived in "
                "derive_fcfs_rw_capacity().",
    reference="T. Johnson, 'Approximate analysis of reader/writer queues', UF CIS TR (1992) / "
              "IEEE TSE 21(3) 1995, DOI 10.1109/32.372148; queueing.md §1.2 (capacity table).",
))


def derive_fcfs_rw_capacity() -> sp.Expr:
    """Derive Johnson's FCFS capacity by renewal-reward, in sympy (queueing.md §1.2).

    A cycle is one writer and the K readers served before it, K ~ Geometric(p_w) on {0, 1, ...},
    P(K = k) = p_w (1 - p_w)^k.  The K readers are served concurrently: their batch lasts the
    maximum of K Exp(mu_r) holds, E[max] = H_K / mu_r.  Exchanging the sums,
    E[H_K] = sum_{j>=1} P(K >= j)/j = sum_{j>=1} (1 - p_w)^j / j = ln(1/p_w).
    Capacity = E[customers per cycle] / E[cycle length] = (1 + E[K]) / (E[H_K]/mu_r + 1/mu_w).
    The two series converge for 0 < p_w <= 1 (|1 - p_w| < 1); their convergent branch is taken.
    """
    k = sp.Symbol("k", integer=True, nonnegative=True)
    j = sp.Symbol("j", integer=True, positive=True)
    mean_k = _pw * _convergent_branch(sp.Sum(k * (1 - _pw) ** k, (k, 0, sp.oo)).doit())
    mean_h = _convergent_branch(sp.Sum((1 - _pw) ** j / j, (j, 1, sp.oo)).doit())
    mean_h = sp.simplify(sp.cancel(mean_h))
    return sp.simplify((1 + mean_k) / (mean_h / _mur + 1 / _muw))


def _convergent_branch(expr: sp.Expr) -> sp.Expr:
    """First branch of the Piecewise sympy returns for a geometric-type series."""
    expr = sp.piecewise_fold(expr)
    if isinstance(expr, sp.Piecewise):
        return expr.args[0][0]
    return expr


#: Phase-fair reader blocking bound: at most one writer phase plus one reader phase.
phase_fair_reader_bound = _register(Formula(
    name="phase_fair_reader_bound",
    lhs=sp.Symbol(r"b_r^{max}"),
    expr=writer_hold_max + reader_hold_max,
    symbols=(writer_hold_max, reader_hold_max),
    assumptions="Phase-fair RW lock (phases alternate, writers FIFO among writers, a reader phase "
                "admits all pending readers, new readers wait if a writer waits); bounded hold "
                "times; a worst-case bound, not a mean.",
    reference="Brandenburg & Anderson, ECRTS 2009 / RTSJ 2010; Bhatt & Jayanti, ICDCN 2011; "
              "queueing.md §1.1.",
))


# --------------------------------------------------------------------------------------------
# Refault loops (queueing.md §1.6)
# --------------------------------------------------------------------------------------------

_L, _theta, _h = io_latency, reclaim_rate, window_mean

_fresh_assumptions = (
    "Repeat-different (preempt-repeat-different, Gaver 1962): after each read of latency L the "
    "fault must map the folio within a fresh window W ~ Exp(mean h), i.i.d. across attempts; "
    "reclaim hits the exposed folio at constant hazard theta; unbounded retries (kernel >= 5.7)."
)
_fresh_reference = ("Gaver (1962); Baykal-Gursoy, Figueroa-Candia & Duan, PEIS (2024); "
                    "queueing.md §1.6.")

#: success probability of one attempt, q = W*(theta) = 1/(1 + theta h) for Exp(mean h) windows.
refault_success_fresh = _register(Formula(
    name="refault_success_fresh",
    lhs=sp.Symbol("q"),
    expr=1 / (1 + _theta * _h),
    symbols=(_theta, _h),
    assumptions=_fresh_assumptions,
    reference=_fresh_reference,
))

#: attempts (= reads) per fault, E[K] = 1/q = 1 + theta h.
refault_attempts_fresh = _register(Formula(
    name="refault_attempts_fresh",
    lhs=sp.Symbol(r"\mathbb{E}[K]"),
    expr=1 + _theta * _h,
    symbols=(_theta, _h),
    assumptions=_fresh_assumptions + " K ~ Geometric(q) on {1, 2, ...}.",
    reference=_fresh_reference,
))

#: Var K = (1 - q)/q^2 = theta h (1 + theta h).
refault_attempts_fresh_var = _register(Formula(
    name="refault_attempts_fresh_var",
    lhs=sp.Symbol(r"\mathrm{Var}[K]"),
    expr=sp.factor((1 - refault_success_fresh.expr) / refault_success_fresh.expr**2),
    symbols=(_theta, _h),
    assumptions=_fresh_assumptions + " K ~ Geometric(q) on {1, 2, ...}.",
    reference=_fresh_reference,
))

#: E[T] = L (1 + theta h) + h (from the read start to the successful mapping).
refault_time_fresh = _register(Formula(
    name="refault_time_fresh",
    lhs=sp.Symbol(r"\mathbb{E}[T]"),
    expr=_L * (1 + _theta * _h) + _h,
    symbols=(_L, _theta, _h),
    assumptions=_fresh_assumptions + " L is the mean read latency; derived from the general "
                "E[T] = E[K](E[L] + E[min(W, X)]), X ~ Exp(theta), in derive_refault_time_fresh().",
    reference=_fresh_reference,
))


def derive_refault_time_fresh() -> sp.Expr:
    """Derive E[T] = L (1 + theta h) + h for Exp(mean h) windows from the general form.

    General form (any window law with LST W*): q = W*(theta); by Wald, every attempt costs
    L + min(W, X), X ~ Exp(theta) the reclaim time, and
    E[min(W, X)] = int_0^oo P(W>t) e^{-theta t} dt = (1 - W*(theta))/theta,
    so E[T] = (L + (1 - q)/theta) / q.  Here both integrals are done in sympy for the
    exponential window, and W*(theta) = 1/(1 + theta h) is substituted.
    """
    t = sp.Symbol("t", positive=True)
    lst_w = sp.Function("W^*")
    q = lst_w(_theta)
    general = (_L + (1 - q) / _theta) / q
    min_mean = sp.integrate(sp.exp(-t / _h) * sp.exp(-_theta * t), (t, 0, sp.oo))
    window_lst = sp.integrate(sp.exp(-_theta * t) * sp.exp(-t / _h) / _h, (t, 0, sp.oo))
    assert sp.simplify(min_mean - (1 - window_lst) / _theta) == 0
    return sp.expand(sp.simplify(general.subs(q, window_lst)))


#: repeat-identical: E[K] = E[e^{theta W}] = 1/(1 - theta h) for theta h < 1, infinite otherwise.
refault_attempts_same_formula = _register(Formula(
    name="refault_attempts_same",
    lhs=sp.Symbol(r"\mathbb{E}[K]"),
    expr=1 / (1 - _theta * _h),
    symbols=(_theta, _h),
    condition=sp.StrictLessThan(_theta * _h, 1),
    assumptions="Repeat-identical (preempt-repeat-identical): one window W ~ Exp(mean h) drawn "
                "once and repeated on every retry; given W, K ~ Geometric(e^{-theta W}), so "
                "E[K] = E[e^{theta W}], the MGF of W at theta; infinite for theta h >= 1 "
                "(power-law tail of K).",
    reference="Gaver (1962); Baykal-Gursoy, Figueroa-Candia & Duan, PEIS (2024); queueing.md §1.6.",
))


def derive_refault_attempts_same() -> sp.Expr:
    """E[K] = int_0^oo e^{theta w} (1/h) e^{-w/h} dw, the convergent branch (theta h < 1)."""
    w = sp.Symbol("w", positive=True)
    result = sp.integrate(sp.exp(_theta * w) * sp.exp(-w / _h) / _h, (w, 0, sp.oo),
                          conds="piecewise")
    return sp.simplify(_convergent_branch(result))


# --------------------------------------------------------------------------------------------
# Closed N-thread model: bounds (queueing.md §1.4)
# --------------------------------------------------------------------------------------------

_N, _Z = threads, think_time

repairman_throughput_bound = _register(Formula(
    name="repairman_throughput_bound",
    lhs=sp.Symbol(r"X^{max}"),
    expr=sp.Min(_N / (_Z + _m), 1 / _m),
    symbols=(_N, _Z, _m),
    assumptions="Closed population of N threads, think time Z, one exclusive station with mean "
                "service m; asymptotic (balanced-job) bounds, any distributions.",
    reference="Denning & Buzen (1978); Lazowska et al., Quantitative System Performance ch. 5; "
              "queueing.md §1.4.",
))

repairman_knee = _register(Formula(
    name="repairman_knee",
    lhs=sp.Symbol(r"N^{*}"),
    expr=(_Z + _m) / _m,
    symbols=(_Z, _m),
    assumptions="As repairman_throughput_bound: the population where the two bounds cross.",
    reference="Lazowska et al., Quantitative System Performance ch. 5; queueing.md §1.4.",
))


# --------------------------------------------------------------------------------------------
# Closed N-thread model: exact solutions (queueing.md §1.4)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedModelResult:
    """Solution of a closed N-thread model (think station + one queueing station).

    throughput : X, station completions per second (= thread cycles per second).
    response : R, mean time per visit at the station (queueing + service), s.
    utilisation : busy fraction per server (X m / c).
    queue_length : mean number of threads at the station (X R, Little).
    probabilities : P(n threads at the station), n = 0..N, if requested.
    method : which exact method produced the numbers.
    """

    throughput: float
    response: float
    utilisation: float
    queue_length: float
    probabilities: np.ndarray | None = None
    method: str = ""


def _check_closed(n_threads: int, think: float, service: float) -> int:
    if int(n_threads) != n_threads or n_threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {n_threads!r}")
    if not (np.isfinite(think) and think >= 0):
        raise ValueError(f"think must be finite and >= 0, got {think!r}")
    if not (np.isfinite(service) and service >= 0):
        raise ValueError(f"service must be finite and >= 0, got {service!r}")
    if think == 0 and service == 0:
        raise ValueError("think and service cannot both be 0")
    return int(n_threads)


def _birth_death_solution(n: int, think: float, service: float, servers: int,
                          probabilities: bool, method: str) -> ClosedModelResult:
    """Product form of the closed birth-death chain.

    Threads at the station go up at rate (N - k)/Z and down at rate min(k, c)/S, so
    p_k ∝ N!/(N-k)! (S/Z)^k / beta(k), beta(k) = k! for k <= c and c! c^(k-c) otherwise.
    Normalised in log space.  The log-weights are accumulated outward from the mode from the
    log-ratios d_k = ln(p_k/p_{k-1}) = ln(N-k+1) - ln(min(k, c)) + ln(S/Z) rather than from
    gammaln(N+1) - ...: the latter are of size N ln N and would cost ~N ln N * eps of relative
    precision (1e-10 at N = 10^5); this way the mass near the mode is exact to a few ulp.
    """
    k = np.arange(n + 1, dtype=float)
    if service == 0:  # pure delay: nobody is ever at the station
        p = np.zeros(n + 1)
        p[0] = 1.0
        x = n / think
    else:
        if think == 0:  # everyone is always at the station
            p = np.zeros(n + 1)
            p[n] = 1.0
        else:
            j = k[1:]
            d = np.log(n - j + 1) - np.log(np.minimum(j, servers)) + (np.log(service)
                                                                        - np.log(think))
            mode = int(np.count_nonzero(d > 0))  # d is non-increasing: p is unimodal
            logw = np.empty(n + 1)
            logw[mode] = 0.0
            logw[mode + 1:] = np.cumsum(d[mode:])
            logw[:mode] = -np.cumsum(d[mode - 1::-1])[::-1] if mode > 0 else logw[:0]
            p = np.exp(logw - special.logsumexp(logw))
        x = float(np.dot(np.minimum(k, servers), p)) / service
    q = float(np.dot(k, p))
    r = q / x
    util = x * service / servers
    return ClosedModelResult(float(x), float(r), float(util), q,
                             p if probabilities else None, method)


def machine_repairman(threads: int, think: float, service: float,
                      probabilities: bool = False) -> ClosedModelResult:
    """Exact M/M/1//N machine repairman (queueing.md §1.4).

    N threads alternate a think time of mean ``think`` (any law: the delay station is insensitive)
    and one exclusive exponential FCFS station of mean ``service``.
    p_n ∝ N!/(N-n)! (S/Z)^n; X = (1 - p_0)/S; R = Q/X (= N/X - Z).  Computed in log space
    (log-ratios summed outward from the mode, logsumexp): exact to a few ulp for N up to 10^5
    and beyond, O(N).
    """
    n = _check_closed(threads, think, service)
    return _birth_death_solution(n, float(think), float(service), 1, probabilities,
                                 "product-form (log-space normalising constant)")


def mva_single_station(threads: int, think: float, service: float) -> ClosedModelResult:
    """Exact Mean Value Analysis (Reiser & Lavenberg 1980) of think station + one FCFS queue.

    R(n) = S (1 + Q(n-1)), X(n) = n / (Z + R(n)), Q(n) = X(n) R(n), for n = 1..N.  O(N).
    Equal to :func:`machine_repairman` (test: 1e-9 for N up to 1024).
    """
    n = _check_closed(threads, think, service)
    s, z = float(service), float(think)
    q = 0.0
    x = r = 0.0
    for pop in range(1, n + 1):
        r = s * (1.0 + q)
        x = pop / (z + r)
        q = x * r
    return ClosedModelResult(x, r, x * s, q, None, "exact MVA (Reiser-Lavenberg)")


def mva_multiserver(threads: int, think: float, service: float,
                    servers: int, probabilities: bool = False) -> ClosedModelResult:
    """Exact M/M/c//N: N threads, think ``think``, a station of ``servers`` exponential servers.

    Used for threads sharing ``cpus`` CPUs.  Equivalent to exact load-dependent MVA with
    mu(k) = min(k, c)/S, but computed from the product-form probabilities
    p_k ∝ N!/(N-k)! / beta(k) (Z/S)^(-k), beta(k) = k! (k <= c), c! c^(k-c) (k > c), in log space:
    the load-dependent MVA recursion loses p(0|n) to cancellation at high load, this does not.
    ``utilisation`` is per server, X S / c.
    """
    n = _check_closed(threads, think, service)
    if int(servers) != servers or servers < 1:
        raise ValueError(f"servers must be an integer >= 1, got {servers!r}")
    return _birth_death_solution(n, float(think), float(service), int(servers), probabilities,
                                 "product-form load-dependent (log-space normalising constant)")


# --------------------------------------------------------------------------------------------
# Distributions and Laplace-Stieltjes transforms: moved to laws.py (re-exported here for callers)
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Refault loop with a general window law (queueing.md §1.6), numeric
# --------------------------------------------------------------------------------------------


def refault_success_probability(window_lst_at_theta):
    """q = W*(theta): probability that one attempt maps its folio before reclaim takes it."""
    q = np.asarray(window_lst_at_theta, dtype=float)
    if np.any((q < 0) | (q > 1)):
        raise ValueError("an LST at theta >= 0 lies in [0, 1]")
    return _scalar_or_array(q)


def refault_attempts_mean(success_probability, max_attempts: int | None = None):
    """E[K] = 1/q (repeat-different, unbounded retries; kernel >= 5.7).

    With ``max_attempts = n`` (older kernels: the last attempt never drops the lock, so it always
    maps), K = min(Geometric(q), n) and E[K] = (1 - (1 - q)^n)/q.
    """
    q = np.asarray(success_probability, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if max_attempts is None:
            out = 1.0 / q
        else:
            if max_attempts < 1:
                raise ValueError("max_attempts must be >= 1")
            out = np.where(q > 0, -np.expm1(max_attempts * np.log1p(-q)) / q, float(max_attempts))
    return _scalar_or_array(out)


def refault_attempts_var(success_probability):
    """Var K = (1 - q)/q^2 (K ~ Geometric(q) on {1, 2, ...})."""
    q = np.asarray(success_probability, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _scalar_or_array((1.0 - q) / q**2)


def refault_time_mean(io_latency, reclaim_rate, success_probability, window_mean,
                      miss_probability=None):
    """E[T] = E[K] (L + E[min(W, X)]) with E[min(W, X)] = (1 - q)/theta (-> E[W] at theta = 0).

    ``miss_probability`` (1 - q, e.g. from ``lst(..., complement=True)``) avoids cancellation at
    small theta E[W].
    """
    q = np.asarray(success_probability, dtype=float)
    miss = 1.0 - q if miss_probability is None else np.asarray(miss_probability, dtype=float)
    theta = np.asarray(reclaim_rate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        exposed = np.where(theta > 0, miss / np.where(theta > 0, theta, 1.0), window_mean)
        out = (np.asarray(io_latency, dtype=float) + exposed) / q
    return _scalar_or_array(out)


@dataclass(frozen=True)
class RefaultMoments:
    """Refault-loop moments per fault (repeat-different)."""

    success_probability: np.ndarray | float  # q = W*(theta)
    attempts_mean: np.ndarray | float  # E[K], also the mean number of reads
    attempts_var: np.ndarray | float  # Var K
    time_mean: np.ndarray | float  # E[T], read start to successful mapping


def refault_fresh(io_latency, reclaim_rate, window_distribution: str, window_mean,
                  window_cv=1.0) -> RefaultMoments:
    """Repeat-different refault loop for any window law named as in :func:`lst`.

    For an exponential window it reproduces the registry entries refault_success_fresh,
    refault_attempts_fresh(_var) and refault_time_fresh.
    """
    theta = np.asarray(reclaim_rate, dtype=float)
    if np.any(theta < 0):
        raise ValueError("reclaim_rate must be >= 0")
    miss = np.asarray(lst(window_distribution, window_mean, window_cv, theta, complement=True))
    q = 1.0 - miss
    return RefaultMoments(
        success_probability=_scalar_or_array(q),
        attempts_mean=refault_attempts_mean(q),
        attempts_var=_scalar_or_array(np.asarray(miss / q**2)),
        time_mean=refault_time_mean(io_latency, theta, q, window_mean, miss),
    )


def refault_attempts_same(reclaim_rate, window_distribution: str, window_mean, window_cv=1.0):
    """Repeat-identical E[K] = E[exp(theta W)] (the window's MGF at theta), inf where divergent.

    exponential: 1/(1 - theta h) for theta h < 1; gamma: (1 - theta scale)^(-shape) for
    theta scale < 1; deterministic: exp(theta h); log-normal with cv > 0: always inf.
    """
    theta = np.asarray(reclaim_rate, dtype=float)
    if np.any(theta < 0):
        raise ValueError("reclaim_rate must be >= 0")
    return lst(window_distribution, window_mean, window_cv, -theta)


# --------------------------------------------------------------------------------------------


def _scalar_or_array(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


# ============================================================================================
# The page-fault model (issue 3): every formula that faultlock.model.analytic evaluates
# ============================================================================================
#
# The analytic model (analytic.py) assembles these pieces into one fixed point per scenario and
# policy; this section holds each piece once, with its assumptions.  Symbols specific to the model
# are declared here and added to PARAMETER_NAMES.

page_access_rate = sp.Symbol("a", positive=True)  # accesses per second to one page
readaround_rate = sp.Symbol(r"\rho_{ra}", positive=True)  # read-arounds covering one page (1/s)
reclaim_cached = sp.Symbol(r"\theta_c", positive=True)  # reclaim hazard of a cached folio (1/s)
reclaim_mapped = sp.Symbol(r"\theta_m", positive=True)  # reclaim hazard of a mapped folio (1/s)
fault_locked_time = sp.Symbol("T_f", positive=True)  # a faulted folio's locked period (s)
read_time = sp.Symbol("T_r", positive=True)  # one storage read, submission to completion (s)
fault_cpu = sp.Symbol("c_f", positive=True)  # CPU time of one fault attempt (s)
block_probability = sp.Symbol("P_b", positive=True)  # probability a lock request must sleep
wake_time = sp.Symbol("g", positive=True)  # wake-up latency plus CPU wait of a woken sleeper (s)
residual_mean = sp.Symbol("r", positive=True)  # mean residual of the blocking period (s)
success_probability = sp.Symbol("q", positive=True)  # one attempt keeps its folio
max_attempts = sp.Symbol("n_a", integer=True, positive=True)  # attempts before the last one holds
population_others = sp.Symbol("n", integer=True, positive=True)  # other threads (N - 1)
busy_share = sp.Symbol("u", positive=True)  # share of time a thread is at the station
writer_rate = sp.Symbol(r"\lambda_w", positive=True)  # mmap_lock writers per second
writer_vma_share = sp.Symbol("s_1", positive=True)  # share of writers locking one VMA
writer_fork_share = sp.Symbol("s_f", positive=True)  # share of writers locking every VMA
vma_count = sp.Symbol("V", integer=True, positive=True)  # VMAs
vma_lock_time_one = sp.Symbol("H_1", positive=True)  # time a one-VMA writer keeps its VMA locked
vma_lock_time_fork = sp.Symbol("H_f", positive=True)  # time a fork keeps a VMA locked (mean)
writer_exclusive_time = sp.Symbol("e_w", positive=True)  # time per writer readers are shut out
response_time = sp.Symbol("R", positive=True)  # time per cycle outside the think station (s)
latency = sp.Symbol("t", positive=True)  # a latency at which a CDF is evaluated (s)
read_low = sp.Symbol("x_0", positive=True)  # lower end of a stratum of the read time (s)
read_width = sp.Symbol(r"\Delta x", positive=True)  # width of that stratum (s)
no_wait_probability = sp.Symbol("p_0", positive=True)  # probability the wait part is zero
wait_mean = sp.Symbol(r"\bar w", positive=True)  # mean of the wait part when positive (s)
depth_seen = sp.Symbol("d", positive=True)  # reads in flight when a read starts
depth_slope = sp.Symbol(r"\sigma_d", positive=True)  # io_depth_slope (s per read in flight)
page_time = sp.Symbol(r"\tau_p", positive=True)  # io_page_time (s per extra page)
pages_per_read = sp.Symbol("k_p", positive=True)  # pages one read transfers

PARAMETER_NAMES.update({
    page_access_rate: "page_access_rate",
    readaround_rate: "readaround_rate",
    reclaim_cached: "reclaim_rate_cached",
    reclaim_mapped: "reclaim_rate_mapped",
    fault_locked_time: "fault_locked_time",
    read_time: "read_time",
    fault_cpu: "fault_cpu_time",
    block_probability: "block_probability",
    wake_time: "wake_time",
    residual_mean: "residual_mean",
    success_probability: "success_probability",
    max_attempts: "max_attempts",
    population_others: "population_others",
    busy_share: "busy_share",
    writer_rate: "writer_rate",
    writer_vma_share: "writer_vma_share",
    writer_fork_share: "writer_fork_share",
    vma_count: "vmas",
    vma_lock_time_one: "vma_lock_time_one",
    vma_lock_time_fork: "vma_lock_time_fork",
    writer_exclusive_time: "writer_exclusive_time",
    response_time: "response_time",
    latency: "latency",
    read_low: "read_low",
    read_width: "read_width",
    no_wait_probability: "no_wait_probability",
    wait_mean: "wait_mean",
    depth_seen: "depth_seen",
    depth_slope: "io_depth_slope",
    page_time: "io_page_time",
    pages_per_read: "pages_per_read",
})
SYMBOLS.update({name: sym for sym, name in PARAMETER_NAMES.items()})

_MODEL_REFERENCE = "faultlock issue 3 (the analytic model); MODEL.md; reference/kernel.md §6"

# --------------------------------------------------------------------------------------------
# Page states: absent, locked (being faulted in, or read around), cached, mapped
# --------------------------------------------------------------------------------------------

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
    state: _register(Formula(
        name=f"page_{state}_share",
        lhs=sp.Symbol(rf"\pi_{{\mathrm{{{state.replace('_', ' ')}}}}}"),
        expr=weight / _page_total,
        symbols=_page_symbols,
        assumptions=_page_assumptions,
        reference="Semi-Markov time shares (Cinlar, Introduction to Stochastic Processes, 1975, "
                  "ch. 10); kernel.md §4 (reclaim during the retry window); " + _MODEL_REFERENCE,
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


# --------------------------------------------------------------------------------------------
# Refault loop with a policy's exposure window
# --------------------------------------------------------------------------------------------

_q, _P, _g, _r, _cf = success_probability, block_probability, wake_time, residual_mean, fault_cpu

#: q = W*(theta) for W = c_f + B, B = 0 w.p. 1 - P_b, else g + Exp(mean r).
refault_success_window = _register(Formula(
    name="refault_success_window",
    lhs=sp.Symbol("q"),
    expr=sp.exp(-_theta * _cf) * ((1 - _P) + _P * sp.exp(-_theta * _g) / (1 + _theta * _r)),
    symbols=(_theta, _cf, _P, _g, _r),
    assumptions="The exposure window of a retried fault (from its folio_put to the retry's folio "
                "lookup) is W = c_f + B: the re-entry CPU time c_f, plus, with probability P_b, "
                "a lock wait B = g + Exp(mean r) (the wake-up and CPU wait g of a sleeper, and "
                "an exponential residual of the blocking period); reclaim hazard theta on the "
                "exposed cached folio.  q = E[exp(-theta W)] (queueing.md §1.6).  mainline: the "
                "mmap_lock read wait; vma_retry: only a VMA-lock fallback; vma_wait: no window.",
    reference="Gaver (1962); queueing.md §1.6; kernel.md §4 (the window); " + _MODEL_REFERENCE,
))

#: E[min(K, n)] for K ~ Geometric(q) on {1, 2, ...}: reads per fault when the n-th attempt holds.
refault_attempts_truncated = _register(Formula(
    name="refault_attempts_truncated",
    lhs=sp.Symbol(r"\mathbb{E}[K_{n}]"),
    expr=(1 - (1 - _q) ** max_attempts) / _q,
    symbols=(_q, max_attempts),
    assumptions="Repeat-different refault loop with success probability q per attempt; the "
                "attempt n_a never drops its lock (TRIED, or retry_limit reached), so it always "
                "maps: K = min(Geometric(q), n_a).  n_a -> infinity gives 1/q.",
    reference="Gaver (1962); queueing.md §0 (TRIED, commit 4064b9827063) and §1.6.",
))

# --------------------------------------------------------------------------------------------
# Closed population: threads at a multi-server station (CPUs, device slots)
# --------------------------------------------------------------------------------------------

_n, _u = population_others, busy_share
_fs_mean = _n * _u
_fs_sd = sp.sqrt(_n * _u * (1 - _u))


def _phi_cdf(x: sp.Expr) -> sp.Expr:
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


_fs_d = (_fs_mean - servers) / _fs_sd
_fs_tail = _phi_cdf((_fs_mean - servers + sp.Rational(1, 2)) / _fs_sd)
_fs_excess = _fs_sd * sp.exp(-_fs_d**2 / 2) / sp.sqrt(2 * sp.pi) + (_fs_mean - servers) * _phi_cdf(_fs_d)


# The two normal approximations below are evaluated as compiled ufuncs (numba): the analytic
# model calls them some thirty times per pass of its fixed point, where numpy's temporaries and
# error-state handling cost several times the arithmetic.  Same expressions as the registered
# ``_fs_tail``/``_fs_excess`` (and the numpy forms they replace: tests), nan in, nan out.

_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@njit(cache=True, inline="always")
def _binomial_mean_sd(n, u):
    """Mean and standard deviation of Binomial(n, u), the share u clipped to [0, 1]."""
    u = u if math.isnan(u) else min(max(u, 0.0), 1.0)
    return n * u, math.sqrt(n * u * (1.0 - u))


@njit(cache=True, error_model="numpy")
def finite_source_tail_scalar(n, u, c):
    """Scalar :func:`finite_source_tail` (compiled code calls it; the ufunc wraps it)."""
    if n < c:
        return 0.0
    mean, sd = _binomial_mean_sd(n, u)
    top = mean - c + 0.5
    if sd > 0.0:
        return 0.5 * math.erfc(-(top / sd) * _SQRT1_2)       # Phi(z) = erfc(-z/sqrt 2)/2
    return 1.0 if top >= 0.0 else 0.0                        # Phi(+-inf); nan: 0


@njit(cache=True, error_model="numpy")
def finite_source_excess_scalar(n, u, c):
    """Scalar :func:`finite_source_excess` (compiled code calls it; the ufunc wraps it)."""
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


@vectorize(["float64(float64, float64, float64)"], cache=True)
def _finite_source_tail_ufunc(n, u, c):
    return finite_source_tail_scalar(n, u, c)


@vectorize(["float64(float64, float64, float64)"], cache=True)
def _finite_source_excess_ufunc(n, u, c):
    return finite_source_excess_scalar(n, u, c)


def finite_source_tail(others, busy, level):
    """P(K >= level), K ~ Binomial(others, busy), normal approximation with continuity correction.

    Exactly 0 when ``others < level`` and 1 when ``busy = 1`` and ``others >= level``.
    """
    return _scalar_or_array(_finite_source_tail_ufunc(others, busy, level))


def finite_source_excess(others, busy, level):
    """E[(K - level)^+], K ~ Binomial(others, busy), normal approximation (exact limits).

    sd phi(d) + (mean - level) Phi(d), d = (mean - level)/sd; 0 when ``others < level``
    (K cannot exceed the level); (mean - level)^+ when the spread vanishes.
    """
    return _scalar_or_array(_finite_source_excess_ufunc(others, busy, level))


def finite_source_wait(servers_, others, busy, visit_mean, visit_cv):
    """Mean queueing wait per visit at a ``servers_``-server station of a closed population.

    See the registry entry ``finite_source_wait``; ``servers_ = 0`` means unlimited (no wait).
    """
    c = np.asarray(servers_, dtype=float)
    m = np.asarray(visit_mean, dtype=float)
    cv = np.asarray(visit_cv, dtype=float)
    safe_c = np.where(c > 0, c, 1.0)
    tail = finite_source_tail(others, busy, safe_c)
    excess = finite_source_excess(others, busy, safe_c)
    out = m / safe_c * ((1.0 + cv**2) / 2.0 * tail + excess)
    return _scalar_or_array(np.where(c > 0, out, 0.0))


@njit(cache=True, error_model="numpy")
def finite_source_wait_scalar(servers_, others, busy, visit_mean, visit_cv):
    """Scalar :func:`finite_source_wait`, for compiled code (same operations)."""
    safe_c = servers_ if servers_ > 0 else 1.0
    tail = finite_source_tail_scalar(others, busy, safe_c)
    excess = finite_source_excess_scalar(others, busy, safe_c)
    out = visit_mean / safe_c * ((1.0 + visit_cv**2) / 2.0 * tail + excess)
    return out if servers_ > 0 else 0.0


finite_source_wait_formula = _register(Formula(
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
              "Performance (1984) ch. 6 and 8; queueing.md §1.4; " + _MODEL_REFERENCE,
))

#: Closed-loop throughput: the interactive response time law X = N / (Z + R).
interactive_response_time_law = _register(Formula(
    name="interactive_response_time_law",
    lhs=sp.Symbol("X"),
    expr=_N / (_Z + response_time),
    symbols=(_N, _Z, response_time),
    assumptions="N threads in a closed loop, each cycle a think time of mean Z and a response R "
                "(everything else: faults, lock and CPU waits); Little's law on the whole loop.  "
                "The analytic model solves X = N/(Z + R(X)) as a fixed point, R increasing in X, "
                "so that the model saturates instead of diverging.",
    reference="Lazowska et al., Quantitative System Performance (1984) §3.3; queueing.md §1.4.",
))

# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------

read_service_time = _register(Formula(
    name="read_service_time",
    lhs=sp.Symbol("S_{io}"),
    expr=io_latency + depth_slope * depth_seen + page_time * (pages_per_read - 1),
    symbols=(io_latency, depth_slope, depth_seen, page_time, pages_per_read),
    assumptions="A read's service time: the depth-1 latency L, plus io_depth_slope per read "
                "already in flight when it starts (the device's queue-depth curve), plus "
                "io_page_time per page of the read-around beyond the first.  The depth seen is "
                "the mean number of the other threads' reads in service (finite-source, "
                "capped at io_parallelism - 1).",
    reference="MODEL.md mechanism 7 (virtio: ~45 µs at depth 1, ~125 at 8, ~370 at 32); "
              + _MODEL_REFERENCE,
))

# --------------------------------------------------------------------------------------------
# Lock holders as an M/G/infinity system: the longest residual hold (writer drains)
# --------------------------------------------------------------------------------------------


_EIN_SERIES = tuple((-1.0) ** (k + 1) / (k * math.factorial(k)) for k in range(1, 40))


@njit(cache=True, error_model="numpy")
def ein_scalar(x):
    """Scalar Ein(x) (see :func:`_ein`), for compiled code; the ufunc wraps it."""
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


@vectorize(["float64(float64)"], cache=True)
def _ein_ufunc(x):
    return ein_scalar(x)


def _ein(x):
    """Ein(x) = int_0^x (1 - e^{-u})/u du = E1(x) + ln x + gamma, without cancellation.

    Its power series below 2, else E1 by its continued fraction (compiled: the analytic model
    calls it three times per pass of its fixed point).
    """
    return _ein_ufunc(np.asarray(x, dtype=float))


def mginf_max_residual(arrival_rate_, service_mean_):
    """E[max residual hold] of an M/M/infinity system seen at a random time; see the registry."""
    lam = np.asarray(arrival_rate_, dtype=float)
    m = np.asarray(service_mean_, dtype=float)
    return _scalar_or_array(m * _ein(lam * m))


@njit(cache=True, error_model="numpy")
def mginf_max_residual_scalar(arrival_rate_, service_mean_):
    """Scalar :func:`mginf_max_residual`, for compiled code."""
    return service_mean_ * ein_scalar(arrival_rate_ * service_mean_)


mginf_max_residual_formula = _register(Formula(
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
              "kernel.md §6.3 (writers wait for the VMA's readers' I/O); " + _MODEL_REFERENCE,
))


def derive_mginf_max_residual() -> sp.Expr:
    """E[D] = int_0^oo (1 - exp(-a e^{-t/m})) dt with a = lambda m, done in sympy."""
    t = sp.Symbol("t", positive=True)
    a = sp.Symbol("a", positive=True)
    result = sp.integrate(1 - sp.exp(-a * sp.exp(-t / _m)), (t, 0, sp.oo))
    return sp.simplify(result.subs(a, _lam * _m))


#: share of time at least one holder is present: P(N > 0) = 1 - exp(-lambda m).
mginf_busy_share = _register(Formula(
    name="mginf_busy_share",
    lhs=sp.Symbol(r"P(N>0)"),
    expr=1 - sp.exp(-_lam * _m),
    symbols=(_lam, _m),
    assumptions="M/G/infinity: the number of holders is Poisson(lambda m), insensitive to the "
                "hold law.  Used for the share of time mmap_lock is held for read.",
    reference="Takacs (1962); queueing.md §1.3.",
))

# --------------------------------------------------------------------------------------------
# mmap_lock: writers as vacations of the reader server, busy periods, the blocked reader's wait
# --------------------------------------------------------------------------------------------

#: residual of an M/G/1 busy period seen from inside it: E[B^2]/(2E[B]).
mg1_busy_period_residual = _register(Formula(
    name="mg1_busy_period_residual",
    lhs=sp.Symbol(r"\mathbb{E}[B^2]/2\mathbb{E}[B]"),
    expr=sp.simplify((_m**2 * (1 + _cv**2) / (1 - _lam * _m) ** 3)
                     / (2 * _m / (1 - _lam * _m))),
    symbols=(_lam, _m, _cv),
    condition=sp.StrictLessThan(_lam * _m, 1),
    assumptions="M/G/1 busy period started by one service: E[B] = m/(1 - rho), "
                "E[B^2] = E[S^2]/(1 - rho)^3, E[S^2] = m^2 (1 + c_v^2), rho = lambda m < 1.  A "
                "reader arriving inside a chain of writers that take the lock one after the "
                "other (writer preference; linux writers spinning on a running owner) waits "
                "this residual.",
    reference="Kleinrock Vol. 1 §5.8 (busy period moments); Cobham (1954) priority queue; "
              "queueing.md §1.3; kernel.md §2 (optimistic spinning).",
))

#: the share of time readers are shut out: each writer excludes them for e_w.
writer_utilisation = _register(Formula(
    name="writer_utilisation",
    lhs=sp.Symbol(r"\rho_w"),
    expr=writer_rate * writer_exclusive_time,
    symbols=(writer_rate, writer_exclusive_time),
    assumptions="Poisson writers at lambda_w, each shutting readers out for a mean e_w (its hold "
                "of mmap_lock for write, VMA drains included, plus the time it waits queued "
                "with new readers blocked, plus a direct hand-over's wake-up under the textbook "
                "disciplines).  mmap_lock is stable only if rho_w < 1; otherwise writers pile up "
                "and every wait is infinite.",
    reference="Baccelli & Coffman (1982) service interruptions; Reiman & Wright (1991) "
              "stability; queueing.md §1.1 and §1.3.",
))

#: mean wait of a lock request that sleeps with probability P_b.
blocked_wait_mean = _register(Formula(
    name="blocked_wait_mean",
    lhs=sp.Symbol(r"\mathbb{E}[W]"),
    expr=_P * (_r + _g),
    symbols=(_P, _r, _g),
    assumptions="A request finds the lock closed with probability P_b (PASTA); it then sleeps "
                "for the residual r of the closed period and pays the wake-up g (wakeup_latency "
                "plus the wait for a CPU) before it runs holding the lock.  Fuhrmann-Cooper "
                "decomposition with the writer as the reader server's vacation (queueing.md "
                "§1.3); MODEL.md: 'a contended reader still paid tens of µs'.",
    reference="Fuhrmann & Cooper (1985); Baccelli & Coffman (1982); queueing.md §1.3; MODEL.md "
              "(wake-up latency).",
))

# --------------------------------------------------------------------------------------------
# A closed population against a period: an exponential lag falls inside a gamma period
# --------------------------------------------------------------------------------------------

period_mean = sp.Symbol("S", positive=True)  # mean length of a period (s)
period_cv = sp.Symbol("c_S", positive=True)  # its coefficient of variation
lag_mean = sp.Symbol("m_x", positive=True)  # mean of an exponential lag (s)

PARAMETER_NAMES.update({period_mean: "period_mean", period_cv: "period_cv", lag_mean: "lag_mean"})
SYMBOLS.update({"period_mean": period_mean, "period_cv": period_cv, "lag_mean": lag_mean})

# E[exp(-S/m)] for S ~ Gamma(mean S, cv c_S): the Laplace-Stieltjes transform at 1/m
_period_lst = (1 + period_cv**2 * period_mean / lag_mean) ** (-1 / period_cv**2)


def _lag_inside(period_mean_, period_cv_, lag_mean_):
    """(P(X < S), E[(S - X)^+]) for X ~ Exp(lag_mean), S ~ Gamma(period_mean, period_cv).

    Without cancellation: where S/m is small, E[(S - X)^+] = E[S^2]/(2m) (1 + O(S/m)) comes from
    the series of m (S/m - 1 + e^{-S/m}); cv = 0 is the deterministic period; m = inf gives 0.
    """
    s, cv, m = (np.asarray(v, dtype=float) for v in (period_mean_, period_cv_, lag_mean_))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        finite = np.isfinite(m) & (m > 0) & np.isfinite(s) & (s > 0)
        mm = np.where(finite, m, 1.0)
        x = np.where(finite, s, 0.0) / mm
        c2 = np.where(np.isfinite(cv), cv**2, 0.0)
        # 1 - E[exp(-S/m)], S ~ Gamma(mean s, cv): 1 - (1 + c2 x)^(-1/c2), or 1 - e^-x at c2 = 0
        safe_c2 = np.where(c2 > 0, c2, 1.0)
        inside = np.where(c2 > 0, -np.expm1(-np.log1p(safe_c2 * x) / safe_c2), -np.expm1(-x))
        inside = np.where(finite, inside, 0.0)
        # m (x - (1 - L)): the series x^2 (1 + c2)/2 - x^3 (1 + c2)(1 + 2 c2)/6 where x is small
        series = mm * (x**2 * (1 + c2) / 2 - x**3 * (1 + c2) * (1 + 2 * c2) / 6)
        excess = np.where(x < 1e-3, series, s - mm * inside)
        excess = np.where(finite, np.maximum(excess, 0.0), 0.0)
        # no lag at all: always inside, the whole period left
        at_once = (m == 0) & np.isfinite(s) & (s > 0)
        inside = np.where(at_once, 1.0, inside)
        excess = np.where(at_once, s, excess)
    return inside, excess


def lag_inside_probability(period_mean_, period_cv_, lag_mean_):
    """P(X < S): the lag ends inside the period (see the registry entry)."""
    return _scalar_or_array(_lag_inside(period_mean_, period_cv_, lag_mean_)[0])


def lag_inside_residual(period_mean_, period_cv_, lag_mean_):
    """E[S - X | X < S]: what is left of the period when the lag ends inside it (registry)."""
    inside, excess = _lag_inside(period_mean_, period_cv_, lag_mean_)
    # where the lag is long, E[(S - X)^+]/P(X < S) -> E[S^2]/(2 E[S]), the PASTA residual
    pasta = np.asarray(period_mean_, dtype=float) * (1 + np.asarray(period_cv_) ** 2) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(inside > 1e-12, excess / np.where(inside > 0, inside, 1.0), pasta)
    return _scalar_or_array(out)


@njit(cache=True, error_model="numpy")
def lag_inside_scalar(s, cv, m):
    """Scalar :func:`_lag_inside` (P(X < S), E[(S - X)^+]), the same steps, for compiled code."""
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
    """Scalar (:func:`lag_inside_probability`, :func:`lag_inside_residual`) at one point."""
    inside, excess = lag_inside_scalar(period_mean_, period_cv_, lag_mean_)
    pasta = period_mean_ * (1 + period_cv_**2) / 2
    return inside, excess / (inside if inside > 0 else 1.0) if inside > 1e-12 else pasta


@njit(cache=True, error_model="numpy")
def lag_inside_probability_scalar(period_mean_, period_cv_, lag_mean_):
    """Scalar :func:`lag_inside_probability`."""
    return lag_inside_scalar(period_mean_, period_cv_, lag_mean_)[0]


@njit(cache=True, error_model="numpy")
def lag_inside_residual_scalar(period_mean_, period_cv_, lag_mean_):
    """Scalar :func:`lag_inside_residual`."""
    return lag_inside_pair_scalar(period_mean_, period_cv_, lag_mean_)[1]


lag_inside_probability_formula = _register(Formula(
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

lag_inside_residual_formula = _register(Formula(
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

# --------------------------------------------------------------------------------------------
# Per-VMA lock: the chance a fault finds its VMA write-locked or draining
# --------------------------------------------------------------------------------------------

vma_abort_probability = _register(Formula(
    name="vma_abort_probability",
    lhs=sp.Symbol(r"P_{abort}"),
    expr=writer_rate * (writer_vma_share * vma_lock_time_one / vma_count
                        + writer_fork_share * vma_lock_time_fork),
    symbols=(writer_rate, writer_vma_share, vma_lock_time_one, vma_count, writer_fork_share,
             vma_lock_time_fork),
    assumptions="A fault's VMA is write-locked or draining (lock_vma_under_rcu fails, "
                "VMA_LOCK_ABORT) while a writer that changes it holds it: a one-VMA writer (share "
                "s_1, its VMA uniform among V) for H_1 = its drain plus its hold; a fork (share "
                "s_f) every VMA for H_f on average.  Poisson writers (PASTA); overlaps of two "
                "writers' locked periods neglected (the analytic model caps the result at 1).",
    reference="kernel.md §3.3 and §6.0 (ACQ_V), §6.5 (W2); MODEL.md mechanism 5; "
              + _MODEL_REFERENCE,
))

# --------------------------------------------------------------------------------------------
# Latency distribution: a stratum of the read time plus an atom-or-exponential wait
# --------------------------------------------------------------------------------------------

_t, _x0, _dx, _p0, _wbar = latency, read_low, read_width, no_wait_probability, wait_mean
_u_local = _t - _x0
_stratum_cdf = sp.Min(sp.Max(_u_local / _dx, 0), 1)
_stratum_exp = sp.Piecewise(
    (0, _u_local < 0),
    (_wbar / _dx * (sp.exp(-(_t - sp.Min(_t, _x0 + _dx)) / _wbar) - sp.exp(-_u_local / _wbar)),
     True))

uniform_plus_wait_cdf = _register(Formula(
    name="uniform_plus_wait_cdf",
    lhs=sp.Symbol("F(t)"),
    expr=_stratum_cdf - (1 - _p0) * _stratum_exp,
    symbols=(_t, _x0, _dx, _p0, _wbar),
    assumptions="P(X + Y <= t) for X uniform on [x_0, x_0 + Delta x] (one stratum of a read "
                "time's law, whose CDF is taken linear between quantile levels) and an "
                "independent wait Y that is 0 with probability p_0 and otherwise Exp(mean "
                "w-bar): E[1{X<=t}] - (1 - p_0) E[e^{-(t-X)/w-bar}; X <= t].  The fault "
                "latency's CDF is a mixture of these over fault classes and strata, shifted by "
                "each class's fixed CPU and wake-up times; quantiles are read from it.",
    reference="Convolution of a uniform and an exponential law (Feller Vol. 2, §I.3); "
              + _MODEL_REFERENCE,
))


def uniform_plus_wait(t, x0, width, p0, wbar):
    """Vectorised :data:`uniform_plus_wait_cdf`, also for ``width = 0`` (an atom) and
    ``wbar = 0`` (no wait)."""
    t, x0, width, p0, wbar = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                                  for v in (t, x0, width, p0, wbar)))
    u = t - x0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pos = width > 0
        safe_w = np.where(pos, width, 1.0)
        cdf_x = np.where(pos, np.clip(u / safe_w, 0.0, 1.0), (u >= 0).astype(float))
        safe_wbar = np.where(wbar > 0, wbar, 1.0)
        top = np.minimum(u, np.where(pos, width, 0.0))        # integrate X over [x0, x0 + top]
        # (wbar/width) (e^{-(u - top)/wbar} - e^{-u/wbar}) = e^{-(u-top)/wbar} wbar/width (1 - e^{-top/wbar})
        spread = np.where(pos, -np.expm1(-np.maximum(top, 0.0) / safe_wbar) * safe_wbar / safe_w,
                          1.0)
        exp_part = np.exp(-np.maximum(u - np.maximum(top, 0.0), 0.0) / safe_wbar) * spread
        exp_part = np.where((u >= 0) & (wbar > 0), exp_part, 0.0)
        out = cdf_x - (1.0 - p0) * exp_part
    return _scalar_or_array(np.clip(out, 0.0, 1.0))


def page_state_weights(a, rho, theta_c, theta_m, fault_locked, read_time_):
    """The unnormalised time weights of the ``page_*_share`` formulas (vectorised, no division).

    Each share is its weight over the sum of the five; the analytic model sums them over the
    nodes of the popularity law, where computing the five ratios separately would cost five times
    the work.  Equal to the registered expressions (tests).
    """
    cached_or_reclaimed = a + theta_c
    base = theta_m * cached_or_reclaimed
    return {
        "absent": base,
        "fault_locked": a * fault_locked * base,
        "readaround_locked": rho * read_time_ * base,
        "cached": rho * theta_m,
        "mapped": a * (cached_or_reclaimed + rho),
    }


@njit(cache=True, error_model="numpy")
def page_state_weights_scalar(a, rho, theta_c, theta_m, fault_locked, read_time_):
    """Scalar :func:`page_state_weights`: (absent, fault_locked, readaround_locked, cached,
    mapped), the same operations, for compiled code."""
    cached_or_reclaimed = a + theta_c
    base = theta_m * cached_or_reclaimed
    return (base, a * fault_locked * base, rho * read_time_ * base, rho * theta_m,
            a * (cached_or_reclaimed + rho))
