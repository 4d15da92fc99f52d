"""Tests of faultlock.model.laws: each law against its definition, scipy.stats, numerical
integration and the Monte Carlo engine's own sampler.

Every reference is independent of the module: moments and quantiles from ``scipy.stats``,
transforms from ``scipy.integrate.quad`` of the density, and sample means of the compiled draws
within their confidence intervals (a fixed seed; the bound is 4 standard errors).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numba import njit
from scipy import integrate, stats

from faultlock.model import laws
from faultlock.model.laws import Law, LawError
from faultlock.model.montecarlo import rng

#: (law, mean, cv) cases: a read time in µs, a writer hold, a heavy tail
CASES = [("exponential", 2e-4, 1.0), ("gamma", 1e-4, 0.5), ("gamma", 3.0, 2.5),
         ("lognormal", 1e-4, 0.5), ("lognormal", 2.0, 2.0), ("deterministic", 5e-5, 0.0)]
SCIPY = {"exponential": lambda m, cv: stats.expon(scale=m),
         "gamma": lambda m, cv: stats.gamma(cv**-2, scale=m * cv**2),
         "lognormal": lambda m, cv: stats.lognorm(np.sqrt(np.log1p(cv**2)),
                                                  scale=m / np.sqrt(1 + cv**2))}


# ------------------------------------------------------------------------------------------
# Moments and parameters
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, mean, cv", CASES)
def test_moments_are_the_requested_mean_and_cv(name, mean, cv):
    law = Law(name, mean, cv)
    assert law.mean == mean and law.cv == cv
    assert law.var() == pytest.approx((cv * mean) ** 2, rel=1e-15)
    if name == "deterministic":
        return
    ref = law.scipy()
    assert ref.mean() == pytest.approx(mean, rel=1e-12)
    assert ref.std() == pytest.approx(cv * mean, rel=1e-12)
    assert law.std() == pytest.approx(ref.std(), rel=1e-12)


def test_params_against_scipy_vectorised():
    mean, cv = np.array([1e-4, 2.0, 5.0]), np.array([0.3, 1.0, 4.0])
    mu, sigma = laws.lognormal_params(mean, cv)
    dist = stats.lognorm(s=sigma, scale=np.exp(mu))
    np.testing.assert_allclose(dist.mean(), mean, rtol=1e-12)
    np.testing.assert_allclose(dist.std() / dist.mean(), cv, rtol=1e-12)
    shape, scale = laws.gamma_params(mean, cv)
    dist = stats.gamma(a=shape, scale=scale)
    np.testing.assert_allclose(dist.mean(), mean, rtol=1e-12)
    np.testing.assert_allclose(dist.std() / dist.mean(), cv, rtol=1e-12)
    assert Law("gamma", mean, cv).params[0] == pytest.approx(shape)
    np.testing.assert_array_equal(Law("lognormal", mean, cv).params[1], sigma)


def test_exponential_and_deterministic_fix_their_cv():
    assert Law("exponential", 1.0, 0.2).cv == 1.0
    assert Law("exp", 1.0).cv == 1.0
    assert Law("deterministic", 1.0, 3.0).cv == 0.0
    assert Law("det", 2.0).var() == 0.0


def test_compiled_parameter_maps_are_the_numpy_ones_bit_for_bit():
    """The engine's sampler and the analytic side use the same (mu, sigma) and (shape, scale)."""
    mean = np.array([1e-7, 1e-4, 0.3, 2.0, 50.0])
    cv = np.array([0.05, 0.5, 1.0, 2.5, 30.0])
    mu, sigma = laws.lognormal_params(mean, cv)
    shape, scale = laws.gamma_params(mean, cv)
    for i in range(mean.size):
        assert laws.lognormal_mu_sigma(mean[i], cv[i]) == (mu[i], sigma[i])
        assert laws.gamma_shape_scale(mean[i], cv[i]) == (shape[i], scale[i])


# ------------------------------------------------------------------------------------------
# Distribution functions
# ------------------------------------------------------------------------------------------

LEVELS = np.array([1e-6, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999999])


@pytest.mark.parametrize("name, mean, cv", [c for c in CASES if c[0] != "deterministic"])
def test_ppf_against_scipy_and_cdf_inverts_it(name, mean, cv):
    law = Law(name, mean, cv)
    ref = SCIPY[name](mean, cv)
    q = law.ppf(LEVELS)
    np.testing.assert_allclose(q, ref.ppf(LEVELS), rtol=1e-9)
    np.testing.assert_allclose(law.cdf(q), LEVELS, rtol=1e-9)
    np.testing.assert_allclose(law.sf(q), 1 - LEVELS, rtol=1e-9)
    t = mean * np.logspace(-3, 2, 11)
    np.testing.assert_allclose(law.cdf(t), ref.cdf(t), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(law.cdf(t) + law.sf(t), 1.0, rtol=1e-14)
    assert law.quantile(0.5) == law.ppf(0.5)
    assert law.ppf(0.0) == 0.0


def test_vectorised_over_mean_cv_and_levels():
    mean = np.array([[1e-4], [2e-4]])
    cv = np.array([[0.5], [1.5]])
    q = laws.quantile("lognormal", mean, cv, LEVELS[None, :])
    assert q.shape == (2, LEVELS.size)
    for i in range(2):
        np.testing.assert_array_equal(q[i], Law("lognormal", mean[i, 0], cv[i, 0]).ppf(LEVELS))
    assert np.all(np.diff(q, axis=1) > 0)
    assert isinstance(Law("gamma", 1.0, 0.5).cdf(1.0), float)


def test_sum_of_n_matches_its_mean_and_variance():
    for name, mean, cv in CASES:
        law = Law(name, mean, cv)
        for n in (1, 2, 5):
            total = law.sum_of(n)
            assert total.mean == pytest.approx(n * mean, rel=1e-15)
            assert total.var() == pytest.approx(n * law.var(), rel=1e-12)
    # exact for the exponential: the sum of two is a gamma of shape 2 (Erlang)
    total = Law("exponential", 2.0).sum_of(2)
    assert total.name == "gamma"
    np.testing.assert_allclose(total.ppf(LEVELS), stats.gamma(2.0, scale=2.0).ppf(LEVELS),
                               rtol=1e-9)
    # and for the gamma: shape n / cv^2
    np.testing.assert_allclose(Law("gamma", 1.0, 0.5).sum_of(3).cdf(LEVELS * 10),
                               stats.gamma(12.0, scale=0.25).cdf(LEVELS * 10), rtol=1e-12)
    assert laws.sum_of_reads("exponential", np.array([1.0, 1.0]), 4)[0] == "gamma"


def test_sum_of_gamma_against_simulated_sums():
    rng_ = np.random.default_rng(20261204)
    law = Law("gamma", 1.0, 2.0)
    shape, scale = law.params
    sums = rng_.gamma(shape, scale, size=(200_000, 3)).sum(axis=1)
    for p in (0.1, 0.5, 0.9):
        # the sample p-quantile's 95 % band from the binomial count below it
        below = np.mean(sums <= law.sum_of(3).ppf(p))
        assert abs(below - p) < 4 * np.sqrt(p * (1 - p) / sums.size)


# ------------------------------------------------------------------------------------------
# Laplace-Stieltjes transform
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, mean, cv", [c for c in CASES if c[0] != "deterministic"])
def test_lst_against_quadrature_of_the_density(name, mean, cv):
    ref = SCIPY[name](mean, cv)
    law = Law(name, mean, cv)
    # integrate in log t, piecewise, between quantiles 1e-15 and 1 - 1e-16 (the mass left out
    # bounds the error): the density is spread over many decades for the heavy tails
    edges = np.linspace(np.log(ref.ppf(1e-15)), np.log(ref.isf(1e-16)), 41)
    for s_mean in (1e-3, 0.3, 1.0, 7.0, 100.0):
        s = s_mean / mean

        def integrand(u, s=s):
            return np.exp(-s * np.exp(u)) * ref.pdf(np.exp(u)) * np.exp(u)

        value = sum(integrate.quad(integrand, a, b, epsabs=1e-16, epsrel=1e-12)[0]
                    for a, b in itertools.pairwise(edges))
        assert law.lst(s) == pytest.approx(value, rel=1e-8, abs=1e-13)
        assert law.lst(s, complement=True) == pytest.approx(1 - value, rel=1e-8, abs=1e-13)


@pytest.mark.parametrize("cv", [0.2, 1.0, 3.0, 30.0])
@pytest.mark.parametrize("s_mean", [1e-3, 0.5, 4.0, 1e3])
def test_lst_lognormal_against_quadrature_in_z(cv, s_mean):
    mu, sigma = laws.lognormal_params(1.0, cv)

    def integrand(z):
        return np.exp(-s_mean * np.exp(mu + sigma * z)) * stats.norm.pdf(z)

    edges = np.linspace(-12, 12, 49)
    ref = sum(integrate.quad(integrand, a, b, epsabs=1e-17, epsrel=1e-13)[0]
              for a, b in itertools.pairwise(edges))
    assert laws.lst("lognormal", 1.0, cv, s_mean) == pytest.approx(ref, abs=1e-13, rel=1e-11)


def test_lst_closed_forms():
    s = np.logspace(-6, 6, 61)
    mean = 3e-4
    np.testing.assert_allclose(laws.lst("gamma", mean, 1.0, s),
                               laws.lst("exponential", mean, 1.0, s), rtol=1e-14)
    np.testing.assert_allclose(laws.lst("exponential", mean, 1.0, s), 1 / (1 + s * mean),
                               rtol=1e-15)
    # the moment generating function (negative s): finite below 1/scale, inf beyond
    assert laws.lst("exponential", 1.0, 1.0, -0.5) == pytest.approx(2.0)
    assert laws.lst("exponential", 1.0, 1.0, -1.5) == np.inf
    assert laws.lst("lognormal", 1.0, 0.5, -0.1) == np.inf


@pytest.mark.parametrize("name", laws.LAWS)
def test_lst_complement_has_no_cancellation(name):
    s = np.logspace(-12, 3, 16)
    comp = laws.lst(name, 1.0, 0.7, s, complement=True)
    np.testing.assert_allclose(comp[s > 1e-3], 1 - laws.lst(name, 1.0, 0.7, s)[s > 1e-3],
                               rtol=1e-12)
    small = s < 1e-9  # 1 - W*(s) ~ s E[W]
    np.testing.assert_allclose(comp[small], s[small], rtol=1e-6)


def test_lst_vectorised_broadcasting():
    mean = np.array([[1e-3], [2e-3]])
    s = np.array([0.0, 10.0, 1e3])
    out = laws.lst("lognormal", mean, 1.5, s)
    assert out.shape == (2, 3)
    assert np.all(out[:, 0] == pytest.approx(1.0, rel=1e-14))
    for i in range(2):
        for j in range(3):
            assert out[i, j] == pytest.approx(laws.lst("lognormal", mean[i, 0], 1.5, s[j]),
                                              rel=1e-14)
    assert isinstance(laws.lst("gamma", 1.0, 0.5, 1.0), float)


# ------------------------------------------------------------------------------------------
# The engine's sampler draws these laws
# ------------------------------------------------------------------------------------------

@njit(cache=True)
def _engine_draws(states, law, mean, cv, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.sample_law(states, 0, law, mean, cv)
    return out


@pytest.mark.parametrize("name, mean, cv", CASES)
def test_engine_sampler_draws_the_law(name, mean, cv):
    law = Law(name, mean, cv)
    states = rng.seed_streams(np.random.SeedSequence(20261204), 1)
    x = _engine_draws(states, *law.engine_parameters(), 200_000)
    n = x.size
    if name == "deterministic":
        assert np.all(x == mean)
        return
    # the sample mean within 4 standard errors
    assert abs(x.mean() - mean) < 4 * x.std(ddof=1) / np.sqrt(n)
    # the sample variance within 4 standard errors (its se from the fourth central moment)
    var = x.var(ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    se_var = np.sqrt(max(m4 - var**2, 0.0) / n)
    if cv <= 1.0:                       # lighter tails: the variance estimate is reliable
        assert abs(var - law.var()) < 4 * se_var
    # E[exp(-s X)] against the transform, at s = 1/mean
    y = np.exp(-x / mean)
    assert abs(y.mean() - law.lst(1 / mean)) < 4 * y.std(ddof=1) / np.sqrt(n)
    # and the law's cdf at its quartiles (binomial counts)
    for p in (0.25, 0.5, 0.75):
        assert abs(np.mean(x <= law.ppf(p)) - p) < 4 * np.sqrt(p * (1 - p) / n)


# ------------------------------------------------------------------------------------------
# Limits
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gamma", "lognormal"])
def test_cv_zero_is_the_deterministic_law(name):
    s = np.array([0.0, 0.1, 1.0, 7.0])
    law = Law(name, 2.0, 0.0)
    np.testing.assert_allclose(law.lst(s), np.exp(-2 * s), rtol=1e-14)
    np.testing.assert_array_equal(law.ppf(LEVELS), np.full(LEVELS.shape, 2.0))
    np.testing.assert_array_equal(law.cdf([1.999, 2.0, 2.001]), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(law.sf([1.999, 2.0]), [1.0, 0.0])
    assert law.var() == 0.0
    # and the law tends to it continuously
    near = Law(name, 2.0, 1e-6)
    np.testing.assert_allclose(near.lst(s), np.exp(-2 * s), rtol=1e-9)
    np.testing.assert_allclose(near.ppf([0.01, 0.99]), 2.0, rtol=1e-5)


def test_gamma_with_cv_one_is_the_exponential():
    s = np.logspace(-3, 3, 13)
    gamma, expo = Law("gamma", 0.5, 1.0), Law("exponential", 0.5)
    np.testing.assert_allclose(gamma.lst(s), expo.lst(s), rtol=1e-14)
    np.testing.assert_allclose(gamma.ppf(LEVELS), expo.ppf(LEVELS), rtol=1e-9)
    np.testing.assert_allclose(gamma.cdf(s), expo.cdf(s), rtol=1e-12)


def test_mean_zero_is_an_atom_at_zero():
    for name in laws.LAWS:
        law = Law(name, 0.0, 0.5)
        assert law.lst(3.0) == 1.0 and law.cdf(0.0) == 1.0 and law.sf(0.0) == 0.0


# ------------------------------------------------------------------------------------------
# Fits used by the calibration
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mean, cv", [(1e-4, 0.3), (2e-3, 1.5), (1.0, 4.0)])
def test_lognormal_fits_recover_the_law(mean, cv):
    law = Law("lognormal", mean, cv)
    assert laws.fit_lognormal(law.ppf(0.5), law.ppf(0.9)) == pytest.approx((mean, cv), rel=1e-9)
    assert laws.fit_lognormal(law.ppf(0.5), law.ppf(0.99), level=0.99) == pytest.approx(
        (mean, cv), rel=1e-9)
    if cv < 2.3:     # beyond sigma = z the p99 no longer tells the cv apart
        assert laws.lognormal_cv_from_mean_quantile(mean, law.ppf(0.99)) == pytest.approx(
            cv, rel=1e-9)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, field", [
    (lambda: Law("weibull", 1.0, 1.0), "law='weibull'"),
    (lambda: laws.lst("weibull", 1.0, 1.0, 1.0), "law='weibull'"),
    (lambda: Law("gamma", -1.0, 1.0), "mean=-1.0"),
    (lambda: Law("lognormal", np.array([1.0, np.inf]), 1.0), "mean=inf"),
    (lambda: Law("lognormal", 1.0, np.nan), "cv=nan"),
    (lambda: Law("gamma", 1.0, -0.5), "cv=-0.5"),
    (lambda: Law("gamma", 1.0), "cv=None"),
    (lambda: Law("gamma", 1.0, 0.5).ppf(1.5), "levels=1.5"),
    (lambda: Law("gamma", 1.0, 0.5).lst(np.nan), "s=nan"),
    (lambda: Law("gamma", 1.0, 0.5).sum_of(0), "reads=0"),
    (lambda: laws.gamma_params(1.0, 0.0), "cv=0.0"),
    (lambda: laws.lognormal_params(-1.0, 1.0), "mean=-1.0"),
    (lambda: Law("gamma", [1.0, 2.0], 0.5).engine_parameters(), "scalar"),
    (lambda: laws.fit_lognormal(2.0, 1.0), "median=2.0"),
    (lambda: laws.fit_lognormal(1.0, 2.0, level=0.3), "level=0.3"),
])
def test_bad_input_names_the_field_and_value(call, field):
    with pytest.raises(LawError, match=field.replace("(", r"\(").replace("[", r"\[")) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert "allowed" in str(info.value) or "needs" in str(info.value)
