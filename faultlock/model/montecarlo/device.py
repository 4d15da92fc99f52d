"""Storage: reads of file folios, with a limit on reads in flight and a queue-depth latency curve.

One file major fault submits one read (one bio) covering the faulting page and its read-around
(``do_sync_mmap_readahead``: ``readaround_pages`` pages centred on the fault, ``mm/filemap.c``). The
read's latency is drawn from ``io_distribution`` (mean ``io_latency`` and ``io_latency_cv`` at queue
depth 1), plus ``io_depth_slope`` for every read already in flight when it starts (a real device's
latency grows with queue depth: a virtio disk gives ~45 µs at depth 1, ~125 µs at 8, ~370 µs at 32),
plus ``io_page_time`` per page beyond the first, plus, with probability ``io_stall_share``, a
stall (a log-normal extra time of mean ``io_stall_latency``: the host's rare slow reads, whose tail
a log-normal body cannot give; ``laws.stall_cdf``). With ``io_parallelism`` > 0 at most that many
reads are in flight and the rest wait in a FIFO device queue, so refault storms queue on the device.
On completion every folio of the read becomes uptodate and is unlocked (``folio_end_read``).
"""

from numba import njit

from . import cpu, folio, rng
from .state import (EV_IO, F_CACHED, OWNER_NONE, I_DEV_INFLIGHT, I_DQ_HEAD, I_DQ_LEN, I_IO_FREE,
                    P_IO_CV, P_IO_MEAN, P_IO_PAGE_TIME, P_IO_SLOPE, P_IO_STALL_CV,
                    P_IO_STALL_MEAN, P_IO_STALL_SHARE, Q_FIRST_IO, Q_IO_LAW,
                    Q_IO_PARALLELISM, R_NOW, S_IO_READS)
from .stats import count


@njit(cache=True)
def new_read(S, stream):
    """A free read slot; its latency will be drawn from ``stream`` (the submitting thread's)."""
    top = S.ints[I_IO_FREE] - 1
    S.ints[I_IO_FREE] = top
    io = S.io_free[top]
    S.io_nfolios[io] = 0
    S.io_stream[io] = stream
    return io


@njit(cache=True)
def add_folio(S, io, slot):
    S.io_folios[io, S.io_nfolios[io]] = slot
    S.io_nfolios[io] += 1


@njit(cache=True)
def _start(S, P, Q, io):
    depth = S.ints[I_DEV_INFLIGHT]
    S.ints[I_DEV_INFLIGHT] = depth + 1
    latency = rng.sample_law(S.streams, S.io_stream[io], Q[Q_IO_LAW], P[P_IO_MEAN], P[P_IO_CV])
    latency += P[P_IO_SLOPE] * depth + P[P_IO_PAGE_TIME] * (S.io_nfolios[io] - 1)
    latency += rng.stall(S.streams, S.io_stream[io], P[P_IO_STALL_SHARE], P[P_IO_STALL_MEAN],
                         P[P_IO_STALL_CV])
    entity = Q[Q_FIRST_IO] + io
    S.ent_event[entity] = EV_IO
    cpu.set_timer(S, entity, S.reals[R_NOW] + latency)


@njit(cache=True)
def submit(S, P, Q, io):
    count(S, S_IO_READS, 1.0)
    if Q[Q_IO_PARALLELISM] == 0 or S.ints[I_DEV_INFLIGHT] < Q[Q_IO_PARALLELISM]:
        _start(S, P, Q, io)
    else:
        n = S.dev_queue.shape[0]
        S.dev_queue[(S.ints[I_DQ_HEAD] + S.ints[I_DQ_LEN]) % n] = io
        S.ints[I_DQ_LEN] += 1


@njit(cache=True)
def read_done(S, P, Q, io):
    """The folios of read ``io`` are uptodate (``folio_end_read``): each is unlocked, its waiters
    woken or its lock handed over; the read's slot is free. From the device's completion, or
    from the faulting thread's own zero-fill of a hole (``threads.hole_filled``)."""
    now = S.reals[R_NOW]
    for i in range(S.io_nfolios[io]):
        slot = S.io_folios[io, i]
        S.f_state[slot] = F_CACHED
        S.f_uptodate_at[slot] = now
        if folio.has_waiters(S, slot):
            folio.unlock(S, P, Q, slot)
        else:   # most read-around pages: nobody waits, nobody holds them
            S.f_owner[slot] = OWNER_NONE
            if S.f_refs[slot] == 0:
                folio.expose(S, slot)
    S.io_free[S.ints[I_IO_FREE]] = io
    S.ints[I_IO_FREE] += 1


@njit(cache=True)
def complete(S, P, Q, io):
    """The read ``io`` is done: its folios become uptodate and unlocked; the next queued read
    starts."""
    S.ints[I_DEV_INFLIGHT] -= 1
    read_done(S, P, Q, io)
    if S.ints[I_DQ_LEN] > 0:
        head = S.ints[I_DQ_HEAD]
        nxt = S.dev_queue[head]
        S.ints[I_DQ_HEAD] = (head + 1) % S.dev_queue.shape[0]
        S.ints[I_DQ_LEN] -= 1
        _start(S, P, Q, nxt)
