"""The scenario's grid flattened to (policy, cell) elements: the rows the compiled model reads.

Elements are numbered policy-major, ``e = policy * cells + cell``.  Each row holds the fields
of ``layout.IN``: the scenario's numbers, quantities derived from them (file and swap pages,
read-around, the memory capacity of the engine's folio table, the laws' cvs), flags (0/1) for
the writer mode and the rwsem discipline, and the policy's switches (``policies.py``).
"""

from __future__ import annotations

import numpy as np

from ..arguments import ArgumentError
from ..montecarlo.state import FOLIO_DIRECT_LIMIT, folio_table_slots
from ..policies import get_policy
from ..scenario import Scenario
from .distribution import read_strata
from .layout import IN, SCENARIO_FIELDS, SWITCHES
from .pages import zipf_nodes


#: PAGE_SHIFT of the 4 KiB pages memory_limit counts
_PAGE_SHIFT = 12

#: the cv of the laws that fix it
_LAW_CV = {"exponential": 1.0, "deterministic": 0.0}


def inactive_ratio(memory_limit: np.ndarray) -> np.ndarray:
    """``mm/vmscan.c: inactive_is_low``: the active list may hold ``ratio`` times the inactive
    one, ``ratio = int_sqrt(10 x gb)`` for a list of ``gb`` GiB (1 below 1 GiB)."""
    gb = np.floor(np.asarray(memory_limit, dtype=float) / 2.0 ** (30 - _PAGE_SHIFT))
    return np.where(gb > 0, np.floor(np.sqrt(10 * gb)), 1.0)


def law_cv(law: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """The coefficient of variation of a law named ``law`` given ``cv`` (ignored where fixed)."""
    out = np.asarray(cv, dtype=float).copy()
    for name, value in _LAW_CV.items():
        out = np.where(law == name, value, out)
    return out


#: workloads of issue 12 (the memcg reproducer) only the Monte Carlo engine models:
#: (field, predicate of an unsupported value, what it is)
_MONTE_CARLO_ONLY = (
    ("access_pattern", lambda v: v == "file_rounds", "the file_rounds workload"),
    ("read_source", lambda v: v == "hole", "reading a hole (read_source='hole')"),
    ("noise_threads", lambda v: v > 0, "noise threads"),
    ("faultaround_pages", lambda v: v > 1, "fault-around (faultaround_pages > 1)"),
)


def refuse_monte_carlo_only(arrays) -> None:
    """Raise ArgumentError for a field of a workload only the Monte Carlo models (fields absent
    from ``arrays`` are skipped)."""
    for name, unsupported, what in _MONTE_CARLO_ONLY:
        if name not in arrays:
            continue
        values = np.asarray(arrays[name])
        if np.any(unsupported(values)):
            bad = values[unsupported(values)].flat[0]
            bad = bad.item() if isinstance(bad, np.generic) else bad
            raise ArgumentError(
                f"{name}={bad!r} is not allowed by the analytic model: {what} is modelled by "
                "the Monte Carlo engine only; use faultlock.simulate")


class Elements:
    """Every (policy, cell) element of ``scenario`` x ``policies`` as rows of floats.

    Attributes: ``rows`` (E, len(IN)), the Zipf nodes ``prob``, ``mass``, ``count`` (E, K),
    ``strata`` (the read time's unit quantiles per (law, cv): ``distribution.read_strata``),
    ``dims``/``shape`` of the grid, ``cells``, ``policies``.
    """

    def __init__(self, scenario: Scenario, policies: tuple[str, ...]):
        arrays, dims = scenario.as_arrays()
        refuse_monte_carlo_only(arrays)
        walks = np.asarray(arrays["access_pattern"]) == "group_walk"
        for name, allowed in (("readaround_pages", 1), ("swap_share", 0)):
            shape = np.broadcast_shapes(walks.shape, np.shape(arrays[name]))
            values = np.broadcast_to(np.asarray(arrays[name]), shape)[np.broadcast_to(walks,
                                                                                       shape)]
            if np.any(values != allowed):
                bad = values[values != allowed][0].item()
                raise ValueError(
                    f"{name}={bad!r} is not allowed by the analytic model with "
                    f"access_pattern='group_walk': it models group walks with {name}={allowed} "
                    f"(the harness's MADV_RANDOM file walk); use faultlock.simulate")
        self.dims = dims
        self.shape = tuple(scenario.dims.values())
        flat = {k: np.asarray(v).reshape(-1) for k, v in arrays.items()}
        self.cells = cells = flat["threads"].size
        self.policies = policies
        f = {k: v.astype(float) for k, v in flat.items() if Scenario.FIELDS[k].kind != "name"}
        cell_rows = np.zeros((cells, len(IN)))
        for name in SCENARIO_FIELDS:
            cell_rows[:, getattr(IN, name)] = f[name]
        # the HANDOFF timeout in jiffies (tick_hz > 0; montecarlo/rwsem.py handoff_due): between
        # J and J + 1 jiffies after the enqueue, J = ceil(timeout HZ); half a jiffy more on average
        hz = f["tick_hz"]
        with np.errstate(divide="ignore", invalid="ignore"):
            jiffies = np.ceil(f["handoff_timeout"] * hz - 1e-9) + 0.5
            cell_rows[:, IN.handoff_timeout] = np.where(hz > 0, jiffies / hz,
                                                        f["handoff_timeout"])
        total = f["vmas"] * f["pages_per_vma"]
        swap_vmas = np.round(f["swap_share"] * f["vmas"])          # as the engine: int(round())
        file_pages = (f["vmas"] - swap_vmas) * f["pages_per_vma"]
        rwsem, mode = flat["rwsem"], flat["writer_mode"]
        linux = rwsem == "linux"
        spin = linux & flat["writer_spin"].astype(bool)
        io_cv = law_cv(flat["io_distribution"], f["io_latency_cv"])
        # read stalls (issue 14): the element's read time is body + stall, its mean and cv
        # those of the sum (laws.stall_mean_cv), its quantiles the mixture's (read_strata)
        share, stall = f["io_stall_share"], f["io_stall_latency"]
        body_mean = f["io_latency"]
        strata, strata_row = read_strata(flat["io_distribution"], io_cv, share,
                                         stall / body_mean, f["io_stall_cv"])
        read_mean = body_mean + share * stall
        read_var = ((io_cv * body_mean) ** 2 + share * stall**2 * (1 + f["io_stall_cv"] ** 2)
                    - (share * stall) ** 2)
        cell_rows[:, IN.io_latency] = read_mean
        io_cv = np.sqrt(np.maximum(read_var, 0.0)) / read_mean
        derived = {
            "readaround": np.minimum(f["readaround_pages"], f["pages_per_vma"]),
            "file_pages": file_pages,
            "swap_pages": swap_vmas * f["pages_per_vma"],
            "file_share": file_pages / total,
            # memory: the engine keeps every page when the space is small, else a folio table
            # of this many slots (montecarlo/simulate.py), which evicts when full
            "capacity": np.where(total <= FOLIO_DIRECT_LIMIT, np.inf,
                                 folio_table_slots(f["threads"], f["readaround_pages"])),
            "total_pages": total,
            "io_cv": io_cv,
            "writer_cv": law_cv(flat["writer_hold_distribution"], f["writer_hold_cv"]),
            "walk": flat["access_pattern"] == "group_walk",
            "periodic": mode == "periodic",
            "writer_loop": mode != "poisson",                        # writer threads
            "writer_process": (mode != "poisson") & (flat["writer_where"] == "process"),
            "linux": linux,
            "spin": spin,
            "drain_blocks": rwsem != "reader_pref",      # a queued writer stops new readers
            "handover": ~linux,                          # the lock held through wake-ups
            "writer_pref": rwsem == "writer_pref",
            "strata_row": strata_row,
            # the memory limit's LRU (reclaim="lru" with a limit; otherwise the hazards, which
            # are then zero unless reclaim="hazard")
            "lru": (flat["reclaim"] == "lru") & (f["memory_limit"] > 0),
            "inactive_ratio": inactive_ratio(f["memory_limit"]),
            "run_to_parity": flat["wakeup_preemption"] == "run_to_parity",
        }
        for name, value in derived.items():
            cell_rows[:, getattr(IN, name)] = np.asarray(value, dtype=float)
        rows = np.tile(cell_rows, (len(policies), 1))
        for p, name in enumerate(policies):
            policy = get_policy(name)
            for switch in SWITCHES:
                rows[p * cells:(p + 1) * cells, getattr(IN, switch)] = float(getattr(policy,
                                                                                     switch))
        self.rows = np.ascontiguousarray(rows)
        self.strata = strata
        nodes = zipf_nodes(total, f["page_popularity"])               # (cells, K)
        self.prob, self.mass, self.count = (np.ascontiguousarray(np.tile(a, (len(policies), 1)))
                                            for a in nodes)
