"""Figure 1: where each policy wins, as a categorical map over threads x I/O latency.

One panel per memory-pressure level (rows) and writer load (columns), or whatever two other axes
the sweep has. A cell's colour is the policy with the best point estimate of the objective; a
cell hatched ``xx`` is a *tie* (the best policies shown within the tie tolerance of each other:
an answer), one hatched ``///`` is *undecided* (the Monte Carlo could not separate them within
its budget, or, without ranking and selection, their intervals overlap); the winner maps of
:mod:`faultlock.sweeps.winners`. With ranking and selection the caption states the confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.collections import PatchCollection
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullLocator

from ..model.scenario import parse_time
from .common import _FACET_PREFIX, _short_field, finish, level_label, log_edges, place_legend
from .data import (
    FigureDataError,
    base_scenario,
    describe_selection,
    dim_label,
    format_value,
    grid_dims,
    level_fields,
    matches_base,
    methods,
    metric_label,
    preset_name,
    select_cell,
)
from .style import (
    DARK_GREY,
    GREY,
    context,
    new_figure,
    policy_colour,
    policy_label,
    seconds_axis,
    threads_axis,
)

__all__ = ["FACET_LABEL_GID", "objectives_of", "winner_map"]

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
    leader = sliced.get("l")
    row_dim = facet_dims[0] if facet_dims else None
    col_dim = facet_dims[1] if len(facet_dims) > 1 else None
    nrows = winner.sizes[row_dim] if row_dim else 1
    ncols = winner.sizes[col_dim] if col_dim else 1

    metric = obj_text.split()[1] if obj_text and len(obj_text.split()) > 1 else objective
    what = metric_label(metric)
    bounded = " subject to " in (obj_text or "")
    meanings = _code_meanings(winner, policies)
    tolerance = winner.attrs.get("tie_tolerance")
    confidence = winner.attrs.get("confidence")
    frame = winner.to_dataset(name="w")
    preset = preset_name(data)
    # the panels whose fixed coordinates are the base scenario's: the star goes there only
    star_facets = {}
    for dim in facet_dims:
        star_facets[dim] = [i for i in range(winner.sizes[dim])
                            if matches_base(frame, dim, i, base)]
    star_xy = None
    if "threads" in base and "io_latency" in base:
        bx, by = float(base["threads"]), float(base["io_latency"])
        if (winner["threads"].values.min() <= bx <= winner["threads"].values.max()
                and winner["io_latency"].values.min() <= by <= winner["io_latency"].values.max()):
            star_xy = (bx, by)
    with context(style) as st:
        height = None if st.is_slides else 2.4 + 1.0 * nrows
        fig = new_figure(st, height=height)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        colours = [policy_colour(p) for p in policies]
        # colour index: 0 no data (white), 1 none feasible (dark), 2.. the policies
        cmap = ListedColormap(["#FFFFFF", _NONE_COLOUR, *colours])
        norm = BoundaryNorm(np.arange(-0.5, len(policies) + 2.5), cmap.N)
        threads = winner["threads"].values
        io = winner["io_latency"].values
        x_edges = log_edges(threads, base=2)
        y_edges = log_edges(io)
        seen_codes: set[int] = set()
        starred = False
        small = st.font_size * (0.75 if st.is_slides else 0.8)
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
                seen_codes |= {int(k) for k in np.unique(w)}
                # a cell without a winner shows its leader's colour (under a hatch) if it has one
                shown = np.where(w >= 0, w, np.where(lead >= 0, lead, -1))
                shown = np.where(w == _NO_DATA, -2, shown)
                ax.pcolormesh(x_edges, y_edges, shown + 2, cmap=cmap, norm=norm)
                for code, meaning in meanings.items():
                    hatch = _HATCHES.get(meaning, _HATCHES["undecided"]) if code < 0 else None
                    if hatch is None or meaning in ("no_data", "none_feasible"):
                        continue
                    # one collection per hatch and hatch colour (white over dark leaders)
                    groups: dict[str, list[Rectangle]] = {}
                    for (i, j) in zip(*np.nonzero(w == code)):
                        under = policies[shown[i, j]] if shown[i, j] >= 0 else None
                        edge = "white" if under and _dark(policy_colour(under)) else DARK_GREY
                        groups.setdefault(edge, []).append(Rectangle(
                            (x_edges[j], y_edges[i]), x_edges[j + 1] - x_edges[j],
                            y_edges[i + 1] - y_edges[i]))
                    for edge, cells in groups.items():
                        hatched = PatchCollection(cells, facecolor="none", edgecolor=edge,
                                                  hatch=hatch, linewidth=0, zorder=2)
                        hatched.set_gid(f"hatch-{meaning}")
                        ax.add_collection(hatched, autolim=False)
                lw = 0.4 if not st.is_slides else 1.0
                ax.vlines(x_edges[1:-1], y_edges[0], y_edges[-1], colors="white", linewidth=lw,
                          zorder=3)
                ax.hlines(y_edges[1:-1], x_edges[0], x_edges[-1], colors="white", linewidth=lw,
                          zorder=3)
                ax.set_xlim(x_edges[0], x_edges[-1])
                ax.set_ylim(y_edges[0], y_edges[-1])
                threads_axis(ax, threads, max_ticks=7)
                seconds_axis(ax, "y", "mean I/O latency")
                ax.yaxis.set_minor_locator(NullLocator())   # cells, not a scale, between ticks
                ax.grid(False)
                ax.set_xlabel("")
                ax.set_ylabel("")
                here = all(sel[d] in star_facets[d] for d in sel)
                if star_xy is not None and here:
                    ax.plot([star_xy[0]], [star_xy[1]], marker="*", color="white",
                            markeredgecolor="black", markersize=st.marker_size * 1.6,
                            linestyle="none", zorder=5, clip_on=True)
                    starred = True
                if r == 0 and col_dim:
                    ax.set_title(_facet_text(frame, col_dim, c, st, ncols),
                                 fontsize=small)
                if c == 0 and row_dim:
                    ax.set_ylabel(_facet_text(frame, row_dim, r, st, ncols, row=True),
                                  rotation=0, ha="right", va="center", fontsize=small,
                                  labelpad=4, gid=FACET_LABEL_GID)
        # one x label centred under the grid, on a bottom panel (a figure-level supxlabel would
        # sit on a legend placed below the panels; constrained layout ignores an x label's width)
        bottom = axes[-1, ncols // 2]
        bottom.set_xlabel("threads (count, log\u2082)", fontsize=st.font_size)
        bottom.xaxis.label.set_x(0.5 if ncols % 2 else 0.0)
        fig.supylabel("mean I/O latency (s)", fontsize=st.font_size)
        handles = [Patch(facecolor=policy_colour(p), edgecolor="none", label=policy_label(p))
                   for p in policies]
        handles += _state_handles(meanings, seen_codes, m, tolerance, bounded, st, confidence)
        if starred:
            handles.append(Line2D([], [], marker="*", color="white", markeredgecolor="black",
                                  markersize=st.marker_size * 1.4, linestyle="none",
                                  label=f"the {preset} preset" if preset
                                  else "the base scenario"))
        place_legend(fig, handles, st, title="best policy", ncol=2)
        solver = ("analytic model" if m != "mc" else
                  f"Monte Carlo (ranking and selection, {100 * float(confidence):g} % confidence)"
                  if confidence else "Monte Carlo (95 % intervals)")
        facets = " and ".join(dim_label(d) for d in facet_dims)
        title = (f"Which policy gives the lowest {what}"
                 + (" within the writer bound" if bounded else "")
                 + (f", by {facets}" if facets else ""))
        fixed = describe_selection(chosen)
        star_text = _star_text(frame, facet_dims, star_facets, star_xy, base, preset)
        subtitle = ("; ".join(x for x in (
            f"{'Monte Carlo' if m == 'mc' else 'analytic model'}",
            (f"rows: {dim_label(row_dim)}" if row_dim else "")
            + (f", columns: {dim_label(col_dim)}" if col_dim else ""),
            f"fixed: {fixed}" if fixed else "",
            f"other fields: the {preset} preset" if preset else "") if x)
            + (f"\n{star_text}" if star_text else ""))
        caption = (f"Winner map for the objective '{objective}' ({obj_text}), from the {solver}, "
                   "over thread count (log2) and mean storage read latency (log). Each cell is "
                   "coloured by the policy with the best point estimate; "
                   + _hatch_caption(meanings, m, tolerance, confidence)
                   + (f" Panels: {facets}." if facets else "")
                   + (f" Fixed: {fixed}." if fixed else "")
                   + (f" {star_text}." if star_text else ""))
        return finish(fig, st, title, caption, subtitle=subtitle)


#: hatch of each state that is not a win (the cell keeps its leader's colour beneath)
_HATCHES = {"undecided": "///", "tie": "xx", "invalid": ".."}
#: the gid of facet labels set as axis labels (they carry no unit; tests skip them)
FACET_LABEL_GID = "faultlock-facet-label"


def _code_meanings(winner: xr.DataArray, policies: list[str]) -> dict[int, str]:
    """Code -> meaning, from the map's CF flags (``flag_values``/``flag_meanings``) when it has
    them, else the codes of :mod:`faultlock.sweeps.winners`. A later winner map may add a state
    (e.g. ``tie``: decided that no policy wins); it is drawn and named as the data says."""
    from ..sweeps.winners import CODES
    values = winner.attrs.get("flag_values")
    names = winner.attrs.get("flag_meanings")
    if values is not None and isinstance(names, str):
        pairs = dict(zip((int(v) for v in np.atleast_1d(values)), names.split()))
    else:
        pairs = {**CODES, **dict(enumerate(policies))}
    return {k: v for k, v in pairs.items() if k < 0}


def _state_handles(meanings, seen, method, tolerance, bounded, st, confidence=None) -> list:
    """Legend entries of the states that are not wins, for the states present (undecided and
    tie always, so that the key reads the same in every map)."""
    tol = f"{100 * float(tolerance):g} %" if tolerance else "the tie tolerance"
    out = []
    for code, meaning in sorted(meanings.items(), reverse=True):
        if meaning == "undecided" and confidence:
            out.append(Patch(facecolor="white", edgecolor=DARK_GREY, hatch=_HATCHES["undecided"],
                             label="undecided: not separated within\nthe budget (leader's colour)"))
        elif meaning == "undecided" and (method == "mc" or code in seen):
            label = ("undecided: 95 % intervals overlap\n(hatched over the leader's colour)"
                     if method == "mc" else f"tie: another policy within {tol}\n"
                     "(hatched over the leader's colour)")
            if method == "mc" and "tie" not in meanings.values():
                label = (f"undecided: 95 % intervals overlap\nor within {tol}"
                         " (leader's colour)")
            out.append(Patch(facecolor="white", edgecolor=DARK_GREY, hatch=_HATCHES["undecided"],
                             label=label))
        elif meaning == "tie":
            out.append(Patch(facecolor="white", edgecolor=DARK_GREY, hatch=_HATCHES["tie"],
                             label=f"tie: policies within {tol}\n(leader's colour)"))
        elif meaning == "none_feasible" and (code in seen or bounded):
            out.append(Patch(facecolor=_NONE_COLOUR, label="no policy meets the bound"
                             if bounded else "no finite value\n(unstable, or no faults)"))
        elif meaning == "invalid" and code in seen:
            out.append(Patch(facecolor="white", edgecolor=DARK_GREY, hatch="..",
                             label="invalid: a policy's result failed\nthe invariant checks "
                                   "(leader's colour)"))
        elif meaning == "no_data" and code in seen:
            out.append(Patch(facecolor="white", edgecolor=GREY, label="not computed"))
        elif meaning not in ("none_feasible", "no_data") and code in seen:
            out.append(Patch(facecolor="white", edgecolor=DARK_GREY, hatch="..",
                             label=meaning.replace("_", " ")))
    return out


def _hatch_caption(meanings, method, tolerance, confidence=None) -> str:
    tol = f"{100 * float(tolerance):g} %" if tolerance else "the tie tolerance"
    parts = []
    if confidence and method == "mc":
        level = f"{100 * float(confidence):g} %"
        return (f"every cell was decided by ranking and selection (Kim & Nelson's KN, 2001, with "
                f"common random numbers): a colour alone is a winner, better than every other "
                f"policy by more than {tol} with probability {level} or more; cells hatched xx "
                f"are ties, the best policies shown within {tol} of each other (also at "
                f"{level}); cells hatched /// are undecided: the cell's batch budget ran out "
                "first (the colour beneath is the leader's).")
    if "undecided" in meanings.values():
        parts.append("cells hatched /// are " + (
            f"undecided: the leader's 95 % interval overlaps another policy's, or another "
            f"policy is within {tol} of it" if method == "mc"
            else f"ties: another policy is within {tol} of the leader"))
    if "tie" in meanings.values():
        parts.append(f"cells hatched xx are ties: the policies are within {tol} of each other")
    if "invalid" in meanings.values():
        parts.append("cells dotted .. claim no winner: a policy's result there failed the "
                     "invariant checks (valid false)")
    return ("; ".join(parts) + " (the colour beneath is the leader's).") if parts else ""


def _facet_text(frame: xr.Dataset, dim: str, index: int, st, ncols: int,
                row: bool = False) -> str:
    """A facet label in at most two short lines: ``writers: light`` / ``100/s, fork 0 %``."""
    name = level_label(frame, dim, index, short=True, with_dim=False)
    prefix = _FACET_PREFIX.get(dim, dim_label(dim))
    if frame[dim].dtype.kind in "iuf":
        return name
    head = f"{prefix}:\n{name}" if row else f"{prefix}: {name}"
    if st.is_slides and ncols <= 4 and not row:
        return head
    return name if not row else head


def _star_text(frame, facet_dims, star_facets, star_xy, base, preset) -> str:
    """Where the base scenario is, or why no panel holds it."""
    name = f"the {preset} preset" if preset else "the base scenario"
    if "threads" not in base or "io_latency" not in base:
        return ""
    where = (f"{format_value('threads', base['threads'])} threads, "
             f"I/O {format_value('io_latency', base['io_latency'])}")
    if star_xy is None:
        return f"{name} ({where}) lies outside the threads x I/O latency range"
    missing = [d for d in facet_dims if not star_facets[d]]
    if not missing:
        held = ", ".join(f"{_FACET_PREFIX.get(d, dim_label(d))} "
                         f"{frame[d].values[star_facets[d][0]]}" for d in facet_dims)
        return f"star: {name} ({where}" + (f"; panel {held})" if held else ")")
    why = []
    for d in missing:
        fields = [f for f in level_fields(frame, d, 0) if f in base]
        why.append(f"{_FACET_PREFIX.get(d, dim_label(d))}: "
                   + (", ".join(_short_field(f, base[f]) for f in fields) or "not recorded"))
    return f"no star: {name} ({where}; " + "; ".join(why) + ") is in no panel"


def _dark(colour: str) -> bool:
    """Whether a colour is dark enough that a white hatch shows better than a dark one."""
    from matplotlib.colors import to_rgb
    r, g, b = to_rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.4
