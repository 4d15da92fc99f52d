"""The symbols of every formula, and the public parameter names they stand for.

:data:`PARAMETER_NAMES` maps each sympy symbol to the name a caller passes to
:meth:`~faultlock.model.formulas.registry.Formula.numeric` as a keyword (the names of Scenario and
of the analytic model where they coincide); :data:`SYMBOLS` is its inverse.  All times are in
seconds, all rates per second.  A symbol's assumptions (positive, integer) are part of the
expressions built from it, hence of their hashes: change one and every formula using it gets a
new hash.
"""

from __future__ import annotations

import sympy as sp

# --------------------------------------------------------------------------------------------
# Queueing theory: arrivals, service, locks, the refault loop, closed populations
# --------------------------------------------------------------------------------------------

arrival_rate = sp.Symbol("lambda", positive=True)  # Poisson arrival rate (1/s)
service_rate = sp.Symbol("mu", positive=True)  # exponential service rate (1/s)
service_mean = sp.Symbol("m", positive=True)  # mean service (hold) time E[S] (s)
service_cv = sp.Symbol("c_v", nonnegative=True)  # coefficient of variation of S
servers = sp.Symbol("c", integer=True, positive=True)  # number of servers (io_parallelism)
vacation_mean = sp.Symbol("v", positive=True)  # mean server vacation (a writer hold, for readers)
vacation_cv = sp.Symbol("c_V", nonnegative=True)  # coefficient of variation of the vacation

writer_share = sp.Symbol("p_w", positive=True)  # share of arrivals that are writers, in (0, 1]
reader_service_rate = sp.Symbol("mu_r", positive=True)  # reader hold rate 1/E[S_r]
writer_service_rate = sp.Symbol("mu_w", positive=True)  # writer hold rate 1/E[S_w]
writer_hold_max = sp.Symbol("L_w^max", positive=True)  # longest writer critical section (s)
reader_hold_max = sp.Symbol("L_r^max", positive=True)  # longest reader critical section (s)

io_latency = sp.Symbol("L", positive=True)  # mean storage read latency (s)
reclaim_rate = sp.Symbol("theta", positive=True)  # reclaim hazard on an exposed folio (1/s)
window_mean = sp.Symbol("h", positive=True)  # mean exposure window after the read (s)

threads = sp.Symbol("N", integer=True, positive=True)  # closed population of threads
think_time = sp.Symbol("Z", positive=True)  # mean think time between station visits (s)


# --------------------------------------------------------------------------------------------
# The page-fault model (issue 3): the quantities faultlock.model.analytic feeds the formulas
# --------------------------------------------------------------------------------------------

page_access_rate = sp.Symbol("a", positive=True)  # accesses per second to one page
readaround_rate = sp.Symbol(r"\rho_{ra}", positive=True)  # read-arounds covering one page (1/s)
reclaim_cached = sp.Symbol(r"\theta_c", positive=True)  # reclaim hazard of a cached folio (1/s)
reclaim_mapped = sp.Symbol(r"\theta_m", positive=True)  # reclaim hazard of a mapped folio (1/s)
fault_locked_time = sp.Symbol("T_f", positive=True)  # a faulted folio's locked period (s)
read_time = sp.Symbol("T_r", positive=True)  # one storage read, submission to completion (s)
fault_cpu = sp.Symbol("c_f", positive=True)  # CPU time of one fault attempt (s)
block_probability = sp.Symbol("P_b", positive=True)  # probability a lock request must sleep
wake_time = sp.Symbol("g", positive=True)  # wake-up latency plus CPU wait of a woken sleeper (s)
residual_mean = sp.Symbol("r", positive=True)  # mean residual of the blocking period (s)
success_probability = sp.Symbol("q", positive=True)  # one attempt keeps its folio
max_attempts = sp.Symbol("n_a", integer=True, positive=True)  # attempts before the last one holds
population_others = sp.Symbol("n", integer=True, positive=True)  # other threads (N - 1)
busy_share = sp.Symbol("u", positive=True)  # share of time a thread is at the station
writer_rate = sp.Symbol(r"\lambda_w", positive=True)  # mmap_lock writers per second
writer_vma_share = sp.Symbol("s_1", positive=True)  # share of writers locking one VMA
writer_fork_share = sp.Symbol("s_f", positive=True)  # share of writers locking every VMA
vma_count = sp.Symbol("V", integer=True, positive=True)  # VMAs
vma_lock_time_one = sp.Symbol("H_1", positive=True)  # time a one-VMA writer keeps its VMA locked
vma_lock_time_fork = sp.Symbol("H_f", positive=True)  # time a fork keeps a VMA locked (mean)
writer_exclusive_time = sp.Symbol("e_w", positive=True)  # time per writer readers are shut out
response_time = sp.Symbol("R", positive=True)  # time per cycle outside the think station (s)
latency = sp.Symbol("t", positive=True)  # a latency at which a CDF is evaluated (s)
read_low = sp.Symbol("x_0", positive=True)  # lower end of a stratum of the read time (s)
read_width = sp.Symbol(r"\Delta x", positive=True)  # width of that stratum (s)
no_wait_probability = sp.Symbol("p_0", positive=True)  # probability the wait part is zero
wait_mean = sp.Symbol(r"\bar w", positive=True)  # mean of the wait part when positive (s)
depth_seen = sp.Symbol("d", positive=True)  # reads in flight when a read starts
depth_slope = sp.Symbol(r"\sigma_d", positive=True)  # io_depth_slope (s per read in flight)
page_time = sp.Symbol(r"\tau_p", positive=True)  # io_page_time (s per extra page)
pages_per_read = sp.Symbol("k_p", positive=True)  # pages one read transfers


# a closed population against a period: an exponential lag falls inside a gamma period
period_mean = sp.Symbol("S", positive=True)  # mean length of a period (s)
period_cv = sp.Symbol("c_S", positive=True)  # its coefficient of variation
lag_mean = sp.Symbol("m_x", positive=True)  # mean of an exponential lag (s)

# the LRU's characteristic times (the memory limit, formulas/lru_cache.py)
cache_lifetime = sp.Symbol("T_c", positive=True)  # an unreferenced folio's lifetime on the LRU (s)
active_lifetime = sp.Symbol("T_A", positive=True)  # a folio's stay on the active list (s)
refault_window = sp.Symbol("T_w", positive=True)  # absence after which a refault is not activated

#: symbol -> public parameter name (the names used by Scenario and the analytic model).
PARAMETER_NAMES: dict[sp.Symbol, str] = {
    arrival_rate: "arrival_rate",
    service_rate: "service_rate",
    service_mean: "service_mean",
    service_cv: "service_cv",
    servers: "servers",
    vacation_mean: "vacation_mean",
    vacation_cv: "vacation_cv",
    writer_share: "writer_share",
    reader_service_rate: "reader_service_rate",
    writer_service_rate: "writer_service_rate",
    writer_hold_max: "writer_hold_max",
    reader_hold_max: "reader_hold_max",
    io_latency: "io_latency",
    reclaim_rate: "reclaim_rate",
    window_mean: "window_mean",
    threads: "threads",
    think_time: "think_time",
    page_access_rate: "page_access_rate",
    readaround_rate: "readaround_rate",
    reclaim_cached: "reclaim_rate_cached",
    reclaim_mapped: "reclaim_rate_mapped",
    fault_locked_time: "fault_locked_time",
    read_time: "read_time",
    fault_cpu: "fault_cpu_time",
    block_probability: "block_probability",
    wake_time: "wake_time",
    residual_mean: "residual_mean",
    success_probability: "success_probability",
    max_attempts: "max_attempts",
    population_others: "population_others",
    busy_share: "busy_share",
    writer_rate: "writer_rate",
    writer_vma_share: "writer_vma_share",
    writer_fork_share: "writer_fork_share",
    vma_count: "vmas",
    vma_lock_time_one: "vma_lock_time_one",
    vma_lock_time_fork: "vma_lock_time_fork",
    writer_exclusive_time: "writer_exclusive_time",
    response_time: "response_time",
    latency: "latency",
    read_low: "read_low",
    read_width: "read_width",
    no_wait_probability: "no_wait_probability",
    wait_mean: "wait_mean",
    depth_seen: "depth_seen",
    depth_slope: "io_depth_slope",
    page_time: "io_page_time",
    pages_per_read: "pages_per_read",
    period_mean: "period_mean",
    period_cv: "period_cv",
    lag_mean: "lag_mean",
    cache_lifetime: "cache_lifetime",
    active_lifetime: "active_lifetime",
    refault_window: "refault_window",
}

#: public parameter name -> symbol.
SYMBOLS: dict[str, sp.Symbol] = {name: sym for sym, name in PARAMETER_NAMES.items()}
