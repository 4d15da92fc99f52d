"""Ranking and selection: which policy of a cell is best, sampled only as long as it takes.

A cell's policies are simulated with common random numbers (CRN: batch ``j`` of every policy is
driven by the same random streams), and batches are added only to the policies still in
contention, until the best is separated from the others, or the survivors are shown to be within
an indifference zone of each other, or a per-cell budget runs out. The answer is one of

``winner``
    one policy is the best: every other was shown worse than some policy;
``tie``
    two or more policies survive and every pair of them was shown to differ by less than the
    indifference zone ``delta`` (an answer, not a failure: within ``delta`` nobody cares which);
``undecided``
    the budget ran out first; the survivors are listed, best sample mean first.

The procedure
-------------
:func:`select_best` is the fully sequential procedure KN of Kim & Nelson, "A fully sequential
procedure for indifference-zone selection in simulation", ACM TOMACS 11(3):251-273, 2001. Notation
of the paper, written for minimisation: ``k`` policies, first stage of ``n0`` batches each, then one
batch per survivor and stage. ``S2[i, l]`` is the first-stage sample variance of the *paired*
differences ``X[i, j] - X[l, j]``: it is what CRN makes small, and KN is valid with it under any
correlation between policies (the paper's §3). With per-pair error ``beta``::

    eta = ((2 beta) ** (-2 / (n0 - 1)) - 1) / 2,    h2 = 2 eta (n0 - 1)
    W[i, l](r) = max(0, d / (2 r) * (h2 S2[i, l] / d**2 - r))

is the half-width of the continuation region at stage ``r`` for an indifference zone ``d``:
the partial sum of the differences continues inside a triangle (Fabian 1974) that closes at
``r = h2 S2 / d**2``, and a pair whose true difference is at least ``d`` leaves it on the wrong side
with probability at most ``beta`` (the paper's Lemma 4, a Brownian-motion bound).

Two layouts of that triangle are offered:

``ties=False``: KN as published
    Policy ``i`` is eliminated at stage ``r`` when ``Xbar_i(r) - Xbar_l(r) > W[i, l](r)`` for some
    survivor ``l`` (zone ``d = delta``). ``beta = alpha / (k - 1)`` (Bonferroni over the ``k - 1``
    rivals of the best) gives ``P(select the best) >= 1 - alpha`` whenever the best is better than
    every other by ``delta`` or more. Inside the zone KN still ends with one policy (the triangle
    closes), a "good selection" within ``delta`` of the best, but it never says *tie*: a pair of
    equal policies leaves the triangle on one side or the other.

``ties=True`` (default): KN's triangle in the three-decision layout of Sobel & Wald
    (Sobel & Wald, "A sequential decision procedure for choosing one of three hypotheses
    concerning the unknown mean of a normal distribution", Ann. Math. Stat. 20(4):502-522, 1949:
    three decisions from two two-decision sequential tests). For every ordered pair ``(i, l)`` the
    test ``T[i, l]`` runs KN's triangle, with zone ``d = delta / 2``, on the differences shifted by
    ``delta / 2``: ``x = Xbar_i(r) - Xbar_l(r) - delta / 2``. It stops at its first exit:

    * ``x > W``: ``i`` is *worse* than ``l``; ``i`` is eliminated. If ``mu_i <= mu_l`` this happens
      with probability at most ``beta``;
    * ``x < -W``: ``i`` is *not worse than l by delta* (``mu_i - mu_l < delta``). If
      ``mu_i - mu_l >= delta`` this happens with probability at most ``beta``.

    A pair is *indifferent* when both ``T[i, l]`` and ``T[l, i]`` left low: ``|mu_i - mu_l| <
    delta`` shown. The answer is a **tie** when every pair of survivors is indifferent. With
    ``beta = alpha / (2 (k - 1))`` a union bound over the two tests of each of the ``k - 1`` rivals
    of the best gives, when the best is better than every other by ``delta`` or more,
    ``P(answer is "winner: the best") >= 1 - alpha`` (the best is eliminated by ``T[b, l]`` leaving
    high, or ties with ``l`` through ``T[l, b]`` leaving low, each at most ``beta``). When all
    means are equal, every ordered pair leaves low unless one of its ``k (k - 1)`` tests leaves
    high: ``P(tie) >= 1 - k alpha / 2`` (``1 - alpha`` for two policies) without the screen
    below, ``1 - k alpha (1 + screen) / 2`` with it, given the budget. Every
    triangle closes at ``r = 4 h2 S2 / delta**2``, after which every pair is decided: without a
    budget the procedure ends with a winner or a tie. Showing a tie costs more than choosing: the
    tests must tell a difference of 0 from one of ``delta`` (KN tells ``-delta`` from ``+delta``),
    so their triangles are four times as long, and a clear winner (2 ``delta`` ahead) costs about
    three times KN's batches. ``benchmarks/bench_selection.py`` measures both.

    Between ``delta / 2`` and ``delta`` either decision is right: a policy worse by less than
    ``delta`` may be eliminated or tie, and one better by ``delta / 2`` may win or tie.

A screen that needs no zone
---------------------------
KN's triangle starts ``h2 S2 / (2 d)`` wide: with a 1 % zone and noisy batches (a p99 whose
replications vary by 30 %) even a policy several times worse stays for hundreds of stages. So a
share ``screen`` of ``alpha`` (default 20 %) goes to the screening step of Nelson, Swann, Goldsman &
Song (Oper. Res. 49(6):950-963, 2001), with paired variances and repeated at stages ``n0, 2 n0,
4 n0, ...``: ``i`` is out when some survivor is better by more than a one-sided paired t bound
at level ``alpha * screen / 2 ** (look + 1) / (k - 1)``. Summed over looks and rivals the screen
removes the best with probability at most ``alpha * screen``, KN (with ``alpha * (1 - screen)``)
at most the rest: ``P(correct) >= 1 - alpha`` still holds by the union bound.

A relative indifference zone
----------------------------
The spec's ``tie_tolerance`` is relative: ``delta = tie_tolerance * |mu_best|``. KN needs ``delta``
fixed before the sequential phase, so it is frozen after the first stage at ``tie_tolerance`` times
the smallest first-stage mean in absolute value (:attr:`Selection.delta`). Its relative error is
that of a mean of ``n0`` batches (a few per cent for batch CVs of 10 %), and the minimum of the
first-stage means is biased low, which makes ``delta`` slightly smaller and the procedure slightly
more careful. The alternative of comparing logarithms was rejected: the mean of log batch values
is ``log mu - CV**2 / 2``, and with batch CVs of 10-30 % that bias (0.5-4.5 %) is as large as the
1 % zone itself and differs between policies.

Batch statistics, means and quantiles
-------------------------------------
KN assumes i.i.d. normal observations per policy, correlated across policies by CRN. Here an
observation is one *batch statistic*: a batch mean (mean latency, a share, a rate) or a batch
quantile (the batch's own empirical p99), from batches long enough to be nearly independent and
normal (KN++, Kim & Nelson, "On the asymptotic validity of fully sequential selection procedures
for steady-state simulation", Oper. Res. 54(3):475-488, 2006, justify batch means from one long run
asymptotically). Batch quantiles compare the policies on the mean of the batch p99, which
converges to the p99 as batches grow but is biased for small batches: the ``j``-th order statistic
of ``m`` samples has mean ``F^-1(j / (m + 1)) - p (1 - p) f'(xi) / (2 (m + 2) f(xi)**3) + ...``
(David & Nagaraja, *Order Statistics*, 3rd ed., §4.6). For an exponential tail the p99 of a batch
of ``m`` faults is high by about ``10.7 / m`` of the p99 (2 % at ``m = 500``, 0.2 % at ``m = 5000``;
exact: ``E X_(j) = sum_{i<j} 1/(m - i)``). Under CRN the biases of similar distributions cancel
in the paired difference, but not when the policies' tails differ in shape, so batches should hold
``m >= 50 / (1 - p)`` operations (at least 50 beyond the quantile; 5000 faults for a p99) to keep
the bias well inside a 1 % zone. Sectioning (Asmussen & Glynn, *Stochastic Simulation*, 2007,
§III.5a; Nakayama, "Confidence intervals using sectioning for quantiles", 2014) would centre the
point estimate on the pooled quantile instead, but a pooled quantile is not a partial sum and KN's
boundary crossing bound does not cover it; the store can still report the pooled value.

Sampling
--------
The caller supplies ``sample(policies, batches) -> array (len(policies), batches)``: the next
``batches`` batch statistics of each listed policy, batch ``j`` of every policy from the same random
streams (CRN), continuing where the policy's previous call ended. The procedure only ever asks for
the survivors, all of which have the same number of batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = ["KINDS", "Selection", "SelectionError", "kn_eta", "select_best"]

#: the three answers, in the order maps and tables show them
KINDS = ("winner", "tie", "undecided")


class SelectionError(ValueError):
    """A bad argument to :func:`select_best`, or a sampler that returned what was not asked."""


@dataclass(frozen=True)
class Selection:
    """The answer for one cell and objective.

    Attributes
    ----------
    kind : str
        ``"winner"``, ``"tie"`` or ``"undecided"``.
    survivors : tuple of str
        The winner alone, the tied policies, or the policies still in contention when the budget
        ran out; best sample mean first.
    leader : str
        The survivor with the best sample mean (the winner when there is one).
    confidence : float
        For a winner or a tie, the stated level ``1 - alpha`` the procedure guarantees (see the
        module docstring for the configurations it covers). For ``undecided``, the largest level
        at which the boundaries, evaluated once at the last stage with that level, would make the
        leader the winner: descriptive (one look, not a sequential guarantee), never above
        ``1 - alpha``; 0 if a survivor is ahead of the leader by half the zone or more in the
        ``ties`` layout.
    delta : float
        The absolute indifference zone used (``tie_tolerance`` times the best first-stage mean
        when relative), in the metric's units.
    batches : dict of str to int
        Batches simulated per policy, including those of a policy eliminated in the middle of a
        sampling step (simulated, so spent).
    means : dict of str to float
        Each policy's sample mean over its batches (in the metric's units and sense).
    eliminated : dict of str to tuple
        ``policy -> (by_policy, stage)``: who showed it worse, after how many batches.
    stages : int
        Batches per survivor at the end (``r``).
    alpha, ties : float, bool
        The procedure's settings.
    """

    kind: str
    survivors: tuple[str, ...]
    leader: str
    confidence: float
    delta: float
    batches: dict[str, int]
    means: dict[str, float]
    eliminated: dict[str, tuple[str, int]] = field(default_factory=dict)
    stages: int = 0
    alpha: float = 0.05
    ties: bool = True

    @property
    def winner(self) -> str | None:
        """The winning policy, or None for a tie or an undecided cell."""
        return self.survivors[0] if self.kind == "winner" else None

    @property
    def total_batches(self) -> int:
        """The effort spent on the cell: batches over all policies."""
        return int(sum(self.batches.values()))


def kn_eta(beta: float, n0: int) -> float:
    """KN's ``eta`` for a per-pair error ``beta`` and first stage ``n0`` (Kim & Nelson 2001, §3).

    The paper writes it for ``k`` systems and level ``alpha`` with ``beta = alpha / (k - 1)``:
    ``eta = ((2 alpha / (k - 1)) ** (-2 / (n0 - 1)) - 1) / 2``.
    """
    if not (0.0 < beta < 0.5):
        raise SelectionError(f"beta={beta!r} is not allowed: a per-pair error in (0, 0.5)")
    return 0.5 * ((2.0 * beta) ** (-2.0 / (n0 - 1)) - 1.0)


def _error_to_beta(h2_star: np.ndarray, n0: int) -> np.ndarray:
    """Per-pair error whose ``h2`` is ``h2_star`` (``kn_eta`` inverted)."""
    eta = np.maximum(h2_star, 0.0) / (2.0 * (n0 - 1))
    return 0.5 * (1.0 + 2.0 * eta) ** (-(n0 - 1) / 2.0)


def _half_width(zone: float, h2: float, s2: np.ndarray, r: np.ndarray) -> np.ndarray:
    """KN's ``W(r) = max(0, zone / (2 r) (h2 S2 / zone**2 - r))``, broadcast over stages ``r``.

    With a zero zone a pair with any variance is never decided (an infinite half-width) and a pair
    with none is decided at once.
    """
    if zone > 0.0:
        return np.maximum(0.0, zone / (2.0 * r) * (h2 * s2 / zone**2 - r))
    return np.where(s2 > 0.0, np.inf, 0.0) + 0.0 * r


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise SelectionError(f"{name}={value!r} is not allowed: an integer >= {low}")
    return int(value)


def select_best(sample: Callable[[list[str], int], np.ndarray], policies: Sequence[str], *,
                delta: float, alpha: float = 0.05, n0: int = 10, budget: int | None = None,
                relative: bool = True, sense: str = "minimize", ties: bool = True,
                screen: float = 0.2, step: int = 1, growth: float = 0.0,
                floor: float = 0.0) -> Selection:
    """Select the best policy of one cell with KN (Kim & Nelson 2001), sampling only survivors.

    Parameters
    ----------
    sample : callable
        ``sample(policies, batches)``: the next ``batches`` CRN-paired batch statistics of each of
        ``policies`` (a list of names), as an array of shape ``(len(policies), batches)``.
    policies : sequence of str
        The candidates (distinct names).
    delta : float
        The indifference zone: relative (the spec's ``tie_tolerance``, a share of the best mean)
        when ``relative``, else in the metric's units. Differences smaller than ``delta`` do not
        matter; zero asks for exact answers, which only identical outputs give.
    alpha : float
        1 - the stated probability of a correct answer (default 0.05: 95 %).
    n0 : int
        First-stage batches per policy (KN's ``n0 >= 2``; 10 or more keeps ``h2`` small).
    budget : int, optional
        Most batches to spend on the cell, all policies together (first stage included); when the
        next stage would exceed it the answer is ``undecided``. None: no limit (every triangle
        closes, so the procedure ends).
    relative : bool
        ``delta`` is a share of ``|best first-stage mean|`` (frozen after the first stage).
    sense : {"minimize", "maximize"}
        Lower is better (latency, jank) or higher is better (throughput).
    ties : bool
        The three-decision layout that can answer *tie* (default), or KN as published.
    screen : float
        Share of ``alpha`` given to the zone-free screen at stages ``n0, 2 n0, 4 n0, ...`` (0: no
        screen; KN then gets all of ``alpha``).
    step, growth : int, float
        Batches per survivor asked for in one call to ``sample``: ``max(step, ceil(growth * r))``
        at stage ``r``. Every stage inside a call is still screened; larger calls only cost the
        batches a policy eliminated in the middle of them would have been spared.
    floor : float
        With ``relative``, the smallest zone in the metric's units: ``max(delta * |best|,
        floor)``. A relative zone around a best mean of zero (no jank at all) is zero, and
        asks for exact answers; a floor says which absolute difference is too small to matter.

    Returns
    -------
    Selection
    """
    names = _check_policies(policies)
    n0 = _check_int("n0", n0, 2)
    step = _check_int("step", step, 1)
    if not isinstance(alpha, (int, float)) or not (0.0 < alpha < 1.0):
        raise SelectionError(f"alpha={alpha!r} is not allowed: a probability in (0, 1)")
    if not isinstance(delta, (int, float)) or not (0.0 <= delta < math.inf):
        raise SelectionError(f"delta={delta!r} is not allowed: a finite indifference zone >= 0")
    if sense not in ("minimize", "maximize"):
        raise SelectionError(f"sense={sense!r} is not allowed: 'minimize' or 'maximize'")
    if not isinstance(screen, (int, float)) or not (0.0 <= screen < 1.0):
        raise SelectionError(f"screen={screen!r} is not allowed: a share of alpha in [0, 1)")
    if not isinstance(growth, (int, float)) or not (0.0 <= growth <= 10.0):
        raise SelectionError(f"growth={growth!r} is not allowed: a share of r in [0, 10]")
    if not isinstance(floor, (int, float)) or not (0.0 <= floor < math.inf):
        raise SelectionError(f"floor={floor!r} is not allowed: a finite zone >= 0")
    k = len(names)
    if budget is not None:
        budget = _check_int("budget", budget, 0)
        if budget < n0 * k:
            raise SelectionError(f"budget={budget} is not allowed: at least n0 * policies = "
                                 f"{n0 * k} batches (the first stage)")
    sign = 1.0 if sense == "minimize" else -1.0
    if k == 1:
        return Selection("winner", names, names[0], 1.0 - alpha, 0.0, {names[0]: 0},
                         {names[0]: math.nan}, stages=0, alpha=alpha, ties=ties)

    # First stage: n0 batches of every policy, paired by CRN.
    data = np.full((k, max(4 * n0, 64)), np.nan)
    data[:, :n0] = sign * _draw(sample, list(names), n0)
    used = np.full(k, n0, dtype=np.int64)
    first = data[:, :n0]
    diffs = first[:, None, :] - first[None, :, :]
    s2 = diffs.var(axis=2, ddof=1)                          # KN's S2[i, l], CRN included
    best_first = float(np.min(first.mean(axis=1)))
    zone_abs = max(delta * abs(best_first), float(floor)) if relative else float(delta)

    alpha_kn = alpha * (1.0 - screen)
    beta = alpha_kn / ((2 if ties else 1) * (k - 1))
    h2 = 2.0 * kn_eta(beta, n0) * (n0 - 1)
    zone, shift = (zone_abs / 2.0, zone_abs / 2.0) if ties else (zone_abs, 0.0)

    alive = np.ones(k, dtype=bool)
    low = np.zeros((k, k), dtype=bool)                      # T[i, l] left low (ties layout)
    eliminated: dict[str, tuple[str, int]] = {}
    r = n0 - 1                                              # stages screened: KN's first is n0
    csum = data[:, :r].sum(axis=1)                          # partial sums up to stage r
    kind = None
    next_look = n0                                          # the zone-free screen's next stage
    look = 0
    while kind is None:
        have = int(used[alive][0])
        if screen > 0.0 and r >= next_look and r == have:
            # The screen looks at fixed stages; each look spends alpha * screen / 2 ** (look + 1).
            out = _screen(data, alive, r, alpha * screen / 2.0 ** (look + 1), k)
            for worse, better in out:
                eliminated[names[worse]] = (names[better], r)
                alive[worse] = False
            look += 1
            next_look = n0 * 2 ** look
            if out:
                kind = _kind(alive, low)
                if kind is not None:
                    break
        if r == have:                                       # screened all data: sample more
            survivors = np.flatnonzero(alive)
            want = max(step, math.ceil(growth * r))
            if screen > 0.0 and r < next_look:
                want = min(want, next_look - r)             # land on the screen's stage
            if budget is not None:
                want = min(want, (budget - int(used.sum())) // survivors.size)
            if want <= 0:
                kind = "undecided"
                break
            block = sign * _draw(sample, [names[i] for i in survivors], want)
            if have + want > data.shape[1]:
                data = np.concatenate([data, np.full((k, max(have + want, 2 * data.shape[1])
                                                      - data.shape[1]), np.nan)], axis=1)
            data[survivors, have:have + want] = block
            used[survivors] += want
            continue
        # Screen stages r+1 .. have with the current survivors; stop at the first decision.
        idx = np.flatnonzero(alive)
        stages = np.arange(r + 1, have + 1, dtype=float)
        sums = csum[idx, None] + np.cumsum(data[idx, r:have], axis=1)       # (m, T)
        means = sums / stages
        dbar = means[:, None, :] - means[None, :, :]                        # (m, m, T)
        half = _half_width(zone, h2, s2[np.ix_(idx, idx)][:, :, None], stages)
        x = dbar - shift
        pair = ~np.eye(idx.size, dtype=bool)
        open_ = pair & ~low[np.ix_(idx, idx)]
        high = (x > half) & open_[:, :, None]
        if ties:
            leaves_low = ((x < -half) | ((half == 0.0) & (x <= 0.0))) & open_[:, :, None]
        else:
            # KN as published: a pair of exactly equal means at a closed triangle is a tie.
            leaves_low = ((half == 0.0) & (dbar == 0.0)) & pair[:, :, None]
        event = (high | leaves_low).any(axis=(0, 1))
        if not event.any():
            csum[idx] = sums[:, -1]
            r = have
            continue
        t = int(np.argmax(event))
        r = int(stages[t])
        csum[idx] = sums[:, t]
        for a, b in zip(*np.nonzero(high[:, :, t])):
            worse, better = idx[a], idx[b]
            if alive[worse]:
                alive[worse] = False
                eliminated[names[worse]] = (names[better], r)
        low[np.ix_(idx, idx)] |= leaves_low[:, :, t]
        kind = _kind(alive, low)

    return _answer(kind, names, data, used, alive, csum, r, s2, h2, zone, shift, n0, beta, k,
                   alpha, ties, sign, zone_abs, eliminated, alpha_kn)


def _kind(alive: np.ndarray, low: np.ndarray) -> str | None:
    """``winner`` for one survivor, ``tie`` when every pair of survivors is indifferent."""
    rest = np.flatnonzero(alive)
    if rest.size == 1:
        return "winner"
    if (low[np.ix_(rest, rest)] | np.eye(rest.size, dtype=bool)).all():
        return "tie"
    return None


def _screen(data: np.ndarray, alive: np.ndarray, r: int, level: float, k: int) -> list:
    """The zone-free screen: ``i`` is out if some survivor ``l`` is better by more than a paired
    one-sided t bound, ``Xbar_i - Xbar_l > t(1 - level / (k - 1), r - 1) S_il(r) / sqrt(r)``.

    This is the screening step of Nelson, Swann, Goldsman & Song, "Simple procedures for selecting
    the best simulated system when the number of alternatives is large", Oper. Res. 49(6), 2001,
    with paired (CRN) variances, repeated at fixed stages with a share of ``alpha`` spent at each.
    KN's boundary grows as ``1 / delta``: with a 1 % zone and noisy batches it keeps a policy that
    is several times worse for hundreds of stages; the screen removes it as soon as the data
    show it worse at all. Returns ``[(worse, better), ...]``.
    """
    idx = np.flatnonzero(alive)
    x = data[idx, :r]
    means = x.mean(axis=1)
    diffs = x[:, None, :] - x[None, :, :]
    se = diffs.std(axis=2, ddof=1) / math.sqrt(r)
    t = float(stats.t.ppf(1.0 - level / (k - 1), r - 1))
    gap = means[:, None] - means[None, :]
    worse = (gap > t * se) & ~np.eye(idx.size, dtype=bool)
    out = []
    for a in np.flatnonzero(worse.any(axis=1)):
        b = int(np.argmax(np.where(worse[a], gap[a], -np.inf)))
        out.append((int(idx[a]), int(idx[b])))
    return out


def _answer(kind, names, data, used, alive, csum, r, s2, h2, zone, shift, n0, beta, k, alpha,
            ties, sign, zone_abs, eliminated, alpha_kn) -> Selection:
    rest = np.flatnonzero(alive)
    stage_means = csum[rest] / r if r > 0 else np.nanmean(data[rest], axis=1)
    order = rest[np.argsort(stage_means, kind="stable")]
    lead = int(order[0])
    if kind == "undecided":
        confidence = _achieved(lead, order[1:], csum, r, s2, zone, shift, n0, k, ties, alpha,
                               alpha_kn)
    else:
        confidence = 1.0 - alpha
    means = {names[i]: float(sign * np.mean(data[i, :used[i]])) for i in range(len(names))}
    return Selection(kind=kind, survivors=tuple(names[i] for i in order), leader=names[lead],
                     confidence=float(confidence), delta=float(zone_abs),
                     batches={names[i]: int(used[i]) for i in range(len(names))}, means=means,
                     eliminated=eliminated, stages=int(r), alpha=alpha, ties=ties)


def _achieved(lead, others, csum, r, s2, zone, shift, n0, k, ties, alpha, alpha_kn) -> float:
    """The level at which the last stage's boundaries would make ``lead`` the winner."""
    if r == 0 or len(others) == 0:
        return 0.0
    x = (csum[others] - csum[lead]) / r - shift            # each rival's test against the leader
    var = s2[others, lead]
    with np.errstate(divide="ignore", invalid="ignore"):
        h2_star = np.where(var > 0.0, r * zone * (2.0 * x + zone) / var, np.inf)
    beta_star = np.where(x > 0.0, _error_to_beta(h2_star, n0), 0.5)
    alpha_star = (2 if ties else 1) * (k - 1) * float(beta_star.max()) + (alpha - alpha_kn)
    return float(np.clip(1.0 - alpha_star, 0.0, 1.0 - alpha))


def _check_policies(policies) -> tuple[str, ...]:
    if isinstance(policies, str) or not isinstance(policies, Sequence):
        raise SelectionError(f"policies={policies!r} is not allowed: a sequence of names")
    names = tuple(policies)
    if not names or not all(isinstance(p, str) and p for p in names):
        raise SelectionError(f"policies={policies!r} is not allowed: one or more non-empty names")
    if len(set(names)) != len(names):
        raise SelectionError(f"policies={policies!r} is not allowed: names must be distinct")
    return names


def _draw(sample, policies: list[str], batches: int) -> np.ndarray:
    """Call the sampler and check that it answered what was asked."""
    values = np.asarray(sample(list(policies), batches), dtype=float)
    if values.shape != (len(policies), batches):
        raise SelectionError(f"sample({policies!r}, {batches}) returned shape {values.shape}: "
                             f"allowed is ({len(policies)}, {batches}), policies x batches")
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        raise SelectionError(f"sample returned {float(values[row][bad[row]][0])} for policy "
                             f"{policies[row]!r}: batch statistics must be finite (an unstable "
                             "or unobserved policy cannot be ranked; drop it first)")
    return values
