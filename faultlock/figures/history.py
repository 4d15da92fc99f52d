"""Figure 7: one workload under every policy, in the order the kernel took them.

From ``legacy_hold`` (before 2.6.36) through ``legacy_retry`` and ``mainline`` to the proposals,
side by side: the fault-latency tail, jank, ``mmap_lock`` traffic and waits, the writers' cost and
the storage reads per fault. Monte Carlo: a marker with its 95 % interval; analytic: a black bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.lines import Line2D

from ..model.policies import POLICIES
from .amplification import _with_reads_per_fault
from .common import finish, one_cell, place_legend, policy_handles
from .data import (
    FigureDataError,
    base_scenario,
    methods,
    metric_label,
    metric_unit,
    preset_name,
    select_cell,
)
from .style import (
    DARK_GREY,
    context,
    new_figure,
    plain_numbers,
    policy_colour,
    policy_label,
    seconds_axis,
    share_axis,
)

__all__ = ["HISTORY_METRICS", "history"]

HISTORY_METRICS = ("fault_latency_p99", "jank_share", "mmap_read_rate", "mmap_read_wait_mean",
                   "writer_latency_p99", "reads_per_fault")


def history(data, style: str = "slides", metrics: Sequence[str] = HISTORY_METRICS,
            select: Mapping[str, Any] | None = None, preset: str | None = None):
    """Every policy on one cell (the base scenario of a sweep, or ``select``), metric by metric.

    Parameters
    ----------
    data : Dataset or DataTree; a grid is reduced to the cell closest to its base scenario
    metrics : one panel each (``reads_per_fault`` is storage reads over faults)
    preset : the preset's name, for the title (default: read from the data when recorded)
    """
    results = methods(data)
    base = base_scenario(data)
    cells, chosen = {}, {}
    for m, ds in results.items():
        cells[m], c = select_cell(_with_reads_per_fault(ds), select=select or chosen or None,
                                  base=base)
        chosen = chosen or c
    mc, an = cells.get("mc"), cells.get("analytic")
    present = [m for m in metrics if any(m in ds for ds in cells.values())]
    if not present:
        raise FigureDataError(f"history: none of {list(metrics)} in the data")
    names = {str(p) for ds in cells.values() for p in ds["policy"].values}
    policies = [p for p in POLICIES if p in names] + sorted(names - set(POLICIES))
    preset = preset or preset_name(data)
    full = next(iter(results.values()))
    solvers = " and ".join(x for x in ("Monte Carlo" if "mc" in cells else "",
                                       "analytic model" if "analytic" in cells else "") if x)
    _is_base, name, subtitle = one_cell(full, chosen, base, preset, solvers)
    with context(style) as st:
        ncols = 3 if st.is_slides else 2
        nrows = int(np.ceil(len(present) / ncols))
        fig = new_figure(st, height=None if st.is_slides else 1.3 + 1.45 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
        x = np.arange(len(policies))
        analytic_inf = False
        for k, metric in enumerate(present):
            ax = axes.flat[k]
            unit = metric_unit(metric, mc if mc is not None and metric in mc else an)
            values = []
            for i, policy in enumerate(policies):
                colour = policy_colour(policy)
                if mc is not None and metric in mc and policy in mc["policy"].values:
                    y = _stable_value(mc, metric, policy)
                    h = float(mc[f"{metric}_ci"].sel(policy=policy)) \
                        if f"{metric}_ci" in mc else 0.0
                    h = h if np.isfinite(h) else 0.0
                    if np.isfinite(y):
                        low = min(h, 0.95 * y) if unit == "s" and y > 0 else h
                        ax.errorbar([i], [y], yerr=[[low], [h]], linestyle="none",
                                    marker=_marker(policy), color=colour,
                                    markersize=st.marker_size * 1.2, capsize=0,
                                    elinewidth=st.line_width * 0.6, zorder=3)
                        values.append(y)
                    elif np.isinf(y):
                        ax.annotate("unstable", (i, 0.97), xycoords=("data", "axes fraction"),
                                    ha="center", va="top", rotation=90, color=colour,
                                    fontsize=st.font_size * 0.6)
                if an is not None and metric in an and policy in an["policy"].values:
                    ya = _stable_value(an, metric, policy)
                    if np.isfinite(ya):
                        ax.plot([i - 0.32, i + 0.32], [ya, ya], color="black",
                                linewidth=st.line_width * 0.8, zorder=4)
                        values.append(ya)
                    elif np.isinf(ya):
                        analytic_inf = True
                        ax.annotate("\u221e", (i, 1.0), xycoords=("data", "axes fraction"),
                                    ha="center", va="top", color="black",
                                    fontsize=st.font_size * 0.8)
            values = [v for v in values if np.isfinite(v)]
            positive = [v for v in values if v > 0]
            if unit == "s":
                seconds_axis(ax, "y", _word(metric), numticks=6)
            elif unit == "%":
                log = len(positive) > 1 and max(positive) / min(positive) > 30
                share_axis(ax, "y", _word(metric), log=log)
                if log:
                    ax.set_ylim(bottom=min(positive) / 2)
            else:
                if len(positive) == len(values) and len(positive) > 1 and \
                        max(positive) / min(positive) > 30:
                    ax.set_yscale("log")
                plain_numbers(ax, "y")
                short = {"acquisitions/s": "1/s", "reads/s": "1/s", "faults/s": "1/s"}
                ax.set_ylabel(f"{_word(metric)} ({short.get(unit, unit)})")
            ax.set_title(_short(metric), fontsize=st.font_size * (0.8 if st.is_slides else 0.9))
            ax.grid(axis="x", visible=False)
            ax.set_xlim(-0.6, len(policies) - 0.4)
        for ax in axes[-1]:
            ax.set_xticks(x, [policy_label(p) for p in policies], rotation=40, ha="right",
                          rotation_mode="anchor",
                          fontsize=st.font_size * (0.7 if st.is_slides else 0.8))
        axes[-1, ncols // 2].set_xlabel("policy (oldest left)")
        for k in range(len(present), nrows * ncols):
            axes.flat[k].set_visible(False)
        extra = []
        if mc is not None:
            extra.append(Line2D([], [], color=DARK_GREY, marker="o", linestyle="-",
                                linewidth=st.line_width * 0.6, label="Monte Carlo, 95 % interval"))
        if an is not None:
            extra.append(Line2D([], [], color="black", linestyle="-", linewidth=st.line_width,
                                label="analytic model"))
        place_legend(fig, policy_handles(policies, st, line=False) + extra, st, ncol=3)
        title = f"History: {name} under every policy, from legacy_hold to the proposals"
        caption = (f"{title}. Policies in kernel order (legacy_hold before 2.6.36, legacy_retry "
                   "2.6.36 to 6.3, mainline today, then the proposals). "
                   + subtitle.replace("\n", "; ") + ". "
                   + "Markers: Monte Carlo with 95 % intervals; black bars: the analytic model"
                   + ("; \u221e: the analytic model has no steady state there (unstable)."
                      if analytic_inf else "."))
        return finish(fig, st, title, caption, subtitle=subtitle)


def _stable_value(ds, metric: str, policy: str) -> float:
    """The policy's value, or inf where the solver found no steady state (``stable`` false):
    a number from past capacity is not drawn."""
    value = float(ds[metric].sel(policy=policy))
    if "stable" in ds and not bool(ds["stable"].sel(policy=policy)) and not np.isnan(value):
        return float("inf")
    return value


def _word(metric: str) -> str:
    """A one-word axis label (the panel's title names the metric)."""
    if metric.endswith("_share"):
        return "share"
    if metric.endswith("_rate"):
        return "rate"
    if "latency" in metric:
        return "latency"
    if "wait" in metric:
        return "wait"
    return "ratio"


def _short(metric: str) -> str:
    return {"fault_latency_p99": "p99 fault latency", "mmap_read_wait_mean": "mean read wait",
            "writer_latency_p99": "p99 writer latency", "jank_share": "janky faults",
            "mmap_read_rate": "mmap_lock reads per second",
            "reads_per_fault": "storage reads per fault"}.get(
        metric, metric_label(metric))


def _marker(policy: str) -> str:
    from .style import POLICY_MARKERS
    return POLICY_MARKERS.get(policy, "o")
