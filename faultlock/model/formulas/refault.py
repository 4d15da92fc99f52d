"""The refault loop (queueing.md §1.6): reads per fault when reclaim takes the folio back.

A fault that drops its lock to wait for a read must find the folio again after it; reclaim may
take it in that exposure window, and the fault reads again (kernel.md §4).  Three views:

* closed forms for an exponential window, repeat-different (a fresh window per attempt, Gaver
  1962) and repeat-identical, with their sympy derivations;
* the same moments for any window law named as in :mod:`faultlock.model.laws` (numeric, through
  the window's Laplace-Stieltjes transform :func:`~faultlock.model.laws.lst`);
* the analytic model's window (re-entry CPU plus a lock wait) and the truncation by a retry
  limit (TRIED).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..laws import lst
from .registry import MODEL_REFERENCE, Formula, convergent_branch, register, scalar_or_array
from .symbols import (
    block_probability,
    fault_cpu,
    io_latency,
    max_attempts,
    reclaim_rate,
    residual_mean,
    success_probability,
    wake_time,
    window_mean,
)

__all__ = ["RefaultMoments", "derive_refault_attempts_same", "derive_refault_time_fresh",
           "refault_attempts_fresh", "refault_attempts_fresh_var", "refault_attempts_mean",
           "refault_attempts_same", "refault_attempts_same_formula", "refault_attempts_truncated",
           "refault_attempts_var", "refault_fresh", "refault_success_fresh",
           "refault_success_probability", "refault_success_window", "refault_time_fresh",
           "refault_time_mean"]

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
refault_success_fresh = register(Formula(
    name="refault_success_fresh",
    lhs=sp.Symbol("q"),
    expr=1 / (1 + _theta * _h),
    symbols=(_theta, _h),
    assumptions=_fresh_assumptions,
    reference=_fresh_reference,
))

#: attempts (= reads) per fault, E[K] = 1/q = 1 + theta h.
refault_attempts_fresh = register(Formula(
    name="refault_attempts_fresh",
    lhs=sp.Symbol(r"\mathbb{E}[K]"),
    expr=1 + _theta * _h,
    symbols=(_theta, _h),
    assumptions=_fresh_assumptions + " K ~ Geometric(q) on {1, 2, ...}.",
    reference=_fresh_reference,
))

#: Var K = (1 - q)/q^2 = theta h (1 + theta h).
refault_attempts_fresh_var = register(Formula(
    name="refault_attempts_fresh_var",
    lhs=sp.Symbol(r"\mathrm{Var}[K]"),
    expr=sp.factor((1 - refault_success_fresh.expr) / refault_success_fresh.expr**2),
    symbols=(_theta, _h),
    assumptions=_fresh_assumptions + " K ~ Geometric(q) on {1, 2, ...}.",
    reference=_fresh_reference,
))

#: E[T] = L (1 + theta h) + h (from the read start to the successful mapping).
refault_time_fresh = register(Formula(
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
refault_attempts_same_formula = register(Formula(
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
    return sp.simplify(convergent_branch(result))

# --------------------------------------------------------------------------------------------
# Refault loop with a general window law (queueing.md §1.6), numeric
# --------------------------------------------------------------------------------------------


def refault_success_probability(window_lst_at_theta):
    """q = W*(theta): probability that one attempt maps its folio before reclaim takes it."""
    q = np.asarray(window_lst_at_theta, dtype=float)
    if np.any((q < 0) | (q > 1)):
        raise ValueError("an LST at theta >= 0 lies in [0, 1]")
    return scalar_or_array(q)


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
    return scalar_or_array(out)


def refault_attempts_var(success_probability):
    """Var K = (1 - q)/q^2 (K ~ Geometric(q) on {1, 2, ...})."""
    q = np.asarray(success_probability, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return scalar_or_array((1.0 - q) / q**2)


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
    return scalar_or_array(out)


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
        success_probability=scalar_or_array(q),
        attempts_mean=refault_attempts_mean(q),
        attempts_var=scalar_or_array(np.asarray(miss / q**2)),
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
# Refault loop with a policy's exposure window
# --------------------------------------------------------------------------------------------

_q, _P, _g, _r, _cf = success_probability, block_probability, wake_time, residual_mean, fault_cpu

#: q = W*(theta) for W = c_f + B, B = 0 w.p. 1 - P_b, else g + Exp(mean r).
refault_success_window = register(Formula(
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
    reference="Gaver (1962); queueing.md §1.6; kernel.md §4 (the window); " + MODEL_REFERENCE,
))

#: E[min(K, n)] for K ~ Geometric(q) on {1, 2, ...}: reads per fault when the n-th attempt holds.
refault_attempts_truncated = register(Formula(
    name="refault_attempts_truncated",
    lhs=sp.Symbol(r"\mathbb{E}[K_{n}]"),
    expr=(1 - (1 - _q) ** max_attempts) / _q,
    symbols=(_q, max_attempts),
    assumptions="Repeat-different refault loop with success probability q per attempt; the "
                "attempt n_a never drops its lock (TRIED, or retry_limit reached), so it always "
                "maps: K = min(Geometric(q), n_a).  n_a -> infinity gives 1/q.",
    reference="Gaver (1962); queueing.md §0 (TRIED, commit 4064b9827063) and §1.6.",
))
