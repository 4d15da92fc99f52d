"""Figure 6: the analytic model against the Monte Carlo on the same cells.

* :func:`validation_scatter` -- one panel per metric: analytic (x) against Monte Carlo (y) with its
  95 % interval, every cell and policy, and the identity line;
* :func:`validation_error_map` -- the relative error (analytic / Monte Carlo - 1, the convention
  of :mod:`faultlock.model.validation`) of one metric as
  a map over threads x I/O latency, one panel per policy; a dot marks cells where the analytic
  value is inside the Monte Carlo interval.

Both read a sweep store with both methods (``method = "both"``), a Dataset with a ``method``
dimension, or the output of ``faultlock.model.validation.validate`` once it gives the same two
datasets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.colors import ListedColormap, TwoSlopeNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .common import finish, fixed_text, log_edges, place_legend, policy_handles
from .data import (
    FigureDataError,
    base_scenario,
    describe_selection,
    grid_dims,
    methods,
    metric_label,
    metric_unit,
    policies_of,
    preset_name,
    select_cell,
)
from .style import (
    DARK_GREY,
    GREY,
    POLICY_MARKERS,
    context,
    new_figure,
    plain_numbers,
    policy_colour,
    policy_label,
    seconds_axis,
    threads_axis,
    wrap_title,
)

__all__ = ["VALIDATION_METRICS", "paired", "validation_error_map", "validation_scatter"]

VALIDATION_METRICS = ("fault_latency_mean", "fault_latency_p99", "mmap_read_rate",
                      "mmap_read_wait_mean", "mmap_write_wait_mean", "writer_latency_mean",
                      "retries_per_fault", "io_read_rate", "fault_rate", "refaults_per_fault",
                      "jank_share", "retry_miss_ratio")


def paired(data) -> tuple[xr.Dataset, xr.Dataset]:
    """Monte Carlo and analytic results on the Monte Carlo's cells (analytic picked by label:
    the nearest value on numeric axes, the same level on named ones)."""
    results = methods(data)
    if "mc" not in results or "analytic" not in results:
        raise FigureDataError("validation needs both solvers on the same cells (a sweep with "
                              "method = \"both\", or a dataset with a 'method' dimension); the "
                              f"data has {sorted(results) or 'neither'}")
    mc, an = results["mc"], results["analytic"]
    for dim in grid_dims(mc):
        if dim not in an.dims:
            raise FigureDataError(f"validation: the analytic data has no '{dim}' axis")
        values = mc[dim].values
        if values.dtype.kind in "iuf":
            an = an.sel({dim: values}, method="nearest")
        else:
            an = an.sel({dim: values})
        an = an.assign_coords({dim: values})
    an = an.sel(policy=mc["policy"].values)
    return mc, an


def _pairs(mc: xr.Dataset, an: xr.Dataset, metric: str):
    """Flat arrays (policy index, analytic, mc, mc half-width) of the finite pairs."""
    dims = [d for d in mc[metric].dims]
    y = mc[metric].transpose(*dims).values.astype(float)
    x = an[metric].transpose(*dims).values.astype(float)
    h = (mc[f"{metric}_ci"].transpose(*dims).values.astype(float)
         if f"{metric}_ci" in mc else np.zeros_like(y))
    pol = np.broadcast_to(np.arange(mc.sizes["policy"]).reshape(
        [-1 if d == "policy" else 1 for d in dims]), y.shape)
    ok = np.isfinite(x) & np.isfinite(y)
    return pol[ok], x[ok], y[ok], np.nan_to_num(h[ok])


def validation_scatter(data, style: str = "slides", metrics: Sequence[str] | None = None,
                       max_panels: int = 6):
    """Analytic (x) against Monte Carlo (y) for each metric, every cell and policy."""
    mc, an = paired(data)
    mc, an = mc.load(), an.load()
    candidates = metrics or VALIDATION_METRICS
    chosen = []
    for m in candidates:
        if m in mc and m in an and len(_pairs(mc, an, m)[1]) > 0:
            chosen.append(m)
    chosen = chosen[:max_panels]
    if not chosen:
        raise FigureDataError("validation: no metric with finite values in both solvers")
    policies = policies_of({"mc": mc})
    with context(style) as st:
        if st.is_slides:
            ncols = min(3, len(chosen))
        else:
            ncols = 2 if len(chosen) > 1 else 1
        nrows = int(np.ceil(len(chosen) / ncols))
        fig = new_figure(st, height=None if st.is_slides else 1.2 + 1.55 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        inside_total = count_total = 0
        for k, metric in enumerate(chosen):
            ax = axes.flat[k]
            pol, x, y, h = _pairs(mc, an, metric)
            positive = (x > 0) & (y > 0)
            log = positive.mean() > 0.9 and np.nanmax(y[positive]) / np.nanmin(y[positive]) > 20
            if log:
                pol, x, y, h = pol[positive], x[positive], y[positive], h[positive]
            for i, policy in enumerate(policies):
                sel = pol == i
                if not sel.any():
                    continue
                lower = np.minimum(h[sel], y[sel] * 0.95) if log else h[sel]
                ax.errorbar(x[sel], y[sel], yerr=[lower, h[sel]], linestyle="none",
                            marker=POLICY_MARKERS.get(policy, "o"),
                            markersize=st.marker_size * 0.55,
                            color=policy_colour(policy), elinewidth=st.line_width * 0.3,
                            alpha=0.85, zorder=3)
            both = np.concatenate([x, y])
            lo, hi = np.quantile(both, 0.005), np.quantile(both, 0.995)
            if log:
                lo, hi = lo / 1.5, hi * 1.5
                ax.set_xscale("log")
                ax.set_yscale("log")
            else:
                pad = 0.05 * (hi - lo or 1.0)
                lo, hi = lo - pad, hi + pad
            ax.plot([lo, hi], [lo, hi], color=DARK_GREY, linestyle="--",
                    linewidth=st.line_width * 0.6, zorder=2)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            unit = metric_unit(metric, mc)
            if unit == "s":
                seconds_axis(ax, "x", "analytic", log=log, numticks=4)
                seconds_axis(ax, "y", "MC", log=log, numticks=5)
                if log:
                    ax.xaxis.set_major_locator(_sparse_decades(ax))
            else:
                ax.set_xlabel(f"analytic ({unit})")
                ax.set_ylabel(f"MC ({unit})")
                plain_numbers(ax, "x")
                plain_numbers(ax, "y")
            inside = np.abs(y - x) <= h
            inside_total += int(inside.sum())
            count_total += inside.size
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(y / x - 1)
            rel = rel[np.isfinite(rel)]
            note = (f"median |error| {100 * np.median(rel):.0f} %\n" if rel.size else "") + \
                f"in MC interval {100 * inside.mean():.0f} %"
            ax.text(0.97, 0.03, note, transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=st.font_size * (0.6 if st.is_slides else 0.7), color=DARK_GREY,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
                    zorder=5)
            ax.tick_params(labelsize=st.font_size * (0.7 if st.is_slides else 0.8))
            ax.set_title(wrap_title(metric_label(metric), st, 30 if st.is_slides else 22),
                         fontsize=st.font_size * (0.75 if st.is_slides else 0.9))
        for k in range(len(chosen), nrows * ncols):
            axes.flat[k].set_visible(False)
        handles = policy_handles(policies, st, line=False) + [
            Line2D([], [], color=DARK_GREY, linestyle="--", label="identity (agreement)")]
        place_legend(fig, handles, st, ncol=3)
        title = "Validation: the analytic model against the Monte Carlo, cell by cell"
        cells = int(np.prod([mc.sizes[d] for d in grid_dims(mc)])) if grid_dims(mc) else 1
        caption = (f"{title}. Each point is one grid cell and policy ({cells} cells x "
                   f"{len(policies)} policies): the analytic value (x) and the Monte Carlo "
                   "estimate (y) with its 95 % batch-means interval; the dashed line is "
                   "agreement. Panels note the median relative error and the share of points "
                   "whose analytic value lies inside the Monte Carlo interval "
                   f"({100 * inside_total / max(count_total, 1):.0f} % over all panels). "
                   "Unstable cells (inf) are left out.")
        return finish(fig, st, title, caption)


def validation_error_map(data, style: str = "slides", metric: str = "fault_latency_mean",
                         select: Mapping[str, Any] | None = None, limit: float = 1.0):
    """Relative error (analytic / Monte Carlo - 1) of ``metric`` over threads x I/O latency, per
    policy; colours saturate at +-``limit`` (100 %)."""
    mc, an = paired(data)
    results_full = mc
    for dim in ("threads", "io_latency"):
        if dim not in mc.dims or mc.sizes[dim] < 2:
            raise FigureDataError(f"error map needs a '{dim}' axis with 2 or more values")
    if metric not in mc or metric not in an:
        raise FigureDataError(f"error map: {metric} is not given by both solvers")
    base = base_scenario(data)
    mc, chosen = select_cell(mc, keep=("threads", "io_latency"), select=select, base=base)
    an, _ = select_cell(an, keep=("threads", "io_latency"), select=chosen, base=base)
    mc, an = mc.load(), an.load()
    policies = [str(p) for p in mc["policy"].values]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (an[metric] / mc[metric] - 1).transpose("policy", "io_latency", "threads").values
        ci = (mc[f"{metric}_ci"] if f"{metric}_ci" in mc else xr.zeros_like(mc[metric]))
        inside = (np.abs(mc[metric] - an[metric]) <= ci).transpose(
            "policy", "io_latency", "threads").values
    unstable = ~(np.isfinite(mc[metric].transpose("policy", "io_latency", "threads").values)
                 & np.isfinite(an[metric].transpose("policy", "io_latency", "threads").values))
    unstable &= ~np.isnan(mc[metric].transpose("policy", "io_latency", "threads").values)
    rel = np.where(np.isfinite(rel) & ~unstable, rel, np.nan)
    threads = mc["threads"].values
    io = mc["io_latency"].values
    x_edges, y_edges = log_edges(threads, 2), log_edges(io)
    with context(style) as st:
        ncols = 4 if st.is_slides else 2
        nrows = int(np.ceil((len(policies)) / ncols))
        fig = new_figure(st, height=None if st.is_slides else 1.2 + 1.25 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
        mesh = None
        for k, policy in enumerate(policies):
            ax = axes.flat[k]
            mesh = ax.pcolormesh(x_edges, y_edges, rel[k], cmap="PuOr_r", norm=norm)
            if unstable[k].any():
                ax.pcolormesh(x_edges, y_edges, np.where(unstable[k], 1.0, np.nan),
                              cmap=ListedColormap([GREY]), vmin=0, vmax=1)
            yy, xx = np.nonzero(inside[k] & np.isfinite(rel[k]))
            ax.plot(np.asarray(threads, dtype=float)[xx], io[yy], linestyle="none", marker=".",
                    color="black", markersize=st.marker_size * 0.6)
            if rel[k].size <= 30 and st.is_slides:
                for (i, j), v in np.ndenumerate(rel[k]):
                    if np.isfinite(v):
                        ax.text(threads[j], io[i], f"{100 * v:+.0f}%", ha="center",
                                va="bottom", fontsize=st.font_size * 0.45,
                                color="white" if abs(v) > 0.6 * limit else "black")
            ax.set_title(policy_label(policy), color=policy_colour(policy),
                         fontsize=st.font_size * (0.8 if st.is_slides else 0.9),
                         fontweight="bold")
            threads_axis(ax, threads, max_ticks=5 if st.is_slides else 3)
            seconds_axis(ax, "y", "mean I/O latency")
            ax.set_xlim(x_edges[0], x_edges[-1])
            ax.set_ylim(y_edges[0], y_edges[-1])
            ax.grid(False)
            if k % ncols:
                ax.set_ylabel("")
            if k < len(policies) - ncols:
                ax.set_xlabel("")
        for k in range(len(policies), nrows * ncols):
            axes.flat[k].set_visible(False)
        bar = fig.colorbar(mesh, ax=axes, shrink=0.8, extend="both",
                           location="right" if st.is_slides else "bottom",
                           label="analytic / Monte Carlo - 1 (%)")
        bar.formatter = _percent()
        bar.update_ticks()
        handles = [Line2D([], [], linestyle="none", marker=".", color="black",
                          markersize=st.marker_size, label="analytic inside the\nMC 95 % "
                                                          "interval")]
        if unstable.any():
            handles.append(Patch(facecolor=GREY, label="unstable (inf) in\n"
                                                                 "one solver"))
        spare = [axes.flat[k] for k in range(len(policies), nrows * ncols)]
        if spare:
            spare[0].set_visible(True)
            spare[0].axis("off")
            spare[0].legend(handles=handles, loc="center", frameon=False)
        else:
            fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
        fixed = describe_selection(chosen)
        title = (f"Validation: where the analytic {metric_label(metric)} departs from the "
                 "Monte Carlo")
        caption = (f"{title}. Relative error of the analytic model (analytic / Monte Carlo - 1) "
                   "over threads (log2) and mean I/O latency (log), one panel per policy; orange: "
                   "the analytic model is higher, purple: lower; colours saturate at "
                   f"+-{100 * limit:.0f} %. Dots mark cells where the analytic value lies inside "
                   "the Monte Carlo 95 % interval; grey cells are unstable (inf) in "
                   "one of the solvers." + (f" Fixed: {fixed}." if fixed else ""))
        return finish(fig, st, title, caption,
                      subtitle=fixed_text(results_full, chosen, preset_name(data)))


def _sparse_decades(ax):
    """Major ticks every few decades so that at most three labels share a small x axis."""
    from matplotlib.ticker import FixedLocator
    lo, hi = ax.get_xlim()
    first, last = int(np.ceil(np.log10(lo))), int(np.floor(np.log10(hi)))
    step = max(1, int(np.ceil((last - first + 1) / 3)))
    return FixedLocator([10.0 ** e for e in range(first, last + 1, step)])


def _percent():
    from matplotlib.ticker import FuncFormatter
    return FuncFormatter(lambda v, _p: f"{100 * v:+.0f}" if v else "0")
