"""Ranking and selection (faultlock/sweeps/selection.py): KN's constants and boundaries on cases
worked by hand, the sampler contract (only survivors are sampled, CRN-paired), bad input, and
(slow) the empirical probabilities of a correct answer and of a tie over many seeds on synthetic
normal cells with known means, against the levels the procedure states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from faultlock.sweeps.selection import KINDS, Selection, SelectionError, kn_eta, select_best


def scripted(columns: dict[str, list[float]], then: dict[str, float]):
    """A sampler that returns the given batches, then a constant per policy; logs its calls."""
    position = dict.fromkeys(columns, 0)
    calls = []

    def sample(policies, batches):
        calls.append((tuple(policies), batches))
        rows = []
        for p in policies:
            row = []
            for _ in range(batches):
                j = position[p]
                row.append(columns[p][j] if j < len(columns[p]) else then[p])
                position[p] += 1
            rows.append(row)
        return np.array(rows)

    sample.calls = calls
    return sample


def normal_cell(means, sd, rho, seed):
    """Batch statistics ``mu_i + sd (sqrt(rho) Z_j + sqrt(1 - rho) E_ij)``: normal, CRN-correlated
    (correlation ``rho`` between policies in the same batch), batch ``j`` the same draw for every
    policy whenever it is asked for."""
    rng = np.random.default_rng(seed)
    means = np.asarray(means, dtype=float)
    names = [f"p{i}" for i in range(means.size)]
    common, own = [], []
    next_batch = dict.fromkeys(names, 0)

    def sample(policies, batches):
        out = np.empty((len(policies), batches))
        for row, p in enumerate(policies):
            i, start = names.index(p), next_batch[p]
            while len(common) < start + batches:
                common.append(rng.standard_normal())
                own.append(rng.standard_normal(means.size))
            z = np.array(common[start:start + batches])
            e = np.array([own[j][i] for j in range(start, start + batches)])
            out[row] = means[i] + sd * (math.sqrt(rho) * z + math.sqrt(1 - rho) * e)
            next_batch[p] += batches
        return out

    return sample, names


# --- KN's constants -----------------------------------------------------------------------------

def test_eta_is_kim_nelsons_and_inverts():
    # Kim & Nelson (2001): eta = ((2 alpha / (k - 1)) ** (-2 / (n0 - 1)) - 1) / 2.
    # k = 2, alpha = 0.05, n0 = 10: 10 ** (2 / 9) = 1.66810 -> eta = 0.33405, h2 = 6.0129.
    assert kn_eta(0.05, 10) == pytest.approx(0.33405, abs=1e-5)
    # n0 = 3, beta = 0.05: (0.1) ** -1 = 10 -> eta = 4.5 exactly
    assert kn_eta(0.05, 3) == pytest.approx(4.5)
    from faultlock.sweeps.selection import _error_to_beta
    for beta, n0 in ((0.05, 10), (0.004, 20), (0.2, 3)):
        h2 = 2 * kn_eta(beta, n0) * (n0 - 1)
        assert _error_to_beta(np.array(h2), n0) == pytest.approx(beta)
    with pytest.raises(SelectionError, match="beta=0.5"):
        kn_eta(0.5, 10)


# --- hand-worked runs ---------------------------------------------------------------------------
# n0 = 3 and per-pair error 0.05 give eta = 4.5, h2 = 2 * 4.5 * 2 = 18; with S2 = 1 and zone d = 1
# KN's half-width is W(r) = (18 - r) / (2 r): W(3) = 2.5, W(4) = 1.75, W(5) = 1.3, W(7) = 0.786.

def test_kn_eliminates_at_the_stage_worked_by_hand():
    # A - B differences in the first stage: -1, -2, -3 -> S2 = 1; Dbar(B - A) = 2 < W(3) = 2.5.
    # Then B gives 2 a batch: Dbar(4) = 8 / 4 = 2 > W(4) = 1.75: B is out at stage 4.
    sample = scripted({"A": [0, 0, 0], "B": [1, 2, 3]}, then={"A": 0.0, "B": 2.0})
    sel = select_best(sample, ["A", "B"], delta=1.0, relative=False, alpha=0.05, n0=3,
                      ties=False, screen=0.0)
    assert sel.kind == "winner" and sel.winner == "A" and sel.survivors == ("A",)
    assert sel.eliminated == {"B": ("A", 4)}
    assert sel.batches == {"A": 4, "B": 4} and sel.total_batches == 8 and sel.stages == 4
    assert sel.confidence == pytest.approx(0.95)
    assert sel.means == {"A": 0.0, "B": pytest.approx(2.0)}
    assert sample.calls == [(("A", "B"), 3), (("A", "B"), 1)]


def test_three_decision_layout_eliminates_at_the_stage_worked_by_hand():
    # ties: per-pair error alpha / 2 = 0.05 (h2 = 18), zone d = delta / 2 = 1, shift 1.
    # T[B, A]: x = Dbar - 1. First stage Dbar = 2, x = 1 < 2.5; B then gives 3: r = 4: Dbar = 9/4,
    # x = 1.25 < 1.75; r = 5: Dbar = 12/5, x = 1.4 > W(5) = 1.3: B is worse, out at stage 5.
    sample = scripted({"A": [0, 0, 0], "B": [1, 2, 3]}, then={"A": 0.0, "B": 3.0})
    sel = select_best(sample, ["A", "B"], delta=2.0, relative=False, alpha=0.1, n0=3,
                      screen=0.0)
    assert (sel.kind, sel.winner, sel.stages) == ("winner", "A", 5)
    assert sel.eliminated == {"B": ("A", 5)}
    assert sel.confidence == pytest.approx(0.9)


def test_tie_at_the_stage_worked_by_hand():
    # First stage B - A: 1, -1, 0 -> S2 = 1, Dbar = 0; then both give 0. Both tests have x = -1 and
    # leave low when W(r) < 1: r > 6. Tie at stage 7; with a budget of 12 batches, undecided at 6.
    columns = {"A": [0, 0, 0], "B": [1, -1, 0]}
    sel = select_best(scripted(columns, {"A": 0.0, "B": 0.0}), ["A", "B"], delta=2.0,
                      relative=False, alpha=0.1, n0=3, screen=0.0)
    assert (sel.kind, sel.winner, sel.stages) == ("tie", None, 7)
    assert set(sel.survivors) == {"A", "B"} and sel.confidence == pytest.approx(0.9)
    sel = select_best(scripted(columns, {"A": 0.0, "B": 0.0}), ["A", "B"], delta=2.0,
                      relative=False, alpha=0.1, n0=3, budget=12, screen=0.0)
    assert (sel.kind, sel.stages, sel.total_batches) == ("undecided", 6, 12)
    assert sel.confidence == 0.0      # the rival is not behind by half the zone: no level helps


def test_kn_never_ties_equal_means_but_picks_one():
    sample = scripted({"A": [0, 0, 0], "B": [1, -1, 0]}, then={"A": 0.0, "B": 0.0})
    sel = select_best(sample, ["A", "B"], delta=1.0, relative=False, alpha=0.05, n0=3,
                      ties=False, budget=1000, screen=0.0)
    # Dbar stays 0 < W(r) until the triangle closes at r = 18; then a zero difference is a tie
    # only because it is exact; noisy equal means would have left on one side.
    assert sel.kind == "tie" and sel.stages == 18


def test_undecided_reports_the_level_its_last_stage_supports():
    # KN, budget = first stage only: Dbar(B - A) = 2 < W(3) = 2.5. The level at which W(3) = 2:
    # h2* = r d (2 x + d) / S2 = 3 * 1 * 5 / 1 = 15 -> eta* = 15 / 4 -> beta* = 1 / 2 / (1 + 7.5)
    # = 1 / 17 -> confidence = 1 - 1/17 = 0.941.
    sample = scripted({"A": [0, 0, 0], "B": [1, 2, 3]}, then={"A": 0.0, "B": 2.0})
    sel = select_best(sample, ["A", "B"], delta=1.0, relative=False, alpha=0.05, n0=3,
                      ties=False, budget=6, screen=0.0)
    assert sel.kind == "undecided" and sel.survivors == ("A", "B") and sel.leader == "A"
    assert sel.confidence == pytest.approx(1 - 1 / 17)


def test_the_zone_free_screen_removes_a_clearly_worse_policy_worked_by_hand():
    # Zone 0.01 * 0 = 0: KN alone can never decide. B - A: 2, 2.1, 1.9 -> mean 2, sd 0.1,
    # se = 0.1 / sqrt(3) = 0.0577; first look at level 0.05 * 0.2 / 2 = 0.005:
    # t(0.995, 2) = 9.925 -> bound 0.573 < 2: B is out at stage 3.
    sample = scripted({"A": [0, 0, 0], "B": [2, 2.1, 1.9]}, then={"A": 0.0, "B": 2.0})
    sel = select_best(sample, ["A", "B"], delta=0.01, alpha=0.05, n0=3)
    assert (sel.kind, sel.winner, sel.stages) == ("winner", "A", 3)
    assert sel.eliminated == {"B": ("A", 3)}
    # With B - A: 1, 2, 3 (se = 0.577, bound 5.73 > 2) the first look keeps B; the second look
    # (stage 6, level 0.0025: t(0.9975, 5) = 4.77) sees B - A = 1, 2, 3, 2, 2, 2: mean 2,
    # sd = sqrt(2 / 5) = 0.632, se = 0.258, bound 1.23 < 2: out at stage 6.
    sample = scripted({"A": [0, 0, 0], "B": [1, 2, 3]}, then={"A": 0.0, "B": 2.0})
    sel = select_best(sample, ["A", "B"], delta=0.0, alpha=0.05, n0=3)
    assert (sel.kind, sel.stages, sel.eliminated) == ("winner", 6, {"B": ("A", 6)})


def test_identical_outputs_tie_at_once_and_one_policy_wins_unasked():
    same = [1.0, 1.01, 0.99, 1.0]
    for ties in (True, False):
        sample = scripted({"A": same, "B": same, "C": [9.0] * 4},
                          then={"A": 1.0, "B": 1.0, "C": 9.0})
        sel = select_best(sample, ["A", "B", "C"], delta=0.01, n0=4, ties=ties)
        assert sel.kind == "tie" and set(sel.survivors) == {"A", "B"}, ties
        assert sel.stages == 4 and "C" in sel.eliminated
    sel = select_best(lambda p, b: pytest.fail("sampled one policy"), ["only"], delta=0.01)
    assert sel.kind == "winner" and sel.winner == "only" and sel.total_batches == 0


# --- the sampler contract -----------------------------------------------------------------------

def test_only_survivors_are_sampled_and_effort_is_counted():
    sample, names = normal_cell([1.0, 1.0, 3.0], sd=0.05, rho=0.5, seed=1)
    log = []

    def logged(policies, batches):
        log.append((tuple(policies), batches))
        return sample(policies, batches)

    sel = select_best(logged, names, delta=0.01, n0=5)
    assert "p2" in sel.eliminated and sel.eliminated["p2"][1] == 5   # 3x worse: out at once
    assert log[0] == (("p0", "p1", "p2"), 5)
    assert all("p2" not in policies for policies, _ in log[1:])
    spent = {p: sum(b for ps, b in log if p in ps) for p in names}
    assert sel.batches == spent and sel.total_batches == sum(spent.values())


def test_steps_and_growth_ask_bigger_blocks_and_stay_within_budget():
    sample, names = normal_cell([1.0, 1.004, 1.0], sd=0.05, rho=0.5, seed=2)
    log = []

    def logged(policies, batches):
        log.append(batches)
        return sample(policies, batches)

    sel = select_best(logged, names, delta=0.01, n0=10, step=4, growth=0.5, budget=600)
    assert log[0] == 10 and log[1] == 5 and all(b >= 4 for b in log[1:])
    assert sel.total_batches <= 600
    assert sel.kind in KINDS


def test_scale_and_sense():
    base, names = normal_cell([2.0, 2.03, 2.1], sd=0.1, rho=0.6, seed=3)
    sel = select_best(base, names, delta=0.01, n0=10)
    scaled, _ = normal_cell([2e-3, 2.03e-3, 2.1e-3], sd=1e-4, rho=0.6, seed=3)
    sel_scaled = select_best(scaled, names, delta=0.01, n0=10)
    assert (sel_scaled.kind, sel_scaled.survivors, sel_scaled.stages) == \
        (sel.kind, sel.survivors, sel.stages)
    assert sel_scaled.delta == pytest.approx(sel.delta * 1e-3)
    # maximising the negated values is the same selection
    again, _ = normal_cell([2.0, 2.03, 2.1], sd=0.1, rho=0.6, seed=3)
    sel_max = select_best(lambda p, b: -again(p, b), names, delta=0.01, n0=10,
                          sense="maximize")
    assert (sel_max.kind, sel_max.survivors, sel_max.stages) == (sel.kind, sel.survivors,
                                                                 sel.stages)
    assert sel_max.means["p0"] == pytest.approx(-sel.means["p0"])


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 0.0}, "alpha=0.0"),
    ({"alpha": 1.5}, "alpha=1.5"),
    ({"delta": -0.1}, "delta=-0.1"),
    ({"delta": math.nan}, "delta=nan"),
    ({"n0": 1}, "n0=1"),
    ({"n0": 2.5}, "n0=2.5"),
    ({"budget": 5}, "budget=5 .*n0 \\* policies = 20"),
    ({"sense": "max"}, "sense='max'"),
    ({"step": 0}, "step=0"),
    ({"growth": -1.0}, "growth=-1.0"),
    ({"screen": 1.0}, "screen=1.0"),
])
def test_bad_settings_name_the_field(kwargs, match):
    sample, names = normal_cell([1.0, 1.1], sd=0.1, rho=0.5, seed=0)
    with pytest.raises(SelectionError, match=match):
        select_best(sample, names, **{"delta": 0.01, **kwargs})


def test_bad_policies_and_a_sampler_that_misbehaves():
    sample, names = normal_cell([1.0, 1.1], sd=0.1, rho=0.5, seed=0)
    for policies in ("p0", ["p0", "p0"], [], ["p0", 3]):
        with pytest.raises(SelectionError, match="policies="):
            select_best(sample, policies, delta=0.01)
    with pytest.raises(SelectionError, match=r"shape \(2, 9\): allowed is \(2, 10\)"):
        select_best(lambda p, b: np.ones((len(p), b - 1)), names, delta=0.01)
    with pytest.raises(SelectionError, match="nan for policy 'p1'"):
        select_best(lambda p, b: np.where(np.arange(len(p))[:, None] == 1, np.nan, 1.0)
                    * np.ones((len(p), b)), names, delta=0.01)
    assert issubclass(SelectionError, ValueError)


def test_a_clear_winner_and_a_tie_on_noisy_cells():
    """One seed each, fast: a 5 % gap under 5 % batch noise is found; equal means tie."""
    sample, names = normal_cell([1.0, 1.05, 1.05, 1.08], sd=0.05, rho=0.7, seed=11)
    sel = select_best(sample, names, delta=0.01)
    assert isinstance(sel, Selection) and sel.winner == "p0"
    sample, names = normal_cell([1.0, 1.0, 1.0], sd=0.05, rho=0.7, seed=12)
    sel = select_best(sample, names, delta=0.02)
    assert sel.kind == "tie" and set(sel.survivors) == set(names)


# --- the stated levels, over many seeds (slow) --------------------------------------------------

DELTA = 0.01
SD, RHO = 0.05, 0.7           # batch CV 5 %, CRN correlation 0.7 between policies


def configurations(k):
    """(name, true means): best by 2 delta, all equal, one better by delta / 2 than the rest."""
    return {
        "best by 2 delta": [1.0] + [1.0 + 2 * DELTA] * (k - 1),
        "all equal": [1.0] * k,
        "best by delta/2": [1.0] + [1.0 + DELTA / 2] * (k - 1),
    }


def good(sel: Selection, means) -> bool:
    """Every survivor within delta of the true best (a good answer; undecided is not)."""
    if sel.kind == "undecided":
        return False
    best = min(means)
    return all(means[int(p[1:])] <= best + DELTA * abs(best) for p in sel.survivors)


def lower_bound_is_consistent(successes, n, level):
    """The observed rate does not contradict P >= level: one-sided 99 % Clopper-Pearson upper
    bound at or above the level."""
    upper = stats.beta.ppf(0.99, successes + 1, n - successes) if successes < n else 1.0
    return upper >= level


@pytest.mark.slow
@pytest.mark.parametrize("ties", [True, False])
def test_stated_levels_over_many_seeds(ties):
    k, alpha, seeds = 4, 0.05, 300
    for name, means in configurations(k).items():
        results = []
        for seed in range(seeds):
            sample, names = normal_cell(means, SD, RHO, seed=10_000 * k + seed)
            results.append(select_best(sample, names, delta=DELTA, alpha=alpha, ties=ties,
                                       step=2))
        kinds = [r.kind for r in results]
        assert "undecided" not in kinds      # no budget: every triangle closes
        if name == "best by 2 delta":
            correct = sum(r.winner == "p0" for r in results)
            assert lower_bound_is_consistent(correct, seeds, 1 - alpha), (name, correct)
        elif name == "all equal" and ties:
            tied = sum(r.kind == "tie" and len(r.survivors) == k for r in results)
            stated = 1 - k * alpha * (1 + 0.2) / 2           # default screen: 20 % of alpha
            assert lower_bound_is_consistent(tied, seeds, stated), (name, tied)
        # inside the zone every answer must still be a good one (measured, not guaranteed)
        assert lower_bound_is_consistent(sum(good(r, means) for r in results), seeds,
                                         1 - alpha), name
