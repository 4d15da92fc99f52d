"""Ranking and selection in a Monte Carlo sweep cell (faultlock.sweeps.ranking): cases whose answer
is known by construction, the effort spent only on policies in contention, and a sweep store that
keeps the answers, the survivors, the confidence and the effort."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from faultlock import Scenario
from faultlock.model.montecarlo.simulate import Run
from faultlock.sweeps import SpecError, load_spec, run_sweep, show
from faultlock.sweeps.ranking import select_cell
from faultlock.sweeps.spec import MonteCarloSettings, Objective, SelectionSettings
from faultlock.sweeps.winners import NONE_FEASIBLE, TIE, UNDECIDED

pytestmark = pytest.mark.xdist_group("engine")

FAULT = Objective("fault_p99", "fault_latency_p99")
MEAN = Objective("fault_mean", "fault_latency_mean")
JANK = Objective("jank", "jank_share")
SEED = np.random.SeedSequence(2026, spawn_key=(3,))


def _settings(budget=200, operations=2000, batches=10, confidence=0.95):
    return MonteCarloSettings(operations=operations, batches=batches,
                              selection=SelectionSettings(confidence=confidence, budget=budget))


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def test_identical_policies_tie_at_once():
    """Without writers nor reclaim, mainline and mainline_uptodate take the same path event for
    event (no retry ever finds an uptodate folio it would skip), so their batches are equal: the
    paired variance is 0 and the cell is a tie after the first stage, at no extra cost."""
    scenario = Scenario.preset("virtio_2cpu", threads=2, writer_rate=0.0)
    mc = _settings()
    a = Run(scenario, "mainline", SEED, batch_operations=200, warmup_operations=400, capacity=10)
    b = Run(scenario, "mainline_uptodate", SEED, batch_operations=200, warmup_operations=400,
            capacity=10)
    a.extend(10)
    b.extend(10)
    assert np.array_equal(a.batch_values("fault_latency_p99"), b.batch_values("fault_latency_p99"))
    ds = _quiet(select_cell, scenario, ["mainline", "mainline_uptodate"], SEED, mc,
                [FAULT, MEAN], 0.01)
    for name in ("fault_p99", "fault_mean"):
        assert int(ds[f"answer_{name}"]) == TIE
        assert ds[f"survivors_{name}"].values.tolist() == [True, True]
        assert float(ds[f"confidence_{name}"]) == pytest.approx(0.95)
    assert ds["batches"].values.tolist() == [10, 10]  # the first stage only


def test_a_clearly_worse_policy_loses_and_costs_only_the_first_stage():
    """legacy_hold keeps mmap_lock across the read, so behind a busy writer (2,000/s, fork-like,
    every VMA) its mean fault latency is about twice vma_retry's: the screen removes it after
    the first stage and vma_retry wins, stated at 95 %."""
    scenario = Scenario.preset("virtio_2cpu", threads=8, writer_rate=2000.0,
                               writer_fork_share=0.3, io_latency=2e-3)
    ds = _quiet(select_cell, scenario, ["legacy_hold", "vma_retry"], SEED, _settings(),
                [MEAN], 0.05)
    means = ds["fault_latency_mean"].values
    assert means[0] > 1.5 * means[1]                    # the construction holds
    assert int(ds["answer_fault_mean"]) == 1            # vma_retry
    assert ds["survivors_fault_mean"].values.tolist() == [False, True]
    assert ds["batches"].values.tolist() == [10, 10]
    assert float(ds["zone_fault_mean"]) == pytest.approx(0.05 * means[1], rel=0.3)


def test_budget_bounds_the_effort_and_undecided_keeps_the_candidates():
    """Two different policies whose p99 are close: with a zone of 0.1 % and the smallest budget
    the cell cannot be decided; every batch spent is within the budget, the answer is
    undecided and both stay in contention."""
    scenario = Scenario.preset("virtio_2cpu", threads=4, writer_rate=300.0)
    mc = _settings(budget=30)
    ds = _quiet(select_cell, scenario, ["mainline", "vma_retry"], SEED, mc, [FAULT], 0.001)
    answer = int(ds["answer_fault_p99"])
    assert answer in (UNDECIDED, 0, 1, TIE)
    assert ds["batches"].sum() <= 30
    if answer == UNDECIDED:
        assert ds["survivors_fault_p99"].values.tolist() == [True, True]
        assert 0.0 <= float(ds["confidence_fault_p99"]) <= 0.95


def test_no_observations_is_none_feasible_and_metrics_follow_each_policys_batches():
    """Without writers there is no writer latency: nothing to rank (none feasible); the stored
    metrics are those of every batch each policy ran."""
    scenario = Scenario.preset("virtio_2cpu", threads=2, writer_rate=0.0)
    ds = _quiet(select_cell, scenario, ["mainline", "vma_retry"], SEED, _settings(),
                [Objective("writer_p99", "writer_latency_p99"), JANK], 0.01)
    assert int(ds["answer_writer_p99"]) == NONE_FEASIBLE
    assert np.isnan(ds["writer_latency_p99"].values).all()
    assert int(ds["answer_jank"]) in (TIE, 0, 1)


SPEC = """
description = "selection test grid"
method = "mc"
policies = ["mainline", "vma_retry"]
seed = 5
tie_tolerance = 0.1

[base]
preset = "virtio_2cpu"

[grid]
threads = [2, 8]
writer_rate = ["0/s", "2000/s"]

[mc]
operations = 1000
batches = 5
{selection}

[objectives]
fault_p99 = "fault_latency_p99"
jank = "jank_share"
"""


def test_a_sweep_stores_answers_and_show_reports_them(tmp_path: Path):
    path = tmp_path / "sel.toml"
    path.write_text(SPEC.replace("{selection}", "[mc.selection]\nconfidence = 0.9\nbudget = 40"))
    store = tmp_path / "sel.zarr"
    _quiet(run_sweep, path, store, workers=0, progress=False)
    mc = xr.open_zarr(str(store), group="mc", consolidated=False).load()
    for name in ("fault_p99", "jank"):
        answer = mc[f"answer_{name}"].values
        assert np.array_equal(mc[f"winner_{name}"].values, answer)
        assert set(np.unique(answer)) <= {0, 1, TIE, UNDECIDED, NONE_FEASIBLE}
        assert mc[f"winner_{name}"].attrs["confidence"] == pytest.approx(0.9)
        # a winner is its only survivor; a tie keeps two
        won = answer >= 0
        assert (mc[f"survivors_{name}"].values.sum(-1)[won] == 1).all()
        assert (mc[f"survivors_{name}"].values.sum(-1)[answer == TIE] == 2).all()
    assert (mc["batches"].values >= 5).all() and (mc["batches"].sum("policy") <= 80).all()
    text = show(store)
    assert "ranking and selection (Kim & Nelson 2001" in text and "90 % confidence" in text
    assert "tie: the best policies are within the tie tolerance" in text


@pytest.mark.parametrize("selection, key, allowed", [
    ("[mc.selection]\nbudget = 9", "mc.selection.budget", "at least batches x policies = 10"),
    ("[mc.selection]\nconfidence = 1.5", "mc.selection.confidence", "[0.5, 0.999]"),
    ("[mc.selection]\nrounds = 3", "mc.selection.rounds", "confidence"),
    ("replications = 2\n[mc.selection]", "mc.replications", "1 (the selection continues"),
])
def test_selection_spec_errors(tmp_path, selection, key, allowed):
    path = tmp_path / "bad.toml"
    path.write_text(SPEC.replace("{selection}", selection))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert key in str(info.value) and allowed in str(info.value), str(info.value)


def test_the_spec_without_selection_keeps_its_fingerprint():
    """A spec without [mc.selection] fingerprints as before (stores made before resume)."""
    spec = load_spec("smoke")
    assert "selection" not in spec.mc.to_dict()
    with_selection = replace(spec.mc, selection=SelectionSettings())
    assert with_selection.to_dict()["selection"] == {"confidence": 0.95, "budget": 400}
