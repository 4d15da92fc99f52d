"""The event loop: pop the earliest timer, dispatch it to the module that owns the entity.

The loop is the only place that knows every kind of entity; each module (``threads``,
``writers``, ``readers``, ``device``, ``cpu``) handles its own events. In checking mode it also
verifies the lock invariants after every event: never a writer with any other holder of
``mmap_lock``; never a VMA reader while the VMA is write-locked.
"""

from numba import njit

from . import calendar, cpu, device, noise, readers, rounds, stats, threads, writers
from .state import (EV_ARRIVAL, EV_BURST, EV_IO, EV_READER_ARRIVAL, EV_RUN, EV_SPIN, EV_WAKE,
                    I_EVENTS, I_OVERLOAD, I_RW_READERS, I_RW_WRITER, I_STOP, I_VIOLATIONS,
                    K_ATTEMPT, K_FOLIO_HOLD_OWNED, K_FOLIO_RETRY, K_FOLIO_RETRY_OWNED, K_IDLE_DONE,
                    K_INSTALL_DONE, K_MISS_SUBMIT, K_MMAP_GRANTED, K_PTE_PRESENT_DONE,
                    K_R_HOLD_DONE, K_R_START, K_THINK_DONE, K_W_DRAINED, K_W_GAP_DONE, K_W_GRANTED,
                    K_W_HOLD_DONE, K_W_NEXT_ACQ, K_W_OP_START, K_W_PROC_HOLD_DONE, K_W_START,
                    K_W_WOKEN, P_MAX_TIME, Q_CHECK, Q_FIRST_IO, Q_MAX_EVENTS, Q_THREADS, Q_VMAS,
                    R_NOW, S_EVENTS)
from .state import (K_FOLIO_LOCK_WOKEN, K_HOLE_FILLED, K_NOISE_DONE, K_NOISE_RUN, K_ROUND_MMAP_HELD,
                    K_ROUND_MUNMAP_HELD, K_ROUND_ZAP_DONE)
from .stats import count


@njit(cache=True)
def _dispatch(S, P, Q, entity, cont):
    """Run ``entity``'s continuation; it is on a CPU."""
    if cont == K_THINK_DONE:
        threads.think_done(S, P, Q, entity)
    elif cont == K_IDLE_DONE:
        threads.access(S, P, Q, entity)
    elif cont == K_INSTALL_DONE:
        threads.install_done(S, P, Q, entity)
    elif cont == K_PTE_PRESENT_DONE:
        threads.pte_present_done(S, P, Q, entity)
    elif cont == K_MMAP_GRANTED:
        if entity < Q[Q_THREADS]:
            threads.mmap_granted(S, P, Q, entity)
        else:
            readers.granted(S, P, Q, entity)
    elif cont == K_MISS_SUBMIT:
        threads.miss_submit(S, P, Q, entity)
    elif cont == K_FOLIO_RETRY_OWNED:
        threads.folio_retry(S, P, Q, entity, True)
    elif cont == K_FOLIO_RETRY:
        threads.folio_retry(S, P, Q, entity, False)
    elif cont == K_FOLIO_HOLD_OWNED:
        threads.folio_hold_owned(S, P, Q, entity)
    elif cont == K_FOLIO_LOCK_WOKEN:
        threads.folio_lock_woken(S, P, Q, entity)
    elif cont == K_ATTEMPT:
        threads.attempt(S, P, Q, entity)
    elif cont == K_W_START:
        writers.start(S, P, Q, entity)
    elif cont == K_W_GRANTED:
        if entity < Q[Q_THREADS]:          # a round's munmap or mmap (file_rounds)
            rounds.write_granted(S, P, Q, entity)
        else:
            writers.granted(S, P, Q, entity)
    elif cont == K_W_DRAINED:
        if entity < Q[Q_THREADS]:
            rounds.drained(S, P, Q, entity)
        else:
            writers.drained(S, P, Q, entity)
    elif cont == K_W_HOLD_DONE:
        writers.hold_done(S, P, Q, entity)
    elif cont == K_W_WOKEN:
        if entity < Q[Q_THREADS]:
            rounds.woken(S, P, Q, entity)
        else:
            writers.woken(S, P, Q, entity)
    elif cont == K_ROUND_MUNMAP_HELD:
        rounds.munmap_held(S, P, Q, entity)
    elif cont == K_ROUND_ZAP_DONE:
        rounds.zap_done(S, P, Q, entity)
    elif cont == K_ROUND_MMAP_HELD:
        rounds.mmap_held(S, P, Q, entity)
    elif cont == K_HOLE_FILLED:
        threads.hole_filled(S, P, Q, entity)
    elif cont == K_NOISE_RUN:
        noise.run(S, P, Q, entity)
    elif cont == K_NOISE_DONE:
        noise.done(S, P, Q, entity)
    elif cont == K_R_START:
        readers.start(S, P, Q, entity)
    elif cont == K_R_HOLD_DONE:
        readers.hold_done(S, P, Q, entity)
    elif cont == K_W_OP_START:
        writers.op_start(S, P, Q, entity)
    elif cont == K_W_GAP_DONE:
        writers.gap_done(S, P, Q, entity)
    elif cont == K_W_PROC_HOLD_DONE:
        writers.acquisition_done(S, P, Q, entity)
    elif cont == K_W_NEXT_ACQ:
        writers.resume_acquisition(S, P, Q, entity)


@njit(cache=True)
def _check_invariants(S, Q):
    if S.ints[I_RW_WRITER] >= 0 and S.ints[I_RW_READERS] != 0:
        S.ints[I_VIOLATIONS] += 1
    if S.ints[I_RW_READERS] < 0:
        S.ints[I_VIOLATIONS] += 1
    for vma in range(Q[Q_VMAS]):
        if S.v_write_locked[vma] and S.v_readers[vma] != 0:
            S.ints[I_VIOLATIONS] += 1


@njit(cache=True)
def start(S, P, Q):
    """Start the run: every thread thinks, writers, background readers and noise are scheduled.

    Called once per run; :func:`loop` then simulates on the live state, as often as the target
    ``Q[Q_BATCHES]`` is raised (``simulate.Run.extend``).
    """
    for t in range(Q[Q_THREADS]):
        S.ent_cont[t] = K_THINK_DONE
        cpu.request_cpu(S, P, Q, t, False)
    writers.schedule_arrival(S, P, Q)
    writers.start_threads(S, P, Q)
    readers.schedule_arrival(S, P, Q)
    noise.start(S, P, Q)


@njit(cache=True)
def loop(S, P, Q):
    """Simulate until ``Q[Q_BATCHES]`` batches are done (``I_STOP``), the time or event budget is
    spent, or overload. Each event is handled whole before the loop looks at the stop flags, so a
    loop stopped at a batch boundary and started again goes on exactly as one that never stopped.
    """
    first_io = Q[Q_FIRST_IO]
    max_events = Q[Q_MAX_EVENTS]
    max_time = P[P_MAX_TIME]
    check = Q[Q_CHECK]
    while S.heap_size[0] > 0:
        when, entity = calendar.pop(S.heap_time, S.heap_ent, S.heap_pos, S.heap_size)
        if when > max_time:
            S.reals[R_NOW] = max_time
            break
        stats.advance_clock(S, when)
        S.ints[I_EVENTS] += 1
        count(S, S_EVENTS, 1.0)
        event = S.ent_event[entity]
        if event == EV_BURST:
            if cpu.burst_slice_end(S, P, Q, entity):
                _dispatch(S, P, Q, entity, S.ent_cont[entity])
        elif event == EV_RUN:
            if S.burst_rem[entity] > 0.0:
                cpu.burst(S, P, Q, entity, S.burst_rem[entity], S.ent_cont[entity])
            else:
                _dispatch(S, P, Q, entity, S.ent_cont[entity])
        elif event == EV_WAKE:
            cpu.request_cpu(S, P, Q, entity, True)
        elif event == EV_IO:
            device.complete(S, P, Q, entity - first_io)
        elif event == EV_ARRIVAL:
            writers.arrival(S, P, Q)
        elif event == EV_SPIN:
            if entity < Q[Q_THREADS]:
                rounds.spin_timeout(S, P, Q, entity)
            else:
                writers.spin_timeout(S, P, Q, entity)
        elif event == EV_READER_ARRIVAL:
            readers.arrival(S, P, Q)
        if check:
            _check_invariants(S, Q)
        if S.ints[I_STOP] or S.ints[I_OVERLOAD] or S.ints[I_EVENTS] >= max_events:
            break


@njit(cache=True)
def run(S, P, Q):
    """Simulate until every batch is done, the time or event budget is spent, or overload: one
    run from start to end (``simulate.Run`` calls :func:`start` and :func:`loop` itself, to
    continue a run batch by batch)."""
    start(S, P, Q)
    loop(S, P, Q)
    stats.close_open_batch(S)
