"""The device's tail (issue 14): reads held up by the host, a rare slow component.

A read is B + S: B the body (``io_distribution``, ``io_latency``, ``io_latency_cv``), S = 0 with
probability 1 - ``io_stall_share`` and otherwise log-normal (``io_stall_latency``,
``io_stall_cv``). Checks:

* the law's CDF against draws, within the binomial confidence band of an empirical quantile: for
  n draws the empirical p-quantile x_p has F(x_p) within p +- z sqrt(p (1 - p) / n);
* the engine's draw (``montecarlo/rng.stall``) against the same band;
* the mean and cv against their closed form;
* the fit recovers known parameters from the percentiles they imply at every depth;
* a bad field is refused by name.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

import faultlock
from faultlock.model import laws
from faultlock.model.montecarlo import rng as engine_rng

calibrate = importlib.import_module("faultlock.measure.calibrate")

Z = 4.5                      # half-width of the band in standard errors (~7e-6 two-sided each)
LEVELS = np.array([0.5, 0.9, 0.98, 0.99, 0.995, 0.999])
BODY = ("lognormal", 50e-6, 0.25)
STALL = (0.015, 2.5e-3, 0.6)


def _band(x: np.ndarray) -> None:
    """The law's CDF at the empirical quantiles of the draws ``x`` is within the band."""
    n = x.size
    empirical = np.quantile(x, LEVELS)
    at = np.asarray(laws.stall_cdf(empirical, *BODY, *STALL))
    half = Z * np.sqrt(LEVELS * (1 - LEVELS) / n)
    assert np.all(np.abs(at - LEVELS) <= half + 1e-3 / n), (at, LEVELS, half)


def test_numpy_draws_match_the_law():
    x = laws.sample_stalled(np.random.default_rng(7), 200_000, *BODY, *STALL)
    _band(x)
    # and the quantile function inverts the CDF
    q = laws.stall_quantile(LEVELS, *BODY, *STALL)
    assert np.asarray(laws.stall_cdf(q, *BODY, *STALL)) == pytest.approx(LEVELS, abs=2e-4)


def test_engine_draws_match_the_law():
    n = 50_000
    states = engine_rng.seed_streams(np.random.SeedSequence(5), 1)
    body = np.array([engine_rng.sample_law(states, 0, laws.LAW_CODES["lognormal"], BODY[1],
                                           BODY[2]) for _ in range(n)])
    stall = np.array([engine_rng.stall(states, 0, *STALL) for _ in range(n)])
    _band(body + stall)
    share = float(np.mean(stall > 0))
    assert abs(share - STALL[0]) <= Z * math.sqrt(STALL[0] * (1 - STALL[0]) / n)
    # no stalls: nothing drawn, so a run without them keeps its random numbers
    before = states.copy()
    assert engine_rng.stall(states, 0, 0.0, 1e-3, 0.5) == 0.0
    assert np.array_equal(states, before)


def test_mean_and_cv():
    mean, cv = laws.stall_mean_cv(BODY[1], BODY[2], *STALL)
    share, m_s, cv_s = STALL
    assert mean == pytest.approx(BODY[1] + share * m_s, rel=1e-12)
    second = (BODY[1] ** 2 * (1 + BODY[2] ** 2) + 2 * BODY[1] * share * m_s
              + share * m_s**2 * (1 + cv_s**2))
    assert (cv * mean) ** 2 == pytest.approx(second - mean**2, rel=1e-12)


def test_without_stalls_the_law_is_the_body():
    q = laws.stall_quantile(LEVELS, *BODY, 0.0, 1e-3, 0.5)
    assert q == pytest.approx(laws.quantile(*BODY, LEVELS), rel=1e-12)


@pytest.mark.parametrize("share, stall_mean, stall_cv", [(0.015, 3e-3, 0.5), (0.004, 1e-3, 0.3)])
def test_the_fit_recovers_known_parameters(share, stall_mean, stall_cv):
    """With share > 1 % the p99 falls inside the stalls and pins their spread; below it only the
    share and the mean are pinned (p99 and the mean), the cv is not (four statistics)."""
    depths = np.array([1, 2, 4, 8, 16, 32])
    io_mean, io_cv, slope = 52e-6, 0.2, 10e-6
    truth = calibrate.device_tail_predictions(depths, io_mean, io_cv, slope, share, stall_mean,
                                              stall_cv)
    fit = calibrate.fit_device_tail(depths, truth, io_mean, io_cv, slope)
    assert fit["rms"] < 1e-3
    assert fit["io_stall_share"] == pytest.approx(share, rel=0.03)
    assert fit["io_stall_latency"] == pytest.approx(stall_mean, rel=0.03)
    if share > 0.01:
        assert fit["io_stall_cv"] == pytest.approx(stall_cv, rel=0.15)
    assert fit["rms_without_stalls"] > 10 * fit["rms"]


@pytest.mark.parametrize("field, value", [("io_stall_share", 1.0), ("io_stall_share", -0.1),
                                          ("io_stall_latency", 0.0), ("io_stall_cv", -1.0)])
def test_bad_fields_are_refused_by_name(field, value):
    with pytest.raises(faultlock.ArgumentError, match=field):
        faultlock.Scenario(**{field: value})
