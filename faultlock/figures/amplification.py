"""Figures 4 and 5: what a policy costs as the system is squeezed.

* :func:`refault_amplification` -- storage reads per fault, the retry miss ratio and storage reads
  per second versus memory pressure, per policy (the refault loop of MODEL.md §9);
* :func:`writer_cost` -- writer latency p99 versus the share of fork-like writers (which
  write-lock every VMA), one panel per I/O latency: under ``vma_wait`` a writer waits for the
  faults' reads, so its cost grows with the I/O latency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .common import finish, fixed_text, level_label, place_legend, policy_handles
from .data import (
    FigureDataError,
    base_scenario,
    describe_selection,
    dim_label,
    methods,
    metric_label,
    metric_unit,
    policies_of,
    preset_name,
    select_cell,
)
from .lines import method_handles, plot_metric
from .style import context, format_seconds, new_figure, plain_numbers, seconds_axis

__all__ = ["fork_axis", "pressure_axis", "refault_amplification", "writer_cost"]

_PRESSURE_FIELDS = ("reclaim_rate_cached", "reclaim_rate_mapped")


def _with_reads_per_fault(ds: xr.Dataset) -> xr.Dataset:
    """Add ``reads_per_fault`` = storage reads / faults (interval: the two relative half-widths
    added, a conservative bound for a ratio of two estimates)."""
    if "io_read_rate" not in ds or "fault_rate" not in ds:
        return ds
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ds["io_read_rate"] / ds["fault_rate"]
        ds = ds.assign(reads_per_fault=ratio.assign_attrs(units="1",
                                                          long_name="storage reads per fault"))
        if "io_read_rate_ci" in ds and "fault_rate_ci" in ds:
            rel = (ds["io_read_rate_ci"] / ds["io_read_rate"]
                   + ds["fault_rate_ci"] / ds["fault_rate"])
            ds = ds.assign(reads_per_fault_ci=(ratio * rel).assign_attrs(units="1"))
    return ds


def pressure_axis(ds: xr.Dataset) -> str | None:
    """The memory-pressure axis of a dataset: a ``memory_pressure`` levels axis, another axis
    whose levels set reclaim rates, or a reclaim-rate field axis."""
    dims = [d for d in ds.dims if ds.sizes[d] > 1]
    if "memory_pressure" in dims:
        return "memory_pressure"
    for dim in dims:
        if dim in _PRESSURE_FIELDS:
            return dim
    for dim in dims:
        if any(c in ds.coords and ds[c].dims == (dim,) for c in _PRESSURE_FIELDS):
            return dim
    return None


def fork_axis(ds: xr.Dataset) -> str | None:
    """The axis along which the share of fork-like writers varies."""
    dims = [d for d in ds.dims if ds.sizes[d] > 1]
    if "writer_fork_share" in dims:
        return "writer_fork_share"
    for dim in dims:
        if "writer_fork_share" in ds.coords and ds["writer_fork_share"].dims == (dim,) and \
                np.unique(ds["writer_fork_share"].values).size > 1:
            return dim
    return None


def _categorical(ds: xr.Dataset, dim: str) -> bool:
    return ds[dim].dtype.kind not in "iuf"


def _x_positions(ds: xr.Dataset, dim: str, order_by: str | None = None):
    """x values for plotting along ``dim``: numbers, or positions 0..n-1 for levels."""
    if not _categorical(ds, dim):
        return np.asarray(ds[dim].values, dtype=float), None
    return np.arange(ds.sizes[dim], dtype=float), [str(v) for v in ds[dim].values]


def _order_levels(ds: xr.Dataset, dim: str, key: str) -> xr.Dataset:
    """Sort a levels axis by the field it stands for (e.g. fork share), stable."""
    if key in ds.coords and ds[key].dims == (dim,):
        order = np.argsort(np.asarray(ds[key].values, dtype=float), kind="stable")
        return ds.isel({dim: order})
    return ds


def _prepare(data, keep_dim_finder, keep_extra: Sequence[str], select, what: str):
    results = methods(data)
    base = base_scenario(data)
    out, chosen, axis = {}, {}, None
    for m, ds in results.items():
        found = keep_dim_finder(ds)
        if found is None:
            continue
        axis = axis or found
        if found != axis:
            continue
        keep = (axis, *[d for d in keep_extra if d in ds.dims])
        out[m], c = select_cell(ds, keep=keep, select=select, base=base)
        chosen = chosen or c
    if not out:
        raise FigureDataError(f"{what}: no axis for it in the data (dims: "
                              + "; ".join(f"{m}: {dict(ds.sizes)}" for m, ds in results.items())
                              + ")")
    return out, axis, chosen, base


def refault_amplification(data, style: str = "slides",
                          select: Mapping[str, Any] | None = None):
    """Storage reads per fault, retry miss ratio and storage reads per second versus memory
    pressure, per policy.

    Parameters
    ----------
    data : Dataset or DataTree with a memory-pressure axis (``memory_pressure`` levels, or a
        ``reclaim_rate_cached`` / ``reclaim_rate_mapped`` axis)
    select : positions of the other axes (default: closest to the base scenario)
    """
    sliced, axis, chosen, _base = _prepare(data, pressure_axis, (), select,
                                          "refault amplification needs a memory-pressure axis")
    sliced = {m: _with_reads_per_fault(ds) for m, ds in sliced.items()}
    policies = policies_of(sliced)
    mc, an = sliced.get("mc"), sliced.get("analytic")
    ref = mc if mc is not None else an
    metrics = [m for m in ("reads_per_fault", "retry_miss_ratio", "io_read_rate")
               if any(m in ds for ds in sliced.values())]
    if not metrics:
        raise FigureDataError("refault amplification needs io_read_rate, fault_rate or "
                              "retry_miss_ratio")
    x, labels = _x_positions(ref, axis)
    with context(style) as st:
        fig = new_figure(st, height=None if st.is_slides else 5.0)
        if st.is_slides:
            axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        else:
            axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
        unstable = False
        for ax, metric in zip(axes, metrics):
            log_y = metric != "retry_miss_ratio"
            if log_y:
                ax.set_yscale("log")
            xa = None
            if an is not None and mc is not None and labels is not None:
                xa = np.array([list(map(str, an[axis].values)).index(v) for v in labels],
                              dtype=float) if set(labels) <= set(map(str, an[axis].values)) \
                    else None
            drawn = plot_metric(ax, st, axis, metric, policies, mc, an,
                                x_values_mc=x if mc is not None else None,
                                x_values_an=xa if mc is not None else x,
                                log_x=labels is None and np.all(x > 0),
                                band=labels is None, spread=0.05)
            unstable |= drawn["unstable"] > 0
            unit = metric_unit(metric, ref if metric in ref else None)
            ax.set_ylabel(f"{metric_label(metric)} ({unit})" if st.is_slides else f"({unit})")
            if metric == "retry_miss_ratio":
                ax.set_ylim(0, 1.02)
            else:
                plain_numbers(ax, "y")
            if labels is not None:
                ax.set_xticks(x, _pressure_ticks(ref, axis),
                              fontsize=st.font_size * (0.75 if st.is_slides else 0.85))
                ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
                ax.set_xlabel(_pressure_label(ref, axis))
            else:
                if np.all(x > 0):
                    ax.set_xscale("log")
                ax.set_xlabel(f"{dim_label(axis)} (1/s)")
            ax.set_title(metric_label(metric), fontsize=st.font_size * 0.9)
        keep = len(axes) // 2 if st.is_slides else len(axes) - 1
        for i, ax in enumerate(axes):
            if i != keep:
                ax.set_xlabel("")
        handles = policy_handles(policies, st, line=False) + method_handles(
            st, analytic=an is not None, mc=mc is not None, unstable=unstable,
            band=labels is None)
        place_legend(fig, handles, st, title="policy", ncol=3)
        fixed = describe_selection(chosen)
        title = "Refault amplification: what memory pressure costs each policy in storage reads"
        caption = (f"{title}. Storage reads per fault (reads over faults), the retry miss ratio "
                   "(retries that found their folio reclaimed, over retries that waited for I/O) "
                   f"and storage reads per second, versus {dim_label(axis)}"
                   + (" (levels set the reclaim rates of cached and mapped folios)"
                      if labels is not None else "")
                   + ". Markers: Monte Carlo with 95 % intervals; lines: the analytic "
                     "model." + (f" Fixed: {fixed}." if fixed else ""))
        return finish(fig, st, title, caption, subtitle=_subtitle(data, chosen, mc, an))


def writer_cost(data, style: str = "slides", metric: str = "writer_latency_p99",
                select: Mapping[str, Any] | None = None, max_panels: int = 3):
    """Writer latency (p99 by default) versus the share of fork-like writers, per policy, one
    panel per I/O latency (at most ``max_panels``: the smallest, a middle and the largest).

    Parameters
    ----------
    data : Dataset or DataTree with a ``writer_fork_share`` axis, or a levels axis (e.g.
        ``writer_load``) whose levels set different ``writer_fork_share`` values
    """
    sliced, axis, chosen, _base = _prepare(data, fork_axis, ("io_latency",), select,
                                          "writer cost needs an axis along which "
                                          "writer_fork_share varies")
    policies = policies_of(sliced)
    sliced = {m: _order_levels(ds, axis, "writer_fork_share") if _categorical(ds, axis) else ds
              for m, ds in sliced.items()}
    mc, an = sliced.get("mc"), sliced.get("analytic")
    ref = mc if mc is not None and metric in mc else an
    if ref is None or metric not in ref:
        raise FigureDataError(f"writer cost: no {metric} in the data")
    io_values = ref["io_latency"].values if "io_latency" in ref.dims else [None]
    if len(io_values) > max_panels:
        picks = np.unique(np.linspace(0, len(io_values) - 1, max_panels).round().astype(int))
        io_values = [io_values[i] for i in picks]
    categorical = True   # fork shares are few and uneven (0, 5, 10, 20, 40 %): evenly spaced
    fork = np.asarray(ref["writer_fork_share"].values if "writer_fork_share" in ref.coords
                      else ref[axis].values, dtype=float)
    with context(style) as st:
        fig = new_figure(st, height=None if st.is_slides else 2.8)
        axes = fig.subplots(1, len(io_values), sharey=True, squeeze=False)[0]
        unstable = False
        for ax, io in zip(axes, io_values):
            parts = {}
            for m, ds in (("mc", mc), ("analytic", an)):
                if ds is None:
                    continue
                if io is not None and "io_latency" in ds.dims:
                    near = int(np.argmin(np.abs(np.log(ds["io_latency"].values / io))))
                    ds = ds.isel(io_latency=near)
                parts[m] = ds
            ax.set_yscale("log")
            if categorical:
                xm = np.arange(ref.sizes[axis], dtype=float)
            else:
                xm = fork
            drawn = plot_metric(ax, st, axis, metric, policies, parts.get("mc"),
                                parts.get("analytic"), x_values_mc=xm if "mc" in parts else None,
                                x_values_an=xm if "analytic" in parts else None, log_x=False,
                                band=False, spread=0.05 if categorical else 0.035)
            unstable |= drawn["unstable"] > 0
            if categorical:
                ticks = [f"{100 * f:g} %" for f in fork]
                if st.is_slides and _categorical(ref, axis):
                    ticks = [f"{t}\n{level_label(ref, axis, i, short=True)}"
                             for i, t in enumerate(ticks)]
                ax.set_xticks(xm, ticks, fontsize=st.font_size * (0.7 if st.is_slides else 0.85))
                ax.set_xlim(xm[0] - 0.5, xm[-1] + 0.5)
            else:
                ax.set_xticks(fork)
                ax.xaxis.set_major_formatter(_percent())
            ax.set_xlabel("fork-like writers (% of writes)")
            seconds_axis(ax, "y", metric_label(metric))
            if io is not None:
                ax.set_title(("mean I/O latency " if st.is_slides else "I/O ")
                             + format_seconds(float(io), 2),
                             fontsize=st.font_size * 0.9)
        for i, ax in enumerate(axes):
            if i:
                ax.set_ylabel("")
            if i != len(axes) // 2:
                ax.set_xlabel("")
        # one x label centred under the panels (between the middle two of an even number)
        axes[len(axes) // 2].xaxis.label.set_x(0.5 if len(axes) % 2 else 0.0)
        handles = policy_handles(policies, st, line=False) + method_handles(
            st, analytic=an is not None and metric in an, mc=mc is not None, unstable=unstable,
            band=False)
        place_legend(fig, handles, st, title="policy", ncol=3)
        fixed = describe_selection(chosen)
        other = ""
        if _categorical(ref, axis):
            varying = [str(c) for c in ref.coords if c not in (axis, "writer_fork_share")
                       and ref[c].dims == (axis,) and np.unique(ref[c].values).size > 1]
            if varying:
                other = (f" The levels of {dim_label(axis)} also change "
                         + ", ".join(dim_label(v) for v in varying) + ": "
                         + "; ".join(level_label(ref, axis, i) for i in range(ref.sizes[axis]))
                         + ".")
        title = f"Writer cost: {metric_label(metric)} versus the share of fork-like writers"
        caption = (f"{title}, per policy, one panel per mean I/O latency (markers: Monte Carlo "
                   "with 95 % intervals as bars). A fork write-locks "
                   "every VMA; under vma_wait it then waits for the reads of the faults that "
                   "hold a VMA lock, while holding mmap_lock for write." + other
                   + " Lines: the analytic model." + (f" Fixed: {fixed}." if fixed else ""))
        return finish(fig, st, title, caption, subtitle=_subtitle(data, chosen, mc, an))


def _subtitle(data, chosen, mc, an) -> str:
    """The solvers and the fixed conditions, stated on the figure."""
    full = next(iter(methods(data).values()))
    solvers = " and ".join(x for x in ("Monte Carlo" if mc is not None else "",
                                       "analytic model" if an is not None else "") if x)
    return fixed_text(full, chosen, preset_name(data), solvers)


def _pressure_ticks(ds: xr.Dataset, dim: str) -> list[str]:
    """Level names, with the cached-folio reclaim rate below when the levels set it."""
    names = [str(v) for v in ds[dim].values]
    if "reclaim_rate_cached" in ds.coords and ds["reclaim_rate_cached"].dims == (dim,):
        rates = ds["reclaim_rate_cached"].values
        return [f"{n}\n{float(r):g}/s" for n, r in zip(names, rates)]
    return names


def _pressure_label(ds: xr.Dataset, dim: str) -> str:
    if "reclaim_rate_cached" in ds.coords and ds["reclaim_rate_cached"].dims == (dim,):
        return f"{dim_label(dim)} (cached-folio reclaim, 1/s)"
    return f"{dim_label(dim)} (level)"


def _percent():
    from matplotlib.ticker import FuncFormatter
    return FuncFormatter(lambda v, _p: f"{100 * v:g} %")
