"""Random variates inside the compiled engine.

Every stream is one 64-bit SplitMix64 state (Steele, Lea & Flood, OOPSLA 2014), seeded from a
``numpy.random.SeedSequence``. One stream per purpose and per thread (think times, page choices,
read latencies of thread *i*; writer arrivals, holds, kinds; reclaim clocks) gives *common random
numbers* across policies: the k-th think time of thread i is the same number under every policy
(``reference/queueing.md`` §3.2).
"""

import numpy as np
from numba import njit

from ..laws import LAW_CODES, gamma_shape_scale, lognormal_mu_sigma

# Law codes of scenario.py's ``io_distribution`` / ``writer_hold_distribution`` (laws.LAW_CODES).
LAW_EXPONENTIAL = LAW_CODES["exponential"]
LAW_LOGNORMAL = LAW_CODES["lognormal"]
LAW_GAMMA = LAW_CODES["gamma"]
LAW_DETERMINISTIC = LAW_CODES["deterministic"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_M53 = 1.0 / 9007199254740992.0


def seed_streams(seed_sequence: np.random.SeedSequence, n_streams: int) -> np.ndarray:
    """One uint64 state per stream, drawn from ``seed_sequence``."""
    return seed_sequence.generate_state(n_streams, dtype=np.uint64)


@njit(cache=True, inline="always")
def next_u64(states, k):
    x = states[k] + _GOLDEN
    states[k] = x
    z = (x ^ (x >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def uniform(states, k):
    """U(0, 1), never exactly 0 or 1."""
    return ((next_u64(states, k) >> np.uint64(11)) + 0.5) * _TWO_M53


@njit(cache=True, inline="always")
def exponential(states, k, mean):
    return -mean * np.log(uniform(states, k))


@njit(cache=True)
def standard_normal(states, k):
    # Box-Muller; one of the pair is discarded so that the stream position stays simple.
    u1 = uniform(states, k)
    u2 = uniform(states, k)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@njit(cache=True)
def gamma_unit_scale(states, k, shape):
    """Marsaglia & Tsang (2000), with the shape < 1 boost."""
    if shape < 1.0:
        return gamma_unit_scale(states, k, shape + 1.0) * uniform(states, k) ** (1.0 / shape)
    d = shape - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    while True:
        x = standard_normal(states, k)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = uniform(states, k)
        if np.log(u) < 0.5 * x * x + d - d * v + d * np.log(v):
            return d * v


@njit(cache=True)
def sample_law(states, k, law, mean, cv):
    """A variate with the given mean and coefficient of variation under ``law`` (a code of
    ``laws.LAW_CODES``); the log-normal's and the gamma's parameters come from ``laws``."""
    if mean <= 0.0:
        return 0.0
    if law == LAW_EXPONENTIAL:
        return exponential(states, k, mean)
    if law == LAW_DETERMINISTIC or cv <= 0.0:
        return mean
    if law == LAW_LOGNORMAL:
        mu, sigma = lognormal_mu_sigma(mean, cv)
        return np.exp(mu + sigma * standard_normal(states, k))
    shape, scale = gamma_shape_scale(mean, cv)
    return gamma_unit_scale(states, k, shape) * scale


@njit(cache=True)
def stall(states, k, share, mean, cv):
    """The extra time of a read held up by the host (``laws.stall_cdf``): 0 with probability
    1 - ``share``, else log-normal (``mean``, ``cv``). Draws nothing when ``share`` is 0, so
    that runs without stalls keep their random numbers."""
    if share <= 0.0:
        return 0.0
    if uniform(states, k) >= share:
        return 0.0
    return sample_law(states, k, LAW_LOGNORMAL, mean, cv)


@njit(cache=True, inline="always")
def _log1p_over_x(x):
    if abs(x) > 1e-8:
        return np.log1p(x) / x
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))


@njit(cache=True, inline="always")
def _expm1_over_x(x):
    if abs(x) > 1e-8:
        return np.expm1(x) / x
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))


@njit(cache=True, inline="always")
def _zipf_h_integral(x, exponent):
    log_x = np.log(x)
    return _expm1_over_x((1.0 - exponent) * log_x) * log_x


@njit(cache=True, inline="always")
def _zipf_h(x, exponent):
    return np.exp(-exponent * np.log(x))


@njit(cache=True, inline="always")
def _zipf_h_integral_inverse(x, exponent):
    t = x * (1.0 - exponent)
    if t < -1.0:
        t = -1.0
    return np.exp(_log1p_over_x(t) * x)


def zipf_constants(n: int, exponent: float) -> tuple[float, float, float]:
    """The per-distribution constants of :func:`zipf_rank` (computed once, outside the loop)."""
    if exponent == 0.0 or n == 1:
        return 0.0, 0.0, 0.0
    h_x1 = _zipf_h_integral(1.5, exponent) - 1.0
    h_n = _zipf_h_integral(n + 0.5, exponent)
    s = 2.0 - _zipf_h_integral_inverse(_zipf_h_integral(2.5, exponent) - _zipf_h(2.0, exponent),
                                       exponent)
    return h_x1, h_n, s


@njit(cache=True)
def zipf_rank(states, k, n, exponent, h_x1, h_n, s):
    """A rank in [0, n) with P(rank=r) proportional to (r+1)^-exponent, in O(1).

    Rejection-inversion of Hörmann & Derflinger (ACM TOMACS 6(3), 1996), as in Apache Commons
    RNG's ``RejectionInversionZipfSampler``; exponent 0 is uniform. ``h_x1, h_n, s`` come from
    :func:`zipf_constants`.
    """
    if exponent == 0.0 or n == 1:
        r = np.int64(uniform(states, k) * n)
        return r if r < n else n - 1
    while True:
        u = h_n + uniform(states, k) * (h_x1 - h_n)
        x = _zipf_h_integral_inverse(u, exponent)
        kk = np.int64(x + 0.5)
        if kk < 1:
            kk = 1
        elif kk > n:
            kk = n
        if kk - x <= s or u >= _zipf_h_integral(kk + 0.5, exponent) - _zipf_h(kk, exponent):
            return kk - 1


ALIAS_LIMIT = 1 << 21   # popularity laws over at most this many pages use an alias table


@njit(cache=True)
def build_alias(n, exponent):
    """Walker's alias table (Vose's construction) for P(r) proportional to (r+1)^-exponent.

    One uniform variate per draw, where rejection-inversion needs several logarithms and
    exponentials: the table costs 12 bytes a page and is built once per run.
    """
    weights = np.empty(n)
    total = 0.0
    for r in range(n):
        weights[r] = (r + 1.0) ** (-exponent)
        total += weights[r]
    scaled = weights * (n / total)
    prob = np.empty(n)
    alias = np.zeros(n, dtype=np.int32)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    n_small = 0
    n_large = 0
    for r in range(n):
        if scaled[r] < 1.0:
            small[n_small] = r
            n_small += 1
        else:
            large[n_large] = r
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s_ = small[n_small]
        g = large[n_large - 1]
        prob[s_] = scaled[s_]
        alias[s_] = g
        scaled[g] = (scaled[g] + scaled[s_]) - 1.0
        if scaled[g] < 1.0:
            n_large -= 1
            small[n_small] = g
            n_small += 1
    for i in range(n_large):
        prob[large[i]] = 1.0
    for i in range(n_small):
        prob[small[i]] = 1.0
    return prob, alias


@njit(cache=True, inline="always")
def alias_draw(states, k, prob, alias):
    u = uniform(states, k) * prob.shape[0]
    i = np.int64(u)
    if u - i < prob[i]:
        return i
    return np.int64(alias[i])
