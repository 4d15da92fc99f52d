"""CPUs, sleeping and waking: the scheduler side of every wait in the model.

``cpus`` CPUs are shared by the faulting threads and the writers (0 = unlimited). Work runs in
bursts: a thread's computing between accesses, a fault attempt's CPU time, a zram decompression, a
writer's critical section, an optimistic spin. A burst that finds no free CPU waits in a FIFO run
queue; a burst longer than ``sched_slice`` yields its CPU at the end of each slice when others are
queued (EEVDF's base slice, ``kernel/sched/fair.c``), and so does a thread that has run a whole
slice in many bursts, at its next preemption point.

A sleeper that is woken (by a lock grant, a folio unlock, a drained VMA, the end of an idle sleep)
first pays ``wakeup_latency`` (``try_to_wake_up`` until the task is runnable), then needs a CPU.
When every CPU is busy it preempts a thread that is only computing between accesses, or a writer
thread running outside the lock (wake-up preemption: a task that slept has earned lag over one
that ran, ``check_preempt_wakeup_fair``); the preempted thread goes to the tail of the run queue
with the rest of its burst. Under ``wakeup_preemption='run_to_parity'`` (the kernel's default
RUN_TO_PARITY) it does so only to a task that has run a whole slice since it got its CPU: before
that, ``protect_slice(curr)`` holds and ``pick_eevdf`` keeps the running task, so the woken one
waits for a CPU to free, up to a slice (1.5 ms on 2 CPUs) behind CPU-bound work. The same rule
decides whether a flat-out writer gives way at a syscall return (``should_yield``).
Lock holders and fault work are not preempted: the kernel runs with preemption mode *none*
(``CONFIG_PREEMPT_DYNAMIC``, ``CONFIG_PREEMPT_NONE=y``), where kernel code gives its CPU only when
it sleeps or at ``cond_resched()`` with ``need_resched`` set; the only such points modelled are
the slice ends of a long burst (a write hold longer than its slice: ``mm/mprotect.c``
``change_pmd_range`` calls ``cond_resched()`` once per PMD, every 512 PTEs, dense next to a
slice), where a holder with others queued yields *holding the lock* (lock-holder preemption),
and the end of fault work, where the thread would return to user mode. If no CPU can be taken
the woken task queues, so the cost of a wake-up grows with load, as traces of a 6.18 kernel show
(``MODEL.md``): at the front of the run queue, behind the woken tasks already there and ahead of
the threads that were computing (EEVDF places a woken task with its lag, so its virtual deadline
is earlier than theirs: ``place_entity``, ``pick_eevdf``), and the first CPU whose task reaches a
preemption point (the end of its fault work, where it would start computing) gives it the CPU.

A writer thread runs burst after burst and may never sleep (flat out): at each acquisition
boundary (a syscall return, where a wake-up's ``need_resched`` takes effect) it gives its CPU to a
queued entity (``yield_cpu``) if ``need_resched`` would be set (``should_yield``), so that nobody
starves behind it.
"""

from numba import njit

from . import calendar
from .state import (EV_BURST, EV_RUN, EV_WAKE, I_CPU_FREE, I_RQ_HEAD, I_RQ_LEN, I_RQ_WOKEN,
                    K_NOISE_DONE, K_THINK_DONE, K_W_GAP_DONE, K_W_HOLD_DONE, K_W_PROC_HOLD_DONE,
                    P_SLICE, P_WAKE, Q_CPUS, Q_RUN_TO_PARITY, R_NOW)


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
def _give(S, entity, cpu):
    S.cpu_running[cpu] = entity
    S.ent_cpu[entity] = cpu
    S.oncpu_since[entity] = S.reals[R_NOW]
    S.ent_event[entity] = EV_RUN
    set_timer(S, entity, S.reals[R_NOW])


@njit(cache=True)
def _enqueue(S, entity):
    n = S.run_queue.shape[0]
    S.run_queue[(S.ints[I_RQ_HEAD] + S.ints[I_RQ_LEN]) % n] = entity
    S.ints[I_RQ_LEN] += 1


@njit(cache=True)
def _enqueue_woken(S, entity):
    """Queue a woken task behind the woken ones at the front, ahead of the computing threads."""
    n = S.run_queue.shape[0]
    head = S.ints[I_RQ_HEAD]
    at = S.ints[I_RQ_WOKEN]
    for k in range(S.ints[I_RQ_LEN], at, -1):
        S.run_queue[(head + k) % n] = S.run_queue[(head + k - 1) % n]
    S.run_queue[(head + at) % n] = entity
    S.ints[I_RQ_LEN] += 1
    S.ints[I_RQ_WOKEN] += 1


@njit(cache=True, inline="always")
def protected(S, P, Q, entity):
    """RUN_TO_PARITY: the running ``entity`` keeps its CPU against a woken task until it has run a
    slice since it got the CPU (``kernel/sched/fair.c``: ``set_next_entity`` sets ``vprot`` to
    the deadline, one slice ahead; while ``protect_slice(curr)``, ``pick_eevdf`` returns
    ``curr`` and ``check_preempt_wakeup_fair`` sets no ``need_resched``)."""
    return Q[Q_RUN_TO_PARITY] != 0 and S.reals[R_NOW] - S.oncpu_since[entity] < P[P_SLICE]


@njit(cache=True)
def request_cpu(S, P, Q, entity, woken):
    """``entity`` is runnable: give it a CPU now, preempt a computing thread if it was woken, or
    queue it."""
    if Q[Q_CPUS] == 0:
        S.ent_event[entity] = EV_RUN
        set_timer(S, entity, S.reals[R_NOW])
        return
    if S.ints[I_CPU_FREE] > 0:
        S.ints[I_CPU_FREE] -= 1
        _give(S, entity, S.cpu_free[S.ints[I_CPU_FREE]])
        return
    if woken:
        now = S.reals[R_NOW]
        for cpu in range(Q[Q_CPUS]):
            victim = S.cpu_running[cpu]
            if S.ent_event[victim] == EV_BURST and (S.ent_cont[victim] == K_THINK_DONE
                                                    or S.ent_cont[victim] == K_W_GAP_DONE) \
                    and not protected(S, P, Q, victim):
                remaining = S.heap_time[S.heap_pos[victim]] - now + S.burst_rem[victim]
                calendar.cancel(S.heap_time, S.heap_ent, S.heap_pos, S.heap_size, victim)
                S.burst_rem[victim] = remaining
                S.ent_event[victim] = EV_RUN
                S.ent_cpu[victim] = -1
                _enqueue(S, victim)
                _give(S, entity, cpu)
                return
        S.ent_cpu[entity] = -1
        _enqueue_woken(S, entity)
        return
    S.ent_cpu[entity] = -1
    _enqueue(S, entity)


@njit(cache=True)
def release_cpu(S, Q, entity):
    """``entity`` leaves its CPU (it sleeps or ends): the head of the run queue takes it."""
    if Q[Q_CPUS] == 0:
        return
    cpu = S.ent_cpu[entity]
    S.ent_cpu[entity] = -1
    if S.ints[I_RQ_LEN] > 0:
        head = S.ints[I_RQ_HEAD]
        nxt = S.run_queue[head]
        S.ints[I_RQ_HEAD] = (head + 1) % S.run_queue.shape[0]
        S.ints[I_RQ_LEN] -= 1
        if S.ints[I_RQ_WOKEN] > 0:
            S.ints[I_RQ_WOKEN] -= 1
        _give(S, nxt, cpu)
    else:
        S.cpu_running[cpu] = -1
        S.cpu_free[S.ints[I_CPU_FREE]] = cpu
        S.ints[I_CPU_FREE] += 1


@njit(cache=True, inline="always")
def should_yield(S, P, Q, entity):
    """Others wait for a CPU and ``need_resched`` is set for ``entity`` (at a preemption point, a
    syscall's return, it gives way): at once with ``immediate`` wake-up preemption; with
    RUN_TO_PARITY only once it has run its slice (``update_deadline`` -> ``resched_curr``)."""
    return Q[Q_CPUS] > 0 and S.ints[I_RQ_LEN] > 0 and not protected(S, P, Q, entity)


@njit(cache=True)
def yield_cpu(S, Q, entity, cont):
    """``entity`` gives its CPU to the head of the run queue and queues at the tail; it runs
    ``cont`` when it gets a CPU again."""
    release_cpu(S, Q, entity)
    S.ent_cont[entity] = cont
    S.ent_event[entity] = EV_RUN
    S.burst_rem[entity] = 0.0
    _enqueue(S, entity)


@njit(cache=True, inline="always")
def burst(S, P, Q, entity, duration, cont):
    """``entity`` (on a CPU) computes for ``duration``, then runs ``cont``.

    Computing between accesses (or a writer thread's CPU outside the lock) starts at a preemption
    point: if a woken task waits at the front of the run queue, it takes this CPU first and the
    burst waits at the tail; so does a queued task when this one has run for a whole slice since
    it got its CPU (``update_deadline``: its deadline passed, ``resched_curr``), whether in one
    burst or in many short ones that never block (a walk of cached pages, hole reads), so that
    threads beyond the CPUs are not starved."""
    if (cont == K_THINK_DONE or cont == K_W_GAP_DONE) and S.ints[I_RQ_LEN] > 0 and (
            (S.ints[I_RQ_WOKEN] > 0 and Q[Q_RUN_TO_PARITY] == 0)
            or S.reals[R_NOW] - S.oncpu_since[entity] >= P[P_SLICE]):
        S.ent_cont[entity] = cont
        S.burst_rem[entity] = duration
        release_cpu(S, Q, entity)
        S.ent_event[entity] = EV_RUN
        _enqueue(S, entity)
        return
    S.ent_cont[entity] = cont
    S.ent_event[entity] = EV_BURST
    run = duration
    if Q[Q_CPUS] > 0:
        limit = P[P_SLICE]
        if Q[Q_RUN_TO_PARITY] != 0 and (cont == K_THINK_DONE or cont == K_W_GAP_DONE
                                         or cont == K_W_HOLD_DONE or cont == K_W_PROC_HOLD_DONE
                                         or cont == K_NOISE_DONE):
            # The slice runs from when the entity got its CPU, across bursts (a writer's gap and
            # hold, a computing thread's accesses): the first slice end may fall inside a write
            # hold, where the holder then yields holding the lock (``cond_resched`` per PMD).
            # Only user-mode computing (preempted at the tick) and write holds (``cond_resched``
            # in ``change_protection``): fault work has no preemption point, it runs on to its
            # return to user mode or its next sleep.
            left = S.oncpu_since[entity] + P[P_SLICE] - S.reals[R_NOW]
            if left > 0.0:
                limit = left
            elif S.ints[I_RQ_LEN] > 0:
                limit = 0.0         # its slice is used up and others wait: at the next point
        if duration > limit:
            run = limit
    S.burst_rem[entity] = duration - run
    set_timer(S, entity, S.reals[R_NOW] + run)


@njit(cache=True, inline="always")
def burst_slice_end(S, P, Q, entity):
    """End of a slice. True if the burst is complete; otherwise it goes on or yields its CPU."""
    remaining = S.burst_rem[entity]
    if remaining <= 0.0:
        return True
    if S.ints[I_RQ_LEN] > 0:
        # Yield: requeue at the tail with the rest of the burst; EV_RUN resumes it.
        release_cpu(S, Q, entity)
        S.ent_event[entity] = EV_RUN
        _enqueue(S, entity)
        return False
    burst(S, P, Q, entity, remaining, S.ent_cont[entity])
    return False
