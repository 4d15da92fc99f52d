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
* distribution helpers: :func:`lognormal_params`, :func:`gamma_params` and the Laplace-Stieltjes
  transform :func:`lst` (exponential, deterministic, gamma, log-normal);
* the general (any window distribution) refault-loop moments of queueing.md §1.6;
* :func:`erlang_c` and :func:`mmc_wait` (device queue with ``io_parallelism`` servers).

Stability convention (DESIGN.md): a formula whose regime can be unstable carries a ``condition``;
outside it :meth:`Formula.numeric` returns ``inf``, never a meaningless finite number.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp
from scipy import special, stats

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
    # distributions
    "DISTRIBUTIONS",
    "lognormal_params",
    "gamma_params",
    "lst",
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
    """

    name: str
    lhs: sp.Symbol
    expr: sp.Expr
    symbols: tuple[sp.Symbol, ...]
    assumptions: str
    reference: str
    condition: sp.Basic | None = None
    implementation: Callable[..., np.ndarray] | None = field(default=None, compare=False)

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
# Distributions and Laplace-Stieltjes transforms
# --------------------------------------------------------------------------------------------

#: accepted distribution names -> canonical name.
DISTRIBUTIONS: dict[str, str] = {
    "exponential": "exponential", "exp": "exponential",
    "deterministic": "deterministic", "det": "deterministic",
    "gamma": "gamma",
    "lognormal": "lognormal", "log-normal": "lognormal",
}


def lognormal_params(mean, cv):
    """(mu, sigma) of the log-normal with the given mean and coefficient of variation.

    sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2/2.  Vectorised.
    """
    mean = np.asarray(mean, dtype=float)
    cv = np.asarray(cv, dtype=float)
    _check_mean_cv(mean, cv)
    sigma2 = np.log1p(cv**2)
    return _scalar_or_array(np.log(mean) - sigma2 / 2), _scalar_or_array(np.sqrt(sigma2))


def gamma_params(mean, cv):
    """(shape, scale) of the gamma law with the given mean and cv > 0: shape = 1/cv^2,
    scale = mean cv^2.  Vectorised."""
    mean = np.asarray(mean, dtype=float)
    cv = np.asarray(cv, dtype=float)
    _check_mean_cv(mean, cv)
    if np.any(cv == 0):
        raise ValueError("gamma_params needs cv > 0 (cv = 0 is the deterministic law)")
    return _scalar_or_array(1.0 / cv**2), _scalar_or_array(mean * cv**2)


def _check_mean_cv(mean: np.ndarray, cv: np.ndarray) -> None:
    if np.any(~(mean > 0)) or np.any(~np.isfinite(mean)):
        raise ValueError("mean must be finite and > 0")
    if np.any(~(cv >= 0)) or np.any(~np.isfinite(cv)):
        raise ValueError("cv must be finite and >= 0")


def lst(distribution: str, mean, cv, s, complement: bool = False):
    """Laplace-Stieltjes transform E[exp(-s X)] of a law given by name, mean and cv; vectorised.

    exponential : 1/(1 + s m)                       (cv ignored: it is 1)
    deterministic : exp(-s m)                       (cv ignored: it is 0)
    gamma : (1 + s scale)^(-shape)                  (closed form; cv = 0 is deterministic)
    lognormal : E[exp(-s e^{mu + sigma Z})], Z ~ N(0, 1), numerical: trapezoidal rule in z on
        [-9, 9] with step min(0.1, 0.25/sigma) (spectrally accurate for this entire integrand:
        error ~ exp(-pi^2/(sigma step)) ~ 1e-17; truncation ~1e-19).

    ``complement=True`` returns 1 - E[exp(-sX)] computed without cancellation (the refault
    probability per attempt when s = theta).  Negative s gives the moment generating function
    E[exp(|s| X)], ``inf`` where it diverges (always, for the log-normal with cv > 0).
    """
    name = DISTRIBUTIONS.get(str(distribution).lower())
    if name is None:
        raise ValueError(f"unknown distribution {distribution!r}; allowed: {sorted(DISTRIBUTIONS)}")
    mean, cv, s = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (mean, cv, s)))
    _check_mean_cv(mean, cv)
    if np.any(np.isnan(s)):
        raise ValueError("s must not be nan")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "deterministic":
            out = _lst_deterministic(mean, s, complement)
        elif name == "exponential":
            out = _lst_gamma(np.ones_like(mean), mean, s, complement)
        elif name == "gamma":
            safe_cv = np.where(cv > 0, cv, 1.0)
            gam = _lst_gamma(1.0 / safe_cv**2, mean * safe_cv**2, s, complement)
            out = np.where(cv > 0, gam, _lst_deterministic(mean, s, complement))
        else:
            out = _lst_lognormal(mean, cv, s, complement)
    return _scalar_or_array(out)


def _lst_deterministic(mean, s, complement):
    return -np.expm1(-s * mean) if complement else np.exp(-s * mean)


def _lst_gamma(shape, scale, s, complement):
    x = s * scale
    log_value = -shape * np.log1p(np.where(x > -1, x, 0.0))
    if shape.size and np.all(shape == 1):  # exponential: exact rational form
        value = 1.0 / (1.0 + x)
        comp = x / (1.0 + x)
    else:
        value = np.exp(log_value)
        comp = -np.expm1(log_value)
    out = comp if complement else value
    # MGF diverges for s scale <= -1
    return np.where(x > -1, out, -np.inf if complement else np.inf)


_LOGNORMAL_CHUNK = 1 << 15


def _lst_lognormal(mean, cv, s, complement):
    mu, sigma = (np.asarray(v) for v in lognormal_params(mean, cv))
    mu, sigma = np.broadcast_arrays(mu, sigma)
    flat_mu, flat_sigma, flat_s = mu.ravel(), sigma.ravel(), s.ravel()
    out = np.empty(flat_s.shape)
    for start in range(0, flat_s.size, _LOGNORMAL_CHUNK):
        sl = slice(start, start + _LOGNORMAL_CHUNK)
        m_, sg, ss = flat_mu[sl], flat_sigma[sl], flat_s[sl]
        step = min(0.1, 0.25 / max(float(sg.max(initial=0.0)), 1e-300))
        half = int(np.ceil(9.0 / step))
        z = np.arange(-half, half + 1) * step
        weights = np.exp(-z**2 / 2)
        weights /= weights.sum()
        x = np.exp(m_[:, None] + sg[:, None] * z[None, :])
        sx = np.abs(ss)[:, None] * x
        if complement:
            integrand = np.where(ss[:, None] >= 0, -np.expm1(-sx), -np.expm1(sx))
        else:
            integrand = np.where(ss[:, None] >= 0, np.exp(-sx), np.exp(sx))
        res = integrand @ weights
        # the MGF of a non-degenerate log-normal diverges
        diverges = (ss < 0) & (sg > 0)
        res = np.where(diverges, -np.inf if complement else np.inf, res)
        out[sl] = res
    return out.reshape(s.shape)


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
