"""The plan of one method over a spec's grid: coordinates, cells, seeds and the chunks (tasks).

The Monte Carlo may run on a coarser grid than the analytic model (``[mc] stride``): every
``stride``-th point of an axis, so its cells are a subset of the analytic grid's.

Two tilings of the grid, both rectangular and filled from the last axis backwards:

* **blocks** of about ``write_cells`` cells: the zarr chunks, each written once (one write per
  variable, ~1 ms each, so a block amortises that over many cells);
* **tasks** of ``chunk_cells`` cells, tiling each block: one Dask task each.

Seeds depend only on the root entropy and a cell's coordinates (axis name and value), never on
its position, the grid's extent, the chunking or the number of workers: the cell
``threads=64, io_latency=2e-4`` gets the same random numbers in every sweep with the same seed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .spec import SweepSpec

__all__ = ["Plan", "cell_seed_key", "chunk_shape", "make_plans"]

#: 32-bit words of a cell's seed key (the SeedSequence spawn key)
SEED_WORDS = 4


def cell_seed_key(coords: dict[str, object]) -> tuple[int, ...]:
    """The spawn key of a cell: SHA-256 of its coordinates (name -> value), as 32-bit words."""
    def canonical(value: object) -> object:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float):
            return ["float", repr(value)]
        if isinstance(value, bool):
            return ["bool", value]
        if isinstance(value, int):
            return ["int", value]
        return ["str", str(value)]

    text = json.dumps(sorted((str(k), canonical(v)) for k, v in coords.items()),
                      separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).digest()
    return tuple(int.from_bytes(digest[4 * i:4 * i + 4], "little") for i in range(SEED_WORDS))


def chunk_shape(shape: tuple[int, ...], cells: int) -> tuple[int, ...]:
    """A block of at most ``cells`` cells (at least one), filled from the last axis backwards."""
    out = []
    room = max(1, int(cells))
    for size in reversed(shape):
        take = max(1, min(size, room))
        out.append(take)
        room = max(1, room // take)
    return tuple(reversed(out))


@dataclass(frozen=True)
class Plan:
    """What one method computes: the (possibly strided) grid, its blocks and its tasks."""

    spec: SweepSpec
    method: str
    positions: tuple[np.ndarray, ...]  # per axis: indices into the spec's full axis
    chunks: tuple[int, ...]            # task shape
    blocks: tuple[int, ...]            # zarr chunk (write) shape

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.spec.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(p) for p in self.positions)

    @property
    def cells(self) -> int:
        return int(np.prod(self.shape))

    def coords(self) -> dict[str, np.ndarray]:
        return {a.name: a.coordinate()[p] for a, p in zip(self.spec.axes, self.positions)}

    def block_regions(self) -> list[tuple[slice, ...]]:
        """Every block (zarr chunk) as a tuple of slices, in C order over the block grid."""
        return _tile(tuple(slice(0, n) for n in self.shape), self.blocks)

    def tasks(self, block: tuple[slice, ...]) -> list[tuple[slice, ...]]:
        """The task regions that tile ``block``, in C order."""
        return _tile(block, self.chunks)

    def regions(self) -> list[tuple[slice, ...]]:
        """Every task region, block after block."""
        return [task for block in self.block_regions() for task in self.tasks(block)]

    def cell_indices(self, region: tuple[slice, ...]) -> Iterator[tuple[int, ...]]:
        """Positions (in this plan's grid) of a region's cells, in C order."""
        return itertools.product(*(range(s.start, s.stop) for s in region))

    def full_index(self, index: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(int(p[i]) for p, i in zip(self.positions, index))

    def cell_coords(self, index: tuple[int, ...]) -> dict[str, object]:
        full = self.full_index(index)
        return {a.name: a.values[i] for a, i in zip(self.spec.axes, full)}

    def seed_key(self, index: tuple[int, ...]) -> tuple[int, ...]:
        return cell_seed_key(self.cell_coords(index))

    def scenario(self, index: tuple[int, ...]):
        """The scalar Scenario of a cell (from the grid, validated once as a whole)."""
        return self._scenarios[tuple(index)]

    @functools.cached_property
    def _scenarios(self) -> dict:
        grid = self.spec.grid(dict(zip(self.axes, self.positions)))
        position = {axis: {value: i for i, value in enumerate(coords.tolist())}
                    for axis, coords in self.coords().items()}
        return {tuple(position[a][labels[a]] for a in self.axes): scenario
                for labels, scenario in grid.cells()}

    def region_grid(self, region: tuple[slice, ...]):
        """The region as one grid Scenario (for the vectorised analytic model)."""
        return self.spec.grid({a: p[s] for a, p, s in zip(self.axes, self.positions, region)})

    def region_coords(self, region: tuple[slice, ...]) -> dict[str, np.ndarray]:
        coords = self.coords()
        return {a: coords[a][s] for a, s in zip(self.axes, region)}


def _tile(region: tuple[slice, ...], step: tuple[int, ...]) -> list[tuple[slice, ...]]:
    starts = [range(r.start, r.stop, c) for r, c in zip(region, step)]
    return [tuple(slice(s, min(s + c, r.stop)) for s, c, r in zip(start, step, region))
            for start in itertools.product(*starts)]


def make_plans(spec: SweepSpec, chunk_cells: dict[str, int] | None = None,
               write_cells: dict[str, int] | None = None) -> dict[str, Plan]:
    """One plan per method of the spec; ``chunk_cells`` (cells per task) and ``write_cells``
    (cells per zarr chunk) override the spec's, per method."""
    chunk_cells = chunk_cells or {}
    write_cells = write_cells or {}
    plans = {}
    for method in spec.methods:
        settings = spec.mc if method == "mc" else spec.analytic
        stride = spec.mc.stride if method == "mc" else {}
        positions = tuple(np.arange(0, a.size, stride.get(a.name, 1)) for a in spec.axes)
        shape = tuple(len(p) for p in positions)
        task = chunk_cells.get(method, settings.chunk_cells)
        block = chunk_shape(shape, max(task, write_cells.get(method, settings.write_cells)))
        plans[method] = Plan(spec, method, positions, chunk_shape(block, task), block)
    return plans
