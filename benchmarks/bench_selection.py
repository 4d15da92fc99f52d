"""Ranking and selection on synthetic cells: empirical rates and effort against the stated levels,
and against a fixed run length that spends the same batches.

    python benchmarks/bench_selection.py [--policies 4] [--seeds 500] [--delta 0.01]
                                         [--cv 0.05] [--rho 0.7] [--alpha 0.05] [--step 1]
                                         [--only cells|grid]

A synthetic cell has ``k`` policies whose batch statistics are normal, ``mu_i (1 + cv (sqrt(rho)
Z_j + sqrt(1 - rho) E_ij))``: batch CV ``cv``, CRN correlation ``rho`` between policies (``Z_j`` is
the draw every policy shares in batch ``j``). Three configurations, with the best mean 1:

* **best by 2 delta**: the rest at ``1 + 2 delta``: the answer must be "winner: p0" (stated:
  ``PCS >= 1 - alpha``);
* **all equal**: any answer is good; a *tie* of all is the informative one (stated, three-decision
  layout: ``P(tie) >= 1 - k alpha / 2``);
* **best by delta/2**: the rest at ``1 + delta / 2``: inside the zone, any survivor is within
  ``delta`` of the best, so every winner or tie is good.

For each, both layouts of :func:`faultlock.sweeps.selection.select_best` (``ties``: KN's
triangle in the Sobel-Wald three-decision layout; ``KN``: Kim & Nelson 2001 as published) print the
share of each answer, the share correct (``p0`` wins; for the other two configurations: a good
answer), a 95 % Clopper-Pearson interval, and the effort (batches over all policies, mean and 90th
percentile).

**Fixed run length**: the same cells, each policy given ``mean effort / k`` batches (the same total
on average), judged as ``faultlock.sweeps.winners`` judges a Monte Carlo cell today: the leader
wins if its 95 % batch-means interval is disjoint from every other policy's, widened by the
relative tie tolerance; otherwise undecided. **Fixed, paired**: the same batches judged with
CRN-paired intervals (Bonferroni): a winner if every rival is behind with its whole interval, a tie
if every pair's interval lies inside the zone, else undecided. (Looking once at a fixed length, not
sequentially: these intervals need no correction for repeated looks.)

**Mixed grid**: the fixed length above is an oracle's (the procedure's mean effort on that very
configuration). A sweep must pick one length for unlike cells; the grid mixes gaps (0 to 20
delta) and batch CVs (2 to 15 %) and gives the fixed, paired design the same total batches as the
sequential procedure spent, split evenly.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from faultlock.sweeps.selection import select_best


class NormalCell:
    """CRN-paired normal batch statistics with known means, drawn lazily batch by batch."""

    def __init__(self, means, cv, rho, seed):
        self.means = np.asarray(means, dtype=float)
        self.names = [f"p{i}" for i in range(self.means.size)]
        self.cv, self.rho = cv, rho
        self.rng = np.random.default_rng(seed)
        self.values = np.empty((self.means.size, 0))
        self.next = dict.fromkeys(self.names, 0)

    def _extend(self, upto):
        if upto <= self.values.shape[1]:
            return
        n = max(upto - self.values.shape[1], 256)
        z = self.rng.standard_normal(n)
        e = self.rng.standard_normal((self.means.size, n))
        noise = math.sqrt(self.rho) * z + math.sqrt(1 - self.rho) * e
        self.values = np.concatenate([self.values, self.means[:, None] * (1 + self.cv * noise)],
                                     axis=1)

    def __call__(self, policies, batches):
        out = np.empty((len(policies), batches))
        for row, p in enumerate(policies):
            start = self.next[p]
            self._extend(start + batches)
            out[row] = self.values[self.names.index(p), start:start + batches]
            self.next[p] = start + batches
        return out


def fixed_length(cell: NormalCell, batches: int, rtol: float) -> str | None:
    """The winner under today's rule (disjoint 95 % intervals plus rtol), or None: undecided."""
    x = cell(cell.names, batches)
    mean = x.mean(axis=1)
    half = stats.t.ppf(0.975, batches - 1) * x.std(axis=1, ddof=1) / math.sqrt(batches)
    lead = int(np.argmin(mean))
    rivals = np.arange(mean.size) != lead
    overlap = mean[rivals] - half[rivals] <= mean[lead] + half[lead] + rtol * abs(mean[lead])
    return None if overlap.any() else cell.names[lead]


def fixed_paired(cell: NormalCell, batches: int, rtol: float, alpha: float) -> tuple[str, tuple]:
    """The same cell judged with CRN-paired intervals (Bonferroni over the leader's k - 1 rivals):
    a winner if every rival is behind with its whole interval, a tie if every pair's interval is
    inside +-rtol of the leader, else undecided. Returns (kind, survivors)."""
    x = cell(cell.names, batches)
    mean = x.mean(axis=1)
    lead = int(np.argmin(mean))
    k = mean.size
    t = stats.t.ppf(1 - alpha / (2 * (k - 1)), batches - 1)
    diff = x - x[lead]
    half = t * diff.std(axis=1, ddof=1) / math.sqrt(batches)
    rivals = np.arange(k) != lead
    zone = rtol * abs(mean[lead])
    if np.all(mean[rivals] - mean[lead] - half[rivals] > 0):
        return "winner", (cell.names[lead],)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    t_pairs = stats.t.ppf(1 - alpha / (2 * len(pairs)), batches - 1)
    inside = all(abs(mean[i] - mean[j]) + t_pairs * np.std(x[i] - x[j], ddof=1)
                 / math.sqrt(batches) < zone for i, j in pairs)
    return ("tie", tuple(cell.names)) if inside else ("undecided", ())


def interval(successes: int, n: int) -> tuple[float, float]:
    lo = stats.beta.ppf(0.025, successes, n - successes + 1) if successes > 0 else 0.0
    hi = stats.beta.ppf(0.975, successes + 1, n - successes) if successes < n else 1.0
    return lo, hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--delta", type=float, default=0.01)
    parser.add_argument("--cv", type=float, default=0.05)
    parser.add_argument("--rho", type=float, default=0.7)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--n0", type=int, default=10)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--only", choices=("cells", "grid"), default=None,
                        help="run only the three configurations, or only the mixed grid")
    args = parser.parse_args()
    if args.only != "grid":
        configurations(args)
    if args.only != "cells":
        mixed_grid(args)


def configurations(args) -> None:
    """The three configurations of the module docstring, both layouts, and the fixed lengths."""
    k, d = args.policies, args.delta
    configs = {
        "best by 2 delta": [1.0] + [1.0 + 2 * d] * (k - 1),
        "all equal": [1.0] * k,
        "best by delta/2": [1.0] + [1.0 + d / 2] * (k - 1),
    }
    print(f"# {time.strftime('%Y-%m-%d')}: k={k} policies, delta={d:g} (relative), batch "
          f"CV={args.cv:g}, CRN rho={args.rho:g}, alpha={args.alpha:g}, n0={args.n0}, "
          f"{args.seeds} seeds")
    print(f"{'configuration':<17} {'layout':<6} {'winner':>7} {'tie':>6} {'undec':>6} "
          f"{'correct [95% CI]':>22} {'batches':>8} {'p90':>6} {'ms/cell':>8} | "
          f"{'fixed: correct':>14} {'undec':>6} | {'paired: correct':>15} {'tie':>6} "
          f"{'undec':>6}")
    for name, means in configs.items():
        best = min(means)
        for ties in (True, False):
            kinds, correct, effort = [], 0, []
            started = time.process_time()
            for seed in range(args.seeds):
                cell = NormalCell(means, args.cv, args.rho, seed)
                sel = select_best(cell, cell.names, delta=d, alpha=args.alpha, n0=args.n0,
                                  ties=ties, step=args.step)
                kinds.append(sel.kind)
                effort.append(sel.total_batches)
                if name == "best by 2 delta":
                    correct += sel.winner == "p0"
                else:
                    correct += sel.kind != "undecided" and all(
                        means[int(p[1:])] <= best * (1 + d) for p in sel.survivors)
            cpu = (time.process_time() - started) / args.seeds
            per_policy = max(2, round(float(np.mean(effort)) / k))
            fixed = [fixed_length(NormalCell(means, args.cv, args.rho, 10**6 + seed),
                                  per_policy, d) for seed in range(args.seeds)]
            fixed_ok = sum(w is not None and means[int(w[1:])] <= best * (1 + d) for w in fixed)
            if name == "best by 2 delta":
                fixed_ok = sum(w == "p0" for w in fixed)
            paired = [fixed_paired(NormalCell(means, args.cv, args.rho, 10**6 + seed),
                                   per_policy, d, args.alpha) for seed in range(args.seeds)]
            if name == "best by 2 delta":
                paired_ok = sum(kind == "winner" and who == ("p0",) for kind, who in paired)
            else:
                paired_ok = sum(kind != "undecided" and all(
                    means[int(p[1:])] <= best * (1 + d) for p in who) for kind, who in paired)
            paired_tie = sum(kind == "tie" for kind, _ in paired)
            paired_undecided = sum(kind == "undecided" for kind, _ in paired)
            lo, hi = interval(correct, args.seeds)
            n = args.seeds
            print(f"{name:<17} {'ties' if ties else 'KN':<6} "
                  f"{kinds.count('winner') / n:>7.3f} {kinds.count('tie') / n:>6.3f} "
                  f"{kinds.count('undecided') / n:>6.3f} "
                  f"{correct / n:>7.3f} [{lo:.3f}, {hi:.3f}] {np.mean(effort):>8.0f} "
                  f"{np.percentile(effort, 90):>6.0f} {1e3 * cpu:>8.1f} | "
                  f"{fixed_ok / n:>14.3f} {sum(w is None for w in fixed) / n:>6.3f} | "
                  f"{paired_ok / n:>15.3f} {paired_tie / n:>6.3f} {paired_undecided / n:>6.3f}")


def mixed_grid(args) -> None:
    """A grid of unlike cells: one fixed length for all of them against lengths set per cell."""
    k, d = args.policies, args.delta
    gaps = (0.0, 0.5, 2.0, 5.0, 20.0)            # best ahead of the rest, in units of delta
    cvs = (0.02, 0.05, 0.15)
    cells = [(g, cv) for g in gaps for cv in cvs]
    reps = max(1, args.seeds // (5 * len(cells)))
    print(f"\n# mixed grid: gaps {gaps} x delta, batch CVs {cvs}, {reps} seeds each "
          f"({reps * len(cells)} cells)")
    print(f"{'method':<28} {'batches/cell':>12} {'winner':>7} {'tie':>6} {'undec':>6} "
          f"{'good':>6} {'bad':>6}")
    for ties in (True, False):
        outcome, effort = [], 0
        for rep in range(reps):
            for n, (g, cv) in enumerate(cells):
                means = [1.0] + [1.0 + g * d] * (k - 1)
                cell = NormalCell(means, cv, args.rho, 7919 * rep + n)
                sel = select_best(cell, cell.names, delta=d, alpha=args.alpha, n0=args.n0,
                                  ties=ties, step=args.step)
                effort += sel.total_batches
                outcome.append((sel.kind, sel.survivors, means))
        _grid_line(f"sequential ({'ties' if ties else 'KN'})", effort / len(outcome), outcome, d)
        per_policy = max(2, round(effort / len(outcome) / k))
        fixed = []
        for rep in range(reps):
            for n, (g, cv) in enumerate(cells):
                means = [1.0] + [1.0 + g * d] * (k - 1)
                cell = NormalCell(means, cv, args.rho, 10**6 + 7919 * rep + n)
                kind, who = fixed_paired(cell, per_policy, d, args.alpha)
                fixed.append((kind, who, means))
        _grid_line("fixed, paired, same effort", per_policy * k, fixed, d)


def _grid_line(label, effort, outcome, d) -> None:
    n = len(outcome)
    kinds = [kind for kind, _, _ in outcome]
    good = bad = 0
    for kind, who, means in outcome:
        if kind == "undecided":
            continue
        best = min(means)
        if all(means[int(p[1:])] <= best * (1 + d) for p in who):
            good += 1
        else:
            bad += 1
    print(f"{label:<28} {effort:>12.0f} {kinds.count('winner') / n:>7.3f} "
          f"{kinds.count('tie') / n:>6.3f} {kinds.count('undecided') / n:>6.3f} "
          f"{good / n:>6.3f} {bad / n:>6.3f}")


if __name__ == "__main__":
    main()
