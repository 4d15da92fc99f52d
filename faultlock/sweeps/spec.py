"""Sweep specs: a TOML file that names a base scenario, a labelled grid, the solvers and objectives.

A spec is read, checked and turned into a frozen :class:`SweepSpec` before anything is written;
every mistake raises one :class:`SpecError` naming the file, the key and what is allowed.

The format (``faultlock/sweeps/specs/*.toml`` are complete examples)::

    description = "what this sweep is for"
    method = "both"                  # "analytic", "mc" (Monte Carlo) or "both"
    policies = "all"                 # or a list: ["mainline", "vma_retry"]
    seed = 20260324                  # root SeedSequence entropy (a non-negative integer)

    [base]                           # the Scenario every cell starts from
    preset = "android_warm_start"    # optional; then any Scenario field, with units
    cpus = 8

    [grid]                           # one dimension per key, in this order
    threads = { pow2 = [1, 4096] }                           # 1, 2, 4, ..., 4096
    io_latency = { log = ["20us", "20ms"], points = 13 }     # geometric
    think_time = { linear = ["0us", "400us"], points = 5 }   # or step = "100us"
    rwsem = ["linux", "fifo"]                                # explicit values (or {values = [...]})

    [grid.memory_pressure]           # a named axis: each level sets several fields
    levels.none = { reclaim_rate_cached = 0, reclaim_rate_mapped = 0 }
    levels.severe = { reclaim_rate_cached = "2000/s", reclaim_rate_mapped = "50/s" }

    [mc]                             # Monte Carlo run length, per cell and policy
    operations = 4000
    batches = 20
    replications = 1
    stride = { threads = 2 }         # coarser grid: every 2nd point along threads
    chunk_cells = 1                  # cells per Dask task
    write_cells = 32                 # cells per zarr chunk (written at once, when all done)

    [mc.selection]                   # optional: rank and select (Kim & Nelson) per cell
    confidence = 0.95                # stated probability of a correct answer
    budget = 400                     # most batches per cell, all policies (first stage included)


    [analytic]
    chunk_cells = 512                # cells per (vectorised) task

    tie_tolerance = 0.01             # policies within 1 % of each other tie (winner: undecided)

    [objectives]                     # the winner maps; every objective is minimised unless said
    fault_p99 = "fault_latency_p99"
    fault_p99_bounded_writer = { minimize = "fault_latency_p99",
                                 subject_to = { writer_latency_p99 = "10ms" } }

``pow2 = [lo, hi]`` gives the powers of two in [lo, hi] (``step = k`` keeps every k-th exponent).
Every value is checked against the Scenario field it sets, so units, ranges and names are those of
:meth:`faultlock.Scenario.describe`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..model import metrics
from ..model.policies import POLICIES
from ..model.scenario import PRESETS, Scenario, parse_time

__all__ = [
    "DEFAULT_OBJECTIVES",
    "METHODS",
    "METRICS",
    "AnalyticSettings",
    "Axis",
    "MonteCarloSettings",
    "Objective",
    "SelectionSettings",
    "SpecError",
    "SweepSpec",
    "list_specs",
    "load_spec",
    "spec_path",
]

#: the solvers a spec can ask for; "both" means ("analytic", "mc")
METHODS = ("analytic", "mc")

#: dimension names the stores use themselves; an axis may not take them
RESERVED_DIMS = ("policy", *metrics.BINS, "method", "seed_word")


#: metric name -> units, for objectives and their bounds: every scalar metric of the result
#: contract (``faultlock.model.metrics``) and the extremes of a run
METRICS: Mapping[str, str] = {name: metrics.METRICS[name].units
                              for name in metrics.SCALARS + metrics.names("maximum")}

#: objectives used when a spec has no [objectives] table
DEFAULT_OBJECTIVES: Mapping[str, Any] = {
    "fault_p99": "fault_latency_p99",
    "jank": "jank_share",
    "writer_p99": "writer_latency_p99",
    "read_wait": "mmap_read_wait_mean",
    "fault_p99_bounded_writer": {"minimize": "fault_latency_p99",
                                 "subject_to": {"writer_latency_p99": "10ms"}},
}

_TOP_KEYS = ("description", "method", "policies", "seed", "base", "grid", "mc", "analytic",
             "objectives", "tie_tolerance")
_MC_KEYS = ("operations", "batches", "replications", "warmup", "rel_tolerance", "max_time",
            "stride", "chunk_cells", "write_cells", "selection")
_SELECTION_KEYS = ("confidence", "budget")
_ANALYTIC_KEYS = ("chunk_cells", "write_cells")
_RANGE_KINDS = ("values", "linear", "log", "pow2")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SpecError(ValueError):
    """A malformed sweep spec; the message names the file, the key and what is allowed."""


# ----------------------------------------------------------------------------------------------
# The parsed spec
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Axis:
    """One dimension of the grid.

    A *field axis* (``field`` set) sweeps one Scenario field over ``values``. A *levels axis*
    (``levels`` set) has string labels as ``values``; level ``i`` sets the fields
    ``levels[i]`` (normalised values; fields a level omits keep the base value).
    """

    name: str
    values: tuple[Any, ...]
    field: str | None = None
    levels: tuple[Mapping[str, Any], ...] | None = None
    units: str = ""
    long_name: str = ""

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def fields(self) -> tuple[str, ...]:
        """The Scenario fields this axis sets."""
        if self.field is not None:
            return (self.field,)
        names: list[str] = []
        for level in self.levels or ():
            names += [n for n in level if n not in names]
        return tuple(sorted(names, key=list(Scenario.FIELDS).index))

    def settings(self, index: int) -> dict[str, Any]:
        """Field values at position ``index`` along the axis."""
        if self.field is not None:
            return {self.field: self.values[index]}
        return dict(self.levels[index])

    def coordinate(self) -> np.ndarray:
        if self.field is None:
            return np.array(self.values, dtype=object)
        kind = Scenario.FIELDS[self.field].kind
        dtype = {"count": np.int64, "bool": bool, "name": object}.get(kind, np.float64)
        return np.array(self.values, dtype=dtype)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "values": list(self.values)}
        if self.field is not None:
            out["field"] = self.field
        else:
            out["levels"] = [dict(level) for level in self.levels or ()]
        return out


@dataclass(frozen=True)
class Objective:
    """Choose the policy that minimises (or maximises) ``metric``, among those whose
    ``constraints`` metrics are at most their bounds."""

    name: str
    metric: str
    sense: str = "minimize"
    constraints: tuple[tuple[str, float], ...] = ()

    def describe(self) -> str:
        text = f"{self.sense} {self.metric}"
        if self.constraints:
            text += " subject to " + ", ".join(f"{m} <= {b:g} {METRICS.get(m, '')}".rstrip()
                                               for m, b in self.constraints)
        return text

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric, *(m for m, _ in self.constraints))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "sense": self.sense,
                "constraints": [list(c) for c in self.constraints]}


@dataclass(frozen=True)
class SelectionSettings:
    """Ranking and selection in every Monte Carlo cell (:mod:`faultlock.sweeps.ranking`).

    The ``[mc]`` run (``operations`` in ``batches`` batches, after the warm-up) is the first
    stage; batches of the same size are then added only to the policies still in contention,
    until every objective is answered (winner or tie, with probability ``confidence`` of being
    right) or the cell has spent ``budget`` batches, all policies together, on an objective.
    """

    confidence: float = 0.95
    budget: int = 400

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "budget": self.budget}


@dataclass(frozen=True)
class MonteCarloSettings:
    """Arguments of :func:`faultlock.simulate` per cell, and how the Monte Carlo grid is cut."""

    operations: int = 20_000
    batches: int = 20
    replications: int = 1
    warmup: float = 0.2
    rel_tolerance: float = 0.05
    max_time: float = math.inf
    stride: Mapping[str, int] = field(default_factory=dict)
    chunk_cells: int = 1
    write_cells: int = 32
    selection: SelectionSettings | None = None

    def simulate_kwargs(self) -> dict[str, Any]:
        return {"operations": self.operations, "batches": self.batches,
                "replications": self.replications, "warmup": self.warmup,
                "rel_tolerance": self.rel_tolerance, "max_time": self.max_time}

    def to_dict(self) -> dict[str, Any]:
        out = self.simulate_kwargs()
        out["max_time"] = None if math.isinf(self.max_time) else self.max_time
        out.update(stride=dict(self.stride), chunk_cells=self.chunk_cells,
                   write_cells=self.write_cells)
        if self.selection is not None:  # absent from the fingerprint of specs without it
            out["selection"] = self.selection.to_dict()
        return out


@dataclass(frozen=True)
class AnalyticSettings:
    chunk_cells: int = 512
    write_cells: int = 32

    def to_dict(self) -> dict[str, Any]:
        return {"chunk_cells": self.chunk_cells, "write_cells": self.write_cells}


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep spec. Build with :func:`load_spec` (or :meth:`from_text`)."""

    name: str
    source: str
    text: str
    description: str
    methods: tuple[str, ...]
    policies: tuple[str, ...]
    seed: int
    base: Scenario
    axes: tuple[Axis, ...]
    mc: MonteCarloSettings
    analytic: AnalyticSettings
    objectives: tuple[Objective, ...]
    tie_tolerance: float = 1e-9

    @classmethod
    def from_text(cls, text: str, source: str = "<string>", name: str | None = None) -> SweepSpec:
        """Parse TOML text; ``source`` names it in errors (a file name)."""
        return _parse(text, source, name or Path(source).stem)

    # -- the grid --------------------------------------------------------------------------------
    @property
    def dims(self) -> dict[str, int]:
        return {a.name: a.size for a in self.axes}

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(name)

    def cell(self, index: tuple[int, ...]) -> Scenario:
        """The scalar Scenario at integer position ``index`` of the full grid."""
        values = self.base._values()
        for axis, i in zip(self.axes, index):
            values.update(axis.settings(int(i)))
        return Scenario(**values)

    def grid(self, positions: Mapping[str, Any] | None = None) -> Scenario:
        """The grid (or the sub-grid at integer ``positions`` per axis) as one Scenario whose
        swept fields are DataArrays labelled by the axes."""
        positions = positions or {}
        changes: dict[str, xr.DataArray] = {}
        for axis in self.axes:
            where = np.arange(axis.size)[positions.get(axis.name, slice(None))]
            where = np.atleast_1d(where)
            coord = axis.coordinate()[where]
            if coord.dtype == object:  # labels: Scenario wants a numpy string coordinate
                coord = coord.astype(str)
            for name in axis.fields:
                default = getattr(self.base, name)
                data = [axis.settings(int(i)).get(name, default) for i in where]
                changes[name] = xr.DataArray(np.array(data), dims=axis.name,
                                             coords={axis.name: coord})
        return self.base.replace(**changes)

    def coordinate_attrs(self, axis: Axis) -> dict[str, str]:
        return {"units": axis.units, "long_name": axis.long_name}

    # -- identity --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything that determines the results (not the description or file name)."""
        return {
            "methods": list(self.methods),
            "policies": list(self.policies),
            "seed": self.seed,
            "base": self.base.to_dict(),
            "axes": [a.to_dict() for a in self.axes],
            "mc": self.mc.to_dict(),
            "analytic": self.analytic.to_dict(),
            "objectives": [o.to_dict() for o in self.objectives],
            "tie_tolerance": self.tie_tolerance,
        }

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`to_dict`: two specs with the same fingerprint give the same store."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                               default=_json_default)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def cells(self, method: str | None = None) -> int:
        """Number of cells a method computes (the whole grid, or the Monte Carlo's strided one)."""
        if method == "mc":
            return int(np.prod([len(range(0, a.size, self.mc.stride.get(a.name, 1)))
                                for a in self.axes]))
        return int(np.prod(self.shape))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ----------------------------------------------------------------------------------------------
# Finding specs
# ----------------------------------------------------------------------------------------------

def _specs_dir():
    return resources.files("faultlock.sweeps") / "specs"


def list_specs() -> dict[str, str]:
    """The specs that ship with faultlock: name -> description (sorted by name)."""
    out = {}
    for entry in sorted(_specs_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            try:
                description = tomllib.loads(entry.read_text()).get("description", "")
            except tomllib.TOMLDecodeError:
                description = "(unreadable)"
            out[entry.name[:-5]] = str(description)
    return out


def spec_path(name_or_path: str | Path) -> Path:
    """The file of a shipped spec name (``"lsfmm"``) or an existing path; SpecError otherwise."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = str(name_or_path)
    name = name.removesuffix(".toml")
    shipped = _specs_dir() / f"{name}.toml"
    if "/" not in name and shipped.is_file():
        return Path(str(shipped))
    known = list(list_specs())
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SpecError(f"{name_or_path}: no such file, and no shipped spec of that name{hint}; "
                    f"allowed: a path to a .toml file or one of {', '.join(known)}")


def load_spec(spec: str | Path | SweepSpec) -> SweepSpec:
    """A :class:`SweepSpec` from a shipped name, a path, or (unchanged) a SweepSpec."""
    if isinstance(spec, SweepSpec):
        return spec
    path = spec_path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot be read: {exc}") from None
    return _parse(text, str(path), path.stem)


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, source: str):
        self.source = source

    def error(self, key: str, problem: str, allowed: str | None = None) -> SpecError:
        text = f"{self.source}: {key}: {problem}"
        if allowed:
            text += f"; allowed: {allowed}"
        return SpecError(text)

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(f"{where}{key}", f"unknown key{hint}", ", ".join(allowed))

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"{value!r} is not a table", "a TOML table")
        return value

    def integer(self, value: Any, key: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.error(key, f"{value!r} is not allowed", f"an integer >= {low}")
        return int(value)

    def number(self, value: Any, key: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not (low <= value <= high):
            raise self.error(key, f"{value!r} is not allowed", f"a number in [{low:g}, {high:g}]")
        return float(value)


def _parse(text: str, source: str, name: str) -> SweepSpec:
    p = _Parser(source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    p.keys(doc, _TOP_KEYS, "")

    description = doc.get("description", "")
    if not isinstance(description, str):
        raise p.error("description", f"{description!r} is not a string", "a string")

    method = doc.get("method", "both")
    allowed_methods = {"analytic": ("analytic",), "mc": ("mc",), "both": METHODS}
    if method not in allowed_methods:
        raise p.error("method", f"{method!r} is not a method", "'analytic', 'mc' or 'both'")
    methods = allowed_methods[method]

    policies = _policies(p, doc.get("policies", "all"))

    if "seed" not in doc:
        raise p.error("seed", "missing", "a non-negative integer (the root SeedSequence entropy)")
    seed = p.integer(doc["seed"], "seed", 0)

    base = _base(p, doc.get("base", {}))
    axes = _axes(p, doc.get("grid"), base)
    mc = _mc(p, doc.get("mc", {}), axes)
    if mc.selection is not None and mc.selection.budget < mc.batches * len(policies):
        raise p.error("mc.selection.budget", f"{mc.selection.budget} batches",
                      f"at least batches x policies = {mc.batches * len(policies)} (the first "
                      "stage)")
    analytic_table = p.table(doc.get("analytic", {}), "analytic")
    p.keys(analytic_table, _ANALYTIC_KEYS, "analytic.")
    analytic = AnalyticSettings(**{k: p.integer(v, f"analytic.{k}", 1)
                                   for k, v in analytic_table.items()})
    objectives = _objectives(p, doc.get("objectives", DEFAULT_OBJECTIVES))
    tie_tolerance = p.number(doc.get("tie_tolerance", 1e-9), "tie_tolerance", 0.0, 0.5)

    spec = SweepSpec(name=name, source=source, text=text, description=description,
                     methods=methods, policies=policies, seed=seed, base=base, axes=axes, mc=mc,
                     analytic=analytic, objectives=objectives, tie_tolerance=tie_tolerance)
    try:  # the whole grid at once: catches constraints between fields (shares summing past 1)
        spec.grid()
    except ValueError as exc:
        raise p.error("grid", str(exc)) from None
    return spec


def _policies(p: _Parser, value: Any) -> tuple[str, ...]:
    allowed = "'all' or a list of distinct names from " + ", ".join(POLICIES)
    if value == "all":
        return POLICIES
    if not isinstance(value, list) or not value:
        raise p.error("policies", f"{value!r} is not allowed", allowed)
    for name in value:
        if name not in POLICIES:
            close = difflib.get_close_matches(str(name), POLICIES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise p.error("policies", f"unknown policy {name!r}{hint}", allowed)
    if len(set(value)) != len(value):
        raise p.error("policies", "a policy is listed twice", allowed)
    return tuple(value)


def _base(p: _Parser, table: Any) -> Scenario:
    table = dict(p.table(table, "base"))
    preset = table.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        close = difflib.get_close_matches(str(preset), PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise p.error("base.preset", f"unknown preset {preset!r}{hint}",
                      ", ".join(PRESETS))
    for key, value in table.items():
        if key not in Scenario.FIELDS:
            close = difflib.get_close_matches(key, Scenario.FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise p.error(f"base.{key}", f"no such Scenario field{hint}",
                          "preset, or a field of faultlock.Scenario.describe()")
        if isinstance(value, (Mapping, list)):
            raise p.error(f"base.{key}", f"{value!r} is not a single value",
                          f"one value; to sweep {key}, put it under [grid]")
    try:
        return Scenario(**{**(PRESETS[preset] if preset else {}), **table})
    except ValueError as exc:
        raise p.error("base", str(exc)) from None


def _axes(p: _Parser, grid: Any, base: Scenario) -> tuple[Axis, ...]:
    if grid is None:
        raise p.error("grid", "missing", "a [grid] table with at least one axis")
    grid = p.table(grid, "grid")
    if not grid:
        raise p.error("grid", "empty", "at least one axis")
    axes: list[Axis] = []
    owner: dict[str, str] = {}  # field -> axis that sets it
    for name, value in grid.items():
        key = f"grid.{name}"
        if not _NAME.match(name) or name in RESERVED_DIMS:
            raise p.error(key, "not a usable dimension name",
                          "an identifier other than " + ", ".join(RESERVED_DIMS))
        if name in Scenario.FIELDS:
            axis = _field_axis(p, key, name, value)
        elif isinstance(value, Mapping) and "levels" in value:
            axis = _levels_axis(p, key, name, value)
        else:
            close = difflib.get_close_matches(name, Scenario.FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise p.error(key, f"no Scenario field {name!r}{hint}, and no levels table",
                          "a Scenario field with its values, or a named axis "
                          f"with a [grid.{name}.levels] table of level -> fields")
        for field_name in axis.fields:
            if field_name in owner:
                raise p.error(key, f"sets {field_name}, which grid.{owner[field_name]} "
                                   "already sweeps", "each field swept by one axis only")
            owner[field_name] = name
        if name in Scenario.FIELDS and axis.field is None:  # pragma: no cover - by construction
            raise p.error(key, "internal: field axis without field")
        axes.append(axis)
    for axis in axes:  # a levels axis must not be named after a field another axis sweeps
        if axis.field is None and axis.name in owner:
            raise p.error(f"grid.{axis.name}", "named after a swept field",
                          "a name that is not a Scenario field")
    return tuple(axes)


def _field_axis(p: _Parser, key: str, name: str, value: Any) -> Axis:
    spec = Scenario.FIELDS[name]
    how = "a list of values, or a table with one of values, linear = [lo, hi] (with points or " \
          "step), log = [lo, hi] (with points), pow2 = [lo, hi] (optional step)"
    if isinstance(value, list):
        value = {"values": value}
    if not isinstance(value, Mapping):
        raise p.error(key, f"{value!r} is not a range", how)
    kinds = [k for k in _RANGE_KINDS if k in value]
    if len(kinds) != 1:
        raise p.error(key, "needs exactly one of values, linear, log, pow2", how)
    kind = kinds[0]
    extra = {"values": (), "linear": ("points", "step"), "log": ("points",),
             "pow2": ("step",)}[kind]
    p.keys(value, (kind, *extra), f"{key}.")

    def coerce(v: Any, where: str) -> Any:
        try:
            return spec.coerce(v)
        except ValueError as exc:
            raise p.error(where, str(exc)) from None

    if kind == "values":
        raw = value["values"]
        if not isinstance(raw, list) or not raw:
            raise p.error(f"{key}.values", "empty", "a non-empty list of values")
        values = [coerce(v, f"{key}.values") for v in raw]
    else:
        if spec.kind not in ("time", "rate", "count", "float", "share"):
            raise p.error(f"{key}.{kind}", f"{name} is a {spec.kind} field",
                          "an explicit list of values for a name or bool field")
        ends = value[kind]
        if not isinstance(ends, list) or len(ends) != 2:
            raise p.error(f"{key}.{kind}", f"{ends!r} is not a range", "[lo, hi]")
        lo, hi = (float(_number(p, spec, e, f"{key}.{kind}")) for e in ends)
        step = None
        if kind == "linear" and "step" in value:
            step = _number(p, spec, value["step"], f"{key}.step")
        values = _range(p, f"{key}.{kind}", kind, lo, hi, value, step)
        if spec.kind == "count":
            values = [round(v) for v in values]
        values = [coerce(v, f"{key}.{kind}") for v in values]
    if len(set(values)) != len(values):
        raise p.error(key, f"repeated values {values!r}", "distinct values (counts are rounded "
                                                           "to integers)")
    units = {"count": "1", "share": "1", "float": "1"}.get(spec.kind, spec.unit)
    return Axis(name=name, values=tuple(values), field=name, units=units,
                long_name=spec.meaning)


def _number(p: _Parser, spec, value: Any, key: str) -> float:
    if spec.kind in ("time", "rate"):
        try:
            return parse_time(value, spec)
        except ValueError as exc:
            raise p.error(key, str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise p.error(key, f"{value!r} is not a number", f"numbers ({spec.allowed})")
    return float(value)


def _range(p: _Parser, key: str, kind: str, lo: float, hi: float, table: Mapping,
           step: float | None) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise p.error(key, f"empty range [{lo:g}, {hi:g}]", "lo < hi, both finite")
    if kind == "pow2":
        step = p.integer(table.get("step", 1), f"{key[:-5]}.step", 1)
        if lo <= 0:
            raise p.error(key, f"lo={lo:g} is not positive", "0 < lo < hi")
        first, last = math.ceil(math.log2(lo) - 1e-12), math.floor(math.log2(hi) + 1e-12)
        if last < first:
            raise p.error(key, f"no power of two in [{lo:g}, {hi:g}]", "a range holding one")
        return [2.0 ** k for k in range(first, last + 1, step)]
    if "points" in table and "step" in table:
        raise p.error(key, "both points and step", "one of them")
    if step is not None:
        where = key.rsplit(".", 1)[0] + ".step"
        if not step > 0:
            raise p.error(where, f"{step!r} is not allowed", "a positive step")
        count = math.floor((hi - lo) / step * (1 + 1e-12)) + 1
        if count > 100_000:
            raise p.error(where, f"{count} points", "at most 100000 points per axis")
        return [_tidy(lo + k * step) for k in range(count)]
    where = key.rsplit(".", 1)[0] + ".points"
    if "points" not in table:
        raise p.error(where, "missing", "an integer >= 2 (the number of values, ends included)")
    points = p.integer(table["points"], where, 2)
    if points > 100_000:
        raise p.error(where, f"{points} points", "at most 100000 points per axis")
    if kind == "log":
        if lo <= 0:
            raise p.error(key, f"lo={lo:g} is not positive", "0 < lo < hi for a log range")
        return [_tidy(v) for v in np.geomspace(lo, hi, points)]
    return [_tidy(v) for v in np.linspace(lo, hi, points)]


def _tidy(value: float) -> float:
    """12 significant digits: 2e-4, not 0.00020000000000000004 (so that ``sel`` finds it)."""
    return float(f"{float(value):.12g}")


def _levels_axis(p: _Parser, key: str, name: str, value: Mapping) -> Axis:
    p.keys(value, ("levels", "description"), f"{key}.")
    description = value.get("description", "")
    if not isinstance(description, str):
        raise p.error(f"{key}.description", f"{description!r} is not a string", "a string")
    levels = value["levels"]
    if not isinstance(levels, Mapping) or not levels:
        raise p.error(f"{key}.levels", "empty", "a table of level name -> table of fields")
    labels, settings = [], []
    for label, fields in levels.items():
        where = f"{key}.levels.{label}"
        fields = p.table(fields, where)
        if not fields:
            raise p.error(where, "sets no field", "a table of Scenario field = value")
        normalised = {}
        for field_name, v in fields.items():
            if field_name not in Scenario.FIELDS:
                close = difflib.get_close_matches(field_name, Scenario.FIELDS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise p.error(f"{where}.{field_name}", f"no such Scenario field{hint}",
                              "fields of faultlock.Scenario.describe()")
            try:
                normalised[field_name] = Scenario.FIELDS[field_name].coerce(v)
            except ValueError as exc:
                raise p.error(f"{where}.{field_name}", str(exc)) from None
        labels.append(str(label))
        settings.append(normalised)
    return Axis(name=name, values=tuple(labels), levels=tuple(settings), units="",
                long_name=description or f"{name} level")


def _mc(p: _Parser, table: Any, axes: tuple[Axis, ...]) -> MonteCarloSettings:
    table = p.table(table, "mc")
    p.keys(table, _MC_KEYS, "mc.")
    kwargs: dict[str, Any] = {}
    for key, low in (("operations", 100), ("batches", 2), ("replications", 1),
                     ("chunk_cells", 1), ("write_cells", 1)):
        if key in table:
            kwargs[key] = p.integer(table[key], f"mc.{key}", low)
    if kwargs.get("operations", 20_000) < kwargs.get("batches", 20):
        raise p.error("mc.operations", "fewer operations than batches",
                      "operations >= batches")
    if "warmup" in table:
        kwargs["warmup"] = p.number(table["warmup"], "mc.warmup", 0.0, 10.0)
    if "rel_tolerance" in table:
        kwargs["rel_tolerance"] = p.number(table["rel_tolerance"], "mc.rel_tolerance", 0.0, 1.0)
    if "max_time" in table:
        try:
            max_time = parse_time(table["max_time"], "mc.max_time")
        except ValueError as exc:
            raise p.error("mc.max_time", str(exc)) from None
        if not max_time > 0:
            raise p.error("mc.max_time", f"{table['max_time']!r}", "a positive simulated time")
        kwargs["max_time"] = max_time
    if "stride" in table:
        stride = p.table(table["stride"], "mc.stride")
        names = tuple(a.name for a in axes)
        p.keys(stride, names, "mc.stride.")
        kwargs["stride"] = {k: p.integer(v, f"mc.stride.{k}", 1) for k, v in stride.items()}
    if "selection" in table:
        kwargs["selection"] = _selection(p, table["selection"], kwargs)
    return MonteCarloSettings(**kwargs)


def _selection(p: _Parser, value: Any, mc: Mapping[str, Any]) -> SelectionSettings:
    table = p.table(value, "mc.selection")
    p.keys(table, _SELECTION_KEYS, "mc.selection.")
    kwargs: dict[str, Any] = {}
    if "confidence" in table:
        kwargs["confidence"] = p.number(table["confidence"], "mc.selection.confidence", 0.5, 0.999)
    if mc.get("replications", 1) != 1:
        raise p.error("mc.replications", f"{mc['replications']} with [mc.selection]",
                      "1 (the selection continues one run per policy)")
    first = mc.get("batches", MonteCarloSettings.batches)
    if first < 5:
        raise p.error("mc.batches", f"{first} with [mc.selection]",
                      "5 or more: the first stage's batches estimate the paired variances")
    if "budget" in table:
        kwargs["budget"] = p.integer(table["budget"], "mc.selection.budget", 1)
    return SelectionSettings(**kwargs)


def _objectives(p: _Parser, table: Any) -> tuple[Objective, ...]:
    table = p.table(table, "objectives")
    if not table:
        raise p.error("objectives", "empty", "at least one objective (or omit the table)")
    metrics = ", ".join(METRICS)
    out = []
    for name, value in table.items():
        key = f"objectives.{name}"
        if not _NAME.match(name):
            raise p.error(key, "not an identifier", "letters, digits and _")
        if isinstance(value, str):
            value = {"minimize": value}
        value = p.table(value, key)
        p.keys(value, ("minimize", "maximize", "subject_to"), f"{key}.")
        senses = [s for s in ("minimize", "maximize") if s in value]
        if len(senses) != 1:
            raise p.error(key, "needs exactly one of minimize, maximize",
                          "minimize = METRIC or maximize = METRIC")
        sense = senses[0]
        metric = value[sense]
        if metric not in METRICS:
            close = difflib.get_close_matches(str(metric), METRICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise p.error(f"{key}.{sense}", f"unknown metric {metric!r}{hint}", metrics)
        constraints = []
        for bound_metric, bound in p.table(value.get("subject_to", {}),
                                           f"{key}.subject_to").items():
            where = f"{key}.subject_to.{bound_metric}"
            if bound_metric not in METRICS:
                close = difflib.get_close_matches(bound_metric, METRICS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise p.error(where, f"unknown metric{hint}", metrics)
            units = METRICS[bound_metric]
            try:
                if units in ("s", "1/s"):
                    number = parse_time(bound, where, kind="time" if units == "s" else "rate")
                elif isinstance(bound, bool) or not isinstance(bound, (int, float)):
                    raise ValueError(f"{bound!r} is not a number")
                else:
                    number = float(bound)
            except ValueError as exc:
                raise p.error(where, str(exc), f"an upper bound in {units}") from None
            if not math.isfinite(number):
                raise p.error(where, f"{bound!r} is not finite", f"an upper bound in {units}")
            constraints.append((bound_metric, number))
        out.append(Objective(name=name, metric=metric, sense=sense,
                             constraints=tuple(constraints)))
    return tuple(out)
