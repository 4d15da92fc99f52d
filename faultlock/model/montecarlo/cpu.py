"""CPUs, sleeping and waking: the scheduler side of every wait in the model.

``cpus`` CPUs are shared by the faulting threads and the writers (0 = unlimited). Work runs in
bursts: a thread's computing between accesses, a fault attempt's CPU time, a zram decompression, a
writer's critical section, an optimistic spin. A burst that finds no free CPU waits in a FIFO run
queue; a burst longer than ``sched_slice`` yields its CPU at the end of each slice when others are
queued (EEVDF's base slice, ``kernel/sched/fair.c``). A sleeper that is woken (by a lock grant, a
folio unlock, a drained VMA) first pays ``wakeup_latency`` (``try_to_wake_up`` to the task being
runnable) and then waits for a CPU like anyone else, so the cost of a wake-up grows with load, as
traces of a 6.18 kernel show (``MODEL.md``).
"""

from numba import njit

from . import calendar
from .state import (EV_BURST, EV_RUN, EV_WAKE, I_CPU_FREE, I_RQ_HEAD, I_RQ_LEN, P_SLICE, P_WAKE,
                    Q_CPUS, R_NOW)


@njit(cache=True, inline="always")
def set_timer(S, entity, when):
    calendar.schedule(S.heap_time, S.heap_ent, S.heap_pos, S.heap_size, entity, when)


@njit(cache=True)
def run_now(S, entity, cont):
    """``entity`` already has a CPU: run ``cont`` as the next event."""
    S.ent_cont[entity] = cont
    S.ent_event[entity] = EV_RUN
    S.burst_rem[entity] = 0.0
    set_timer(S, entity, S.reals[R_NOW])


@njit(cache=True)
def wake(S, P, entity, cont):
    """Wake a sleeper: after the wake-up latency it asks for a CPU, then runs ``cont``."""
    S.ent_cont[entity] = cont
    S.ent_event[entity] = EV_WAKE
    S.burst_rem[entity] = 0.0
    set_timer(S, entity, S.reals[R_NOW] + P[P_WAKE])


@njit(cache=True)
def request_cpu(S, Q, entity):
    """``entity`` is runnable: give it a CPU now, or queue it."""
    if Q[Q_CPUS] == 0 or S.ints[I_CPU_FREE] > 0:
        if Q[Q_CPUS] > 0:
            S.ints[I_CPU_FREE] -= 1
        S.ent_event[entity] = EV_RUN
        set_timer(S, entity, S.reals[R_NOW])
    else:
        n = S.run_queue.shape[0]
        S.run_queue[(S.ints[I_RQ_HEAD] + S.ints[I_RQ_LEN]) % n] = entity
        S.ints[I_RQ_LEN] += 1


@njit(cache=True)
def release_cpu(S, Q):
    """The running entity leaves its CPU (it sleeps or ends): pass it to the head of the queue."""
    if Q[Q_CPUS] == 0:
        return
    if S.ints[I_RQ_LEN] > 0:
        head = S.ints[I_RQ_HEAD]
        entity = S.run_queue[head]
        S.ints[I_RQ_HEAD] = (head + 1) % S.run_queue.shape[0]
        S.ints[I_RQ_LEN] -= 1
        S.ent_event[entity] = EV_RUN
        set_timer(S, entity, S.reals[R_NOW])
    else:
        S.ints[I_CPU_FREE] += 1


@njit(cache=True)
def burst(S, P, Q, entity, duration, cont):
    """``entity`` (on a CPU) computes for ``duration``, then runs ``cont``."""
    S.ent_cont[entity] = cont
    S.ent_event[entity] = EV_BURST
    run = duration
    if Q[Q_CPUS] > 0 and duration > P[P_SLICE]:
        run = P[P_SLICE]
    S.burst_rem[entity] = duration - run
    set_timer(S, entity, S.reals[R_NOW] + run)


@njit(cache=True)
def burst_slice_end(S, P, Q, entity):
    """End of a slice. True if the burst is complete; otherwise it goes on or yields its CPU."""
    remaining = S.burst_rem[entity]
    if remaining <= 0.0:
        return True
    if S.ints[I_RQ_LEN] > 0:
        # Yield: requeue at the tail with the rest of the burst; EV_RUN resumes it.
        release_cpu(S, Q)
        n = S.run_queue.shape[0]
        S.run_queue[(S.ints[I_RQ_HEAD] + S.ints[I_RQ_LEN]) % n] = entity
        S.ints[I_RQ_LEN] += 1
        S.ent_event[entity] = EV_RUN
        return False
    burst(S, P, Q, entity, remaining, S.ent_cont[entity])
    return False
