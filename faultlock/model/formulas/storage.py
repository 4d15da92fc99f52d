"""Storage: a read's service time on the device's queue-depth curve (MODEL.md mechanism 7)."""

from __future__ import annotations

import sympy as sp

from .registry import MODEL_REFERENCE, Formula, register
from .symbols import depth_seen, depth_slope, io_latency, page_time, pages_per_read

__all__ = ["read_service_time"]


read_service_time = register(Formula(
    name="read_service_time",
    lhs=sp.Symbol("S_{io}"),
    expr=io_latency + depth_slope * depth_seen + page_time * (pages_per_read - 1),
    symbols=(io_latency, depth_slope, depth_seen, page_time, pages_per_read),
    assumptions="A read's service time: the depth-1 latency L, plus io_depth_slope per read "
                "already in flight when it starts (the device's queue-depth curve), plus "
                "io_page_time per page of the read-around beyond the first.  The depth seen is "
                "the mean number of the other threads' reads in service (finite-source, "
                "capped at io_parallelism - 1).",
    reference="MODEL.md mechanism 7 (virtio: ~45 µs at depth 1, ~125 at 8, ~370 at 32); "
              + MODEL_REFERENCE,
))
