"""Figure 2: fault latency (p50 and p99) versus the number of threads, for every policy.

Monte Carlo estimates are markers with their 95 % batch-means interval as a band; the analytic
model is a line of the same colour; the jank threshold (one frame) is a dashed horizontal line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .common import finish, fixed_text, place_legend, policy_handles
from .data import (
    FigureDataError,
    base_scenario,
    describe_selection,
    methods,
    metric_label,
    policies_of,
    preset_name,
    select_cell,
)
from .lines import fit_y_limits, method_handles, plot_metric
from .style import DARK_GREY, context, format_seconds, new_figure, seconds_axis, threads_axis

__all__ = ["latency_vs_threads"]

_JANK_DEFAULT = 1 / 60


def latency_vs_threads(data, style: str = "slides",
                       metrics: Sequence[str] = ("fault_latency_p50", "fault_latency_p99"),
                       select: Mapping[str, Any] | None = None, ceiling: float = 10.0):
    """Fault latency quantiles against threads (log2), one panel per quantile.

    Parameters
    ----------
    data : Dataset or DataTree with a ``threads`` axis (Monte Carlo and/or analytic)
    style : ``"slides"`` or ``"paper"``
    metrics : the latency metrics, one panel each
    select : positions of the other axes (by label; default: closest to the base scenario)
    ceiling : analytic values above this many seconds are marked at the top edge, not drawn
        (near saturation the analytic model can give stable but absurd latencies: 1e5 s)
    """
    results = methods(data)
    base = base_scenario(data)
    full = next(iter(results.values()), None)
    sliced, chosen = {}, {}
    for m, ds in results.items():
        if "threads" not in ds.dims or ds.sizes["threads"] < 2:
            continue
        sliced[m], c = select_cell(ds, keep=("threads",), select=select, base=base)
        chosen = chosen or c
    if not sliced:
        raise FigureDataError("latency versus threads needs a 'threads' axis with 2 or more "
                              "values in the Monte Carlo or analytic data")
    if not any(mt in ds for ds in sliced.values() for mt in metrics):
        raise FigureDataError(f"none of {list(metrics)} in the data")
    policies = policies_of(sliced)
    mc, an = sliced.get("mc"), sliced.get("analytic")
    jank = float(base.get("jank_threshold", _JANK_DEFAULT))
    threads = sorted({int(t) for ds in sliced.values() for t in ds["threads"].values})
    with context(style) as st:
        fig = new_figure(st, height=None if st.is_slides else 2.9)
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        unstable = off_scale = False
        missing_analytic = []
        values = []
        for ax, metric in zip(axes, metrics):
            ax.set_yscale("log")
            drawn = plot_metric(ax, st, "threads", metric, policies, mc, an, ceiling=ceiling)
            unstable |= drawn["unstable"] > 0
            off_scale |= drawn["off_scale"] > 0
            values += drawn["values"]
            if an is not None and metric not in an:
                missing_analytic.append(metric)
            ax.axhline(jank, color=DARK_GREY, linestyle="--", linewidth=st.line_width * 0.7,
                       zorder=1)
            ax.annotate(f"jank threshold {format_seconds(jank, 3)}", xy=(0.02, jank),
                        xycoords=("axes fraction", "data"), xytext=(0, 3),
                        textcoords="offset points", va="bottom", ha="left", color=DARK_GREY,
                        fontsize=st.font_size * 0.75)
            threads_axis(ax, threads, max_ticks=7 if st.is_slides else 5)
            ax.set_title(metric_label(metric))
            if drawn["mc"] + drawn["analytic"] == 0:
                raise FigureDataError(f"{metric}: no finite value for any policy")
        # limits from what is drawn (stable, finite, under the ceiling) and the jank line
        fit_y_limits(axes[0], values, log=True, extra=(jank,),
                     headroom=0.12 if unstable or off_scale else 0.0)
        for ax in axes:
            seconds_axis(ax, "y", "fault latency")
        for ax in axes[1:]:
            ax.set_ylabel("")
        extra = method_handles(st, analytic=an is not None and len(missing_analytic)
                               < len(metrics), mc=mc is not None, unstable=unstable,
                               off_scale=ceiling if off_scale else None)
        handles = policy_handles(policies, st, line=False) + extra
        place_legend(fig, handles, st, title="policy", ncol=3)
        fixed = describe_selection(chosen)
        title = "Fault latency versus threads: median and 99th percentile, per policy"
        sources = []
        if mc is not None:
            sources.append("Monte Carlo estimates (markers) with 95 % batch-means intervals "
                           "(bands)")
        if an is not None:
            sources.append("the analytic model (lines)"
                           + (f", which does not give {', '.join(missing_analytic)}"
                              if missing_analytic else ""))
        caption = (f"{title}. " + _upper_first("; ".join(sources)) + ". "
                   + f"The dashed line is the jank threshold ({format_seconds(jank)}, one frame)."
                   + (f" Fixed: {fixed}." if fixed else "")
                   + (" Filled triangles at the top: unstable, no steady state (a lock or the "
                      "device past capacity); no line is drawn there." if unstable else "")
                   + (f" Open triangles: the analytic value is above {format_seconds(ceiling)} "
                      "(off the axis)." if off_scale else ""))
        solvers = " and ".join(x for x in ("Monte Carlo" if mc is not None else "",
                                           "analytic model" if an is not None else "") if x)
        subtitle = fixed_text(full, chosen, preset_name(data), solvers)
        return finish(fig, st, title, caption, subtitle=subtitle)




def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
