"""The memory limit's formulas (formulas/lru_cache.py) against their derivations and theory."""

import math

import numpy as np
import pytest
import sympy as sp

from faultlock.model import formulas as sym
from faultlock.model.formulas import lru_cache

ONE_LIST = ("absent", "fault_locked", "readaround_locked", "cached", "mapped")
TWO_LIST = ONE_LIST + ("on_active",)


def test_resident_period_is_the_first_long_gap_plus_the_lifetime():
    a, T = sym.page_access_rate, sym.cache_lifetime
    assert sp.simplify(lru_cache.derive_lru_resident_period() - (sp.exp(a * T) - 1) / a) == 0
    # and by sampling: Poisson references at rate 2, lifetime 0.7
    rng = np.random.default_rng(3)
    rate, life, n = 2.0, 0.7, 20_000
    periods = np.empty(n)
    for i in range(n):
        total = 0.0
        while True:
            gap = rng.exponential(1 / rate)
            if gap > life:
                periods[i] = total + life
                break
            total += gap
    expected = math.expm1(rate * life) / rate
    assert abs(periods.mean() - expected) < 3 * periods.std() / math.sqrt(n)


def test_one_list_shares_equal_their_derivation():
    derived = lru_cache.derive_lru_page_shares()
    for state in ONE_LIST:
        registered = sym.FORMULAS[f"lru_page_{state}_share"].expr
        assert sp.simplify(derived[state] - registered) == 0, state


def _random_points(symbols, n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        lifetime = rng.uniform(0.5, 2.0)
        values = {sym.page_access_rate: rng.uniform(0.05, 4.0),
                  sym.readaround_rate: rng.uniform(0.0, 2.0),
                  sym.cache_lifetime: lifetime,
                  sym.active_lifetime: rng.uniform(lifetime, 5.0),
                  sym.fault_locked_time: rng.uniform(0.0, 0.4) * lifetime,
                  sym.read_time: rng.uniform(0.0, 0.4) * lifetime,
                  sym.refault_window: rng.uniform(0.0, 2.0)}
        yield {s: values[s] for s in symbols}


def test_two_list_shares_equal_their_derivation_and_the_kernel():
    # sympy's simplify takes minutes on these: compared at random points instead
    derived = lru_cache.derive_two_list_page_shares()
    symbols = sym.FORMULAS["two_list_page_absent_share"].symbols
    for point in _random_points(symbols, 6, seed=1):
        weights = sym.lru_page_weights_scalar(*[float(point[s]) for s in symbols], 2)
        for i, state in enumerate(TWO_LIST):
            registered = float(sym.FORMULAS[f"two_list_page_{state}_share"].expr.subs(point))
            assert float(derived[state].subs(point)) == pytest.approx(registered, rel=1e-10)
            assert weights[i] / sum(weights[:5]) == pytest.approx(registered, rel=1e-9)


def test_one_list_kernel_equals_the_registered_shares():
    symbols = sym.FORMULAS["lru_page_absent_share"].symbols
    for point in _random_points(symbols, 6, seed=2):
        args = [float(point[s]) for s in symbols]
        a, rho, lifetime, fault_locked, read_time = args
        weights = sym.lru_page_weights_scalar(a, rho, lifetime, 0.0, fault_locked, read_time,
                                              0.0, 1)
        assert weights[5] == 0.0
        for i, state in enumerate(ONE_LIST):
            registered = sym.FORMULAS[f"lru_page_{state}_share"].numeric()(*args)
            assert weights[i] / sum(weights[:5]) == pytest.approx(registered, rel=1e-9)


def test_one_list_without_reads_is_che():
    """No read-around, no locked time: the absent share is Che's miss probability."""
    for a, lifetime in ((0.1, 3.0), (2.0, 0.5), (1e-9, 1.0), (50.0, 1.0)):
        w = sym.lru_page_weights_scalar(a, 0.0, lifetime, 0.0, 0.0, 0.0, 0.0, 1)
        hit = sym.lru_hit_probability(a, lifetime)
        assert w[0] / sum(w[:5]) == pytest.approx(math.exp(-a * lifetime), rel=1e-9)
        assert hit == pytest.approx(-math.expm1(-a * lifetime), rel=1e-9)


def test_two_lists_of_a_cold_page_need_two_references():
    """A page referenced far less often than once per lifetime is almost never activated, so
    its miss probability is e^{-2x}-like (two passes) and it is absent almost always."""
    w = sym.lru_page_weights_scalar(1e-4, 0.0, 1.0, 10.0, 0.0, 0.0, 0.0, 2)
    total = sum(w[:5])
    assert w[5] / total < 1e-6
    assert w[0] / total == pytest.approx(1 - 2e-4, rel=1e-6)


def test_retry_miss_is_the_windows_tail():
    """P(W > T_c) for W = c_f + B, B = 0 w.p. 1 - P_b else g + Exp(r), sampled."""
    rng = np.random.default_rng(7)
    c_f, p_block, wake, residual = 2e-6, 0.4, 10e-6, 50e-6
    n = 200_000
    window = c_f + np.where(rng.random(n) < p_block, wake + rng.exponential(residual, n), 0.0)
    numeric = sym.lru_retry_miss.numeric()
    for lifetime in (1e-6, 5e-6, 30e-6, 100e-6, 300e-6):
        sampled = np.mean(window > lifetime)
        half = 2.6 * math.sqrt(max(sampled * (1 - sampled), 1e-12) / n)
        expected = numeric(lifetime, c_f, p_block, wake, residual)
        assert abs(sampled - expected) <= half + 1e-5, lifetime
        assert sym.lru_retry_miss_scalar(lifetime, c_f, p_block, wake, residual) == \
            pytest.approx(expected, rel=1e-12)
    # a deterministic lifetime is a threshold: no residual, the miss is a step at c_f + g
    assert sym.lru_retry_miss_scalar(c_f + wake + 1e-9, c_f, p_block, wake, 0.0) == 0.0
    assert sym.lru_retry_miss_scalar(c_f + wake - 1e-9, c_f, p_block, wake, 0.0) == p_block


def test_the_new_formulas_are_registered_with_their_parameters():
    for name in ("lru_hit_probability", "lru_retry_miss", "lru_page_mapped_share",
                 "two_list_page_on_active_share"):
        formula = sym.FORMULAS[name]
        assert formula.assumptions and formula.reference
        assert all(isinstance(p, str) for p in formula.parameters)
    assert sym.FORMULAS["lru_retry_miss"].parameters[0] == "cache_lifetime"
