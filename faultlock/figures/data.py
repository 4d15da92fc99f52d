"""What the figures read: the results of each solver, the base scenario, and one slice of a grid.

Every figure function takes *data*, which may be

* an :class:`xarray.Dataset` from :func:`faultlock.simulate` (Monte Carlo: ``<metric>_ci``
  variables) or :func:`faultlock.predict` (analytic), with or without grid dimensions;
* an :class:`xarray.Dataset` with a ``method`` dimension (``"mc"``/``"montecarlo"`` and
  ``"analytic"``), or ``source`` (the output of :func:`faultlock.model.validation.validate`);
* an :class:`xarray.DataTree`: a sweep store opened with :func:`faultlock.sweeps.open_sweep`
  (children ``mc`` and ``analytic``, provenance in the root attributes).

:func:`methods` turns any of them into ``{"mc": Dataset, "analytic": Dataset}`` (either may be
absent). Nothing here computes model results: the figures are functions of the datasets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..model import metrics
from ..model.scenario import Scenario

__all__ = [
    "METRIC_LABELS",
    "NON_GRID_DIMS",
    "FigureDataError",
    "base_scenario",
    "combine",
    "describe_cell",
    "describe_selection",
    "differences",
    "dim_label",
    "finite",
    "format_value",
    "grid_dims",
    "level_fields",
    "matches_base",
    "methods",
    "metric_label",
    "metric_unit",
    "open_data",
    "policies_of",
    "preset_name",
    "select_cell",
    "spec_description",
]

#: dimensions that are not parameter axes
NON_GRID_DIMS = ("policy", *metrics.BINS, "seed_word", "method", "source")

#: short labels of the metrics (long names are in the datasets' attributes)
METRIC_LABELS = {
    "fault_latency_mean": "mean fault latency",
    "fault_latency_p50": "median (p50) fault latency",
    "fault_latency_p90": "p90 fault latency",
    "fault_latency_p99": "p99 fault latency",
    "fault_latency_p999": "p99.9 fault latency",
    "jank_share": "faults over the jank threshold",
    "fault_rate": "faults per second",
    "mmap_read_rate": "mmap_lock read acquisitions",
    "mmap_read_wait_mean": "mean mmap_lock read wait",
    "mmap_read_wait_p99": "p99 mmap_lock read wait",
    "mmap_write_rate": "mmap_lock write acquisitions",
    "mmap_write_wait_mean": "mean mmap_lock write wait",
    "mmap_write_wait_p99": "p99 mmap_lock write wait",
    "writer_latency_mean": "mean writer latency",
    "writer_latency_p99": "p99 writer latency",
    "retries_per_fault": "retries per fault",
    "refaults_per_fault": "refaults per fault",
    "retry_miss_ratio": "retry miss ratio",
    "io_read_rate": "storage reads",
    "major_faults_per_fault": "major attempts per fault",
    "reads_per_fault": "storage reads per fault",
}

#: units as printed on axes, by the datasets' ``units`` attribute
_UNIT_TEXT = {"s": "s", "1/s": "1/s", "1": "ratio"}
_METRIC_UNIT_TEXT = {
    "retries_per_fault": "retries/fault", "refaults_per_fault": "reads/fault",
    "reads_per_fault": "reads/fault", "major_faults_per_fault": "attempts/fault",
    "retry_miss_ratio": "misses/retry", "jank_share": "%", "fault_rate": "faults/s",
    "mmap_read_rate": "acquisitions/s", "mmap_write_rate": "acquisitions/s",
    "io_read_rate": "reads/s",
}

_DIM_LABELS = {
    "threads": "threads",
    "io_latency": "mean I/O latency",
    "memory_pressure": "memory pressure",
    "writer_load": "mmap_lock writer load",
    "writer_fork_share": "share of writers that fork",
    "writer_rate": "mmap_lock writer rate",
    "reclaim_rate_cached": "reclaim rate of cached folios",
    "reclaim_rate_mapped": "reclaim rate of mapped folios",
}

_METHOD_ALIASES = {"mc": "mc", "montecarlo": "mc", "monte_carlo": "mc", "analytic": "analytic",
                   "analytical": "analytic"}


class FigureDataError(ValueError):
    """The data cannot give this figure; the message says what is missing."""


# ---- sources --------------------------------------------------------------------------------
def open_data(source: Any) -> xr.Dataset | xr.DataTree:
    """A path (zarr sweep store, ``.zarr`` dataset or ``.nc`` file), Dataset or DataTree, opened."""
    if isinstance(source, (xr.Dataset, xr.DataTree)):
        return source
    if not isinstance(source, (str, Path)):
        raise ValueError(f"source={source!r} is not allowed: a sweep store path, a .nc/.zarr "
                         "dataset path, an xarray Dataset or DataTree")
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{path}: does not exist; allowed: a sweep store (faultlock sweep ... "
                         "-o STORE) or a dataset saved by faultlock whatif -o")
    if path.suffix == ".nc" and not path.is_dir():
        try:
            return xr.load_dataset(path)
        except Exception as exc:  # noqa: BLE001 - anything unreadable is "not a netCDF file"
            raise ValueError(f"{path}: not a readable netCDF file ({type(exc).__name__})"
                             ) from None
    if path.is_dir():  # a zarr store, whatever its name says
        try:
            tree = xr.open_datatree(str(path), engine="zarr", consolidated=False)
        except Exception as exc:  # noqa: BLE001 - anything unreadable is "not a store"
            raise ValueError(f"{path}: not a readable zarr store ({exc})") from None
        if tree.children:
            return tree
        return tree.to_dataset()
    raise ValueError(f"{path}: not a zarr directory or a .nc file")


def methods(data: xr.Dataset | xr.DataTree) -> dict[str, xr.Dataset]:
    """``{"mc": ..., "analytic": ...}`` (keys present only for the solvers the data holds)."""
    if isinstance(data, xr.DataTree):
        out = {}
        root = dict(data.attrs)
        for name, child in data.children.items():
            key = _METHOD_ALIASES.get(str(name))
            if key is None:
                continue
            ds = child.to_dataset()
            ds.attrs = {**root, **ds.attrs, "store_root_attrs": True}
            out[key] = _drop_undone(ds)
        if not out and data.has_data:
            return methods(data.to_dataset())
        return out
    if not isinstance(data, xr.Dataset):
        raise ValueError(f"data of type {type(data).__name__} is not allowed: an xarray Dataset "
                         "or DataTree (a sweep store)")
    for dim in ("method", "source"):  # a shared layout; "source" is validate()'s name for it
        if dim not in data.dims:
            continue
        out = {}
        for label in data[dim].values:
            key = _METHOD_ALIASES.get(str(label))
            if key is None:
                continue
            part = data.sel({dim: label}, drop=True)
            if key == "analytic":  # a shared layout may carry all-NaN interval variables
                part = part.drop_vars([v for v in part.data_vars if str(v).endswith("_ci")])
            out[key] = _drop_undone(part)
        return out
    solver = str(data.attrs.get("solver", ""))
    is_mc = solver == "montecarlo" or any(str(v).endswith("_ci") for v in data.data_vars)
    return {"mc" if is_mc else "analytic": _drop_undone(data)}


def _drop_undone(ds: xr.Dataset) -> xr.Dataset:
    """Cells not yet computed (``done`` false) are already NaN in a store; keep ``done`` out."""
    return ds.drop_vars([v for v in ("done", "scenario", "seed_key") if v in ds.variables])


def combine(mc: xr.Dataset | None = None, analytic: xr.Dataset | None = None) -> xr.DataTree:
    """The results of both solvers as one object the figures read (a DataTree like a store)."""
    children = {name: ds for name, ds in (("mc", mc), ("analytic", analytic)) if ds is not None}
    if not children:
        raise ValueError("combine() needs mc=..., analytic=... or both")
    attrs = {}
    for ds in children.values():
        attrs = {**dict(ds.attrs), **attrs}
    tree = xr.DataTree.from_dict({f"/{k}": v for k, v in children.items()})
    tree.attrs = {k: v for k, v in attrs.items() if k in ("scenario",)}
    return tree


def policies_of(results: Mapping[str, xr.Dataset]) -> list[str]:
    """The policies of the data, in the order of the first solver that has them."""
    seen: list[str] = []
    for ds in results.values():
        for p in ds["policy"].values:
            if str(p) not in seen:
                seen.append(str(p))
    return seen


def spec_description(data: xr.Dataset | xr.DataTree) -> str:
    """What produced the data, in a few words (a sweep spec, or a solver run)."""
    attrs = dict(data.attrs)
    if isinstance(data, xr.DataTree) and not attrs:
        for child in data.children.values():
            attrs = dict(child.attrs)
            break
    if "spec_name" in attrs:
        return f"sweep '{attrs['spec_name']}'"
    if "solver" in attrs:
        return f"{attrs['solver']} run"
    return "dataset"


# ---- the base scenario and one cell ---------------------------------------------------------
def base_scenario(data: xr.Dataset | xr.DataTree | Mapping[str, xr.Dataset]) -> dict[str, Any]:
    """Scalar field values of the scenario the data starts from (``{}`` when unknown)."""
    attrs: dict[str, Any] = {}
    if isinstance(data, (xr.Dataset, xr.DataTree)):
        attrs = dict(data.attrs)
    else:
        for ds in data.values():
            attrs = {**dict(ds.attrs), **attrs}
    base = attrs.get("base_scenario")
    if isinstance(base, str):
        base = json.loads(base)
    if isinstance(base, Mapping):
        return dict(base)
    text = attrs.get("scenario")
    if isinstance(text, str):
        try:
            raw = json.loads(text)
        except ValueError:
            return {}
        return {k: v for k, v in raw.items() if not isinstance(v, Mapping)}
    return {}


def grid_dims(ds: xr.Dataset) -> list[str]:
    """The parameter axes of a dataset (its dims other than policy, bins, method)."""
    return [d for d in ds.dims if d not in NON_GRID_DIMS]


def _level_distance(ds: xr.Dataset, dim: str, base: Mapping[str, Any]) -> np.ndarray | None:
    """Per position along a levels axis: how far its field values are from the base scenario."""
    fields = [c for c in ds.coords if c != dim and ds[c].dims == (dim,) and c in base
              and c in Scenario.FIELDS and ds[c].dtype.kind in "iuf"]
    if not fields:
        return None
    distance = np.zeros(ds.sizes[dim])
    for name in fields:
        values = np.asarray(ds[name].values, dtype=float)
        target = float(base[name])
        distance += np.abs(np.log1p(values) - np.log1p(target))
    return distance


def select_cell(ds: xr.Dataset, keep: tuple[str, ...] = (), select: Mapping[str, Any] | None = None,
                base: Mapping[str, Any] | None = None) -> tuple[xr.Dataset, dict[str, Any]]:
    """Reduce every grid dimension not in ``keep`` to one position.

    ``select`` gives positions by label (numbers: the nearest value); otherwise the position
    closest to the ``base`` scenario (the preset the sweep starts from), or the middle one.
    Returns the slice and ``{dim: label}`` of what was chosen.
    """
    select = dict(select or {})
    base = dict(base or {})
    chosen: dict[str, Any] = {}
    for dim in grid_dims(ds):
        if dim in keep:
            continue
        values = ds[dim].values
        if dim in select:
            wanted = select[dim]
            if values.dtype.kind in "iuf":
                if isinstance(wanted, str):
                    wanted = Scenario.FIELDS[dim].coerce(wanted) if dim in Scenario.FIELDS \
                        else float(wanted)
                index = int(np.argmin(np.abs(np.asarray(values, dtype=float) - float(wanted))))
            else:
                labels = [str(v) for v in values]
                if str(wanted) not in labels:
                    raise ValueError(f"select {dim}={wanted!r} is not allowed: one of "
                                     f"{', '.join(labels)}")
                index = labels.index(str(wanted))
        elif dim in base and values.dtype.kind in "iuf":
            target = float(base[dim])
            numeric = np.asarray(values, dtype=float)
            if target > 0 and np.all(numeric > 0):
                index = int(np.argmin(np.abs(np.log(numeric) - math.log(target))))
            else:
                index = int(np.argmin(np.abs(numeric - target)))
        else:
            distance = _level_distance(ds, dim, base)
            index = int(np.argmin(distance)) if distance is not None else len(values) // 2
        chosen[dim] = values[index].item() if hasattr(values[index], "item") else values[index]
        ds = ds.isel({dim: index})
    return ds, chosen


def preset_name(data) -> str | None:
    """The preset the data starts from (a sweep spec's ``[base] preset``), or None."""
    attrs = dict(data.attrs) if hasattr(data, "attrs") else {}
    spec = attrs.get("spec")
    if isinstance(spec, Mapping):
        base = spec.get("base")
        if isinstance(base, Mapping) and base.get("preset"):
            return str(base["preset"])
    text = attrs.get("spec_text")
    if isinstance(text, str):
        import re
        found = re.search(r'^\s*preset\s*=\s*"([^"]+)"', text, re.MULTILINE)
        if found:
            return found.group(1)
    preset = attrs.get("preset")
    return str(preset) if preset else None


def level_fields(ds: xr.Dataset, dim: str, index: int) -> dict[str, Any]:
    """The Scenario fields a position along ``dim`` sets: ``{dim: value}`` on a numeric axis, the
    level's field coordinates (``reclaim_rate_cached`` ...) on a named-levels axis."""
    values = ds[dim].values
    if values.dtype.kind in "iuf":
        v = values[index]
        return {dim: v.item() if hasattr(v, "item") else v}
    out = {}
    for name in ds.coords:
        if name != dim and ds[name].dims == (dim,) and name in Scenario.FIELDS:
            v = ds[name].values[index]
            out[str(name)] = v.item() if hasattr(v, "item") else v
    return out


def _same(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return bool(np.isclose(float(a), float(b), rtol=rtol, atol=0.0))
    return str(a) == str(b)


def differences(fields: Mapping[str, Any], base: Mapping[str, Any],
                rtol: float = 0.01) -> list[tuple[str, Any, Any]]:
    """``(field, value here, base value)`` for each field that differs from the base scenario
    (relative tolerance ``rtol``); a field the base does not record counts as different."""
    out = []
    for name, value in fields.items():
        if name not in base or not _same(value, base[name], rtol):
            out.append((name, value, base.get(name)))
    return out


def matches_base(ds: xr.Dataset, dim: str, index: int, base: Mapping[str, Any],
                 rtol: float = 0.01) -> bool:
    """Whether the position ``index`` along ``dim`` is the base scenario's (every field it sets
    equal to the base's within ``rtol``). A named level that sets no recorded field: False."""
    fields = level_fields(ds, dim, index)
    return bool(fields) and not differences(fields, base, rtol)


#: field names as short as a subtitle needs
_BRIEF = {"reclaim_rate_cached": "cached reclaim", "reclaim_rate_mapped": "mapped reclaim",
          "writer_rate": "writers", "writer_vma_share": "VMA share",
          "writer_fork_share": "fork share", "io_latency": "I/O"}


def describe_cell(ds: xr.Dataset, chosen: Mapping[str, Any], base: Mapping[str, Any],
                  preset: str | None) -> tuple[str, list[str]]:
    """Which cell a one-cell figure shows, and how it differs from the base scenario.

    Returns ``(what, differing)``: ``what`` is ``"the android_warm_start preset"`` when every
    chosen coordinate is the base scenario's, else ``"the grid cell nearest the
    android_warm_start preset: threads 256, ..."``; ``differing`` lists ``"threads 256 (preset
    300)"`` for every field that is not the preset's.
    """
    name = f"the {preset} preset" if preset else "the base scenario"
    differing = []
    for dim, label in chosen.items():
        if dim in ds.dims and ds[dim].dtype.kind in "iuf":
            index = int(np.argmin(np.abs(np.asarray(ds[dim].values, dtype=float)
                                         - float(label))))
        elif dim in ds.dims:
            index = [str(v) for v in ds[dim].values].index(str(label))
        else:
            index = None
        fields = level_fields(ds, dim, index) if index is not None else {dim: label}
        for field, here, there in differences(fields, base):
            there_text = format_value(field, there) if there is not None else "not set"
            differing.append(f"{_BRIEF.get(field, dim_label(field))} "
                             f"{format_value(field, here)} vs {there_text}")
    if not differing:
        return name, []
    return f"the grid cell nearest {name}: {describe_selection(chosen)}", differing


def describe_selection(chosen: Mapping[str, Any], ds: xr.Dataset | None = None) -> str:
    """``"mean I/O latency 1 ms, memory pressure moderate"``."""
    parts = []
    for dim, value in chosen.items():
        parts.append(f"{dim_label(dim)} {format_value(dim, value)}")
    return ", ".join(parts)


def format_value(dim: str, value: Any) -> str:
    """A coordinate value with its unit (``1 ms``, ``300/s``, ``30 %``, ``moderate``)."""
    if isinstance(value, str) or not isinstance(value, (int, float, np.number)):
        return str(value)
    field = Scenario.FIELDS.get(dim)
    unit = field.unit if field is not None else ""
    if unit == "s":
        from .style import format_seconds
        return format_seconds(float(value))
    if unit == "1/s":
        return f"{float(value):g}/s"
    if field is not None and field.kind == "share":
        return f"{100 * float(value):g} %"
    return f"{value:g}" if isinstance(value, float) else str(value)


def dim_label(dim: str) -> str:
    if dim in _DIM_LABELS:
        return _DIM_LABELS[dim]
    return dim.replace("_", " ")


def metric_label(name: str, ds: xr.Dataset | None = None) -> str:
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    if ds is not None and name in ds and "long_name" in ds[name].attrs:
        return str(ds[name].attrs["long_name"])
    return name.replace("_", " ")


def metric_unit(name: str, ds: xr.Dataset | None = None) -> str:
    """The unit printed on an axis of this metric."""
    if name in _METRIC_UNIT_TEXT:
        return _METRIC_UNIT_TEXT[name]
    units = ""
    if ds is not None and name in ds:
        units = str(ds[name].attrs.get("units", ""))
    elif name in metrics.METRICS:
        units = metrics.METRICS[name].units
    return _UNIT_TEXT.get(units, units or "ratio")


def finite(values: Any) -> np.ndarray:
    """Values as floats with infinities (unstable regimes) turned into NaN (not drawn)."""
    out = np.asarray(values, dtype=float).copy()
    out[~np.isfinite(out)] = np.nan
    return out
