"""Tests of faultlock.model.formulas: every formula against its textbook case.

Reference values are quoted from reference/queueing.md (section given next to each table) or are
exact textbook identities; nothing here compares the module with frozen output of itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, linalg, stats

from faultlock.model import laws
from faultlock.model import formulas as S
from faultlock.model.formulas import FORMULAS

# ------------------------------------------------------------------------------------------
# Registry mechanics
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_registry_entry_is_complete(name):
    f = FORMULAS[name]
    assert f.name == name
    assert f.assumptions.strip() and f.reference.strip()
    assert set(f.expr.free_symbols) <= set(f.symbols)
    assert len(f.parameters) == len(f.symbols)
    assert all(S.SYMBOLS[p] is s for p, s in zip(f.parameters, f.symbols))


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_latex_contains_symbols(name):
    f = FORMULAS[name]
    text = f.latex()
    assert isinstance(text, str) and "=" in text
    assert text.startswith(sp.latex(f.lhs))
    for sym in f.expr.free_symbols:
        assert sp.latex(sym) in text, (sym, text)
    if f.condition is not None:
        assert sp.latex(f.condition) in f.latex(with_condition=True)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_hash_is_sha256_of_srepr(name):
    import hashlib

    f = FORMULAS[name]
    h = f.hash()
    assert len(h) == 64 and int(h, 16) >= 0
    text = sp.srepr(f.expr) + ("" if f.condition is None else "\n" + sp.srepr(f.condition))
    assert h == hashlib.sha256(text.encode()).hexdigest()


def test_hashes_distinct():
    hashes = [f.hash() for f in FORMULAS.values()]
    assert len(set(hashes)) == len(hashes)


def test_hash_stable_across_processes_and_hash_seeds():
    here = {name: f.hash() for name, f in FORMULAS.items()}
    code = ("import json; from faultlock.model.formulas import FORMULAS; "
            "print(json.dumps({n: f.hash() for n, f in FORMULAS.items()}))")
    for seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout
        assert json.loads(out) == here


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_numeric_is_cached_and_vectorised(name):
    f = FORMULAS[name]
    assert f.numeric() is f.numeric()
    # a valid (stable) point for every formula: integers 2, arrival rate 0.2, all else 0.5
    values = {sym: 2 if sym.is_integer else 0.5 for sym in f.symbols}
    if S.arrival_rate in values:
        values[S.arrival_rate] = 0.2
    scalar = f.numeric()(*(values[s] for s in f.symbols))
    assert isinstance(scalar, float) and np.isfinite(scalar)
    arrays = [np.full((2, 3), values[s]) for s in f.symbols]
    out = f.numeric()(*arrays)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, scalar, rtol=1e-14)
    # keyword call by public parameter name
    kw = {p: values[s] for p, s in zip(f.parameters, f.symbols)}
    assert f(**kw) == scalar


def test_numeric_rejects_bad_keywords():
    with pytest.raises(TypeError):
        FORMULAS["mm1_wait"](arrival_rate=1.0, rate=2.0)
    with pytest.raises(TypeError):
        FORMULAS["mm1_wait"](arrival_rate=1.0)


# ------------------------------------------------------------------------------------------
# Single-server building blocks (queueing.md §1.3)
# ------------------------------------------------------------------------------------------


def test_mm1_wait_textbook():
    mm1 = FORMULAS["mm1_wait"]
    assert mm1(0.8, 1.0) == pytest.approx(4.0, rel=1e-14)  # queueing.md §2: exact Wq = 4.0
    assert mm1(arrival_rate=0.5, service_rate=1.0) == pytest.approx(1.0, rel=1e-14)
    out = mm1(np.array([0.5, 1.0, 1.5]), 1.0)
    assert out[0] == pytest.approx(1.0) and np.isinf(out[1]) and np.isinf(out[2])


def test_pk_with_cv1_is_mm1():
    mu = S.service_rate
    pk = FORMULAS["mg1_wait"].expr.subs({S.service_mean: 1 / mu, S.service_cv: 1})
    assert sp.simplify(pk - FORMULAS["mm1_wait"].expr) == 0
    rng = np.random.default_rng(1)
    mu_v = rng.uniform(0.5, 5, 50)
    lam_v = mu_v * rng.uniform(0.01, 0.99, 50)
    np.testing.assert_allclose(FORMULAS["mg1_wait"](lam_v, 1 / mu_v, 1.0),
                               FORMULAS["mm1_wait"](lam_v, mu_v), rtol=1e-12)


def test_pk_md1_is_half_mm1_and_unstable_is_inf():
    assert FORMULAS["mg1_wait"](0.8, 1.0, 0.0) == pytest.approx(2.0, rel=1e-14)
    assert np.isinf(FORMULAS["mg1_wait"](1.0, 1.0, 0.5))
    # queueing.md §1.3 form: Lq = (rho^2 + lambda^2 Var S) / (2(1 - rho)), Wq = Lq / lambda
    lam, m, cv = 0.7, 1.2, 1.7
    rho = lam * m
    lq = (rho**2 + lam**2 * (cv * m) ** 2) / (2 * (1 - rho))
    assert FORMULAS["mg1_wait"](lam, m, cv) == pytest.approx(lq / lam, rel=1e-14)


def test_vacation_decomposition_reduces_to_pk():
    # deterministic vacations of length 0 contribute nothing; exponential ones add their mean
    assert FORMULAS["mg1_vacation_wait"](0.5, 1.0, 1.0, 1e-300, 0.0) == pytest.approx(
        FORMULAS["mg1_wait"](0.5, 1.0, 1.0), rel=1e-14)
    assert FORMULAS["mg1_vacation_wait"](0.5, 1.0, 1.0, 2.0, 1.0) == pytest.approx(
        FORMULAS["mg1_wait"](0.5, 1.0, 1.0) + 2.0, rel=1e-14)


@pytest.mark.parametrize("lam, mean, expected", [(1, 1, 1.7183), (5, 1, 29.4826),
                                                 (0.5, 0.5, 0.5681)])
def test_mginf_busy_period_table(lam, mean, expected):
    # queueing.md §1.3, busy-period table, (e^rho - 1)/lambda column
    assert round(FORMULAS["mginf_busy_period"](lam, mean), 4) == expected
    assert FORMULAS["mginf_mean_busy"](lam, mean) == pytest.approx(lam * mean, rel=1e-15)


def test_mginf_busy_period_light_load_limit():
    # as lambda -> 0 the busy period is one service time
    lam, m = S.arrival_rate, S.service_mean
    assert sp.limit(FORMULAS["mginf_busy_period"].expr, lam, 0) == m


# ------------------------------------------------------------------------------------------
# FCFS reader/writer capacity (queueing.md §1.2)
# ------------------------------------------------------------------------------------------

FCFS_TABLE = [  # p_w, mu_r, mu_w, formula column of queueing.md §1.2
    (0.5, 1, 1, 1.1812),
    (0.1, 1, 1, 3.0279),
    (0.01, 1, 1, 17.8407),
    (0.1, 1, 10, 4.1622),
    (0.01, 10, 1, 68.4689),
]


@pytest.mark.parametrize("p_w, mu_r, mu_w, expected", FCFS_TABLE)
def test_fcfs_capacity_table(p_w, mu_r, mu_w, expected):
    assert round(FORMULAS["fcfs_rw_capacity"](p_w, mu_r, mu_w), 4) == expected


def test_fcfs_capacity_vectorised_table():
    p, r, w, e = (np.array(c, dtype=float) for c in zip(*FCFS_TABLE))
    np.testing.assert_allclose(np.round(FORMULAS["fcfs_rw_capacity"](p, r, w), 4), e)


def test_fcfs_capacity_derivation_reproduces_closed_form():
    derived = S.derive_fcfs_rw_capacity()
    assert sp.simplify(derived - FORMULAS["fcfs_rw_capacity"].expr) == 0
    f = sp.lambdify(FORMULAS["fcfs_rw_capacity"].symbols, derived, "numpy")
    for p_w, mu_r, mu_w, expected in FCFS_TABLE:
        assert round(float(f(p_w, mu_r, mu_w)), 4) == expected


@pytest.mark.parametrize("p_w", [0.9, 0.5, 0.1, 0.01])
def test_fcfs_mean_harmonic_of_geometric(p_w):
    # E[H_K] for K ~ Geometric(p_w) on {0,1,...}, summed directly, is ln(1/p_w)
    k = np.arange(0, 20000)
    harmonic = np.concatenate(([0.0], np.cumsum(1.0 / k[1:])))
    direct = np.sum(p_w * (1 - p_w) ** k * harmonic)
    assert direct == pytest.approx(np.log(1 / p_w), rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_expected_max_of_exponentials_is_harmonic(k):
    # the batch of k concurrent readers lasts E[max of k Exp(mu)] = H_k / mu
    t, mu = sp.symbols("t mu", positive=True)
    e_max = sp.integrate(1 - (1 - sp.exp(-mu * t)) ** k, (t, 0, sp.oo))
    assert sp.simplify(e_max - sp.harmonic(k) / mu) == 0


# ------------------------------------------------------------------------------------------
# Phase-fair bound
# ------------------------------------------------------------------------------------------


def test_phase_fair_bound():
    assert FORMULAS["phase_fair_reader_bound"](3e-6, 5e-6) == pytest.approx(8e-6, rel=1e-15)
    assert FORMULAS["phase_fair_reader_bound"](writer_hold_max=1.0,
                                               reader_hold_max=2.0) == 3.0


# ------------------------------------------------------------------------------------------
# Refault loops (queueing.md §1.6)
# ------------------------------------------------------------------------------------------


def test_refault_fresh_closed_forms_are_consistent():
    q = FORMULAS["refault_success_fresh"].expr
    assert sp.simplify(FORMULAS["refault_attempts_fresh"].expr - 1 / q) == 0
    assert sp.simplify(FORMULAS["refault_attempts_fresh_var"].expr - (1 - q) / q**2) == 0
    assert sp.simplify(S.derive_refault_time_fresh() - FORMULAS["refault_time_fresh"].expr) == 0


def test_refault_fresh_success_is_exponential_lst():
    theta, h, w = S.reclaim_rate, S.window_mean, sp.Symbol("w", positive=True)
    lst_exp = sp.integrate(sp.exp(-theta * w) * sp.exp(-w / h) / h, (w, 0, sp.oo))
    assert sp.simplify(lst_exp - FORMULAS["refault_success_fresh"].expr) == 0


def test_refault_fresh_general_helpers_match_closed_form():
    # queueing.md §1.6 grid: L in [1e-5, 1e-2] s, theta in [1, 1e3] /s, h in {1e-4, 1e-3} s
    L, theta, h = np.meshgrid(np.logspace(-5, -2, 4), np.logspace(0, 3, 4), [1e-4, 1e-3],
                              indexing="ij")
    m = S.refault_fresh(L, theta, "exponential", h)
    np.testing.assert_allclose(m.success_probability, FORMULAS["refault_success_fresh"](theta, h),
                               rtol=1e-13)
    np.testing.assert_allclose(m.attempts_mean, FORMULAS["refault_attempts_fresh"](theta, h),
                               rtol=1e-13)
    np.testing.assert_allclose(m.attempts_var, FORMULAS["refault_attempts_fresh_var"](theta, h),
                               rtol=1e-12)
    np.testing.assert_allclose(m.time_mean, FORMULAS["refault_time_fresh"](L, theta, h),
                               rtol=1e-13)
    # low-level helpers from the LST value alone
    q = S.refault_success_probability(laws.lst("exponential", h, 1.0, theta))
    np.testing.assert_allclose(S.refault_attempts_mean(q), 1 + theta * h, rtol=1e-13)
    np.testing.assert_allclose(S.refault_attempts_var(q), theta * h * (1 + theta * h), rtol=1e-12)
    np.testing.assert_allclose(S.refault_time_mean(L, theta, q, h), L * (1 + theta * h) + h,
                               rtol=1e-12)


def test_refault_no_pressure_limit():
    m = S.refault_fresh(1e-3, 0.0, "lognormal", 2e-4, 1.5)
    assert m.success_probability == 1.0 and m.attempts_mean == 1.0 and m.attempts_var == 0.0
    assert m.time_mean == pytest.approx(1e-3 + 2e-4, rel=1e-14)
    # tiny pressure: no cancellation in 1 - q
    m = S.refault_fresh(1e-3, 1e-9, "deterministic", 1e-4)
    assert m.attempts_var == pytest.approx(1e-13, rel=1e-9)


def test_refault_truncated_attempts():
    # pre-5.7 kernels: at most 2 attempts, E[K] = 1 + (1 - q)
    q = np.array([0.2, 0.5, 1.0])
    np.testing.assert_allclose(S.refault_attempts_mean(q, max_attempts=2), 2 - q, rtol=1e-14)
    assert S.refault_attempts_mean(0.0, max_attempts=3) == 3.0


def test_refault_fresh_lognormal_against_monte_carlo():
    # the general (any window law) formulas against a direct simulation of the loop
    rng = np.random.default_rng(20260501)
    n, L, theta, mean, cv = 200_000, 1e-3, 800.0, 1e-3, 1.5
    mu, sigma = laws.lognormal_params(mean, cv)
    attempts = np.zeros(n)
    total = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        w = rng.lognormal(mu, sigma, idx.size)
        x = rng.exponential(1 / theta, idx.size)
        attempts[idx] += 1
        total[idx] += L + np.minimum(w, x)
        active[idx[w < x]] = False
    m = S.refault_fresh(L, theta, "lognormal", mean, cv)
    for sample, expected in ((attempts, m.attempts_mean), (total, m.time_mean)):
        se = sample.std(ddof=1) / np.sqrt(n)
        assert abs(sample.mean() - expected) < 4 * se
    assert attempts.var(ddof=1) == pytest.approx(m.attempts_var, rel=0.05)


def test_refault_same_exponential():
    assert sp.simplify(S.derive_refault_attempts_same()
                       - FORMULAS["refault_attempts_same"].expr) == 0
    f = FORMULAS["refault_attempts_same"]
    theta_h = np.array([0.0, 0.5, 0.9, 1.0, 2.0])
    out = f(theta_h, 1.0)
    np.testing.assert_allclose(out[:3], 1 / (1 - theta_h[:3]), rtol=1e-14)
    assert np.isinf(out[3:]).all()
    np.testing.assert_allclose(S.refault_attempts_same(theta_h, "exponential", 1.0), out,
                               rtol=1e-14)
    # repeat-identical is always worse than repeat-different (Jensen)
    assert (out[1:] > FORMULAS["refault_attempts_fresh"](theta_h[1:], 1.0)).all()


def test_refault_same_other_laws():
    theta = np.array([0.1, 0.4, 0.6])
    # gamma (shape 4, scale 0.25): MGF (1 - theta scale)^-shape, finite for theta < 4
    np.testing.assert_allclose(S.refault_attempts_same(theta, "gamma", 1.0, 0.5),
                               (1 - theta * 0.25) ** -4.0, rtol=1e-13)
    assert np.isinf(S.refault_attempts_same(5.0, "gamma", 1.0, 0.5))
    np.testing.assert_allclose(S.refault_attempts_same(theta, "deterministic", 2.0),
                               np.exp(2 * theta), rtol=1e-14)
    assert np.isinf(S.refault_attempts_same(theta, "lognormal", 1.0, 0.5)).all()
    assert S.refault_attempts_same(0.0, "lognormal", 1.0, 0.5) == 1.0


# ------------------------------------------------------------------------------------------
# Closed N-thread models (queueing.md §1.4)
# ------------------------------------------------------------------------------------------

REPAIRMAN_TABLE = [  # N, X, R for Z = 1, S = 0.1 (LINE exact, queueing.md §1.4)
    (4, 3.53337, 0.13206),
    (16, 9.77698, 0.63650),
    (64, 10.0000, 5.4000),
    (256, 10.0000, 24.600),
    (1024, 10.0000, 101.40),
]


@pytest.mark.parametrize("n, x, r", REPAIRMAN_TABLE)
def test_machine_repairman_table(n, x, r):
    for solve in (S.machine_repairman, S.mva_single_station):
        res = solve(n, 1.0, 0.1)
        assert res.throughput == pytest.approx(x, abs=5e-6 * max(1, x))
        assert res.response == pytest.approx(r, abs=5e-6 * max(1, r))
        assert res.method


@pytest.mark.parametrize("n", [1, 4, 16, 64, 1024])
@pytest.mark.parametrize("think, service", [(1.0, 0.1), (1e-3, 1.0), (2.0, 2.0), (50.0, 1e-3)])
def test_machine_repairman_equals_mva(n, think, service):
    a = S.machine_repairman(n, think, service)
    b = S.mva_single_station(n, think, service)
    for field in ("throughput", "response", "utilisation", "queue_length"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-9), field


def test_machine_repairman_large_population_and_laws():
    n, z, s = 100_000, 1.0, 0.1
    a = S.machine_repairman(n, z, s, probabilities=True)
    b = S.mva_single_station(n, z, s)
    assert a.throughput == pytest.approx(b.throughput, rel=1e-12)
    assert a.response == pytest.approx(b.response, rel=1e-12)
    assert a.probabilities.shape == (n + 1,) and a.probabilities.sum() == pytest.approx(1, 1e-12)
    # Little's law on the whole loop and the asymptotic bounds
    assert n / a.throughput == pytest.approx(z + a.response, rel=1e-12)
    for pop in (1, 5, 11, 50, 1000):
        res = S.machine_repairman(pop, z, s)
        assert res.throughput <= FORMULAS["repairman_throughput_bound"](pop, z, s) * (1 + 1e-12)
    assert FORMULAS["repairman_knee"](z, s) == pytest.approx(11.0)


def test_machine_repairman_probabilities_match_formula():
    n, z, s = 6, 1.0, 0.4
    p = S.machine_repairman(n, z, s, probabilities=True).probabilities
    w = np.array([float(Fraction(sp.factorial(n), sp.factorial(n - k))) * (s / z) ** k
                  for k in range(n + 1)])
    np.testing.assert_allclose(p, w / w.sum(), rtol=1e-13)
    res = S.machine_repairman(n, z, s)
    assert res.throughput == pytest.approx((1 - p[0]) / s, rel=1e-13)
    assert res.response == pytest.approx(n / res.throughput - z, rel=1e-12)


def test_closed_model_edge_cases():
    res = S.machine_repairman(3, 0.0, 1.0)  # no think time: the station never idles
    assert res.throughput == 1.0 and res.response == 3.0
    res = S.machine_repairman(3, 1.0, 0.0)  # no service: pure delay
    assert res.throughput == 3.0 and res.response == 0.0
    for bad in ((0, 1.0, 1.0), (2.5, 1.0, 1.0), (2, -1.0, 1.0), (2, 0.0, 0.0)):
        with pytest.raises(ValueError):
            S.machine_repairman(*bad)
    with pytest.raises(ValueError):
        S.mva_multiserver(4, 1.0, 1.0, 0)


def _ctmc_birth_death(n, think, service, servers):
    """Stationary law of the closed birth-death chain from its generator (no product form)."""
    q = np.zeros((n + 1, n + 1))
    for k in range(n + 1):
        if k < n:
            q[k, k + 1] = (n - k) / think
        if k > 0:
            q[k, k - 1] = min(k, servers) / service
        q[k, k] = -q[k].sum()
    p = linalg.null_space(q.T)[:, 0]
    return p / p.sum()


def _load_dependent_mva(n, think, service, servers):
    """Exact load-dependent MVA (Reiser-Lavenberg with marginal probabilities), O(N^2)."""
    rate = lambda j: min(j, servers) / service  # noqa: E731
    marg = np.array([1.0])  # P(j at station | population 0)
    x = r = 0.0
    for pop in range(1, n + 1):
        r = sum(j / rate(j) * marg[j - 1] for j in range(1, pop + 1))
        x = pop / (think + r)
        new = np.zeros(pop + 1)
        for j in range(1, pop + 1):
            new[j] = x / rate(j) * marg[j - 1]
        new[0] = 1.0 - new[1:].sum()
        marg = new
    return x, r


@pytest.mark.parametrize("n, servers", [(12, 3), (30, 4), (8, 8), (5, 1)])
def test_mva_multiserver_exact(n, servers):
    think, service = 1.3, 0.4
    res = S.mva_multiserver(n, think, service, servers, probabilities=True)
    p = _ctmc_birth_death(n, think, service, servers)
    np.testing.assert_allclose(res.probabilities, p, rtol=1e-9, atol=1e-14)
    x, r = _load_dependent_mva(n, think, service, servers)
    assert res.throughput == pytest.approx(x, rel=1e-9)
    assert res.response == pytest.approx(r, rel=1e-9)
    assert res.utilisation == pytest.approx(x * service / servers, rel=1e-12)


@pytest.mark.parametrize("n", [1, 4, 16, 64, 1024])
def test_mva_multiserver_one_server_is_repairman(n):
    a = S.mva_multiserver(n, 1.0, 0.1, 1)
    b = S.machine_repairman(n, 1.0, 0.1)
    assert a.throughput == pytest.approx(b.throughput, rel=1e-12)
    assert a.response == pytest.approx(b.response, rel=1e-12)


def test_mva_multiserver_limits():
    # as many CPUs as threads: no queueing, X = N/(Z+S), R = S
    res = S.mva_multiserver(32, 1.0, 0.25, 64)
    assert res.throughput == pytest.approx(32 / 1.25, rel=1e-13)
    assert res.response == pytest.approx(0.25, rel=1e-13)
    # saturated: X -> c/S, for N = 10^5 threads on 8 CPUs
    res = S.mva_multiserver(100_000, 1.0, 0.1, 8)
    assert res.throughput == pytest.approx(80.0, rel=1e-12)
    assert res.response == pytest.approx(100_000 / 80.0 - 1.0, rel=1e-12)


# ------------------------------------------------------------------------------------------
# Erlang C / M/M/c
# ------------------------------------------------------------------------------------------


def _erlang_c_exact(c, a):
    a = Fraction(a)
    tail = a**c / sp.factorial(c) * Fraction(c) / (c - a)
    head = sum(a**k / sp.factorial(k) for k in range(c))
    return float(sp.Rational(tail) / (sp.Rational(head) + sp.Rational(tail)))


@pytest.mark.parametrize("c, a", [(1, 0.5), (2, 1.0), (3, 2.5), (10, 8.0), (16, 3.0), (40, 39)])
def test_erlang_c_exact_rational(c, a):
    assert S.erlang_c(c, a) == pytest.approx(_erlang_c_exact(c, a), rel=1e-12)


def test_erlang_c_textbook_values_and_limits():
    assert S.erlang_c(1, 0.7) == pytest.approx(0.7, rel=1e-14)  # M/M/1: P(wait) = rho
    assert S.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-14)  # M/M/2 at rho = 1/2
    assert S.erlang_c(4, 0.0) == 0.0
    np.testing.assert_array_equal(S.erlang_c([2, 3], [2.0, 5.0]), [1.0, 1.0])
    big = S.erlang_c(1000, 990.0)  # stable where the Sum overflows
    assert 0 < big < 1


def test_mmc_wait_registry():
    f = FORMULAS["mmc_wait"]
    lam = np.array([0.2, 0.9, 1.7, 2.5])
    # c = 1 reduces to M/M/1 (symbolically and numerically)
    one = f.expr.subs(S.servers, 1).doit()
    assert sp.simplify(one - FORMULAS["mm1_wait"].expr) == 0
    np.testing.assert_allclose(f(lam[:2], 1.0, 1), FORMULAS["mm1_wait"](lam[:2], 1.0), rtol=1e-13)
    # the stable implementation agrees with the lambdified sympy Sum
    c = np.array([2, 2, 3, 3])
    np.testing.assert_allclose(f(lam, 1.0, c), f.lambdified()(lam, 1.0, c), rtol=1e-12)
    np.testing.assert_allclose(f(lam, 1.0, c), S.erlang_c(c, lam) / (c - lam), rtol=1e-13)
    assert np.isinf(f(2.0, 1.0, 2)) and np.isinf(S.mmc_wait(3.0, 1.0, 2))


# ------------------------------------------------------------------------------------------
# The page-fault model's formulas (issue 3)
# ------------------------------------------------------------------------------------------


def test_page_shares_derivation_matches_registry_and_sums_to_one():
    derived = S.derive_page_shares()
    for state, formula in S.page_shares.items():
        assert sp.simplify(derived[state] - formula.expr) == 0
    total = sp.simplify(sp.Add(*(f.expr for f in S.page_shares.values())))
    assert total == 1


def test_page_shares_reduce_to_the_two_state_renewal_cycle():
    # no read-around and instantaneous faults: absent <-> mapped, P(mapped) = a/(a + theta_m)
    a, th_m = 3.0, 7.0
    args = {"page_access_rate": a, "readaround_rate": 1e-300, "reclaim_rate_cached": 5.0,
            "reclaim_rate_mapped": th_m, "fault_locked_time": 1e-300, "read_time": 1e-300}
    assert FORMULAS["page_mapped_share"](**args) == pytest.approx(a / (a + th_m), rel=1e-14)
    assert FORMULAS["page_absent_share"](**args) == pytest.approx(th_m / (a + th_m), rel=1e-14)


def test_page_state_weights_equal_the_registered_shares():
    """The compiled weights (the analytic model's one numeric form of the page shares), each
    over their sum, are the registered shares."""
    rng = np.random.default_rng(1)
    vals = rng.uniform(0.1, 10, size=(6, 50))
    weights = np.array([S.page_state_weights_scalar(*point) for point in vals.T]).T
    for state, w in zip(S.page_shares, weights):
        np.testing.assert_allclose(w / weights.sum(axis=0), S.page_shares[state](*vals),
                                   rtol=1e-13)


def test_page_shares_against_a_simulated_page():
    """An exact simulation of one page's semi-Markov cycle (deterministic locked periods)."""
    rng = np.random.default_rng(7)
    a, rho, th_c, th_m, t_f, t_r = 2.0, 1.5, 4.0, 0.5, 0.05, 0.02
    time_in = {"absent": 0.0, "fault_locked": 0.0, "readaround_locked": 0.0, "cached": 0.0,
               "mapped": 0.0}
    state = "absent"
    for _ in range(200_000):
        if state == "absent":
            dt = rng.exponential(1 / (a + rho))
            nxt = "fault_locked" if rng.random() < a / (a + rho) else "readaround_locked"
        elif state == "fault_locked":
            dt, nxt = t_f, "mapped"
        elif state == "readaround_locked":
            dt, nxt = t_r, "cached"
        elif state == "cached":
            dt = rng.exponential(1 / (a + th_c))
            nxt = "mapped" if rng.random() < a / (a + th_c) else "absent"
        else:
            dt, nxt = rng.exponential(1 / th_m), "absent"
        time_in[state] += dt
        state = nxt
    total = sum(time_in.values())
    for s_, t in time_in.items():
        expected = S.page_shares[s_](a, rho, th_c, th_m, t_f, t_r)
        assert t / total == pytest.approx(expected, abs=0.01), s_


def test_refault_success_window_limits_and_mixture():
    f = FORMULAS["refault_success_window"]
    theta, c_f = 300.0, 2e-6
    # never blocked: a deterministic window c_f
    assert f(theta, c_f, 1e-300, 1e-5, 1e-4) == pytest.approx(np.exp(-theta * c_f), rel=1e-12)
    # always blocked: c_f + g + Exp(r), E[exp(-theta W)] by numerical integration
    g, r = 1e-5, 2e-4
    integral, _ = integrate.quad(lambda t: np.exp(-theta * (c_f + g + t)) * np.exp(-t / r) / r,
                                 0, np.inf)
    assert f(theta, c_f, 1.0, g, r) == pytest.approx(integral, rel=1e-9)


def test_refault_attempts_truncated():
    f = FORMULAS["refault_attempts_truncated"]
    q = 0.3
    assert f(q, 1) == pytest.approx(1.0, rel=1e-14)
    assert f(q, 4) == pytest.approx(sum((1 - q) ** j for j in range(4)), rel=1e-14)
    assert f(q, 10_000) == pytest.approx(1 / q, rel=1e-12)


def test_finite_source_wait_exact_limits():
    f = FORMULAS["finite_source_wait"]
    # fewer other threads than servers: nobody ever waits
    assert f(8, 7, 0.9, 1e-3, 1.0) == 0.0
    # every thread always there: (n - c) m / c queued ahead plus the first completion's residual
    n, c, m, cv = 31, 4, 1e-3, 0.5
    assert f(c, n, 1.0, m, cv) == pytest.approx(m / c * ((1 + cv**2) / 2 + (n - c)), rel=1e-12)
    # unlimited servers (c = 0 in the scenario) is handled by the implementation
    assert S.finite_source_wait(0, 10, 0.5, 1e-3, 1.0) == 0.0
    # the implementation is the registered expression (lambdified with scipy's erf)
    expr_fn = sp.lambdify(f.symbols, f.expr, modules=["scipy", "numpy"])
    for args in [(4, 31, 0.3, 1e-3, 0.5), (2, 9, 0.6, 2e-4, 1.0), (8, 300, 0.05, 1e-3, 2.0)]:
        assert f(*args) == pytest.approx(float(expr_fn(*args)), rel=1e-10)


@pytest.mark.parametrize("n_threads, think, service, servers", [
    (4, 1.0, 1.0, 2), (16, 1.0, 0.5, 8), (64, 1.0, 0.2, 8), (300, 1.0, 0.05, 8), (12, 1.0, 0.3, 3),
    (10, 0.1, 1.0, 8)])
def test_finite_source_closed_loop_against_exact_mva(n_threads, think, service, servers):
    """The closed loop X = N/(Z + S + W(u)), u = X (S + W)/N against exact M/M/c//N: within the
    tolerance stated in the registry (response 15 %, throughput 6 %)."""
    exact = S.mva_multiserver(n_threads, think, service, servers)
    x = n_threads / (think + service)
    for _ in range(3000):
        u = min(x * (n_threads / x - think) / n_threads, 1.0)
        w = S.finite_source_wait(servers, n_threads - 1, u, service, 1.0)
        x = 0.5 * x + 0.5 * n_threads / (think + service + w)
    response = n_threads / x - think
    assert x == pytest.approx(exact.throughput, rel=0.06)
    assert response == pytest.approx(exact.response, rel=0.15)
    assert x * service <= servers * (1 + 1e-9)          # never past capacity


def test_finite_source_excess_against_exact_binomial():
    for n, u, c in [(200, 0.3, 50), (1000, 0.02, 15), (64, 0.5, 30)]:
        k = np.arange(n + 1)
        exact = np.sum(np.maximum(k - c, 0) * stats.binom.pmf(k, n, u))
        assert S.finite_source_excess(n, u, c) == pytest.approx(exact, rel=0.05, abs=1e-3)
        assert S.finite_source_tail(n, u, c) == pytest.approx(stats.binom.sf(c - 1, n, u),
                                                              abs=0.02)


@pytest.mark.parametrize("lam, mean", [(0.1, 1.0), (2.0, 0.5), (20.0, 0.3), (1e-4, 2.0)])
def test_mginf_max_residual_against_integral_and_simulation(lam, mean):
    f = FORMULAS["mginf_max_residual"]
    integral, _ = integrate.quad(lambda t: 1 - np.exp(-lam * mean * np.exp(-t / mean)), 0, np.inf,
                                 limit=200)
    assert f(lam, mean) == pytest.approx(integral, rel=1e-9)
    # M/M/infinity at a random time: Poisson(lam m) holders, residuals Exp(m) (memoryless)
    rng = np.random.default_rng(11)
    k = rng.poisson(lam * mean, 200_000)
    maxima = np.array([rng.exponential(mean, size=j).max() if j else 0.0 for j in k[:50_000]])
    half = 3 * maxima.std() / np.sqrt(maxima.size)
    assert abs(maxima.mean() - f(lam, mean)) <= half + 1e-12
    # the sympy derivation evaluates to the same number
    derived = S.derive_mginf_max_residual()
    assert complex(derived.subs({S.arrival_rate: lam, S.service_mean: mean}).evalf()).real \
        == pytest.approx(f(lam, mean), rel=1e-9)


def test_mg1_busy_period_residual_mm1():
    lam, mu = 0.6, 1.0
    rho = lam / mu
    eb, eb2 = 1 / (mu - lam), 2 / (mu**2 * (1 - rho) ** 3)      # M/M/1 busy period moments
    assert FORMULAS["mg1_busy_period_residual"](lam, 1 / mu, 1.0) == pytest.approx(
        eb2 / (2 * eb), rel=1e-12)
    assert FORMULAS["mg1_busy_period_residual"](1.2, 1.0, 1.0) == np.inf


def test_vma_abort_probability_and_blocked_wait_identities():
    assert FORMULAS["vma_abort_probability"](100.0, 0.5, 1e-3, 4, 0.1, 2e-3) == pytest.approx(
        100 * (0.5 * 1e-3 / 4 + 0.1 * 2e-3), rel=1e-14)
    assert FORMULAS["blocked_wait_mean"](0.2, 3e-4, 1e-5) == pytest.approx(0.2 * 3.1e-4,
                                                                           rel=1e-14)
    assert FORMULAS["interactive_response_time_law"](16, 1e-3, 3e-3) == pytest.approx(4000.0)


@pytest.mark.parametrize("x0, width, p0, wbar", [(1.0, 2.0, 0.3, 0.5), (1.0, 0.5, 0.0, 3.0),
                                                 (0.2, 1.0, 1.0, 1.0), (2.0, 1e-3, 0.6, 0.1)])
def test_uniform_plus_wait_against_numerical_convolution(x0, width, p0, wbar):
    for t in [0.1, 1.2, 2.5, 3.4, 9.0]:
        def integrand(x, t=t):
            u = t - x
            return (p0 + (1 - p0) * (1 - np.exp(-u / wbar))) if u >= 0 else 0.0
        conv, _ = integrate.quad(integrand, x0, x0 + width, points=[t] if x0 < t < x0 + width
                                 else None)
        assert S.uniform_plus_wait(t, x0, width, p0, wbar) == pytest.approx(conv / width,
                                                                             abs=1e-9)
    f = FORMULAS["uniform_plus_wait_cdf"]
    expr_fn = sp.lambdify(f.symbols, f.expr, modules=["scipy", "numpy"])
    assert float(expr_fn(2.5, x0, width, p0, wbar)) == pytest.approx(
        S.uniform_plus_wait(2.5, x0, width, p0, wbar), abs=1e-12)
    # an atom: width 0
    assert S.uniform_plus_wait(1.5, 1.0, 0.0, 0.3, 0.5) == pytest.approx(
        0.3 + 0.7 * (1 - np.exp(-1.0)), rel=1e-12)


#: the formulas whose numeric form is one compiled kernel rather than their lambdified expression
KERNEL_FORMULAS = ("finite_source_wait", "lag_inside_probability", "lag_inside_residual",
                   "mginf_max_residual", "uniform_plus_wait_cdf")


#: the formulas the analytic model's compiled fixed point uses (faultlock.model.fixed_point)
COMPILED_FORMULAS = ("finite_source_wait", "lag_inside_probability", "lag_inside_residual",
                     "mg1_busy_period_residual", "mg1_wait", "mginf_busy_period",
                     "mginf_max_residual", "read_service_time", "refault_success_window",
                     "vma_abort_probability", "writer_utilisation")


def _random_point(formula, rng):
    point = []
    for s in formula.symbols:
        if s.is_integer:
            point.append(float(rng.integers(1, 64)))
        else:
            point.append(float(10 ** rng.uniform(-4, 1) if rng.random() < 0.8 else rng.random()))
    return point


@pytest.mark.parametrize("name", [n for n in COMPILED_FORMULAS if n not in KERNEL_FORMULAS])
def test_compiled_formula_equals_numeric(name):
    """Formula.compiled() (scalar numba) equals numeric() to 1e-12 on random points, the
    condition included (inf where it fails), nan in nan out.  (A kernel formula's two forms are
    one kernel: test_kernel_is_the_one_numeric_form.)"""
    formula = FORMULAS[name]
    fast, ref = formula.compiled(), formula.numeric()
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    for _ in range(300):
        point = _random_point(formula, rng)
        got, want = fast(*point), float(ref(*point))
        rel = 1e-12
        if name == "mginf_busy_period":   # exp(x) - 1 cancels: numpy's and libm's exp may
            rel *= max(1.0, 1.0 / (point[0] * point[1]))   # differ by an ulp
        if np.isfinite(want):
            assert got == pytest.approx(want, rel=rel, abs=1e-300), (point, got, want)
        else:
            assert got == want or (np.isnan(got) and np.isnan(want)), (point, got, want)
    nan_point = [np.nan] + _random_point(formula, rng)[1:]
    assert np.isnan(fast(*nan_point)) == np.isnan(ref(*nan_point))


def test_compiled_conditions_give_inf():
    assert FORMULAS["mg1_wait"].compiled()(2.0, 1.0, 1.0) == np.inf
    assert np.isnan(FORMULAS["mg1_wait"].compiled()(np.nan, 1.0, 1.0))


def test_compiled_formulas_without_an_implementation_compile():
    """Every registered formula without a Sum has a compiled form equal to numeric()."""
    rng = np.random.default_rng(3)
    for name, formula in FORMULAS.items():
        if formula.expr.has(sp.Sum) or name in COMPILED_FORMULAS + KERNEL_FORMULAS:
            continue
        if formula.implementation is not None and formula.compiled_implementation is None:
            with pytest.raises(NotImplementedError):
                formula.compiled()
            continue
        point = _random_point(formula, rng)
        got, want = formula.compiled()(*point), float(formula.numeric()(*point))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300) or (
            np.isnan(got) and np.isnan(want)) or got == want, name


def _exact(formula, point, digits=40):
    """The sympy expression at ``point`` in mpmath arithmetic (no floating-point cancellation)."""
    value = formula.expr.evalf(digits, subs=dict(zip(formula.symbols, point)))
    return float(value)


@pytest.mark.parametrize("name", KERNEL_FORMULAS)
def test_kernel_is_the_one_numeric_form(name):
    """numeric() (arrays) and compiled() (scalars) are the same kernel: equal bit for bit."""
    formula = FORMULAS[name]
    assert formula.compiled() is formula.compiled_implementation
    rng = np.random.default_rng(2)
    points = np.array([_random_point(formula, rng) for _ in range(200)])
    points[0, 0] = np.nan
    arrays = formula.numeric()(*points.T)
    scalars = [formula.compiled()(*point) for point in points]
    np.testing.assert_array_equal(arrays, scalars)


@pytest.mark.parametrize("name", KERNEL_FORMULAS)
def test_kernel_equals_its_sympy_expression(name):
    """Each kernel against its registered expression evaluated exactly (40 digits), at random
    points over six decades.  Tolerances: 1e-11 relative where the kernel takes the
    expression's own route; where it takes a series instead (lag_inside: S/m_x < 1e-3, whose
    truncation after x^3 errs by at most 10 x^2 relative for c_S <= 2), that bound."""
    formula = FORMULAS[name]
    kernel = formula.compiled()
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    for _ in range(150):
        point = _random_point(formula, rng)
        if name.startswith("lag_inside"):
            point = [10 ** rng.uniform(-6, -3), rng.uniform(0.05, 2.0), 10 ** rng.uniform(-7, 0)]
        if name == "finite_source_wait":
            point[2] = rng.uniform(0.0, 1.0)                 # a time share
        if name == "uniform_plus_wait_cdf":
            point[3] = rng.uniform(0.0, 1.0)                 # a probability
            point[0] = point[1] + rng.uniform(-0.5, 2.0) * point[2]   # t around the stratum
        got, want = kernel(*point), _exact(formula, point)
        rel = 1e-11
        abs_tol = 1e-300
        if name.startswith("lag_inside"):
            x = point[0] / point[2]
            rel = max(rel, 10 * x**2) if x < 1e-3 else rel
        if name == "finite_source_wait":
            # (K - c)^+ far below its mean: two terms of the normal form cancel in floating
            # point; the kernel keeps 1e-11 of the scale m (n + 1)/c
            c, n, _, m, _ = point
            abs_tol = 1e-11 * m * (n + 1) / c
        assert got == pytest.approx(want, rel=rel, abs=abs_tol), (point, got, want)
