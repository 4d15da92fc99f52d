"""Sweeps: TOML specs -> labelled grids -> Dask -> a resumable zarr store -> where each policy wins.

>>> from faultlock.sweeps import list_specs, run_sweep, show  # doctest: +SKIP
>>> run_sweep("smoke", "smoke.zarr", workers=2)                # doctest: +SKIP
>>> print(show("smoke.zarr"))                                   # doctest: +SKIP

Modules: :mod:`.spec` (the TOML format), :mod:`.grid` (cells, seeds, chunks), :mod:`.solvers`
(one task's work), :mod:`.store` (the zarr layout and provenance), :mod:`.run` (the scheduling),
:mod:`.winners` (the winner maps), :mod:`.summary` (``show``), :mod:`.commands` (the CLI layer).
"""

from .commands import main_show, main_sweep
from .run import SweepIncomplete, run_sweep
from .spec import SpecError, SweepSpec, list_specs, load_spec
from .store import StoreError, open_sweep
from .summary import show
from .winners import decode, winner_maps, winner_shares

__all__ = [
           "SpecError",
           "StoreError",
           "SweepIncomplete",
           "SweepSpec",
           "decode",
           "list_specs",
           "load_spec",
           "main_show",
           "main_sweep",
           "open_sweep",
           "run_sweep",
           "show",
           "winner_maps",
           "winner_shares",
]
