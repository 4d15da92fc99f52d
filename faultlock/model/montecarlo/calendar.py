"""The event calendar: an indexed binary min-heap with one pending timer per entity.

Every entity of the simulation (a thread, a writer, a read in flight, the writer-arrival source) has
at most one pending timer, so the heap is indexed by entity: scheduling an entity that already has a
timer moves it (decrease- or increase-key) instead of leaving a stale entry behind. With hundreds of
threads the heap holds a few hundred entries: O(log n) with a small constant.
"""

from numba import njit


@njit(cache=True, inline="always")
def _sift_up(times, ents, pos, i):
    t = times[i]
    e = ents[i]
    while i > 0:
        parent = (i - 1) >> 1
        if times[parent] <= t:
            break
        times[i] = times[parent]
        ents[i] = ents[parent]
        pos[ents[i]] = i
        i = parent
    times[i] = t
    ents[i] = e
    pos[e] = i


@njit(cache=True, inline="always")
def _sift_down(times, ents, pos, i, n):
    t = times[i]
    e = ents[i]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and times[child + 1] < times[child]:
            child += 1
        if times[child] >= t:
            break
        times[i] = times[child]
        ents[i] = ents[child]
        pos[ents[i]] = i
        i = child
    times[i] = t
    ents[i] = e
    pos[e] = i


@njit(cache=True, inline="always")
def schedule(heap_time, heap_ent, heap_pos, heap_size, entity, when):
    """Set ``entity``'s timer to ``when``; ``heap_size`` is a one-element array."""
    i = heap_pos[entity]
    if i < 0:
        i = heap_size[0]
        heap_size[0] += 1
        heap_time[i] = when
        heap_ent[i] = entity
        _sift_up(heap_time, heap_ent, heap_pos, i)
    else:
        old = heap_time[i]
        heap_time[i] = when
        if when < old:
            _sift_up(heap_time, heap_ent, heap_pos, i)
        else:
            _sift_down(heap_time, heap_ent, heap_pos, i, heap_size[0])


@njit(cache=True)
def cancel(heap_time, heap_ent, heap_pos, heap_size, entity):
    i = heap_pos[entity]
    if i < 0:
        return
    heap_pos[entity] = -1
    n = heap_size[0] - 1
    heap_size[0] = n
    if i == n:
        return
    moved = heap_ent[n]
    heap_time[i] = heap_time[n]
    heap_ent[i] = moved
    heap_pos[moved] = i
    _sift_up(heap_time, heap_ent, heap_pos, i)
    _sift_down(heap_time, heap_ent, heap_pos, heap_pos[moved], n)


@njit(cache=True, inline="always")
def pop(heap_time, heap_ent, heap_pos, heap_size):
    """Remove and return (time, entity) of the earliest timer."""
    t = heap_time[0]
    e = heap_ent[0]
    heap_pos[e] = -1
    n = heap_size[0] - 1
    heap_size[0] = n
    if n > 0:
        heap_time[0] = heap_time[n]
        heap_ent[0] = heap_ent[n]
        heap_pos[heap_ent[0]] = 0
        _sift_down(heap_time, heap_ent, heap_pos, 0, n)
    return t, e
