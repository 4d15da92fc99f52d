"""Arguments of the API and the command line: every bad one is refused naming it, its value and
what is allowed; grid coordinates come through both solvers; ``--help`` of every command works;
Poisson writers past ``mmap_lock``'s capacity are unstable in the Monte Carlo as in theory."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import faultlock
from faultlock.cli import DELEGATED, build_parser, main
from faultlock.model import arguments
from faultlock.model.arguments import ArgumentError, ArgumentTypeError
from faultlock.model.montecarlo import state
from faultlock.model.montecarlo.simulate import writers_past_capacity
from faultlock.model.validation import validate

#: a scenario whose runs are short: two threads reading fresh pages at random, no writers
QUICK = faultlock.Scenario(threads=2, cpus=2, vmas=1, pages_per_vma=2**20, page_popularity=0.0,
                           readaround_pages=1, writer_rate=0.0)


# -- --help of every command ----------------------------------------------------------------------

def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", [[], ["whatif"], ["validate"], *([d] for d in DELEGATED)])
def test_help_of_every_command(command):
    code, out, err = _run([*command, "--help"])
    assert code == 0, err
    assert out.startswith(f"usage: faultlock {' '.join(command)}".rstrip())
    assert not err


def test_every_subcommand_is_covered_by_the_help_test():
    parser_commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert parser_commands == {"whatif", "validate", *DELEGATED}


@pytest.mark.parametrize(("argv", "option", "shown"), [
    (["whatif", "--seed", "-1"], "--seed", "-1 is not allowed: a non-negative integer"),
    (["whatif", "--seed", "1.5"], "--seed", "1.5 is not allowed"),
    (["whatif", "--seed", "abc"], "--seed", "'abc' is not allowed: an integer"),
    (["whatif", "--operations", "0"], "--operations", "0 is not allowed: an integer in [100,"),
    (["whatif", "--batches", "1"], "--batches", "1 is not allowed: an integer in [2,"),
    (["validate", "--seed", "-5"], "--seed", "-5 is not allowed"),
    (["compare", "m.nc", "-o", "x", "--seed", "-1"], "--seed", "-1 is not allowed"),
    (["calibrate", "--douyin", "--replications", "0"], "--replications", "0 is not allowed"),
])
def test_cli_options_name_themselves(argv, option, shown):
    code, out, err = _run(argv)
    assert code == 2 and not out
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"argument {option}: {shown}" in err


# -- simulate, predict, validate: each argument checked -------------------------------------------

BAD_SIMULATE = [
    ("seed", -1, ArgumentError, "seed=-1 is not allowed: a non-negative integer"),
    ("seed", "abc", ArgumentTypeError, "seed='abc' is not allowed: .* \\(got str\\)"),
    ("seed", 1.5, ArgumentTypeError, "seed=1.5 is not allowed: .* \\(got float\\)"),
    ("seed", True, ArgumentTypeError, "seed=True is not allowed: .* \\(got a bool\\)"),
    ("policies", None, ArgumentTypeError, "policies=None is not allowed: a policy name or"),
    ("policies", [], ArgumentError, "policies=\\(\\) is not allowed"),
    ("policies", ["mainline", "mainline"], ArgumentError, "policies=.* each policy at most once"),
    ("policies", ["mainlin"], ArgumentError, "policy='mainlin' .*did you mean 'mainline'"),
    ("policies", [3], ArgumentTypeError, "policies=\\(3,\\) is not allowed: .*3 is not a str"),
    ("operations", 99, ArgumentError, "operations=99 is not allowed: an integer in \\[100,"),
    ("operations", 1e5, ArgumentTypeError, "operations=100000.0 is not allowed: .*got float"),
    ("batches", 1, ArgumentError, "batches=1 is not allowed: an integer in \\[2, 10000\\]"),
    ("replications", 0, ArgumentError, "replications=0 is not allowed"),
    ("warmup", -0.1, ArgumentError, "warmup=-0.1 is not allowed: a number in \\[0, 10\\]"),
    ("warmup", "0.2", ArgumentTypeError, "warmup='0.2' is not allowed"),
    ("max_events", 0, ArgumentError, "max_events=0 is not allowed: an integer in \\[1,"),
    ("max_events", -1, ArgumentError, "max_events=-1 is not allowed"),
    ("max_time", 0.0, ArgumentError, "max_time=0.0 is not allowed: a number \\(inf allowed\\) > 0"),
    ("max_time", float("nan"), ArgumentError, "max_time=nan is not allowed"),
    ("check", "yes", ArgumentTypeError, "check='yes' is not allowed: True or False"),
    ("rel_tolerance", -1, ArgumentError, "rel_tolerance=-1 is not allowed: a number > 0"),
    ("rel_tolerance", 0, ArgumentError, "rel_tolerance=0 is not allowed"),
    ("rel_tolerance", float("inf"), ArgumentError, "rel_tolerance=inf is not allowed"),
]


@pytest.mark.parametrize(("name", "value", "kind", "message"), BAD_SIMULATE)
def test_simulate_refuses_each_bad_argument(name, value, kind, message):
    with pytest.raises(kind, match=f"^{message}"):
        faultlock.simulate(QUICK, **{name: value})


def test_simulate_refuses_more_batches_than_operations_and_a_non_scenario():
    with pytest.raises(ArgumentError, match="^operations=100 is not allowed: at least batches"):
        faultlock.simulate(QUICK, operations=100, batches=200)
    for solver in (faultlock.simulate, faultlock.predict):
        with pytest.raises(ArgumentTypeError, match="^scenario=.* is not allowed: a faultlock"
                                                    ".Scenario \\(build one"):
            solver({"threads": 4})


@pytest.mark.parametrize(("name", "value", "message"), [
    ("policies", None, "policies=None is not allowed"),
    ("distribution", "no", "distribution='no' is not allowed: True or False"),
])
def test_predict_refuses_each_bad_argument(name, value, message):
    with pytest.raises(ArgumentError, match=f"^{message}"):
        faultlock.predict(QUICK, **{name: value})


@pytest.mark.parametrize(("name", "value", "message"), [
    ("seed", -2, "seed=-2 is not allowed"),
    ("operations", 10, "operations=10 is not allowed"),
    ("policies", "nope", "policy='nope' is not allowed"),
    ("scenarios", [], "scenarios=\\[\\] is not allowed"),
    ("scenarios", 3, "scenarios=3 is not allowed"),
])
def test_validate_refuses_each_bad_argument_before_solving(name, value, message):
    with pytest.raises(ArgumentError, match=f"^{message}"):
        validate(**{"scenarios": QUICK, name: value})


def test_argument_errors_are_value_errors_and_type_errors_where_the_type_is_wrong():
    assert issubclass(ArgumentError, ValueError)
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)
    assert faultlock.ArgumentError is ArgumentError
    with pytest.raises(ArgumentError):          # Scenario fields raise the same class
        faultlock.Scenario(swap_share=2)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(max_value=99), st.integers(min_value=10**12 + 1)))
def test_operations_out_of_range_are_named(value):
    with pytest.raises(ArgumentError, match=f"^operations={value} is not allowed: an integer"):
        arguments.check_integer("operations", value, low=100, high=10**12)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_a_non_negative_integer_seed_is_its_seed_sequence(value):
    assert arguments.check_seed("seed", value).entropy == value
    assert arguments.check_seed("seed", np.uint64(value % 2**64)).entropy == value % 2**64


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=5), st.booleans(),
                 st.none(), st.lists(st.integers(), max_size=2)))
def test_anything_else_is_not_a_seed(value):
    with pytest.raises(ArgumentError, match="^seed=.* is not allowed: a non-negative integer or "
                                            "a numpy.random.SeedSequence"):
        arguments.check_seed("seed", value)


@settings(max_examples=80, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_positive_finite_reals_and_nothing_else(value):
    ok = np.isfinite(value) and value > 0
    if ok:
        assert arguments.check_real("rel_tolerance", value, low=0, low_open=True) == value
    else:
        with pytest.raises(ArgumentError, match="^rel_tolerance=.* is not allowed: a number > 0"):
            arguments.check_real("rel_tolerance", value, low=0, low_open=True)


# -- grid dimensions and their coordinates --------------------------------------------------------

def test_a_dimension_named_after_another_field_is_refused():
    with pytest.raises(ArgumentError, match="^threads=<DataArray {'io_latency': 4}> is not "
                                            "allowed: its dimension 'io_latency' is named after "
                                            "the field io_latency, which does not vary along it"):
        QUICK.replace(threads=xr.DataArray([50, 100, 200, 400], dims="io_latency"))
    # ... unless that field is swept along it too: cpus follow threads
    both = QUICK.replace(threads=xr.DataArray([2, 4], dims="threads"),
                         cpus=xr.DataArray([1, 2], dims="threads"))
    assert both.coords["threads"].tolist() == [2, 4]
    with pytest.raises(ArgumentError, match="dimension 'policy' is a dimension of the solvers"):
        QUICK.replace(threads=xr.DataArray([2, 4], dims="policy"))


def test_own_dimension_needs_distinct_values_to_label_it():
    with pytest.raises(ArgumentError, match="^threads=.* must vary along 'threads' only and be "
                                            "distinct"):
        QUICK.replace(threads=xr.DataArray([4, 4], dims="threads"))
    labelled = QUICK.replace(threads=xr.DataArray([4, 4], dims="threads",
                                                  coords={"threads": ["a", "b"]}))
    assert labelled.coords["threads"].tolist() == ["a", "b"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1_000_000), min_size=1, max_size=8,
                unique=True),
       st.sampled_from(["threads", "n"]))
def test_an_unlabelled_dimension_is_labelled_by_the_values_in_their_order(values, dim):
    grid = faultlock.Scenario(threads=xr.DataArray(values, dims=dim))
    assert grid.coords[dim].tolist() == values
    assert [labels[dim] for labels, _ in grid.cells()] == values
    assert [cell.threads for _, cell in grid.cells()] == values


def test_shared_unlabelled_dimension_is_labelled_by_position():
    grid = faultlock.Scenario(reclaim="hazard",
                              reclaim_rate_cached=xr.DataArray([10.0, 100.0], dims="pressure"),
                              reclaim_rate_mapped=xr.DataArray([1.0, 1.0], dims="pressure"))
    assert grid.coords["pressure"].tolist() == [0, 1]


def test_both_solvers_carry_the_grid_coordinates_in_the_order_given():
    threads = [4, 1, 2]                       # not sorted: kept as given
    grid = QUICK.replace(threads=xr.DataArray(threads, dims="threads"),
                         io_latency=xr.DataArray([1e-3, 50e-6], dims="io_latency"))
    analytic = faultlock.predict(grid, ["mainline"], distribution=False)
    mc = faultlock.simulate(grid, ["mainline"], operations=200, batches=2, seed=1)
    for ds in (analytic, mc):
        assert ds["threads"].values.tolist() == threads
        assert ds["io_latency"].values.tolist() == [1e-3, 50e-6]
    # each cell is labelled where it was run: more threads, more faults per second
    rates = mc.fault_rate.sel(policy="mainline", io_latency=1e-3)
    assert float(rates.sel(threads=4)) > float(rates.sel(threads=1))


# -- Poisson writers past capacity ----------------------------------------------------------------

def _stats(time: float, writer_ops: float) -> np.ndarray:
    stats = np.zeros((2, state.N_S))
    stats[:, state.S_TIME] = time / 2
    stats[:, state.S_WRITER_OPS] = writer_ops / 2
    return stats


def test_backlog_rule_by_hand():
    """Flow conservation: writers arrive at writer_rate; a run that let through as many (within
    the Poisson spread of the arrivals) is stable, one that let through a tenth is not; and a
    hold alone at or beyond capacity is unstable whatever the counts."""
    s = faultlock.Scenario(writer_rate=1000.0, writer_hold=100e-6)
    assert not writers_past_capacity(s, _stats(10.0, 10_000 - 3 * 100))   # 3 sd short
    assert writers_past_capacity(s, _stats(10.0, 1_000))
    assert writers_past_capacity(s.replace(writer_hold=1e-3), _stats(10.0, 10_000))
    threads = s.replace(writer_mode="periodic", writer_rate=0.0, writer_threads=1,
                        writer_op_rate=500.0)
    assert not writers_past_capacity(threads, _stats(10.0, 0.0))   # a closed loop cannot pile up


def test_writers_ten_times_over_capacity_are_unstable():
    """writer_rate * writer_hold = 10: both solvers say unstable and give no finite time."""
    s = QUICK.replace(writer_rate=5000.0, writer_hold=2e-3)
    mc = faultlock.simulate(s, ["mainline"], operations=2000, seed=2)
    analytic = faultlock.predict(s, ["mainline"], distribution=False)
    for ds in (mc, analytic):
        assert not bool(ds.stable.item())
        assert np.isinf(ds.fault_latency_mean.item())


#: writers that queue with no spinning: each handoff wakes the next writer, which then holds the
#: lock for a deterministic writer_hold, so a saturated mmap_lock serves 1 / (hold + wake-up)
SATURABLE = {"threads": 2, "cpus": 8, "vmas": 1, "pages_per_vma": 4096, "writer_hold": 100e-6,
             "writer_hold_distribution": "deterministic", "writer_hold_cv": 0.0,
             "wakeup_latency": 100e-6, "writer_spin": False, "writer_vma_share": 0.0}


def test_capacity_of_queued_writers_is_one_over_hold_plus_wakeup():
    """Below 1 / (writer_hold + wakeup_latency) = 5000/s the writers are stable and all served;
    at 8000/s (writer_rate * writer_hold = 0.8, but 1.6 times the capacity) the backlog grows:
    the run serves writers at the capacity and says unstable."""
    capacity = 1 / (SATURABLE["writer_hold"] + SATURABLE["wakeup_latency"])
    below = faultlock.simulate(faultlock.Scenario(**SATURABLE, writer_rate=0.6 * capacity),
                               ["mainline"], operations=20_000, seed=3).isel(policy=0)
    assert bool(below.stable)
    rate, ci = float(below.writer_ops_rate), float(below.writer_ops_rate_ci)
    assert abs(rate - 0.6 * capacity) <= 2 * ci + 0.01 * capacity
    over = faultlock.simulate(faultlock.Scenario(**SATURABLE, writer_rate=1.6 * capacity),
                              ["mainline"], operations=20_000, seed=3).isel(policy=0)
    assert not bool(over.stable)
    assert float(over.writer_ops_rate) == pytest.approx(capacity, rel=0.02)
    assert np.isinf(float(over.writer_latency_mean))
