"""The sweep store: one zarr (v3) directory, a group per method, written as a template first and
then filled by region writes, with a per-cell ``done`` marker and the provenance of ``DESIGN.md``.

Layout::

    STORE.zarr/                 root attrs: provenance (spec text, seeds, versions, git revision,
                                formula hashes, Scenario of the base and the grid, run log)
      analytic/                 dims: the spec's axes, policy (+ the solver's own)
        <metric>                one variable per metric of the solver
        done                    per cell: computed and written
        scenario                per cell: the Scenario as JSON
        winner_<objective>, leader_<objective>, margin_<objective>
      mc/                       the same, on the (possibly strided) Monte Carlo grid, plus
        <metric>_ci, seed_key   95 % half-widths; each cell's SeedSequence spawn key

Crash safety: zarr's local store writes every file atomically (a temporary ``*.partial`` file,
then a rename); the template is marked complete (root ``template_complete``) only once written,
and each group's metric variables (``schema_complete``) only once all are created; a chunk's
``done`` marker is written after all its data. Resuming first removes the ``*.partial`` files a
kill left, rewrites an incomplete template from scratch, deletes and recreates the metric
variables of a group whose schema is incomplete (they hold no data yet), and recomputes chunks
not marked done: anything killed half-way is written again, identically. The only attribute that
differs between an interrupted and an uninterrupted sweep is ``run_log``.

One writer at a time: :func:`faultlock.sweeps.run_sweep` holds a
:class:`faultlock.outputs.DirectoryLock` (``STORE/.faultlock.lock``) while it writes; the file is
removed when the sweep ends, and a kill leaves no lock held.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from ..model.scenario import Scenario
from ..outputs import LOCK_NAME, OutputError
from .grid import SEED_WORDS, Plan
from .spec import METRICS, SweepSpec

__all__ = ["FORMAT", "RUN_LOG", "StoreError", "SweepStore", "open_sweep"]

#: store format version (root attribute ``faultlock_sweep``)
FORMAT = 1
#: the one attribute that records runs (times, hosts, workers); excluded from equality
RUN_LOG = "run_log"
SOLVER_NAMES = {"mc": ("montecarlo", "faultlock.simulate"),
                "analytic": ("analytic", "faultlock.model.analytic.predict")}


class StoreError(OutputError):
    """A store that cannot be created or resumed as asked (nothing has been written)."""


#: the temporary files zarr's local store writes before renaming them (``name.<uuid hex>.partial``)
_ZARR_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")


def open_sweep(store: str | Path) -> xr.DataTree:
    """The store as a lazy :class:`xarray.DataTree`: root attrs (provenance), a child per method."""
    return xr.open_datatree(str(store), engine="zarr", consolidated=False)


def _git_revision() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    try:
        revision = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], check=True,
                                  capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain",
                                "--untracked-files=no"], check=True, capture_output=True,
                               text=True, timeout=10).stdout.strip() != ""
        return {"git_revision": revision, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_revision": "unknown", "git_dirty": None}


def _versions() -> dict[str, str]:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "sympy", "numba", "xarray", "dask", "distributed", "zarr"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "absent"
    return out


def _formula_hashes() -> dict[str, str]:
    from ..model.formulas import FORMULAS
    return {name: formula.hash() for name, formula in sorted(FORMULAS.items())}


def provenance(spec: SweepSpec) -> dict[str, Any]:
    """Root attributes of a new store: what produced it, and everything needed to reproduce it."""
    from .. import __version__
    return {
        "faultlock_sweep": FORMAT,
        "title": f"faultlock sweep {spec.name}",
        "description": spec.description,
        "spec_name": spec.name,
        "spec_source": spec.source,
        "spec_text": spec.text,
        "spec_fingerprint": spec.fingerprint(),
        "spec": spec.to_dict(),
        "methods": list(spec.methods),
        "policies": list(spec.policies),
        "seed_entropy": spec.seed,
        "seed_derivation": "cell seed = numpy.random.SeedSequence(seed_entropy, spawn_key=the "
                           "cell's seed_key), seed_key = the first 16 bytes of SHA-256 of its "
                           "sorted (axis, value) pairs as 4 little-endian uint32 words; "
                           "faultlock.simulate spawns (replication,) below it and shares streams "
                           "across policies",
        "faultlock_version": __version__,
        **_git_revision(),
        "versions": _versions(),
        "formula_hashes": _formula_hashes(),
        "base_scenario": spec.base.to_dict(),
        "grid_scenario": spec.grid().to_json(indent=None),
        "objectives": {o.name: o.describe() for o in spec.objectives},
        "template_complete": False,
        RUN_LOG: [],
    }


def _object_strings(values) -> np.ndarray:
    """Strings as an object array (zarr's variable-length string type, stable in v3)."""
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


class SweepStore:
    """Read and write one sweep store (see the module docstring for the layout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._root: zarr.Group | None = None
        self._arrays: dict[tuple[str, str], zarr.Array] = {}
        self._schema: dict[str, dict[str, tuple[tuple[str, ...], np.dtype]]] = {}

    # -- state -----------------------------------------------------------------------------------
    def attrs(self) -> dict[str, Any] | None:
        """Root attributes, or None if there is no zarr group at the path."""
        if not (self.path / "zarr.json").is_file():
            return None
        try:
            return dict(zarr.open_group(str(self.path), mode="r").attrs)
        except Exception:  # noqa: BLE001 - an unreadable root is "not a sweep store"
            return None

    def _empty(self) -> bool:
        """No path, or a directory with nothing but our lock file."""
        return not self.path.exists() or (
            self.path.is_dir() and all(p.name == LOCK_NAME for p in self.path.iterdir()))

    def remove_partial_files(self) -> int:
        """Delete the temporary files zarr leaves when killed between writing a file and
        renaming it into place (call only while holding the store's lock)."""
        removed = 0
        for path in self.path.rglob("*.partial"):
            if path.is_file() and _ZARR_PARTIAL.search(path.name):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def root(self) -> zarr.Group:
        if self._root is None:
            self._root = zarr.open_group(str(self.path), mode="r+")
        return self._root

    def array(self, method: str, name: str) -> zarr.Array:
        key = (method, name)
        if key not in self._arrays:
            self._arrays[key] = self.root()[method][name]
        return self._arrays[key]

    # -- creation and resumption ------------------------------------------------------------------
    def prepare(self, spec: SweepSpec, plans: Mapping[str, Plan], resume: bool,
                force: bool = False) -> bool:
        """Make the store ready for ``spec``: create it, or check that it can be resumed (call
        only while holding the store's lock: see :func:`faultlock.sweeps.run_sweep`).

        Returns True if the template was (re)written. Raises :class:`StoreError` before writing
        anything if the path holds something else, or another spec's sweep, or (without
        ``resume``) anything at all. ``force`` replaces whatever zarr store is there.
        """
        if self.path.is_dir():
            self.remove_partial_files()
        if self._empty():
            self.create(spec, plans)
            return True
        attrs = self.attrs()
        if force:
            if attrs is None:
                raise StoreError(f"{self.path}: not a zarr store, and force replaces only a zarr "
                                 "store; allowed: a new path")
            self.create(spec, plans)
            return True
        if attrs is None or "faultlock_sweep" not in attrs:
            raise StoreError(f"{self.path}: exists and is not a faultlock sweep store; "
                             "allowed: a new path (or an empty directory)")
        if not resume:
            raise StoreError(f"{self.path}: a sweep store already exists; allowed: --resume "
                             "(resume=True) to continue it, or a new path")
        if attrs.get("faultlock_sweep") != FORMAT:
            raise StoreError(f"{self.path}: store format {attrs.get('faultlock_sweep')!r}; "
                             f"this faultlock writes format {FORMAT}")
        if attrs.get("spec_fingerprint") != spec.fingerprint():
            raise StoreError(
                f"{self.path}: made by a different spec ({attrs.get('spec_source')}); allowed: "
                "resume with the same spec (same grid, methods, policies, seed, run lengths, "
                "chunking and objectives), or a new path")
        for method, plan in plans.items():
            for what, mine in (("chunks", plan.chunks), ("blocks", plan.blocks)):
                stored = attrs.get(what, {}).get(method)
                if stored is not None and tuple(stored) != mine:
                    raise StoreError(f"{self.path}: {method} {what} are {tuple(stored)}, not "
                                     f"{mine}; allowed: resume with the store's chunking")
        if not attrs.get("template_complete"):
            self.create(spec, plans)  # killed while writing the template: nothing computed yet
            return True
        return False

    def create(self, spec: SweepSpec, plans: Mapping[str, Plan]) -> None:
        """Write the template: provenance, and per method the coordinates, ``done`` (all false),
        each cell's Scenario and seed key. Metric variables follow with the first result."""
        attrs = provenance(spec)
        attrs["chunks"] = {m: list(p.chunks) for m, p in plans.items()}
        attrs["blocks"] = {m: list(p.blocks) for m, p in plans.items()}
        # one atomic write of the root metadata: marker, fingerprint and provenance together.
        # Over an old store (our incomplete template, or one replaced with force) it comes
        # first, so that a kill while the rest is cleared leaves this spec's incomplete template,
        # which --resume finishes. Mode "a", not "w": "w" would delete the directory, and with
        # it the lock file.
        existing = self.attrs()
        if existing is not None and "faultlock_sweep" in existing:
            zarr.open_group(str(self.path), mode="r+").attrs.put(attrs)
        elif existing is not None:  # another zarr store replaced with force: its root metadata
            (self.path / "zarr.json").unlink()  # may list (consolidated) arrays about to go
        if self.path.exists() and not self._empty():
            self._clear()
        root = zarr.open_group(str(self.path), mode="a", zarr_format=3, attributes=attrs)
        for method, plan in plans.items():
            template = self._group_template(spec, plan)
            template.to_zarr(str(self.path), group=method, mode="w", compute=False,
                             consolidated=False, encoding=self._encoding(
                                 plan, ["done", "scenario"], {"seed_key": (SEED_WORDS,)}
                                 if "seed_key" in template else {}))
        root.attrs["template_complete"] = True
        self._root = None
        self._arrays.clear()

    def _clear(self) -> None:
        """Delete everything but the root metadata (already rewritten for the new template) and
        the lock: killed half-way, the path is still recognisably ours and the next resume
        clears it again."""
        for child in self.path.iterdir():
            if child.name not in ("zarr.json", LOCK_NAME):
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    def _encoding(self, plan: Plan, names, extra: Mapping[str, tuple[int, ...]]):
        """zarr chunks: the plan's blocks over the axes, whole along other dims (``extra``)."""
        return {name: {"chunks": plan.blocks + extra.get(name, ())}
                for name in [*names, *extra]}

    def _group_template(self, spec: SweepSpec, plan: Plan) -> xr.Dataset:
        axes = plan.axes
        coords: dict[str, Any] = {}
        for axis, values in zip(spec.axes, plan.coords().values()):
            values = _object_strings(values) if values.dtype == object else values
            coords[axis.name] = (axis.name, values, spec.coordinate_attrs(axis))
            if axis.levels is not None:  # the field values behind each level, as coordinates
                positions = plan.positions[axes.index(axis.name)]
                for name in axis.fields:
                    if name in METRICS:
                        continue
                    field = Scenario.FIELDS[name]
                    default = getattr(spec.base, name)
                    data = [axis.settings(int(i)).get(name, default) for i in positions]
                    if field.kind == "name":
                        data = _object_strings(data)
                    coords[name] = (axis.name, np.array(data),
                                    {"units": field.unit, "long_name": field.meaning})
        coords["policy"] = ("policy", _object_strings(spec.policies),
                            {"long_name": "fault-handling policy"})
        shape = plan.shape
        cells = list(plan.cell_indices(tuple(slice(0, n) for n in shape)))
        scenarios = _object_strings([plan.scenario(i).to_json(indent=None) for i in cells])
        seeds = np.array([plan.seed_key(i) for i in cells], dtype=np.uint32)
        data_vars = {
            "done": (axes, da.zeros(shape, dtype=bool, chunks=plan.blocks),
                     {"long_name": "cell computed and written"}),
            "scenario": (axes, scenarios.reshape(shape),
                         {"long_name": "the cell's faultlock.Scenario as JSON"}),
        }
        if plan.method == "mc":
            data_vars["seed_key"] = ((*axes, "seed_word"),
                                     seeds.reshape(shape + (SEED_WORDS,)),
                                     {"long_name": "SeedSequence spawn key of the cell "
                                                   "(root entropy: seed_entropy)"})
        solver, function = SOLVER_NAMES[plan.method]
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs.update(solver=solver, solver_function=function, cells=plan.cells,
                        chunk_shape=list(plan.chunks), block_shape=list(plan.blocks),
                        schema_complete=False)
        if plan.method == "mc":
            ds.attrs.update(run_lengths=spec.mc.to_dict(),
                            interval="95% batch means (Student t), per metric: <metric>_ci")
        return ds

    # -- the metric variables ---------------------------------------------------------------------
    def ensure_schema(self, plan: Plan, sample: xr.Dataset) -> None:
        """Create the metric variables of ``plan.method`` from a first result (once).

        Idempotent: if an earlier run was killed while creating them (``schema_complete`` still
        false), the variables it created hold no data yet (results are written only after this
        returns) and are deleted and created again, so the group ends byte for byte as if the
        first run had not been interrupted."""
        method = plan.method
        group = self.root()[method]
        if not group.attrs.get("schema_complete"):
            axes = plan.axes
            created = set(sample.data_vars) | {name for name in sample.coords
                                               if name not in axes and name != "policy"}
            for name in sorted(created & set(group.array_keys())):
                del group[name]
            data_vars, encoding = {}, {}
            for name, var in sample.data_vars.items():
                extra = tuple(d for d in var.dims if d not in axes)
                extra_shape = tuple(sample.sizes[d] for d in extra)
                fill = np.nan if var.dtype.kind == "f" else 0
                data = da.full(plan.shape + extra_shape, fill, dtype=var.dtype,
                               chunks=plan.blocks + extra_shape)
                data_vars[name] = ((*axes, *extra), data, dict(var.attrs))
                encoding[name] = {"chunks": plan.blocks + extra_shape}
            coords = {name: c for name, c in sample.coords.items()
                      if name not in axes and name != "policy"}
            template = xr.Dataset(data_vars, coords=coords)
            template.attrs = dict(group.attrs)  # mode "a" replaces the group's attributes
            template.to_zarr(
                str(self.path), group=method, mode="a", compute=False, consolidated=False,
                encoding=encoding)
            # one metadata write for both (attrs.update would write once per key, and a kill
            # between the two left schema_complete without metric_variables)
            group.update_attributes({"schema_complete": True, "metric_variables": {
                name: list(dims) for name, (dims, _, _) in data_vars.items()}})
        self._load_schema(method)

    def _load_schema(self, method: str) -> None:
        group = self.root()[method]
        self._schema[method] = {name: (tuple(dims), self.array(method, name).dtype)
                                for name, dims in group.attrs["metric_variables"].items()}

    def arrays(self, plan: Plan, region: tuple[slice, ...], result: xr.Dataset
               ) -> dict[str, np.ndarray]:
        """Check a task's result against the plan and the store; its variables as numpy arrays
        in the store's dimension order and dtypes."""
        method = plan.method
        if method not in self._schema:
            self.ensure_schema(plan, result)
        expected = plan.region_coords(region)
        for axis in plan.axes:
            got = np.asarray(result.variables[axis].values)
            want = np.asarray(expected[axis])
            if got.shape != want.shape or not np.array_equal(got.astype(want.dtype), want):
                raise RuntimeError(f"{method} result for region {region} has {axis}="
                                   f"{got.tolist()}, expected {want.tolist()}")
        if list(map(str, result["policy"].values)) != list(plan.spec.policies):
            raise RuntimeError(f"{method} result has policies {result['policy'].values}, "
                               f"expected {plan.spec.policies}")
        schema = self._schema[method]
        if set(result.data_vars) != set(schema):
            raise RuntimeError(f"{method} result for region {region} has variables "
                               f"{sorted(set(result.data_vars) ^ set(schema))} unlike the store")
        out = {}
        variables = result.variables  # Variables, not DataArrays: no coordinates to carry
        for name, (dims, dtype) in schema.items():
            var = variables[name]
            values = var.values if var.dims == dims else var.transpose(*dims).values
            out[name] = values if values.dtype == dtype else values.astype(dtype)
        return out

    def write(self, method: str, region: tuple[slice, ...], arrays: Mapping[str, np.ndarray]
              ) -> None:
        """Write ``arrays`` into ``region``, then mark its cells done (the marker comes last)."""
        for name, values in arrays.items():
            self.array(method, name)[region] = values
        self.array(method, "done")[region] = True

    def write_block(self, plan: Plan, block: tuple[slice, ...],
                    parts: list[tuple[tuple[slice, ...], dict[str, np.ndarray]]]) -> None:
        """Write the tasks of one block: as one write per variable if they cover the block
        (one whole zarr chunk each), else task by task."""
        covered = sum(int(np.prod([s.stop - s.start for s in r])) for r, _ in parts)
        if covered != int(np.prod([s.stop - s.start for s in block])):
            for region, arrays in parts:
                self.write(plan.method, region, arrays)
            return
        shape = tuple(s.stop - s.start for s in block)
        merged = {}
        for name, values in parts[0][1].items():
            merged[name] = np.empty(shape + values.shape[len(shape):], dtype=values.dtype)
        for region, arrays in parts:
            local = tuple(slice(r.start - b.start, r.stop - b.start) for r, b in zip(region, block))
            for name, values in arrays.items():
                merged[name][local] = values
        self.write(plan.method, block, merged)

    # -- reading -----------------------------------------------------------------------------------
    def done(self, method: str) -> np.ndarray:
        return np.asarray(self.array(method, "done")[...], dtype=bool)

    def write_winners(self, method: str, winners: xr.Dataset) -> None:
        """Write (or rewrite) the winner maps of one method: whole arrays, every run."""
        plan_chunks = tuple(self.root().attrs["blocks"][method])
        encoding = {name: {"chunks": plan_chunks} for name in winners.data_vars}
        existing = set(self.root()[method].array_keys())
        fresh = winners.drop_vars(list(winners.coords))
        if set(fresh.data_vars) <= existing:
            for name, var in fresh.data_vars.items():
                self.array(method, name)[...] = var.values
        else:
            fresh.attrs = dict(self.root()[method].attrs)  # mode "a" replaces them
            fresh.to_zarr(str(self.path), group=method, mode="a", consolidated=False,
                          encoding={k: v for k, v in encoding.items() if k not in existing})

    def log_run(self, entry: Mapping[str, Any]) -> None:
        root = self.root()
        log = list(root.attrs.get(RUN_LOG, []))
        log.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "host": socket.gethostname(), "user": _user(), "pid": os.getpid(),
                    **_git_revision(), **entry})
        root.attrs[RUN_LOG] = log


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"


def json_attrs(attrs: Mapping[str, Any]) -> str:
    """Attributes as canonical JSON (for comparisons)."""
    return json.dumps(attrs, sort_keys=True, default=str)
