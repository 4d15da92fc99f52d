"""The engine's state: named indices into flat numpy arrays, and their allocation.

numba compiles functions over arrays, not Python objects, so the simulation state is one
``SimState`` of arrays: a numba StructRef, passed by reference (one pointer, one reference count),
because a namedtuple of sixty arrays costs ~80 ns of reference counting on every call. Mutable
scalars live in the small arrays ``ints`` and ``reals`` under the named indices below;
parameters in ``P`` (reals) and ``Q`` (integers). Every module of the engine (``rwsem``,
``vma_lock``, ``folio``, ``device``, ``cpu``, ``writers``, ``threads``) reads and writes its own
part of this state.

Entities share one index space, so that the event calendar and the CPU run queue treat them alike:
``[0, threads)`` are the faulting threads, then the writer slots, then the read requests (one slot
per thread suffices: a thread has at most one read of its own in flight), then the single source of
writer arrivals, then the background-reader slots and their arrival source, then the noise threads
(``noise.py``; ``noise_threads`` of them, none by default). Closed-loop writer
threads (``writer_mode`` periodic or flat_out) are long-lived entities in the first
``writer_threads`` writer slots; the Poisson arrival source then never fires.
"""

from types import SimpleNamespace

import numpy as np
from numba import types
from numba.experimental import structref

# ---- parameters: reals -----------------------------------------------------------------------
P_THINK = 0
P_IO_MEAN = 1
P_IO_CV = 2
P_IO_SLOPE = 3
P_IO_PAGE_TIME = 4
P_ZRAM = 5
P_FAULT_CPU = 6
P_SLICE = 7
P_WAKE = 8
P_RECLAIM_CACHED = 9
P_RECLAIM_MAPPED = 10
P_WRITER_RATE = 11
P_WRITER_HOLD = 12
P_WRITER_HOLD_CV = 13
P_WRITER_VMA_SHARE = 14
P_WRITER_FORK_SHARE = 15
P_HANDOFF = 16
P_JANK = 17
P_POPULARITY = 18
P_MAX_TIME = 19
P_IDLE = 20
P_ZIPF_H_X1 = 21     # constants of the Zipf sampler, computed once per run
P_ZIPF_H_N = 22
P_ZIPF_S = 23
P_READER_RATE = 24
P_READER_HOLD = 25
P_WRITER_PERIOD = 26     # 1 / writer_op_rate of a periodic writer thread (0 otherwise)
P_WRITER_GAP = 27        # writer_gap_cpu
P_RECLAIM_CPU = 28       # reclaim_cpu_time: CPU per folio reclaimed by direct reclaim
# -- rounds, hole reads, noise (issue 12) --
P_UNMAP_PAGE = 29        # unmap_page_time: CPU per mapped page zapped by munmap
P_ROUND_LOCK_HOLD = 30   # round_lock_hold: mmap_lock write hold of a round's mmap or munmap
P_HOLE_PAGE_CPU = 31     # hole_page_cpu: zero-filling one folio of a hole
P_NOISE_CPU = 32         # noise_cpu: CPU of one noise loop
P_NOISE_SLEEP = 33       # noise_sleep: mean sleep between noise loops
# -- the device's tail: read stalls (issue 14) --
P_IO_STALL_SHARE = 34    # io_stall_share: probability that a read is held up
P_IO_STALL_MEAN = 35     # io_stall_latency: mean extra time of a held-up read
P_IO_STALL_CV = 36       # io_stall_cv: its cv (log-normal)
P_HZ = 37                # tick_hz: jiffies per second (0 = continuous time)
N_P = 38

# ---- parameters: integers ----------------------------------------------------------------------
Q_THREADS = 0
Q_VMAS = 1
Q_PAGES_PER_VMA = 2
Q_SWAP_VMAS = 3
Q_IO_LAW = 4
Q_IO_PARALLELISM = 5
Q_READAROUND = 6
Q_CPUS = 7
Q_WRITER_LAW = 8
Q_RWSEM = 9
Q_WRITER_SPIN = 10
Q_WAKE_BATCH = 11
Q_TRIED_AFTER_MAJOR = 12
Q_RETRY_LIMIT = 13
Q_USE_VMA_LOCK = 14      # policy: faults try the per-VMA lock first
Q_DROP_ON_VMA = 15       # policy: a first attempt under the VMA lock drops it to wait for a folio
Q_DROP_ON_MMAP = 16      # policy: a first attempt under mmap_lock drops it to wait for a folio
Q_RETRY_ON_VMA = 17      # policy: a retry after a VMA-lock RETRY takes the VMA lock again
Q_UPTODATE_WAIT = 18     # policy: an uptodate-but-locked folio is waited for in place
Q_WARMUP_FAULTS = 19
Q_BATCH_FAULTS = 20
Q_BATCHES = 21
Q_MAX_EVENTS = 22
Q_PAGE_MULT = 23
Q_CHECK = 24
Q_FOLIO_DIRECT = 25
Q_FOLIO_SET_MASK = 26
Q_TOTAL_PAGES = 27
Q_WRITER_SLOTS = 28
Q_FIRST_WRITER = 29
Q_FIRST_IO = 30
Q_ARRIVAL_ENTITY = 31
Q_FIRST_READER = 32
Q_READER_SLOTS = 33
Q_READER_ARRIVAL = 34
Q_ZIPF_ALIAS = 35        # 1 = draw pages from the alias table
Q_ACCESS_PATTERN = 36    # ACCESS_POPULARITY or ACCESS_GROUP_WALK
Q_GROUP_SIZE = 37        # G of a group walk (resolved: never 0)
Q_WALK_GROUPS = 38       # T / G
Q_WALK_PAGES = 39        # N
Q_WALK_SEQUENTIAL = 40   # 1 = identity order, 0 = a permutation per (group, epoch)
Q_WALK_KEY_STREAM = 41   # the stream whose initial state keys the walk permutations
Q_WRITER_MODE = 42       # WRITER_POISSON, WRITER_PERIODIC or WRITER_FLAT_OUT
Q_WRITER_THREADS = 43    # W closed-loop writer threads, in writer slots [0, W)
Q_WRITER_LOCKS = 44      # k write acquisitions per operation
Q_WRITER_PROCESS = 45    # 1 = the writer threads are in another process: no lock of ours
Q_WRITER_STREAM = 46     # stream of writer thread 0 (thread w: this + w)
Q_RECLAIM_LRU = 47       # 1 = reclaim="lru" (folios on LRU lists, memory_limit), 0 = "hazard"
Q_MEMORY_LIMIT = 48      # memory_limit in folios (0 = unlimited)
Q_LRU_LISTS = 49         # 1 = one exact LRU list, 2 = inactive and active lists
Q_FOLIO_TWO_SETS = 50    # 1 = a page may sit in either of two sets of the folio table
# -- rounds, hole reads, noise (issue 12) --
Q_FAULTAROUND = 51       # faultaround_pages (1 = off)
Q_READ_HOLE = 52         # 1 = read_source 'hole': file reads zero-fill on the faulting CPU
Q_NOISE_THREADS = 53     # noise threads, entities [Q_FIRST_NOISE, Q_FIRST_NOISE + this)
Q_FIRST_NOISE = 54
Q_NOISE_STREAM = 55      # stream of noise thread 0 (thread n: this + n)
Q_RUN_TO_PARITY = 56     # 1 = wakeup_preemption "run_to_parity", 0 = "immediate"
N_Q = 57

ACCESS_POPULARITY = 0
ACCESS_GROUP_WALK = 1
ACCESS_FILE_ROUNDS = 2   # thread t maps, walks and unmaps VMA t, round after round
WRITER_POISSON = 0
WRITER_PERIODIC = 1
WRITER_FLAT_OUT = 2
WRITER_MODE_CODES = {"poisson": WRITER_POISSON, "periodic": WRITER_PERIODIC,
                     "flat_out": WRITER_FLAT_OUT}

# rwsem disciplines (scenario field ``rwsem``)
RWSEM_LINUX = 0
RWSEM_FIFO = 1
RWSEM_READER_PREF = 2
RWSEM_WRITER_PREF = 3
RWSEM_PHASE_FAIR = 4
RWSEM_CODES = {"linux": RWSEM_LINUX, "fifo": RWSEM_FIFO, "reader_pref": RWSEM_READER_PREF,
               "writer_pref": RWSEM_WRITER_PREF, "phase_fair": RWSEM_PHASE_FAIR}

# ---- mutable integer scalars ---------------------------------------------------------------
I_RW_READERS = 0         # holders of mmap_lock for read (woken readers included: they were granted)
I_RW_WRITER = 1          # entity holding mmap_lock for write, or -1
I_RW_QHEAD = 2           # FIFO wait list of the rwsem (doubly linked through rw_next / rw_prev)
I_RW_QTAIL = 3
I_RW_QLEN = 4
I_RW_QWRITERS = 5
I_RW_HANDOFF = 6         # RWSEM_FLAG_HANDOFF
I_SPIN_LEN = 7           # optimistic spinners (writers on a CPU, in arrival order)
I_CPU_FREE = 8           # free CPUs: the top of the ``cpu_free`` stack
I_RQ_HEAD = 9            # CPU run queue (ring buffer over entities)
I_RQ_LEN = 10
I_DEV_INFLIGHT = 11
I_DQ_HEAD = 12           # device queue (ring buffer over read slots)
I_DQ_LEN = 13
I_IO_FREE = 14           # free read slots (stack)
I_W_FREE = 15            # free writer slots (stack)
I_FAULTS_DONE = 16
I_BATCH = 17             # current batch, -1 during warm-up
I_BATCH_FAULTS = 18
I_EVENTS = 19
I_OVERLOAD = 20          # 1 = a bounded resource (writer slots, folio table) ran out: unstable
I_STOP = 21              # 1 = all batches done
I_VIOLATIONS = 22        # invariant violations found in checking mode
I_READ_WAITING = 23      # threads between down_read's slow path and running with the lock
I_WRITE_WAITING = 24
I_IN_FAULT = 25
I_OPS_DONE = 26          # completed faults and writer sections (batches count these)
I_R_FREE = 27            # free background-reader slots (stack)
I_RQ_WOKEN = 28          # woken entities at the front of the run queue (they run first)
I_LRU_HEAD = 29          # head (most recent end) of the inactive list; + LRU_ACTIVE: active's
I_LRU_TAIL = 31          # tail (reclaim end) of the inactive list; + LRU_ACTIVE: active's
I_LRU_LEN = 33           # folios on the inactive list; + LRU_ACTIVE: on the active list
I_CACHE_PAGES = 35       # resident folios charged to the memory limit (reading, cached, mapped)
I_NONRESIDENT_AGE = 36   # mm/workingset.c lruvec->nonresident_age: evictions + activations
I_OUT_OF_MEMORY = 37     # 1 = a charge found nothing reclaimable (every folio pinned): OOM
N_I = 38

# ---- mutable real scalars ----------------------------------------------------------------------
R_NOW = 0
R_BATCH_START = 1
R_LAST_EVENT = 2
R_WARMUP_END = 3
N_R = 4

# ---- statistics accumulated per batch ---------------------------------------------------------
S_TIME = 0
S_FAULTS = 1
S_LATENCY_SUM = 2
S_JANK = 3
S_READ_ACQ = 4
S_READ_WAIT_SUM = 5
S_WRITE_ACQ = 6
S_WRITE_WAIT_SUM = 7
S_WRITERS_DONE = 8
S_WRITER_LATENCY_SUM = 9
S_RETRIES = 10
S_REFAULTS = 11
S_RETRY_IO_WAITS = 12
S_RETRY_MISSES = 13
S_IO_READS = 14
S_VMA_ABORTS = 15
S_ACCESSES = 16
S_MAJOR = 17
S_RECLAIMS = 18
S_READ_WAITING_AREA = 19
S_WRITE_WAITING_AREA = 20
S_IN_FAULT_AREA = 21
S_EVENTS = 22
S_READ_WAIT_DONE = 23     # read waits completed (slow path), for Little's law
S_WRITE_WAIT_DONE = 24
S_READ_SLOW_WAIT_SUM = 25
S_WRITE_SLOW_WAIT_SUM = 26
S_READ_WAIT_MAX = 27
S_WRITE_WAIT_MAX = 28
S_READ_BUSY_TIME = 29      # time mmap_lock is held for read by anyone
S_READ_BUSY_PERIODS = 30   # read-held periods begun
S_READS_HOLDING_MMAP = 31  # reads a fault waited for while holding mmap_lock
S_READS_HOLDING_VMA = 32   # reads a fault waited for while holding its VMA lock
S_NOFAULT = 33             # accesses to a mapped page (no fault)
S_CLASS_MAJOR = 34         # faults whose first attempt found the folio absent
S_CLASS_WAITER = 35        # ... found it locked by another thread (under read or being installed)
S_CLASS_MINOR = 36         # ... found it uptodate and unlocked
S_MAJOR_LATENCY_SUM = 37
S_WAITER_LATENCY_SUM = 38
S_MINOR_LATENCY_SUM = 39
S_KERNEL_MAJOR = 40        # faults mm_account_fault counts major (VM_FAULT_MAJOR or TRIED)
S_WRITER_OPS = 41          # writer operations completed (a Poisson writer: one acquisition)
S_WRITER_OP_LATENCY_SUM = 42
S_WRITER_CPU = 43          # CPU time writers ran (gaps, holds, optimistic spinning)
S_PAGES_READ = 44          # folios brought in: read, read-around and zram swap-ins
S_CACHE_AREA = 45          # integral of resident folios over time (reclaim="lru")
S_CACHE_MAX = 46           # most resident folios at once
S_RESIDENCE_SUM = 47       # residence (charge to reclaim) of the folios that left, for Little
S_LIFETIME_SUM = 48        # last release to reclaim, summed over LRU reclaims
S_TABLE_EVICTIONS = 49     # resident folios the set-associative table dropped (not reclaim)
S_RECLAIM_CPU = 50         # CPU time spent in direct reclaim
# -- rounds, hole reads, noise (issue 12) --
S_ROUNDS = 51              # rounds completed (file_rounds: munmap and mmap done)
S_NOISE_CPU = 52           # CPU time noise threads ran
S_HOLE_FILLS = 53          # reads of a hole: read-arounds zero-filled on the faulting CPU
S_FAULTAROUND_MAPS = 54    # folios mapped by fault-around (filemap_map_pages)
S_ROUND_TIME_SUM = 55      # durations of the rounds completed (mmap done to mmap done)
N_S = 56

# histograms: fine log bins, HIST_PER_DECADE per decade from 10**HIST_LOG10_MIN s, bin 0 = below
H_FAULT_LATENCY = 0
H_READ_WAIT = 1
H_WRITE_WAIT = 2
H_WRITER_LATENCY = 3
H_MAJOR_LATENCY = 4
H_WAITER_LATENCY = 5
H_MINOR_LATENCY = 6
H_WRITER_OP_LATENCY = 7
N_H = 8
HIST_LOG10_MIN = -9.0
HIST_PER_DECADE = 50
HIST_DECADES = 12
N_BINS = 1 + HIST_PER_DECADE * HIST_DECADES

# ---- entity events and continuations ------------------------------------------------------------
EV_NONE = 0
EV_BURST = 1      # a CPU burst ends
EV_WAKE = 2       # the wake-up latency of a woken sleeper has elapsed: it wants a CPU
EV_RUN = 3        # the entity got a CPU: run its continuation
EV_IO = 4         # a read completes
EV_ARRIVAL = 5    # a writer arrives
EV_SPIN = 6       # an optimistic spinner gives up

K_NONE = 0
K_THINK_DONE = 1
K_ATTEMPT = 2
K_MMAP_GRANTED = 3
K_INSTALL_DONE = 4
K_MISS_SUBMIT = 5
K_FOLIO_RETRY_OWNED = 6    # woke owning the folio lock, fault lock dropped: unlock, RETRY
K_FOLIO_RETRY = 7          # woke after folio_wait_locked, fault lock dropped: RETRY
K_FOLIO_HOLD_OWNED = 8     # woke owning the folio lock, fault lock still held: map it
K_IDLE_DONE = 9            # an idle sleep ended: access a page
K_PTE_PRESENT_DONE = 10    # an attempt found the page mapped (PTE present): release, done
K_FOLIO_LOCK_WOKEN = 11    # woken from a folio wait to take the lock itself (test_and_set_bit)
K_W_START = 20
K_W_GRANTED = 21
K_W_DRAINED = 22
K_W_HOLD_DONE = 23
K_W_WOKEN = 24
K_W_OP_START = 25          # a writer thread starts an operation (on a CPU)
K_W_GAP_DONE = 26          # its CPU outside the lock is done: the next acquisition
K_W_PROC_HOLD_DONE = 27    # a writer in another process finished its lock-free "hold"
K_W_NEXT_ACQ = 28          # a writer thread that yielded its CPU goes on with its operation
K_R_START = 30
K_R_HOLD_DONE = 31
# -- rounds, hole reads, noise (issue 12, helper ROUNDS) --
K_ROUND_UNMAP = 40         # a round thread walked its last page: munmap (on a CPU)
K_ROUND_MUNMAP_HELD = 41   # munmap's write section done: downgrade, then the zap
K_ROUND_ZAP_DONE = 42      # the zap under the read lock done: up_read, then mmap
K_ROUND_MMAP_HELD = 43     # mmap's write section done: up_write, the next round
K_HOLE_FILLED = 44         # the faulting thread zero-filled the read-around of a hole
K_NOISE_RUN = 45           # a noise thread got a CPU: its loop's CPU burst
K_NOISE_DONE = 46          # the burst is done: nanosleep
EV_READER_ARRIVAL = 7

# folio states and wait modes
F_ABSENT = 0
F_READING = 1     # locked by the read in flight, not uptodate, not reclaimable
F_CACHED = 2      # uptodate, not mapped
F_MAPPED = 3
OWNER_NONE = -1
OWNER_IO = -2
WAIT_EXCLUSIVE = 0   # __folio_lock: woken alone, takes the lock (handed over after 5 steals)
WAIT_SHARED = 1      # folio_wait_locked: woken, does not take the lock
PAGE_LOCK_UNFAIRNESS = 5   # mm/filemap.c: sysctl_page_lock_unfairness (default 5)
# LRU lists (reclaim="lru"): f_lru of a folio
LRU_NONE = -1        # not on a list (absent)
LRU_INACTIVE = 0
LRU_ACTIVE = 1       # with lru_lists=1 only the inactive list is used, as the single list
SWAP_CLUSTER_MAX = 32
FOLIO_WAYS = 8
FOLIO_DIRECT_LIMIT = 1 << 20


def folio_table_slots(threads, readaround_pages, memory_limit=0):
    """Slots of the folio table of a space larger than ``FOLIO_DIRECT_LIMIT`` pages: enough
    sets that the folios pinned by reads and waiters never fill one (the analytic model's
    memory capacity too), and at least ``LIMIT_ROOM`` slots per folio the memory limit lets be
    resident, so that the limit, not the table, decides what stays.  Works on numbers and numpy
    arrays."""
    slots = np.maximum(2.0**20, 2.0 ** np.ceil(np.log2(16 * np.asarray(threads, dtype=float)
                                                        * readaround_pages)))
    limit = np.asarray(memory_limit, dtype=float)
    room = 2.0 ** np.ceil(np.log2(np.maximum(LIMIT_ROOM * limit, 1.0)))
    return np.where(limit > 0, np.maximum(slots, room), slots)


#: folio-table slots per folio of the memory limit (with two candidate sets of FOLIO_WAYS per
#: page, an insertion finds all 16 slots resident with probability far below 1e-9 at this load)
LIMIT_ROOM = 4

# fault-lock kinds
LOCK_NONE = 0
LOCK_VMA = 1
LOCK_MMAP = 2

WRITER_NONE_VMA = 0
WRITER_ONE_VMA = 1
WRITER_FORK = 2

# phases of a round thread (file_rounds)
ROUND_WALK = 0
ROUND_MUNMAP = 1
ROUND_MMAP = 2

# access classes of a fault (by what its first attempt found)
CLASS_MAJOR = 0
CLASS_WAITER = 1
CLASS_MINOR = 2

@structref.register
class SimStateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class SimState(structref.StructRefProxy):
    """The simulation state (see the module docstring); fields are numpy arrays."""


FIELDS = [
    "ints", "reals", "streams", "zipf_prob", "zipf_alias",
    # calendar
    "heap_time", "heap_ent", "heap_pos", "heap_size",
    # entities
    "ent_event", "ent_cont", "burst_rem", "wait_start", "run_queue", "ent_cpu", "cpu_running",
    "cpu_free", "oncpu_since",
    "rw_next", "rw_prev", "rw_enq_time", "rw_is_writer", "rw_woken", "spinners",
    "fw_next", "fw_mode", "fw_unfair",
    # threads
    "t_key", "t_vma", "t_lock", "t_last_lock", "t_tried", "t_major", "t_io_seen",
    "t_retries", "t_waited_io", "t_want_vma", "t_is_retry", "t_fault_start", "t_slot", "t_io",
    "t_class",
    # group walks
    "t_walk", "walk_perm", "walk_epoch",
    # writers
    "w_start", "w_kind", "w_vma", "w_next_vma", "w_free", "w_draining", "w_waiting",
    "w_spin_start", "w_op_start", "w_next", "w_done_locks",
    # background readers
    "r_free",
    # VMAs
    "v_readers", "v_drainer", "v_write_locked",
    # folios
    "f_key", "f_state", "f_owner", "f_uptodate_at", "f_refs", "f_deadline", "f_exposed_at",
    "f_wq_head", "f_wq_tail",
    # LRU lists (reclaim="lru")
    "f_lru", "f_prev", "f_next", "f_referenced", "f_accessed", "f_shadow", "f_charged_at",
    # reads
    "io_nfolios", "io_folios", "io_stream", "io_free", "dev_queue",
    # statistics
    "stats", "hist",
    # rounds (issue 12, helper ROUNDS)
    "t_round_phase", "t_write_waiting", "t_draining", "t_round_start",
]
structref.define_proxy(SimState, SimStateType, FIELDS)


def allocate(P: np.ndarray, Q: np.ndarray, streams: np.ndarray,
             alias: tuple[np.ndarray, np.ndarray] | None = None,
             capacity: int | None = None) -> SimpleNamespace:
    """The state's arrays by name, and ``.struct``: the same arrays as a SimState for the engine.

    The per-batch ``stats`` and ``hist`` have room for ``capacity`` batches (default
    ``Q[Q_BATCHES]``, the run's target): a run continued batch by batch (``simulate.Run``) raises
    its target up to its capacity.
    """
    threads = int(Q[Q_THREADS])
    writer_slots = int(Q[Q_WRITER_SLOTS])
    reader_slots = int(Q[Q_READER_SLOTS])
    entities = int(Q[Q_READER_ARRIVAL]) + 1 + int(Q[Q_NOISE_THREADS])
    readaround = int(Q[Q_READAROUND])
    folio_slots = (int(Q[Q_TOTAL_PAGES]) if Q[Q_FOLIO_DIRECT]
                   else int(Q[Q_FOLIO_SET_MASK] + 1) * FOLIO_WAYS)
    batches = int(Q[Q_BATCHES]) if capacity is None else int(capacity)
    walk_shape = (1, 1)
    if Q[Q_ACCESS_PATTERN] == ACCESS_GROUP_WALK and not Q[Q_WALK_SEQUENTIAL]:
        # two epochs per group: members that lag into the previous epoch keep their permutation
        walk_shape = (2 * int(Q[Q_WALK_GROUPS]), int(Q[Q_WALK_PAGES]))

    def ints(n, fill=0, dtype=np.int64):
        return np.full(n, fill, dtype=dtype)

    def reals(n, fill=0.0):
        return np.full(n, fill, dtype=np.float64)

    scalars = ints(N_I)
    scalars[I_RW_WRITER] = -1
    scalars[I_RW_QHEAD] = -1
    scalars[I_RW_QTAIL] = -1
    scalars[I_CPU_FREE] = Q[Q_CPUS]
    scalars[I_BATCH] = -1
    scalars[I_IO_FREE] = threads
    # writer threads own their slots for the whole run: no slot is free for Poisson arrivals
    scalars[I_W_FREE] = writer_slots if Q[Q_WRITER_MODE] == WRITER_POISSON else 0
    scalars[I_R_FREE] = reader_slots
    for lru in (LRU_INACTIVE, LRU_ACTIVE):
        scalars[I_LRU_HEAD + lru] = -1
        scalars[I_LRU_TAIL + lru] = -1
    fields = dict(
        ints=scalars, reals=reals(N_R), streams=streams.copy(),
        zipf_prob=alias[0] if alias is not None else reals(1),
        zipf_alias=alias[1] if alias is not None else ints(1, 0, np.int32),
        heap_time=reals(entities), heap_ent=ints(entities), heap_pos=ints(entities, -1),
        heap_size=ints(1),
        ent_event=ints(entities, EV_NONE, np.int8), ent_cont=ints(entities, K_NONE, np.int8),
        burst_rem=reals(entities), wait_start=reals(entities), run_queue=ints(entities, -1),
        ent_cpu=ints(entities, -1, np.int32),
        cpu_running=ints(max(1, int(Q[Q_CPUS])), -1, np.int32),
        cpu_free=np.arange(max(1, int(Q[Q_CPUS])), dtype=np.int32),
        oncpu_since=reals(entities),
        rw_next=ints(entities, -1, np.int32), rw_prev=ints(entities, -1, np.int32),
        rw_enq_time=reals(entities), rw_is_writer=ints(entities, 0, np.int8),
        rw_woken=ints(entities, 0, np.int8), spinners=ints(writer_slots, -1, np.int32),
        fw_next=ints(entities, -1, np.int32), fw_mode=ints(entities, 0, np.int8),
        fw_unfair=ints(entities, 0, np.int8),
        t_key=ints(threads), t_vma=ints(threads, 0, np.int32), t_lock=ints(threads, 0, np.int8),
        t_last_lock=ints(threads, 0, np.int8), t_tried=ints(threads, 0, np.int8),
        t_major=ints(threads, 0, np.int8), t_io_seen=ints(threads, 0, np.int8),
        t_retries=ints(threads, 0, np.int32), t_waited_io=ints(threads, 0, np.int8),
        t_want_vma=ints(threads, 0, np.int8), t_is_retry=ints(threads, 0, np.int8),
        t_fault_start=reals(threads), t_slot=ints(threads, -1), t_io=ints(threads, -1),
        t_class=ints(threads, CLASS_MINOR, np.int8),
        t_walk=ints(threads),
        walk_perm=ints(walk_shape, 0, np.int32), walk_epoch=ints(walk_shape[0], -1),
        w_start=reals(writer_slots), w_kind=ints(writer_slots, 0, np.int8),
        w_vma=ints(writer_slots, 0, np.int32), w_next_vma=ints(writer_slots, 0, np.int32),
        w_free=np.arange(writer_slots, dtype=np.int32),
        w_draining=ints(writer_slots, 0, np.int8), w_waiting=ints(writer_slots, 0, np.int8),
        w_spin_start=reals(writer_slots, -1.0), w_op_start=reals(writer_slots),
        w_next=reals(writer_slots), w_done_locks=ints(writer_slots, 0, np.int32),
        r_free=np.arange(reader_slots, dtype=np.int32),
        v_readers=ints(int(Q[Q_VMAS]), 0, np.int32), v_drainer=ints(int(Q[Q_VMAS]), -1, np.int32),
        v_write_locked=ints(int(Q[Q_VMAS]), 0, np.int8),
        f_key=(np.arange(folio_slots, dtype=np.int64) if Q[Q_FOLIO_DIRECT]
               else ints(folio_slots, -1)),
        f_state=ints(folio_slots, F_ABSENT, np.int8),
        f_owner=ints(folio_slots, OWNER_NONE, np.int32), f_uptodate_at=reals(folio_slots),
        f_refs=ints(folio_slots, 0, np.int32), f_deadline=reals(folio_slots, np.inf),
        f_exposed_at=reals(folio_slots),
        f_wq_head=ints(folio_slots, -1, np.int32), f_wq_tail=ints(folio_slots, -1, np.int32),
        f_lru=ints(folio_slots, LRU_NONE, np.int8), f_prev=ints(folio_slots, -1, np.int32),
        f_next=ints(folio_slots, -1, np.int32), f_referenced=ints(folio_slots, 0, np.int8),
        f_accessed=ints(folio_slots, 0, np.int8), f_shadow=ints(folio_slots, -1),
        f_charged_at=reals(folio_slots),
        io_nfolios=ints(threads, 0, np.int32), io_folios=ints((threads, readaround), -1, np.int32),
        io_stream=ints(threads, 0, np.int32), io_free=np.arange(threads, dtype=np.int32),
        dev_queue=ints(threads, -1, np.int32),
        stats=reals((batches, N_S)), hist=reals((batches, N_H, N_BINS)),
        t_round_phase=ints(threads, 0, np.int8), t_write_waiting=ints(threads, 0, np.int8),
        t_draining=ints(threads, 0, np.int8), t_round_start=reals(threads, -1.0),
    )
    arrays = SimpleNamespace(**fields)
    # The StructRef shares these buffers: what the engine writes is seen through ``arrays``.
    arrays.struct = SimState(*(fields[name] for name in FIELDS))
    return arrays
