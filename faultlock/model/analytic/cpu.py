"""The CPUs: run-queue waits of woken threads and writers, and the computing threads' share.

As in the engine (``montecarlo/cpu.py``): a woken thread preempts a thread that is only
computing, so it waits only while every CPU runs fault work, writers or other readers, and then
at the front of the run queue until a CPU's fault work ends; readers granted together at a
writer's release wake together, and those beyond the CPUs queue there one behind the other.
The computing between accesses shares what is left of the CPUs (processor sharing), which is
where CPU saturation shows.

Under ``wakeup_preemption='run_to_parity'`` (the kernel's RUN_TO_PARITY; the engine's
``cpu.protected``) a computing thread is no victim until it has run a slice: a woken thread
waits whenever every CPU is busy, computing or not, for the first CPU whose task sleeps or ends
its slice (``min(run, sched_slice) / c``). Limits, stated in ``validate``'s report
(``validation.ANALYTIC_LIMITS``), measured 2026-12-05: this is a mean term only. It does not
move the run-queue wait of saturated CPUs from the computing threads into the woken ones, as the
engine does (32 threads computing 30 µs per access on 2 CPUs: mean fault latency 97 µs against
the engine's 587 µs; 8 threads: 89 against 129 µs); it does not see a protected CPU-bound entity
that is not a faulting thread (one CPU, a writer thread of another process computing flat out,
reads Exp(1 ms), slice 1 ms: 1.00 ms against the engine's and theory's 1.37 ms,
``tests/test_sched.py``); and a write hold preempted at its slice end (engine: the slice runs
across bursts) is not in the analytic hold (the hold doubles against one CPU-bound thread on one
CPU in the engine, not here).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import ACC, IN
from .numeric import (JIT, RHS_CPU, clip, fs_excess, fs_tail, safe_div, share_fixed_point,
                      vmax, vmin)


@njit(**JIT)
def cpus(xi, miss, acc, access_rate, batch, cpu_holds, cpu_gaps, guess):
    """CPU waits, with wake-up preemption (``montecarlo/cpu.py``).

    A woken thread (or an arriving writer) takes a free CPU or preempts a thread that is only
    computing between accesses; it waits only if every CPU runs work that is not preempted
    (fault CPU work, zram decompression, writer critical sections, spinning).  It then waits at
    the front of the run queue (EEVDF: its lag) for the first CPU whose task ends its fault
    work, the minimum of ``c`` residual stretches: ``run_fault / c``.  A writer thread that
    gives way at an acquisition boundary queues at the tail instead, behind every computing
    thread there, and gets a CPU after ``Q + 1`` CPU releases, a release each ``run/c``
    (``run``: a thread's time on a CPU between two sleeps).  The computing between accesses is
    the low-priority class: it shares what is left, ``cpus - U_fault - U_writers`` CPUs, as a
    processor-sharing station (a thread computing with K others progresses at rate
    min(1, c/(K + 1)): ``finite_source_excess``).

    Readers granted ``mmap_lock`` together at a writer's release (``batch``: the mean number of
    others granted with one) wake at the same instant; the first ``c`` preempt computing
    threads, the others find every CPU busy with fault work and queue at the front, one behind
    the other: P = E[(B - c)^+]/E[B] for a batch B = 1 + Poisson(batch).

    Returns the CPU wait of an isolated wake-up, of a batch-woken reader, of an arriving writer,
    the mean computing time per access including its queueing, the probability that an
    isolated wake-up waits at all, and the computing threads' CPU time share (``guess``: its
    value at the previous pass, where the solve for it starts).
    """
    cpus = xi[IN.cpus]
    limited = cpus > 0
    n = xi[IN.threads]
    think = xi[IN.think_time]
    u_fault = access_rate * miss * acc[ACC.cpu]                     # CPUs busy with fault work
    u_writer = (cpu_holds                                       # CPUs busy with writers and
                + xi[IN.reader_rate] * xi[IN.reader_hold])            # other mmap_lock readers
    low_servers = vmax(cpus - u_fault - u_writer - cpu_gaps, 1e-9)
    thinking = 0.0
    if limited and n > low_servers:                             # fewer threads: no queue
        thinking = share_fixed_point(RHS_CPU, access_rate, think, n, low_servers, 0.0, 0.0,
                                      True, guess)
    queued = fs_excess(n - 1, thinking, low_servers - 1)
    stretch = 1 + queued / low_servers
    think_time = think * stretch if limited else think
    demand = think + miss * acc[ACC.cpu]                             # CPU time per access
    sleeps = miss * (acc[ACC.wakes] + acc[ACC.mmap_slow]) + (1.0 if xi[IN.idle_time] > 0 else 0.0)
    run = safe_div(demand, sleeps, 0.0) if sleeps > 0 else 0.0
    cpus1 = cpus if limited else 1.0
    tail = (queued + 1) * run / cpus1                           # wait at the run queue's tail
    run_fault = safe_div(miss * acc[ACC.cpu], sleeps, 0.0)          # fault work between two sleeps
    front = run_fault / cpus1                                   # wait at the run queue's front
    if not limited:
        return 0.0, 0.0, 0.0, think_time, 0.0, thinking
    busy_high = clip((u_fault + u_writer) / n, 0.0, 1.0)
    if xi[IN.run_to_parity] > 0:
        # RUN_TO_PARITY: a computing thread is no victim until it has run a slice, so a woken
        # thread waits whenever every CPU is busy, computing or not, for the first CPU whose
        # task sleeps or ends its slice: the minimum of c residual stretches of min(run, slice)
        busy_high = clip((u_fault + u_writer + cpu_gaps) / n + thinking, 0.0, 1.0)
        front = vmin(run, xi[IN.sched_slice]) / cpus1
    no_victim = fs_tail(n - 1, busy_high, cpus1)
    single = no_victim * front
    single_p = no_victim
    writer = fs_tail(n, busy_high, cpus1) * front
    if xi[IN.writer_loop] > 0:
        queue_nonempty = fs_tail(n, thinking, np.floor(low_servers) + 1)
        writer = vmax(writer, queue_nonempty * tail)
    size = 1 + batch
    big = vmax(np.ceil(8 * size + 64), n)
    beyond = fs_excess(big, safe_div(batch, big, 0.0), cpus - 1) / size
    beyond = clip(beyond, 0.0, 1.0)
    batch_wait = single + beyond * front * (1 + 0.5 * beyond * size)
    return single, batch_wait, writer, think_time, single_p, thinking
