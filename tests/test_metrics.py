"""Tests of faultlock.model.metrics: the result contract both solvers fulfil.

Every variable ``predict`` and ``simulate`` return must be a metric of the contract (or the
``_ci`` half-width of one), carry the contract's units and long name, and have the bins the
contract gives it; the Monte Carlo's counter mapping must cover exactly the contract's estimates.
"""

from __future__ import annotations

import numpy as np
import pytest

from faultlock import Scenario
from faultlock.model import metrics
from faultlock.model.analytic import METRICS_ABSENT, predict
from faultlock.model.montecarlo import output
from faultlock.model.montecarlo.simulate import simulate
from faultlock.sweeps import spec

#: a small scenario with faults, reclaim and writers (every metric has events)
TINY = {"threads": 4, "cpus": 2, "vmas": 2, "pages_per_vma": 4096, "page_popularity": 0.5,
        "readaround_pages": 4, "reclaim": "hazard",
        "reclaim_rate_mapped": 50.0, "reclaim_rate_cached": 200.0,
        "writer_rate": 200.0, "reader_rate": 100.0}
POLICIES = ("mainline", "vma_retry")


@pytest.fixture(scope="module")
def analytic_ds():
    return predict(Scenario(**TINY), policies=POLICIES)


@pytest.fixture(scope="module")
def mc_ds():
    return simulate(Scenario(**TINY), policies=POLICIES, operations=600, batches=3, seed=1,
                    check=True)


def _check_against_contract(ds, solver: str):
    for name, var in ds.data_vars.items():
        base = name.removesuffix(metrics.CI_SUFFIX)
        assert name in metrics.METRICS or base in metrics.METRICS, \
            f"{solver}: {name} is not in the result contract"
        metric = metrics.METRICS[name if name in metrics.METRICS else base]
        if name not in metrics.METRICS:              # a half-width
            assert metric.has_ci, name
            assert var.attrs == metrics.ci_attrs(base), name
        elif metric.kind == "flag":
            assert var.dtype == bool and var.attrs["long_name"], name
        elif metric.kind == "reason":
            assert var.dtype.kind in "UOu" and var.attrs["long_name"], name
        else:
            assert var.attrs == metric.attrs, name
        assert metric.units and metric.long_name
        if metric.kind == "histogram":
            assert var.dims[-1] == metric.dim
            np.testing.assert_array_equal(ds[metric.dim].values, metric.edges)
            assert ds[metric.dim].attrs["units"] == "s"


def test_analytic_variables_are_in_the_contract(analytic_ds):
    _check_against_contract(analytic_ds, "predict")
    # what the model says it cannot give is absent, not filled (the docstring of analytic.py)
    assert all(name in metrics.METRICS for name in METRICS_ABSENT)
    assert not any(name in analytic_ds for name in METRICS_ABSENT)
    for name in metrics.names("histogram"):
        assert name in analytic_ds


def test_monte_carlo_variables_are_in_the_contract(mc_ds):
    _check_against_contract(mc_ds, "simulate")
    for name in metrics.SCALARS + metrics.names("histogram"):
        assert name in mc_ds and metrics.ci_name(name) in mc_ds, name
    for name in metrics.names("maximum", "flag", "counter"):
        assert name in mc_ds and metrics.ci_name(name) not in mc_ds, name


def test_values_obey_their_kind(mc_ds, analytic_ds):
    """Shares are probabilities, histograms sum to one, quantiles rise with their level."""
    for ds in (mc_ds, analytic_ds):
        for name in metrics.names("share"):
            if name in ds:
                values = ds[name].values
                assert np.all((values[np.isfinite(values)] >= 0)
                              & (values[np.isfinite(values)] <= 1 + 1e-12)), name
        for name in metrics.names("histogram"):
            total = ds[name].sum(metrics.METRICS[name].dim).values
            assert np.all(np.isnan(total) | (np.abs(total - 1) < 1e-9)), name
    for quantity in ("fault_latency",):
        levels = sorted((m.level, n) for n, m in metrics.QUANTILES.items()
                        if m.quantity == quantity)
        values = np.stack([mc_ds[n].values for _, n in levels])
        assert np.all(np.diff(values, axis=0) >= 0)


def test_kinds_units_and_names_are_consistent():
    unit_of_kind = {"mean": "s", "rate": "1/s", "ratio": "1", "share": "1", "population": "1",
                    "quantile": "s", "histogram": "1", "maximum": "s"}
    for name, m in metrics.METRICS.items():
        assert m.name == name and m.kind in metrics.KINDS
        if m.kind == "maximum" and m.quantity is None:     # the largest count, not a time
            assert m.units == "1", name
        elif m.kind in unit_of_kind:
            assert m.units == unit_of_kind[m.kind], name
        if m.kind == "quantile":
            digits = f"{m.level:.10g}".removeprefix("0.").ljust(2, "0")
            assert name == f"{m.quantity}_p{digits}", name
            assert 0 < m.level < 1
        if m.kind == "histogram":
            assert np.all(np.diff(m.edges) > 0) and m.edges[0] == 0.0
    assert metrics.attrs("fault_latency_p99_ci")["long_name"].startswith("95% half-width")
    assert metrics.units("fault_rate") == "1/s"
    with pytest.raises(KeyError, match="'no_such_metric'"):
        metrics.attrs("no_such_metric")
    with pytest.raises(KeyError, match="no confidence interval"):
        metrics.ci_attrs("stable")
    with pytest.raises(ValueError, match="kind='speed'"):
        metrics.names("speed")
    with pytest.raises(ValueError, match="kind='speed'"):
        metrics.Metric("x", "speed", "1", "x")


def test_monte_carlo_mapping_covers_the_contract_exactly():
    mapped = set(output.RATIOS) | set(output.QUANTILES) | set(output.MAXIMA) \
        | set(output.HISTOGRAMS)
    estimated = set(metrics.SCALARS) | set(metrics.names("maximum", "histogram"))
    assert mapped == estimated
    for name, (_, level) in output.QUANTILES.items():
        assert level == metrics.METRICS[name].level


def test_edges_are_the_published_bins():
    # decade bins [0,1) µs, [1,10) µs, ... (MODEL.md), and 5 a decade from 100 ns to 100 s
    np.testing.assert_array_equal(metrics.WAIT_DECADE_EDGES,
                                  [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    assert metrics.LATENCY_EDGES[1] == pytest.approx(1e-7)
    assert metrics.LATENCY_EDGES[-1] == pytest.approx(1e2)
    assert metrics.LATENCY_EDGES.size == 1 + 9 * metrics.LATENCY_BINS_PER_DECADE + 1


def test_sweep_objectives_read_the_contract():
    for name, units in spec.METRICS.items():
        assert units == metrics.METRICS[name].units
    assert set(spec.METRICS) == set(metrics.SCALARS) | set(metrics.names("maximum"))
