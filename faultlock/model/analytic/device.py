"""The storage device: read service along the device-depth curve, slots, and the wait for one.

``read_service_time`` (the depth-latency curve of MODEL.md mechanism 7 plus the read-around's
pages) at the depth a read sees among the other threads' reads, and ``finite_source_wait`` for
a device with ``io_parallelism`` slots (0: unlimited): a thread's read among N - 1 others, each
at the device a share u of its time (the share solves ``u = X_read (S + W(u)) / N``).
"""

from __future__ import annotations

from numba import njit

from .layout import IN, IO
from .numeric import (
    JIT,
    RHS_STORAGE,
    clip,
    finite_source_wait,
    fs_excess,
    fs_tail,
    read_service_time,
    safe_div,
    share_fixed_point,
    vmax,
)


@njit(**JIT)
def storage(xi, read_rate, absent_uniform, io, share):
    """Read service, device wait and the read time's first two moments, into ``io``.

    ``read_rate``: reads per second; ``absent_uniform``: the share of pages absent, which sets
    how many pages a read-around brings.  The depth a read sees and the device wait are
    finite-source results (the other threads' reads); the share of time a thread spends at the
    device (service and queue) solves ``u = X_read (S + W(u)) / N``.

    ``share`` >= 0 (a device with slots only) gives that share instead, and the read rate is
    then Little's ``X_read = N u / (S + W(u))``: the closed-system parametrisation, continuous
    through saturation, where the solve of the saturated element runs (``solve.solve_share``).
    """
    threads = xi[IN.threads]
    n_others = threads - 1
    slots = xi[IN.io_parallelism]
    io_latency = xi[IN.io_latency]
    pages = 1 + (xi[IN.readaround] - 1) * absent_uniform
    service = io_latency + xi[IN.io_page_time] * (pages - 1)
    given = share >= 0 and slots > 0
    for _ in range(3):                                  # depth seen depends on the service time
        if given:
            read_rate = threads * share / (service + finite_source_wait(
                slots, n_others, share, service, xi[IN.io_cv] * io_latency / service))
        busy = clip(read_rate * service / threads, 0.0, 1.0)
        depth = n_others * busy
        if slots > 0:
            depth = depth - fs_excess(n_others, busy, slots - 1)
        service = read_service_time(io_latency, xi[IN.io_depth_slope], depth, xi[IN.io_page_time],
                                     pages)
    cv = xi[IN.io_cv] * io_latency / service
    wait = 0.0
    at_device = clip(read_rate * service / threads, 0.0, 1.0) + wait
    if slots > 0:
        if not given:
            share = share_fixed_point(RHS_STORAGE, read_rate, service, slots, n_others, cv,
                                       threads, False, 0.0)
        wait = finite_source_wait(slots, n_others, share, service, cv)
        at_device = share
    p_wait = fs_tail(n_others, at_device, vmax(slots, 1.0)) if slots > 0 else 0.0
    wait_m2 = safe_div(2 * wait**2, p_wait, 0.0)
    total = service + wait
    m2 = service**2 * (1 + cv**2) + 2 * service * wait + wait_m2
    io[IO.read_service] = service
    io[IO.read_wait] = wait
    io[IO.read_wait_p] = p_wait
    io[IO.read_time] = total
    io[IO.read_time_m2] = m2
    io[IO.pages_per_read] = pages
