"""Locks: reader/writer capacity and bounds, mmap_lock writers as vacations, per-VMA aborts.

Johnson's FCFS reader/writer capacity (derived by renewal-reward in sympy) and the phase-fair
bound (queueing.md §1.1-§1.2); for mmap_lock, the writers' utilisation, the residual of a chain
of writers (an M/G/1 busy period) and the blocked reader's wait (Fuhrmann-Cooper, the writer as
the reader server's vacation); for the per-VMA locks, the chance a fault finds its VMA
write-locked (kernel.md §3.3, VMA_LOCK_ABORT).
"""

from __future__ import annotations

import sympy as sp

from .registry import MODEL_REFERENCE, Formula, convergent_branch, register
from .symbols import (
    arrival_rate,
    block_probability,
    reader_hold_max,
    reader_service_rate,
    residual_mean,
    service_cv,
    service_mean,
    vma_count,
    vma_lock_time_fork,
    vma_lock_time_one,
    wake_time,
    writer_exclusive_time,
    writer_fork_share,
    writer_hold_max,
    writer_rate,
    writer_service_rate,
    writer_share,
    writer_vma_share,
)

__all__ = ["blocked_wait_mean", "derive_fcfs_rw_capacity", "fcfs_rw_capacity",
           "mg1_busy_period_residual", "phase_fair_reader_bound", "vma_abort_probability",
           "writer_utilisation"]

_lam, _m, _cv = arrival_rate, service_mean, service_cv
_P, _g, _r = block_probability, wake_time, residual_mean

# --------------------------------------------------------------------------------------------
# Reader/writer locks (queueing.md §1.1-§1.2)
# --------------------------------------------------------------------------------------------

_pw, _mur, _muw = writer_share, reader_service_rate, writer_service_rate

#: Johnson's FCFS R/W saturation rate lambda_max = (1/p_w) / (ln(1/p_w)/mu_r + 1/mu_w).
fcfs_rw_capacity = register(Formula(
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
    mean_k = _pw * convergent_branch(sp.Sum(k * (1 - _pw) ** k, (k, 0, sp.oo)).doit())
    mean_h = convergent_branch(sp.Sum((1 - _pw) ** j / j, (j, 1, sp.oo)).doit())
    mean_h = sp.simplify(sp.cancel(mean_h))
    return sp.simplify((1 + mean_k) / (mean_h / _mur + 1 / _muw))


#: Phase-fair reader blocking bound: at most one writer phase plus one reader phase.
phase_fair_reader_bound = register(Formula(
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
# mmap_lock: writers as vacations of the reader server, busy periods, the blocked reader's wait
# --------------------------------------------------------------------------------------------

#: residual of an M/G/1 busy period seen from inside it: E[B^2]/(2E[B]).
mg1_busy_period_residual = register(Formula(
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
writer_utilisation = register(Formula(
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
blocked_wait_mean = register(Formula(
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
# Per-VMA lock: the chance a fault finds its VMA write-locked or draining
# --------------------------------------------------------------------------------------------

vma_abort_probability = register(Formula(
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
              + MODEL_REFERENCE,
))
