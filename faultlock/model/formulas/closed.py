"""Closed N-thread models (queueing.md §1.4): the exact oracles and the asymptotic bounds.

N threads alternate a think time and a visit to one station.  :func:`machine_repairman`
(M/M/1//N), :func:`mva_single_station` (exact MVA) and :func:`mva_multiserver` (M/M/c//N) are
exact and numerically stable up to N = 10^5 (log-space normalising constants, O(N)): the tests
check the engine and the analytic model's approximations against them.  The registry holds the
balanced-job bounds and the interactive response time law the analytic model solves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import special

from .registry import Formula, register
from .symbols import response_time, service_mean, think_time, threads

__all__ = ["ClosedModelResult", "interactive_response_time_law", "machine_repairman",
           "mva_multiserver", "mva_single_station", "repairman_knee",
           "repairman_throughput_bound"]

_m = service_mean

# --------------------------------------------------------------------------------------------
# Closed N-thread model: bounds (queueing.md §1.4)
# --------------------------------------------------------------------------------------------

_N, _Z = threads, think_time

repairman_throughput_bound = register(Formula(
    name="repairman_throughput_bound",
    lhs=sp.Symbol(r"X^{max}"),
    expr=sp.Min(_N / (_Z + _m), 1 / _m),
    symbols=(_N, _Z, _m),
    assumptions="Closed population of N threads, think time Z, one exclusive station with mean "
                "service m; asymptotic (balanced-job) bounds, any distributions.",
    reference="Denning & Buzen (1978); Lazowska et al., Quantitative System Performance ch. 5; "
              "queueing.md §1.4.",
))

repairman_knee = register(Formula(
    name="repairman_knee",
    lhs=sp.Symbol(r"N^{*}"),
    expr=(_Z + _m) / _m,
    symbols=(_Z, _m),
    assumptions="As repairman_throughput_bound: the population where the two bounds cross.",
    reference="Lazowska et al., Quantitative System Performance ch. 5; queueing.md §1.4.",
))


# --------------------------------------------------------------------------------------------
# Closed N-thread model: exact solutions (queueing.md §1.4)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedModelResult:
    """Solution of a closed N-thread model (think station + one queueing station).

    throughput : X, station completions per second (= thread cycles per second).
    response : R, mean time per visit at the station (queueing + service), s.
    utilisation : busy fraction per server (X m / c).
    queue_length : mean number of threads at the station (X R, Little).
    probabilities : P(n threads at the station), n = 0..N, if requested.
    method : which exact method produced the numbers.
    """

    throughput: float
    response: float
    utilisation: float
    queue_length: float
    probabilities: np.ndarray | None = None
    method: str = ""


def _check_closed(n_threads: int, think: float, service: float) -> int:
    if int(n_threads) != n_threads or n_threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {n_threads!r}")
    if not (np.isfinite(think) and think >= 0):
        raise ValueError(f"think must be finite and >= 0, got {think!r}")
    if not (np.isfinite(service) and service >= 0):
        raise ValueError(f"service must be finite and >= 0, got {service!r}")
    if think == 0 and service == 0:
        raise ValueError("think and service cannot both be 0")
    return int(n_threads)


def _birth_death_solution(n: int, think: float, service: float, servers: int,
                          probabilities: bool, method: str) -> ClosedModelResult:
    """Product form of the closed birth-death chain.

    Threads at the station go up at rate (N - k)/Z and down at rate min(k, c)/S, so
    p_k ∝ N!/(N-k)! (S/Z)^k / beta(k), beta(k) = k! for k <= c and c! c^(k-c) otherwise.
    Normalised in log space.  The log-weights are accumulated outward from the mode from the
    log-ratios d_k = ln(p_k/p_{k-1}) = ln(N-k+1) - ln(min(k, c)) + ln(S/Z) rather than from
    gammaln(N+1) - ...: the latter are of size N ln N and would cost ~N ln N * eps of relative
    precision (1e-10 at N = 10^5); this way the mass near the mode is exact to a few ulp.
    """
    k = np.arange(n + 1, dtype=float)
    if service == 0:  # pure delay: nobody is ever at the station
        p = np.zeros(n + 1)
        p[0] = 1.0
        x = n / think
    else:
        if think == 0:  # everyone is always at the station
            p = np.zeros(n + 1)
            p[n] = 1.0
        else:
            j = k[1:]
            d = np.log(n - j + 1) - np.log(np.minimum(j, servers)) + (np.log(service)
                                                                        - np.log(think))
            mode = int(np.count_nonzero(d > 0))  # d is non-increasing: p is unimodal
            logw = np.empty(n + 1)
            logw[mode] = 0.0
            logw[mode + 1:] = np.cumsum(d[mode:])
            logw[:mode] = -np.cumsum(d[mode - 1::-1])[::-1] if mode > 0 else logw[:0]
            p = np.exp(logw - special.logsumexp(logw))
        x = float(np.dot(np.minimum(k, servers), p)) / service
    q = float(np.dot(k, p))
    r = q / x
    util = x * service / servers
    return ClosedModelResult(float(x), float(r), float(util), q,
                             p if probabilities else None, method)


def machine_repairman(threads: int, think: float, service: float,
                      probabilities: bool = False) -> ClosedModelResult:
    """Exact M/M/1//N machine repairman (queueing.md §1.4).

    N threads alternate a think time of mean ``think`` (any law: the delay station is insensitive)
    and one exclusive exponential FCFS station of mean ``service``.
    p_n ∝ N!/(N-n)! (S/Z)^n; X = (1 - p_0)/S; R = Q/X (= N/X - Z).  Computed in log space
    (log-ratios summed outward from the mode, logsumexp): exact to a few ulp for N up to 10^5
    and beyond, O(N).
    """
    n = _check_closed(threads, think, service)
    return _birth_death_solution(n, float(think), float(service), 1, probabilities,
                                 "product-form (log-space normalising constant)")


def mva_single_station(threads: int, think: float, service: float) -> ClosedModelResult:
    """Exact Mean Value Analysis (Reiser & Lavenberg 1980) of think station + one FCFS queue.

    R(n) = S (1 + Q(n-1)), X(n) = n / (Z + R(n)), Q(n) = X(n) R(n), for n = 1..N.  O(N).
    Equal to :func:`machine_repairman` (test: 1e-9 for N up to 1024).
    """
    n = _check_closed(threads, think, service)
    s, z = float(service), float(think)
    q = 0.0
    x = r = 0.0
    for pop in range(1, n + 1):
        r = s * (1.0 + q)
        x = pop / (z + r)
        q = x * r
    return ClosedModelResult(x, r, x * s, q, None, "exact MVA (Reiser-Lavenberg)")


def mva_multiserver(threads: int, think: float, service: float,
                    servers: int, probabilities: bool = False) -> ClosedModelResult:
    """Exact M/M/c//N: N threads, think ``think``, a station of ``servers`` exponential servers.

    Used for threads sharing ``cpus`` CPUs.  Equivalent to exact load-dependent MVA with
    mu(k) = min(k, c)/S, but computed from the product-form probabilities
    p_k ∝ N!/(N-k)! / beta(k) (Z/S)^(-k), beta(k) = k! (k <= c), c! c^(k-c) (k > c), in log space:
    the load-dependent MVA recursion loses p(0|n) to cancellation at high load, this does not.
    ``utilisation`` is per server, X S / c.
    """
    n = _check_closed(threads, think, service)
    if int(servers) != servers or servers < 1:
        raise ValueError(f"servers must be an integer >= 1, got {servers!r}")
    return _birth_death_solution(n, float(think), float(service), int(servers), probabilities,
                                 "product-form load-dependent (log-space normalising constant)")


#: Closed-loop throughput: the interactive response time law X = N / (Z + R).
interactive_response_time_law = register(Formula(
    name="interactive_response_time_law",
    lhs=sp.Symbol("X"),
    expr=_N / (_Z + response_time),
    symbols=(_N, _Z, response_time),
    assumptions="N threads in a closed loop, each cycle a think time of mean Z and a response R "
                "(everything else: faults, lock and CPU waits); Little's law on the whole loop.  "
                "The analytic model solves X = N/(Z + R(X)) as a fixed point, R increasing in X, "
                "so that the model saturates instead of diverging.",
    reference="Lazowska et al., Quantitative System Performance (1984) §3.3; queueing.md §1.4.",
))
