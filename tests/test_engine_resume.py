"""A Monte Carlo run continued batch by batch (``simulate.Run``): the same numbers as one run.

Ranking and selection gives more batches only to the policies still in contention; that is sound
only if a continued run is the run that never stopped (bit for bit), if batch ``j`` of two
policies is a common-random-numbers pair, and if the pooled results of runs of unequal lengths are
what ``simulate`` reports for each length alone.
"""

import numpy as np
import pytest

import faultlock
from faultlock import Scenario
from faultlock.model import metrics
from faultlock.model.montecarlo import output, state
from faultlock.model.montecarlo.simulate import Run, results_dataset, run_policy, simulate
from faultlock.sweeps.replications import batch_sampler

BATCH = 100
WARMUP = 600
#: scenarios that exercise the engine's parts: Poisson writers on mmap_lock, the LRU lists under
#: a memory limit (reclaim, refaults), rounds of mmap/munmap (rounds.py, fault-around, holes)
SCENARIOS = {
    "writers": Scenario(threads=8, writer_rate=200.0),
    "memory_limit": Scenario(threads=8, reclaim="lru", memory_limit=2000, vmas=4,
                             pages_per_vma=4096),
    "file_rounds": Scenario(threads=4, access_pattern="file_rounds", vmas=4, pages_per_vma=256),
}
#: the counter each scenario must have used, so that the comparison covers its part
EXERCISED = {"writers": state.S_WRITERS_DONE, "memory_limit": state.S_RECLAIMS,
             "file_rounds": state.S_ROUNDS}
POLICIES = ("mainline", "vma_retry", "vma_wait")


def _run(scenario, policy, seed=7, *, capacity=40, **kw):
    return Run(scenario, policy, np.random.SeedSequence(seed), batch_operations=BATCH,
               warmup_operations=WARMUP, capacity=capacity, **kw)


def _fixed(scenario, policy, batches, seed=7, **kw):
    """``run_policy`` with the same batch size and warm-up as ``_run``."""
    kw = {"max_events": 10**9, "max_time": np.inf, "check": False, **kw}
    return run_policy(scenario, policy, np.random.SeedSequence(seed), operations=BATCH * batches,
                      batches=batches, warmup=WARMUP / (BATCH * batches), **kw)


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_run_extended_in_steps_is_the_run_that_never_stopped(name):
    scenario = SCENARIOS[name]
    for policy in POLICIES:
        run = _run(scenario, policy)
        assert [run.extend(n) for n in (5, 5, 10)] == [5, 10, 20]
        S, summary = _fixed(scenario, policy, 20)
        assert summary["completed"] and not run.stopped
        assert run.stats.shape == (20, state.N_S)
        assert np.array_equal(run.stats, S.stats) and np.array_equal(run.hist, S.hist), policy
        assert run.stats[:, EXERCISED[name]].sum() > 0, (name, policy)
        assert run.engine_summary()["events"] == summary["events"]


def test_an_early_stop_keeps_its_partial_batch_as_a_single_run_does():
    """An event budget that ends the run inside batch 12: the partial batch gets its elapsed
    time (stats.close_open_batch) in both, and nothing after it is counted."""
    scenario = SCENARIOS["writers"]
    S, summary = _fixed(scenario, "vma_retry", 20, max_events=9000)
    run = _run(scenario, "vma_retry", max_events=9000)
    run.extend(5)
    done = run.extend(15)
    assert not summary["completed"] and run.stopped and run.stop_reason == "max_events"
    assert 0 < done < 20 and run.batches_done == done
    measured = S.stats[:, state.S_TIME] > 0
    stats, hist = run.measured()
    assert len(stats) == done + 1                       # the complete batches and the partial one
    assert np.array_equal(stats, S.stats[measured]) and np.array_equal(hist, S.hist[measured])
    assert run.extend(3) == done                         # a stopped run stays where it is


def test_common_random_numbers_pair_batch_j_of_two_policies():
    scenario = SCENARIOS["writers"]
    same = [_run(scenario, "vma_wait", seed=11) for _ in range(2)]
    for run in same:
        run.extend(30)
    assert np.array_equal(same[0].stats, same[1].stats)
    runs = {p: _run(scenario, p, seed=11) for p in ("mainline", "vma_wait")}
    means = {}
    for p, run in runs.items():
        run.extend(30)
        means[p] = run.batch_values("fault_latency_mean")
    assert not np.array_equal(means["mainline"], means["vma_wait"])
    # the same think times, pages and I/O latencies drive both: their batch means move together
    # (0.99 here; 0.25 with independent seeds)
    assert np.corrcoef(means["mainline"], means["vma_wait"])[0, 1] > 0.7


def test_results_of_runs_of_unequal_lengths_are_simulates_for_each_length():
    scenario = SCENARIOS["writers"]
    root = np.random.SeedSequence(21)
    child = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + (0,))
    lengths = {"mainline": 12, "vma_retry": 20}
    runs = {}
    for policy, n in lengths.items():
        runs[policy] = Run(scenario, policy, child, batch_operations=BATCH,
                           warmup_operations=WARMUP, capacity=30)
        runs[policy].extend(n)
    ds = results_dataset(scenario, runs, seed=root)
    assert list(ds.policy.values) == list(lengths)
    assert ds.attrs["policy_batches"] == "mainline=12, vma_retry=20"
    for policy, n in lengths.items():
        alone = simulate(scenario, [policy], seed=root, operations=BATCH * n, batches=n,
                         warmup=WARMUP / (BATCH * n))
        for name in alone.data_vars:
            if name == "wall_time":
                continue
            mine = ds[name].sel(policy=policy).values
            assert np.array_equal(mine, alone[name].sel(policy=policy).values,
                                  equal_nan=mine.dtype.kind == "f"), (policy, name)


def test_batch_values_are_each_batchs_ratio_and_quantile():
    run = _run(SCENARIOS["file_rounds"], "mainline")
    run.extend(8)
    stats = run.stats
    expected = stats[:, state.S_LATENCY_SUM] / stats[:, state.S_FAULTS]
    assert np.array_equal(run.batch_values("fault_latency_mean"), expected)
    assert np.array_equal(run.batch_values("fault_latency_mean", 2, 5), expected[2:5])
    # the rounds' munmap and mmap are the only writers: most batches have none (NaN, not 0)
    done = stats[:, state.S_WRITERS_DONE]
    assert (done == 0).any() and (done > 0).any()
    writer = run.batch_values("writer_latency_mean")
    assert np.array_equal(np.isnan(writer), done == 0)
    assert np.array_equal(writer[done > 0], stats[done > 0, state.S_WRITER_LATENCY_SUM]
                          / done[done > 0])
    level = metrics.METRICS["fault_latency_p99"].level
    hist = run.hist[:, state.H_FAULT_LATENCY, :]
    by_hand = [output.quantile_from_hist(hist[j], level) for j in range(8)]
    assert np.array_equal(run.batch_values("fault_latency_p99"), by_hand)
    assert 0 < min(by_hand) <= max(by_hand) < 1.0


def test_an_overloaded_run_stops_and_reports_no_finite_latency():
    # writers that hold mmap_lock for 2 ms arriving 1,000 times a second: offered load 2
    run = _run(Scenario(threads=4, writer_rate=1000.0, writer_hold=2e-3), "mainline")
    run.extend(10)
    assert run.summary["overloaded"]
    assert np.isinf(run.batch_values("fault_latency_p99")).all()
    assert np.isinf(run.batch_values("writer_latency_mean")).all()
    assert np.isfinite(run.batch_values("fault_rate")).all()       # a rate is not a latency


def test_capacity_bounds_a_run_and_close_keeps_its_batches():
    run = _run(SCENARIOS["writers"], "mainline", capacity=6)
    assert run.extend(4) == 4 and not run.stopped
    assert run.extend(5) == 6
    assert run.stopped and run.capacity_reached and run.stop_reason == "capacity"
    assert run.extend(5) == 6
    stats = run.stats.copy()
    summary = run.summary
    run.close()
    assert run.state is None and np.array_equal(run.stats, stats)
    assert run.summary == summary and run.extend(1) == 6
    S, _ = _fixed(SCENARIOS["writers"], "mainline", 6)
    assert np.array_equal(stats, S.stats)


@pytest.mark.parametrize("field, kwargs, match", [
    ("batch_operations", {"batch_operations": 0}, "batch_operations=0"),
    ("capacity", {"capacity": 0}, "capacity=0"),
    ("warmup_operations", {"warmup_operations": -1}, "warmup_operations=-1"),
    ("policy", {"policy": "mainlin"}, "policy='mainlin'"),
    ("max_time", {"max_time": 0.0}, "max_time=0"),
    ("scenario", {"scenario": {"threads": 4}}, "scenario="),
])
def test_bad_arguments_name_the_field(field, kwargs, match):
    args = {"scenario": SCENARIOS["writers"], "policy": "mainline",
            "seed": np.random.SeedSequence(1), "batch_operations": BATCH,
            "warmup_operations": WARMUP, "capacity": 4, **kwargs}
    with pytest.raises(faultlock.ArgumentError, match=match):
        Run(args.pop("scenario"), args.pop("policy"), args.pop("seed"), **args)


def test_bad_calls_name_the_field():
    run = _run(SCENARIOS["writers"], "mainline", capacity=4)
    with pytest.raises(faultlock.ArgumentError, match="batches=-1"):
        run.extend(-1)
    run.extend(2)
    with pytest.raises(faultlock.ArgumentError, match="metric='latency'"):
        run.batch_values("latency")
    with pytest.raises(faultlock.ArgumentError, match="stop=3"):
        run.batch_values("fault_rate", 0, 3)
    other = Run(SCENARIOS["writers"], "vma_wait", np.random.SeedSequence(1),
                batch_operations=2 * BATCH, warmup_operations=WARMUP, capacity=4)
    other.extend(1)
    with pytest.raises(faultlock.ArgumentError, match="runs"):
        results_dataset(SCENARIOS["writers"], {"mainline": run, "vma_wait": other}, seed=1)
    with pytest.raises(faultlock.ArgumentError, match="runs\\['vma_wait'\\]"):
        results_dataset(SCENARIOS["writers"], {"vma_wait": run}, seed=1)


def test_batch_sampler_hands_out_each_runs_next_batches():
    scenario = SCENARIOS["writers"]
    runs = {p: _run(scenario, p, seed=5) for p in ("mainline", "vma_wait")}
    sample = batch_sampler(runs, "fault_latency_mean")
    first = sample(["mainline", "vma_wait"], 3)
    later = sample(["vma_wait"], 2)
    assert first.shape == (2, 3) and later.shape == (1, 2)
    assert sample.batches == {"mainline": 3, "vma_wait": 5}
    assert runs["mainline"].batches_done == 3 and runs["vma_wait"].batches_done == 5
    values = runs["vma_wait"].batch_values("fault_latency_mean")
    assert np.array_equal(np.concatenate([first[1], later[0]]), values)
    with pytest.raises(faultlock.ArgumentError, match="metric='latency'"):
        batch_sampler(runs, "latency")
