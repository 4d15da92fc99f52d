"""Noise: CPU-bound threads of another process on the same CPUs (``ioretry_noise.c``).

The reproducer's noise variant adds threads that loop: an empty loop of 5000 iterations, then
``nanosleep`` of 50 µs, at nice -10, pinned to the CPUs of the faulting threads. They take no lock
of ours; they only compete for CPUs, and so lengthen the time a woken fault waits to run (the
window in which its folio can be reclaimed).

Each of ``noise_threads`` threads loops: a CPU burst of ``noise_cpu`` (constant, an empty loop),
then a sleep, exponential with mean ``noise_sleep`` (``hrtimer_nanosleep``: the requested time plus
timer slack), then ``wakeup_latency`` before it is runnable. It then asks for a CPU as any woken
task does (``cpu.request_cpu``: it may preempt a thread that is computing between accesses, or
queues at the front of the run queue behind the woken tasks). Its bursts are not preempted by woken
faulting threads (nice -10 weighs ~9.5 times a nice-0 task in EEVDF, so a woken nice-0 task rarely
has the earlier deadline); a burst longer than ``sched_slice`` yields as any other.
"""

from numba import njit

from . import cpu, rng
from .state import (EV_WAKE, K_NOISE_DONE, K_NOISE_RUN, P_NOISE_CPU, P_NOISE_SLEEP, P_WAKE,
                    Q_FIRST_NOISE, Q_NOISE_STREAM, Q_NOISE_THREADS, R_NOW, S_NOISE_CPU)
from .stats import count


@njit(cache=True)
def start(S, P, Q):
    """At t = 0 every noise thread is runnable."""
    for n in range(Q[Q_NOISE_THREADS]):
        entity = Q[Q_FIRST_NOISE] + n
        S.ent_cont[entity] = K_NOISE_RUN
        cpu.request_cpu(S, P, Q, entity, False)


@njit(cache=True)
def run(S, P, Q, entity):
    """On a CPU: the loop's CPU burst."""
    cpu.burst(S, P, Q, entity, P[P_NOISE_CPU], K_NOISE_DONE)


@njit(cache=True)
def done(S, P, Q, entity):
    """The burst is done: ``nanosleep``, then a wake-up."""
    count(S, S_NOISE_CPU, P[P_NOISE_CPU])
    cpu.release_cpu(S, Q, entity)
    sleep = rng.exponential(S.streams, Q[Q_NOISE_STREAM] + entity - Q[Q_FIRST_NOISE],
                            P[P_NOISE_SLEEP])
    S.ent_event[entity] = EV_WAKE
    S.ent_cont[entity] = K_NOISE_RUN
    S.burst_rem[entity] = 0.0
    cpu.set_timer(S, entity, S.reals[R_NOW] + sleep + P[P_WAKE])
