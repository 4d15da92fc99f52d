"""The kernel's rwsem rules and fault-path rules, one at a time (issue 2 §5, third bullet).

The first part drives the compiled ``mmap_lock`` functions of ``faultlock.model.montecarlo.rwsem``
directly on a freshly allocated engine state, one call at a time, and looks at the lock word
(``I_RW_READERS``, ``I_RW_WRITER``, ``I_RW_HANDOFF``), the wait list and the wake-ups: a granted or
woken entity has its continuation set (``K_MMAP_GRANTED``, ``K_W_WOKEN``, ``K_W_GRANTED``) and a
timer armed (``heap_pos >= 0``); a sleeper has none. Each rule is quoted from
``reference/kernel.md`` §2 (``kernel/locking/rwsem.c``). The second part checks the fault-path
rules that show at scenario level (``MODEL.md``, ``reference/kernel.md`` §6).
"""

from __future__ import annotations

import numpy as np
import pytest

import faultlock
from faultlock.model.montecarlo import calendar, cpu, rng, rwsem, state
from faultlock.model.montecarlo import simulate as sm

THREADS = 16


class Lock:
    """An engine state with nothing but ``mmap_lock`` in use, and helpers to poke at it."""

    def __init__(self, discipline: str = "linux", *, spin: bool = False, batch: int = 256,
                 handoff: float = 4e-3, cpus: int = 0):
        scenario = faultlock.Scenario(threads=THREADS, rwsem=discipline, writer_spin=spin,
                                      reader_wake_batch=batch, handoff_timeout=handoff,
                                      wakeup_latency=0.0, cpus=cpus, writer_rate=100.0)
        self.P, self.Q = sm.parameters(scenario, "mainline", operations=1000, batches=10,
                                       warmup=0.1, max_events=10**6, max_time=float("inf"),
                                       check=False)
        streams = rng.seed_streams(np.random.SeedSequence(0), 3 * THREADS + 4)
        self.S = state.allocate(self.P, self.Q, streams)

    # entities: threads are readers, writer slots are writers
    @staticmethod
    def r(i: int) -> int:
        assert 0 <= i < THREADS
        return i

    def w(self, i: int) -> int:
        return int(self.Q[state.Q_FIRST_WRITER]) + i

    # time
    def at(self, when: float) -> None:
        self.S.reals[state.R_NOW] = when

    # the operations
    def down_read(self, entity: int) -> bool:
        return bool(rwsem.down_read(self.S.struct, self.P, self.Q, entity))

    def down_write(self, entity: int, owner_running: bool = True) -> int:
        return int(rwsem.down_write(self.S.struct, self.P, self.Q, entity, owner_running))

    def up_read(self) -> None:
        rwsem.up_read(self.S.struct, self.P, self.Q)

    def up_write(self) -> None:
        rwsem.up_write(self.S.struct, self.P, self.Q)

    def writer_woken(self, entity: int) -> bool:
        return bool(rwsem.writer_woken(self.S.struct, self.P, self.Q, entity))

    # the lock word
    @property
    def readers(self) -> int:
        return int(self.S.ints[state.I_RW_READERS])

    @property
    def writer(self) -> int:
        return int(self.S.ints[state.I_RW_WRITER])

    @property
    def handoff(self) -> bool:
        return bool(self.S.ints[state.I_RW_HANDOFF])

    def queue(self) -> list[int]:
        """The wait list from head to tail, checked against its length, tail and back links."""
        out, prev = [], -1
        entity = int(self.S.ints[state.I_RW_QHEAD])
        while entity >= 0:
            assert int(self.S.rw_prev[entity]) == prev
            out.append(entity)
            prev, entity = entity, int(self.S.rw_next[entity])
            assert len(out) <= 10_000
        assert int(self.S.ints[state.I_RW_QTAIL]) == prev
        assert int(self.S.ints[state.I_RW_QLEN]) == len(out)
        assert int(self.S.ints[state.I_RW_QWRITERS]) == sum(int(self.S.rw_is_writer[e])
                                                             for e in out)
        return out

    # what happened to an entity
    def armed(self, entity: int) -> bool:
        return int(self.S.heap_pos[entity]) >= 0

    def cont(self, entity: int) -> int:
        return int(self.S.ent_cont[entity])

    def granted_read(self, entity: int) -> bool:
        return self.armed(entity) and self.cont(entity) == state.K_MMAP_GRANTED

    def woken_writer(self, entity: int) -> bool:
        return self.armed(entity) and self.cont(entity) == state.K_W_WOKEN

    def granted_write(self, entity: int) -> bool:
        return self.armed(entity) and self.cont(entity) == state.K_W_GRANTED

    def disarm(self, *entities: int) -> None:
        """Forget a wake-up once checked (as if the entity had run), so later checks start clean."""
        for e in entities:
            calendar.cancel(self.S.heap_time, self.S.heap_ent, self.S.heap_pos, self.S.heap_size, e)
            self.S.ent_cont[e] = state.K_NONE

    def run_queue(self) -> list[int]:
        n = self.S.run_queue.shape[0]
        head, length = int(self.S.ints[state.I_RQ_HEAD]), int(self.S.ints[state.I_RQ_LEN])
        return [int(self.S.run_queue[(head + i) % n]) for i in range(length)]


QUEUED, GRANTED, SPINNING = rwsem.QUEUED, rwsem.GRANTED, rwsem.SPINNING


# ----------------------------------------------------------------------------------------------
# Linux rwsem (reference/kernel.md §2)
# ----------------------------------------------------------------------------------------------


def test_reader_fast_path_needs_no_writer_no_waiter_no_handoff():
    """§2.1: the reader fast path succeeds only if no writer holds it and nobody waits."""
    lk = Lock()
    assert lk.down_read(lk.r(0)) and lk.down_read(lk.r(1))
    assert lk.readers == 2 and lk.queue() == []
    lk.up_read()
    lk.up_read()
    assert lk.readers == 0
    assert lk.down_write(lk.w(0)) == GRANTED and lk.writer == lk.w(0)
    assert not lk.down_read(lk.r(0))              # a writer holds it: the reader sleeps
    assert lk.queue() == [lk.r(0)] and lk.readers == 0 and not lk.armed(lk.r(0))


def test_new_readers_take_the_slow_path_once_anyone_waits():
    """§2.1-2.2: with WAITERS set, a new reader queues even on a reader-owned lock (no stealing
    while readers are active and waiters exist, commit 2f06f702925b)."""
    lk = Lock(spin=False)
    assert lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(0)) == QUEUED       # reader-owned, no spinning: the writer waits
    assert not lk.down_read(lk.r(1))              # WAITERS set: slow path, queued behind it
    assert lk.readers == 1 and lk.queue() == [lk.w(0), lk.r(1)]


def test_a_spinning_writer_does_not_set_waiters():
    """§2.4: an optimistic spinner is not on the wait list, so readers still take the fast path."""
    lk = Lock(spin=True)
    assert lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(0)) == SPINNING     # reader-owned lock: spin for a while
    assert lk.queue() == []
    assert lk.down_read(lk.r(1)) and lk.readers == 2


def test_writer_at_the_head_is_woken_alone():
    """§2.3: a release with a writer at the head wakes only that writer; it must take the lock
    itself when it runs (``rwsem_try_write_lock``); the readers behind it keep sleeping."""
    lk = Lock(spin=False)
    assert lk.down_write(lk.w(0)) == GRANTED
    assert lk.down_write(lk.w(1)) == QUEUED
    assert not lk.down_read(lk.r(0)) and not lk.down_read(lk.r(1))
    lk.up_write()
    assert lk.woken_writer(lk.w(1))
    assert not lk.armed(lk.r(0)) and not lk.armed(lk.r(1))
    assert lk.writer == -1 and lk.readers == 0    # woken, not granted: the lock is free meanwhile
    assert lk.queue() == [lk.w(1), lk.r(0), lk.r(1)]
    assert lk.writer_woken(lk.w(1))               # it runs and takes the lock
    assert lk.writer == lk.w(1) and lk.queue() == [lk.r(0), lk.r(1)]


def test_readers_behind_a_writer_are_granted_in_one_batch_skipping_it():
    """§2.3 (MAX_READERS_WAKEUP): a reader at the head gets every queued reader granted at once,
    those behind queued writers included; the writers stay queued."""
    lk = Lock(spin=False)
    assert lk.down_write(lk.w(0)) == GRANTED
    assert not lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(1)) == QUEUED
    assert not lk.down_read(lk.r(1)) and not lk.down_read(lk.r(2))
    assert lk.queue() == [lk.r(0), lk.w(1), lk.r(1), lk.r(2)]
    lk.up_write()
    assert lk.readers == 3                       # granted while they wake: they hold it already
    assert all(lk.granted_read(lk.r(i)) for i in range(3))
    assert lk.queue() == [lk.w(1)] and not lk.armed(lk.w(1))


def test_reader_wake_batch_limits_one_wake_up():
    """§2.3: at most ``reader_wake_batch`` (256 in the kernel) readers per wake-up."""
    lk = Lock(spin=False, batch=2)
    assert lk.down_write(lk.w(0)) == GRANTED
    for i in range(4):
        assert not lk.down_read(lk.r(i))
    lk.up_write()
    assert lk.readers == 2
    assert lk.granted_read(lk.r(0)) and lk.granted_read(lk.r(1))
    assert not lk.armed(lk.r(2)) and lk.queue() == [lk.r(2), lk.r(3)]


def test_reader_steal_wakes_the_queued_readers():
    """§2.2: a reader may steal a lock no writer holds (a woken writer has not run yet); being the
    first reader it wakes the queued readers past the queued writer (RWSEM_WAKE_READ_OWNED)."""
    lk = Lock(spin=False)
    assert lk.down_write(lk.w(0)) == GRANTED
    assert lk.down_write(lk.w(1)) == QUEUED
    assert not lk.down_read(lk.r(0)) and not lk.down_read(lk.r(1))
    lk.up_write()                                # w1 woken, lock free until it runs
    assert lk.woken_writer(lk.w(1))
    assert lk.down_read(lk.r(2))                 # steal
    assert lk.readers == 3 and lk.granted_read(lk.r(0)) and lk.granted_read(lk.r(1))
    assert lk.queue() == [lk.w(1)]
    assert not lk.writer_woken(lk.w(1))          # it runs, finds readers, sleeps again
    assert lk.writer == -1 and not lk.handoff    # well before the 4 ms timeout


def test_handoff_after_the_timeout_stops_stealing_and_hands_the_lock_to_the_head():
    """§2.3-2.4: the first waiter sets HANDOFF once it has waited RWSEM_WAIT_TIMEOUT; then readers
    cannot steal, writers cannot spin or steal, and the released lock goes to that waiter."""
    lk = Lock(spin=False, handoff=4e-3)
    lk.at(0.0)
    assert lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(0)) == QUEUED
    lk.at(5e-3)                                  # past the timeout
    lk.up_read()                                 # last reader leaves: w0 woken
    assert lk.woken_writer(lk.w(0))
    assert lk.down_read(lk.r(1))                 # a reader steals before w0 runs (no HANDOFF yet)
    assert not lk.writer_woken(lk.w(0))          # w0 fails, it has waited 5 ms > 4 ms:
    assert lk.handoff                            # HANDOFF is set
    assert not lk.down_read(lk.r(2))             # no fast path, no steal any more
    assert lk.down_write(lk.w(1), owner_running=True) == QUEUED   # no spin, no steal either
    assert lk.queue() == [lk.w(0), lk.r(2), lk.w(1)]
    lk.disarm(lk.w(0))
    lk.up_read()                                 # free: it goes to the head, granted directly
    assert lk.writer == lk.w(0) and lk.granted_write(lk.w(0))
    assert lk.queue() == [lk.r(2), lk.w(1)]


def test_no_handoff_before_the_timeout():
    """The same steal 1 ms into the wait sets no HANDOFF; the writer is simply woken again."""
    lk = Lock(spin=False, handoff=4e-3)
    lk.at(0.0)
    assert lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(0)) == QUEUED
    lk.at(1e-3)
    lk.up_read()
    assert lk.down_read(lk.r(1))                 # steal
    assert not lk.writer_woken(lk.w(0))
    assert not lk.handoff
    lk.disarm(lk.w(0))
    lk.up_read()
    assert lk.woken_writer(lk.w(0)) and lk.writer == -1
    assert lk.writer_woken(lk.w(0)) and lk.writer == lk.w(0)


def test_no_steal_while_readers_are_active_and_a_writer_waits():
    lk = Lock(spin=False)
    lk.at(0.0)
    assert lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(0)) == QUEUED
    assert not lk.down_read(lk.r(1))
    assert lk.readers == 1


def test_a_spinning_writer_steals_from_the_queue_and_a_timed_out_reader_head_sets_handoff():
    """§2.3-2.4: an optimistic spinner takes a released lock before the queued waiters; a reader
    at the head that finds the lock stolen after the timeout sets HANDOFF; the next release then
    wakes the readers and clears it."""
    lk = Lock(spin=True, handoff=4e-3)
    lk.at(0.0)
    assert lk.down_write(lk.w(0)) == GRANTED
    assert not lk.down_read(lk.r(0))             # queued at t = 0
    assert lk.down_write(lk.w(1), owner_running=True) == SPINNING
    assert lk.queue() == [lk.r(0)]
    lk.at(5e-3)
    lk.up_write()
    assert lk.writer == lk.w(1) and lk.granted_write(lk.w(1))   # the spinner stole it
    assert not lk.armed(lk.r(0)) and lk.handoff                 # head reader timed out
    assert lk.down_write(lk.w(2), owner_running=True) == QUEUED  # HANDOFF: no spinning
    lk.up_write()
    assert not lk.handoff and lk.granted_read(lk.r(0)) and lk.readers == 1
    assert lk.queue() == [lk.w(2)]


def test_handoff_to_a_writer_already_woken_does_not_wake_it_twice():
    """A head writer woken by a release may still be waiting for a CPU when the lock is released
    again with HANDOFF set (here: a spinner stole the lock meanwhile, and the head had waited past
    the timeout). The lock is then its own, but it must run once, as granted."""
    lk = Lock(spin=True, handoff=4e-3, cpus=1)
    w0, w1, w2, w3, busy = (lk.w(i) for i in range(5))
    lk.at(0.0)
    assert lk.down_write(w0) == GRANTED
    assert lk.down_write(w1, owner_running=False) == QUEUED
    # the only CPU runs something that is not preemptible (a writer's critical section)
    cpu.request_cpu(lk.S.struct, lk.P, lk.Q, busy, False)
    lk.S.ent_event[busy] = state.EV_BURST
    lk.S.ent_cont[busy] = state.K_W_HOLD_DONE
    lk.at(5e-3)
    lk.up_write()                                 # w1 woken alone ...
    assert lk.woken_writer(w1)
    calendar.cancel(lk.S.heap_time, lk.S.heap_ent, lk.S.heap_pos, lk.S.heap_size, w1)
    # ... its wake-up latency ends: no CPU for it
    cpu.request_cpu(lk.S.struct, lk.P, lk.Q, w1, True)
    assert lk.run_queue() == [w1] and not lk.armed(w1)
    assert lk.down_write(w2) == GRANTED           # a new writer takes the free lock
    assert lk.down_write(w3, owner_running=True) == SPINNING
    lk.up_write()                                 # the spinner steals it; w1 waited 5 ms:
    assert lk.writer == w3 and lk.handoff         # HANDOFF
    lk.up_write()                                 # handed over to the head, w1
    assert lk.writer == w1 and lk.queue() == []
    assert lk.cont(w1) == state.K_W_GRANTED       # it will run as the owner ...
    assert not (lk.armed(w1) and w1 in lk.run_queue()), "w1 is runnable twice"   # ... once


def test_a_spinner_on_a_sleeping_owner_queues():
    """§2.4: spinning only on a running owner (a writer draining its VMA readers sleeps)."""
    lk = Lock(spin=True)
    assert lk.down_write(lk.w(0)) == GRANTED
    assert lk.down_write(lk.w(1), owner_running=False) == QUEUED
    assert lk.down_write(lk.w(2), owner_running=True) == SPINNING


# ----------------------------------------------------------------------------------------------
# Textbook disciplines (reference/queueing.md §1.1)
# ----------------------------------------------------------------------------------------------


def test_fifo_is_task_fair():
    """Johnson's FCFS: a reader at the head takes the readers up to the first writer only; a new
    reader queues whenever anyone waits; the lock is handed over directly."""
    lk = Lock("fifo")
    assert lk.down_write(lk.w(0)) == GRANTED
    assert not lk.down_read(lk.r(0)) and not lk.down_read(lk.r(1))
    assert lk.down_write(lk.w(1)) == QUEUED
    assert not lk.down_read(lk.r(2))
    lk.up_write()
    assert lk.readers == 2 and lk.granted_read(lk.r(0)) and lk.granted_read(lk.r(1))
    assert lk.queue() == [lk.w(1), lk.r(2)] and not lk.armed(lk.r(2))
    assert not lk.down_read(lk.r(3))             # readers hold, but someone waits: queue
    lk.up_read()
    assert lk.writer == -1
    lk.up_read()
    assert lk.writer == lk.w(1) and lk.granted_write(lk.w(1))
    lk.up_write()
    assert lk.readers == 2 and lk.granted_read(lk.r(2)) and lk.granted_read(lk.r(3))
    assert lk.queue() == []


def test_reader_preference():
    """Readers enter whenever no writer holds the lock; a release grants every waiting reader
    before any writer (Kulkarni & Puryear 1994)."""
    lk = Lock("reader_pref")
    assert lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(0)) == QUEUED
    assert lk.down_read(lk.r(1))                 # a writer waits, readers still enter
    lk.up_read()
    lk.up_read()
    assert lk.writer == lk.w(0) and lk.granted_write(lk.w(0))
    assert lk.down_write(lk.w(1)) == QUEUED
    assert not lk.down_read(lk.r(2))
    lk.up_write()                                # w1 is at the head, but a reader waits
    assert lk.readers == 1 and lk.granted_read(lk.r(2)) and lk.queue() == [lk.w(1)]


def test_writer_preference():
    """A waiting writer blocks new readers; a release serves the first waiting writer before any
    reader, even readers queued ahead of it."""
    lk = Lock("writer_pref")
    assert lk.down_write(lk.w(0)) == GRANTED
    assert not lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(1)) == QUEUED
    assert not lk.down_read(lk.r(1))
    lk.up_write()
    assert lk.writer == lk.w(1) and lk.granted_write(lk.w(1)) and lk.readers == 0
    lk.up_write()
    assert lk.readers == 2 and lk.queue() == []
    assert lk.down_write(lk.w(2)) == QUEUED
    assert not lk.down_read(lk.r(2))             # readers hold, a writer waits: new readers wait


def test_phase_fair():
    """Brandenburg & Anderson: phases alternate; a writer waits for the current reader phase only;
    a writer's release admits every waiting reader (also those behind later writers); new readers
    wait behind a waiting writer."""
    lk = Lock("phase_fair")
    assert lk.down_read(lk.r(0))
    assert lk.down_write(lk.w(0)) == QUEUED
    assert not lk.down_read(lk.r(1))             # a writer waits: the reader phase is closed
    lk.up_read()
    assert lk.writer == lk.w(0) and lk.granted_write(lk.w(0))
    lk.disarm(lk.w(0))
    assert lk.down_write(lk.w(1)) == QUEUED
    assert not lk.down_read(lk.r(2))
    assert lk.queue() == [lk.r(1), lk.w(1), lk.r(2)]
    lk.up_write()                                # reader phase: r1 and r2, skipping w1
    assert lk.readers == 2 and lk.granted_read(lk.r(1)) and lk.granted_read(lk.r(2))
    assert lk.queue() == [lk.w(1)]
    assert not lk.down_read(lk.r(3))
    lk.up_read()
    lk.up_read()                                 # reader phase over: the writer phase
    assert lk.writer == lk.w(1) and lk.granted_write(lk.w(1))
    lk.up_write()
    assert lk.readers == 1 and lk.granted_read(lk.r(3))


# ----------------------------------------------------------------------------------------------
# Fault-path rules at scenario level (MODEL.md; reference/kernel.md §6)
# ----------------------------------------------------------------------------------------------


def _cold(**changes) -> faultlock.Scenario:
    """Every access a cold miss of a file page (a streaming read of a file larger than memory)."""
    base = {"threads": 16, "think_time": 100e-6, "vmas": 1, "pages_per_vma": 2**36,
            "page_popularity": 0.0, "readaround_pages": 1, "swap_share": 0.0,
            "io_distribution": "exponential", "io_latency": 100e-6, "io_parallelism": 0,
            "fault_cpu_time": 1e-3, "cpus": 0, "wakeup_latency": 0.0, "writer_rate": 0.0,
            "reclaim": "hazard", "reclaim_rate_cached": 0.0, "reclaim_rate_mapped": 0.0}
    return faultlock.Scenario(**{**base, **changes})


@pytest.fixture(scope="module")
def tried_runs():
    """Cold misses with and without reclaim, kernel 6.8+ (tried_after_major)."""
    policies = ["legacy_hold", "legacy_retry", "mainline", "vma_retry", "vma_wait"]
    kw = {"policies": policies, "operations": 20_000, "batches": 20, "seed": 11}
    return {theta: faultlock.simulate(_cold(reclaim_rate_cached=theta), **kw)
            for theta in (0.0, 500.0)}


# Counts per fault are exact per fault, but a measurement window cuts the faults in flight at its
# two ends (a read counted, its fault completed after the window): at most 2 x threads of the
# 20,000 faults measured.
EDGE = 2 * 16 / 20_000


def test_every_major_file_fault_retries(tried_runs):
    """MODEL.md (6.18 traces): every major file fault drops its lock for the read and retries,
    the fault that started the read included; mainline's retry takes mmap_lock for read once."""
    ds = tried_runs[0.0].sel(policy="mainline")
    assert float(ds.major_faults_per_fault) == pytest.approx(1.0, abs=EDGE)
    assert float(ds.retries_per_fault) == pytest.approx(1.0, abs=EDGE)
    assert float(ds.mmap_read_rate) == pytest.approx(float(ds.fault_rate), rel=EDGE)
    vr = tried_runs[0.0].sel(policy="vma_retry")
    assert float(vr.retries_per_fault) == pytest.approx(1.0, abs=EDGE)
    assert float(vr.mmap_read_rate) == 0.0       # retried under the VMA lock
    vw = tried_runs[0.0].sel(policy="vma_wait")
    assert float(vw.retries_per_fault) == 0.0    # never drops
    assert float(vw.reads_holding_vma_per_fault) == pytest.approx(1.0, abs=EDGE)


def test_a_tried_retry_holds_its_lock_across_a_re_read(tried_runs):
    """kernel.md §6.1 S4 / §6.2 S1': a TRIED retry never drops its lock; if reclaim took the
    folio in the window it reads it again while holding mmap_lock (mainline) or the VMA lock
    (vma_retry). Without reclaim no retry re-reads."""
    quiet, pressed = tried_runs[0.0], tried_runs[500.0]
    for p in ("mainline", "vma_retry", "legacy_retry"):
        d = quiet.sel(policy=p)
        assert float(d.reads_holding_mmap_per_fault) == 0.0
        assert float(d.reads_holding_vma_per_fault) == 0.0
        assert float(d.refaults_per_fault) == 0.0
    ml, vr, lr = (pressed.sel(policy=p) for p in ("mainline", "vma_retry", "legacy_retry"))
    # the re-reads happen, and each one is a read waited for under the retry's lock
    for d, held, other in ((ml, "reads_holding_mmap_per_fault", "reads_holding_vma_per_fault"),
                           (lr, "reads_holding_mmap_per_fault", "reads_holding_vma_per_fault"),
                           (vr, "reads_holding_vma_per_fault", "reads_holding_mmap_per_fault")):
        assert float(d[held]) > 0.1
        assert float(d[held]) == pytest.approx(float(d.refaults_per_fault), abs=EDGE)
        assert float(d[other]) == 0.0
    # legacy_hold holds mmap_lock across every read
    lh = pressed.sel(policy="legacy_hold")
    assert float(lh.reads_holding_mmap_per_fault) == pytest.approx(
        float(lh.major_faults_per_fault), abs=EDGE)
    assert float(lh.refaults_per_fault) == 0.0


def test_a_non_tried_retry_drops_again_on_older_kernels():
    """Before 6.8 (tried_after_major=False) a vma_retry retry is not TRIED: it drops its lock
    for the re-read too, so nothing is read under a lock; retry_limit=1 (before 5.7) makes the
    second attempt TRIED and it holds the VMA lock."""
    kw = {"policies": ["vma_retry"], "operations": 20_000, "batches": 20, "seed": 12}
    loop = faultlock.simulate(_cold(reclaim_rate_cached=500.0, tried_after_major=False), **kw)
    d = loop.sel(policy="vma_retry")
    assert float(d.reads_holding_vma_per_fault) == 0.0
    assert float(d.reads_holding_mmap_per_fault) == 0.0
    assert float(d.refaults_per_fault) > 0.1
    once = faultlock.simulate(_cold(reclaim_rate_cached=500.0, tried_after_major=False,
                                    retry_limit=1), **kw).sel(policy="vma_retry")
    assert float(once.reads_holding_vma_per_fault) > 0.1
    assert float(once.reads_holding_vma_per_fault) == pytest.approx(
        float(once.refaults_per_fault), abs=EDGE)


def test_vma_wait_makes_a_vma_writer_wait_for_the_read():
    """kernel.md §6.3: under vma_wait a writer that write-locks a faulted VMA waits, holding
    mmap_lock for write, until the faults reading under that VMA lock finish their reads; under
    mainline the VMA lock is dropped before the read and the writer hardly waits."""
    sc = _cold(threads=4, think_time=1e-3, io_latency=5e-3, io_distribution="deterministic",
               fault_cpu_time=1e-6, writer_rate=50.0, writer_hold=10e-6,
               writer_hold_distribution="deterministic", writer_vma_share=1.0)
    ds = faultlock.simulate(sc, policies=["mainline", "vma_wait"], operations=5_000, batches=10,
                            seed=13)
    ml = float(ds.writer_latency_mean.sel(policy="mainline"))
    vw = float(ds.writer_latency_mean.sel(policy="vma_wait"))
    assert ml < 100e-6
    assert vw > 1e-3                              # a good share of a 5 ms read
