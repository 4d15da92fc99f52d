"""Figure 1: where each policy wins, as a categorical map over threads x I/O latency.

One panel per memory-pressure level (rows) and writer load (columns), or whatever two other axes
the sweep has. A cell's colour is the policy with the best point estimate of the objective; a
hatched cell is *undecided*: its Monte Carlo interval overlaps another policy's (the winner maps
of :mod:`faultlock.sweeps.winners`), so the data cannot say which policy wins there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch, Rectangle

from ..model.scenario import parse_time
from .common import finish, place_legend, level_label, log_edges
from .data import (FigureDataError, base_scenario, describe_selection, grid_dims, methods,
                   metric_label, select_cell)
from .style import (DARK_GREY, GREY, UNDECIDED_HATCH, context, new_figure, policy_colour,
                    policy_label, seconds_axis, threads_axis)

__all__ = ["winner_map", "objectives_of"]

_UNDECIDED, _NO_DATA, _NONE_FEASIBLE = -1, -2, -3
_NONE_COLOUR = "#444444"


def objectives_of(data) -> list[str]:
    """Names of the objectives with a winner map in the data (for any solver)."""
    names: list[str] = []
    declared = dict(data.attrs).get("objectives") if hasattr(data, "attrs") else None
    if isinstance(declared, dict):  # a sweep store: the spec's order
        names = [str(n) for n in declared]
    for ds in methods(data).values():
        for v in ds.data_vars:
            if str(v).startswith("winner_") and str(v)[7:] not in names:
                names.append(str(v)[7:])
    present = {str(v)[7:] for ds in methods(data).values() for v in ds.data_vars
               if str(v).startswith("winner_")}
    return [n for n in names if n in present]


def _default_objective(name: str):
    """An :class:`~faultlock.sweeps.spec.Objective` for the default objectives, or a metric."""
    from ..sweeps.spec import DEFAULT_OBJECTIVES, METRICS, Objective
    if name in DEFAULT_OBJECTIVES:
        entry = DEFAULT_OBJECTIVES[name]
        if isinstance(entry, str):
            return Objective(name=name, metric=entry)
        bounds = tuple((m, float(parse_time(b)) if isinstance(b, str) else float(b))
                       for m, b in entry.get("subject_to", {}).items())
        return Objective(name=name, metric=entry["minimize"], constraints=bounds)
    if name in METRICS:
        return Objective(name=name, metric=name)
    raise FigureDataError(f"objective={name!r}: no winner_{name} in the data and not a default "
                          f"objective ({', '.join(DEFAULT_OBJECTIVES)}) or a metric")


def _pick_method(results: Mapping[str, xr.Dataset], objective: str, method: str | None):
    order = [method] if method else ["mc", "analytic"]
    for m in order:
        if m in results and (f"winner_{objective}" in results[m] or m == method):
            return m
    for m in order:
        if m in results:
            return m
    raise FigureDataError(f"no {' or '.join(order)} results in the data")


def winner_map(data, style: str = "slides", objective: str | None = None,
               method: str | None = None, select: Mapping[str, Any] | None = None):
    """Where each policy wins ``objective``: threads (log2) x I/O latency (log), per facet.

    Parameters
    ----------
    data : Dataset or DataTree (a sweep store)
        Needs ``threads`` and ``io_latency`` axes, and ``winner_<objective>`` (a sweep store has
        them) or the objective's metrics, from which the map is computed.
    style : ``"slides"`` or ``"paper"``
    objective : the objective's name in the sweep spec (``fault_p99``, ``jank``, ...); default:
        the first in the data
    method : ``"mc"`` (decided with intervals: undecided cells hatched) or ``"analytic"``;
        default: Monte Carlo when present
    select : positions of axes beyond the two facet axes (by label)
    """
    results = methods(data)
    if not results:
        raise FigureDataError("no solver results in the data")
    if objective is None:
        names = objectives_of(data)
        objective = names[0] if names else "fault_p99"
    m = _pick_method(results, objective, method)
    ds = results[m]
    for dim in ("threads", "io_latency"):
        if dim not in ds.dims or ds.sizes[dim] < 2:
            raise FigureDataError(f"winner map needs a '{dim}' axis with 2 or more values; the "
                                  f"{m} data has dims {dict(ds.sizes)}")
    policies = [str(p) for p in ds["policy"].values]
    name = f"winner_{objective}"
    obj_text = None
    if name in ds:
        winner = ds[name]
        leader = ds.get(f"leader_{objective}")
        obj_text = winner.attrs.get("objective")
    else:
        from ..sweeps.winners import winner_maps
        obj = _default_objective(objective)
        missing = [x for x in obj.metrics if x not in ds]
        if missing:
            raise FigureDataError(f"winner map {objective}: the {m} data lacks {missing}")
        names = [v for v in ds.data_vars if str(v) in obj.metrics
                 or str(v).removesuffix("_ci") in obj.metrics]
        maps = winner_maps(ds[names].load(), [obj])
        winner, leader = maps[name], maps[f"leader_{objective}"]
        obj_text = obj.describe()
    winner = winner.load()
    leader = leader.load() if leader is not None else None
    base = base_scenario(data)
    extra = [d for d in grid_dims(winner.to_dataset()) if d not in ("threads", "io_latency")]
    facet_dims = extra[:2]
    sliced, chosen = select_cell(
        xr.Dataset({"w": winner, **({"l": leader} if leader is not None else {})}),
        keep=("threads", "io_latency", *facet_dims), select=select, base=base)
    winner = sliced["w"]
    leader = sliced["l"] if "l" in sliced else None
    row_dim = facet_dims[0] if facet_dims else None
    col_dim = facet_dims[1] if len(facet_dims) > 1 else None
    nrows = winner.sizes[row_dim] if row_dim else 1
    ncols = winner.sizes[col_dim] if col_dim else 1

    metric = obj_text.split()[1] if obj_text and len(obj_text.split()) > 1 else objective
    what = metric_label(metric)
    bounded = " subject to " in (obj_text or "")
    with context(style) as st:
        height = None if st.is_slides else 2.2 + 1.0 * nrows
        fig = new_figure(st, height=height)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        colours = [policy_colour(p) for p in policies]
        # codes: 0..n-1 policies; undecided drawn with the leader's colour and a hatch
        cmap = ListedColormap(["#FFFFFF", _NONE_COLOUR, *colours])
        norm = BoundaryNorm(np.arange(-0.5, len(policies) + 2.5), cmap.N)
        threads = winner["threads"].values
        io = winner["io_latency"].values
        x_edges = log_edges(threads, base=2)
        y_edges = log_edges(io)
        seen: set[int] = set()
        any_undecided = any_none = any_missing = False
        for r in range(nrows):
            for c in range(ncols):
                ax = axes[r, c]
                sel = {}
                if row_dim:
                    sel[row_dim] = r
                if col_dim:
                    sel[col_dim] = c
                w = winner.isel(sel).transpose("io_latency", "threads").values.astype(int)
                lead = (leader.isel(sel).transpose("io_latency", "threads").values.astype(int)
                        if leader is not None else np.full_like(w, _NONE_FEASIBLE))
                shown = np.where(w >= 0, w, np.where((w == _UNDECIDED) & (lead >= 0), lead,
                                                      np.where(w == _NO_DATA, -2, -1)))
                # index into cmap: -2 -> white (no data), -1 -> dark (none feasible / unknown)
                index = shown + 2
                ax.pcolormesh(x_edges, y_edges, index, cmap=cmap, norm=norm)
                for (i, j) in zip(*np.nonzero(w == _UNDECIDED)):
                    under = policies[shown[i, j]] if shown[i, j] >= 0 else None
                    hatch_colour = "white" if under and _dark(policy_colour(under)) else DARK_GREY
                    ax.add_patch(Rectangle((x_edges[j], y_edges[i]),
                                           x_edges[j + 1] - x_edges[j],
                                           y_edges[i + 1] - y_edges[i], fill=False,
                                           hatch=UNDECIDED_HATCH, edgecolor=hatch_colour,
                                           linewidth=0))
                lw = 0.4 if not st.is_slides else 1.2
                ax.vlines(x_edges[1:-1], y_edges[0], y_edges[-1], colors="white", linewidth=lw,
                          zorder=3)
                ax.hlines(y_edges[1:-1], x_edges[0], x_edges[-1], colors="white", linewidth=lw,
                          zorder=3)
                any_undecided |= bool((w == _UNDECIDED).any())
                any_none |= bool((w == _NONE_FEASIBLE).any())
                any_missing |= bool((w == _NO_DATA).any())
                seen |= {int(k) for k in np.unique(shown) if k >= 0}
                ax.set_xlim(x_edges[0], x_edges[-1])
                ax.set_ylim(y_edges[0], y_edges[-1])
                threads_axis(ax, threads, max_ticks=7 if st.is_slides else max(2, 6 // ncols))
                seconds_axis(ax, "y", "mean I/O latency")
                ax.grid(False)
                ax.set_xlabel("")
                ax.set_ylabel("")
                if "threads" in base and "io_latency" in base:
                    ax.plot([base["threads"]], [base["io_latency"]], marker="*", color="white",
                            markeredgecolor="black", markersize=st.marker_size * 1.6,
                            linestyle="none", zorder=5, clip_on=True)
                if r == 0 and col_dim:
                    ax.set_title(level_label(winner.to_dataset(name="w"), col_dim, c,
                                             short=not st.is_slides or ncols > 3,
                                             with_dim=st.is_slides),
                                 fontsize=st.font_size * (0.8 if not st.is_slides else 0.75))
                if c == ncols - 1 and row_dim:
                    txt = level_label(winner.to_dataset(name="w"), row_dim, r, short=True,
                                      with_dim=True)
                    ax.annotate(txt, xy=(1.04, 0.5), xycoords="axes fraction", rotation=-90,
                                va="center", ha="left",
                                fontsize=st.font_size * (0.8 if not st.is_slides else 0.75))
        axes[-1, ncols // 2].set_xlabel("threads (count, log\u2082)")
        axes[nrows // 2, 0].set_ylabel("mean I/O latency (s)")
        handles = [Patch(facecolor=policy_colour(p), edgecolor="none", label=policy_label(p))
                   for p in policies]
        handles.append(Patch(facecolor="white", edgecolor=DARK_GREY, hatch=UNDECIDED_HATCH,
                             label="undecided (intervals overlap)" if m == "mc"
                             else "undecided (tie)"))
        if any_none or bounded:
            handles.append(Patch(facecolor=_NONE_COLOUR, label="no policy meets the bound"
                                 if bounded else "no finite value (unstable/no faults)"))
        if any_missing:
            handles.append(Patch(facecolor="white", edgecolor=GREY, label="not computed"))
        if "threads" in base and "io_latency" in base:
            from matplotlib.lines import Line2D
            handles.append(Line2D([], [], marker="*", color="white", markeredgecolor="black",
                                  markersize=st.marker_size * 1.4, linestyle="none",
                                  label="the base preset"))
        place_legend(fig, handles, st, title="best policy", ncol=2)
        solver = "Monte Carlo (95 % intervals)" if m == "mc" else "analytic model"
        facets = " and ".join(f"{dim_text(d)}" for d in facet_dims) or ""
        title = (f"Which policy gives the lowest {what}"
                 + (" within the writer bound" if bounded else "")
                 + (f", by {facets}" if facets else ""))
        fixed = describe_selection(chosen)
        caption = (f"Winner map for the objective '{objective}' ({obj_text}), from the {solver}, "
                   "over thread count (log2) and mean storage read latency (log). Each cell is "
                   "coloured by the policy with the best point estimate; hatched cells are "
                   + ("undecided: the winner's 95 % interval overlaps another policy's."
                      if m == "mc" else "exact ties.")
                   + (f" Panels: {facets}." if facets else "")
                   + (f" Fixed: {fixed}." if fixed else "")
                   + (" The star marks the base preset." if "threads" in base else ""))
        return finish(fig, st, title, caption)


def dim_text(dim: str) -> str:
    from .data import dim_label
    return dim_label(dim)


def _dark(colour: str) -> bool:
    """Whether a colour is dark enough that a white hatch shows better than a dark one."""
    from matplotlib.colors import to_rgb
    r, g, b = to_rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.4
