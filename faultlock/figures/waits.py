"""Figure 3: mmap_lock read and write wait histograms in the decade bins kernel developers publish.

Bars: the model's share of acquisitions in each bin, per policy (Monte Carlo, with the 95 %
interval; the analytic model where it gives the histogram). Stars: the published Douyin warm-start
numbers (``reference/kernel.md`` §1.4), mainline ("before") beside the model's mainline bar and
``vma_retry`` ("after") beside the model's ``vma_retry`` bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .common import finish, one_cell, place_legend
from .data import FigureDataError, base_scenario, methods, preset_name, select_cell
from .style import DARK_GREY, context, format_seconds, new_figure, policy_colour, policy_label

__all__ = ["DECADE_LABELS", "DOUYIN_PRESET", "douyin_conditions", "published_douyin",
           "wait_histograms"]

DECADE_LABELS = ("<1 µs", "1–10 µs", "10–100 µs", "0.1–1 ms", "1–10 ms", "10–100 ms", "≥100 ms")
#: the policies the published columns correspond to (kernel.md §1.4: before / after the patch)
PUBLISHED_POLICY = {"mainline": "before", "vma_retry": "after"}


def published_douyin() -> dict[str, Any]:
    """The published Douyin numbers (kernel.md §1.4), from :mod:`faultlock.measure.douyin`."""
    from ..measure.douyin import PUBLISHED
    return PUBLISHED


def _shares(counts) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    return c / c.sum()


def douyin_conditions(base: Mapping[str, Any], preset: str | None) -> list[str]:
    """How a scenario differs from the one Douyin's numbers were measured under (the
    ``android_warm_start`` preset, kernel.md §1.4): ``[]`` when it is that preset."""
    from ..model.scenario import Scenario
    from .data import _BRIEF, differences, dim_label, format_value
    reference = Scenario.preset(DOUYIN_PRESET).to_dict()
    if not base:
        return ["conditions not recorded in the data"]
    out = []
    for field, here, there in differences({k: base.get(k) for k in reference}, reference):
        if here is None:
            continue
        out.append(f"{_BRIEF.get(field, dim_label(field))} {format_value(field, here)} vs "
                   f"{format_value(field, there)}")
    return out


#: the preset whose conditions Douyin's published numbers describe
DOUYIN_PRESET = "android_warm_start"


def wait_histograms(data, style: str = "slides", select: Mapping[str, Any] | None = None,
                    published: bool | str = "auto"):
    """The decade histograms of mmap_lock read and write waits, per policy, beside Douyin's.

    Parameters
    ----------
    data : Dataset or DataTree with ``mmap_read_wait_hist`` / ``mmap_write_wait_hist``
        (dims ``policy``, ``wait_bin``); a grid is reduced to the cell closest to its base
        scenario (the calibrated preset ``android_warm_start`` in the paper) or to ``select``.
    published : draw the published Douyin shares (kernel.md §1.4): ``"auto"`` only when the
        cell shown is the ``android_warm_start`` preset (the conditions they were measured
        under), else the figure says what differs and leaves them out; ``True`` always (with
        the differences stated), ``False`` never
    """
    results = methods(data)
    base = base_scenario(data)
    order = [m for m in ("mc", "analytic") if m in results
             and "mmap_read_wait_hist" in results[m]]
    if not order:
        raise FigureDataError("wait histograms need mmap_read_wait_hist and mmap_write_wait_hist "
                              "(decade bins) from the Monte Carlo or the analytic model")
    method = order[0]
    full = results[method]
    ds, chosen = select_cell(full, select=select, base=base)
    policies = [str(p) for p in ds["policy"].values]
    preset = preset_name(data)
    solver = "Monte Carlo" if method == "mc" else "analytic model"
    is_base, name, subtitle = one_cell(full, chosen, base, preset, solver)
    cell = {**base, **{f: v for d, label in chosen.items()
                       for f, v in _fields_at(full, d, label).items()}}
    unlike = douyin_conditions(cell, preset)
    if published not in ("auto", True, False):
        raise ValueError(f"published={published!r} is not allowed: 'auto', True or False")
    draw_published = published is True or (published == "auto" and not unlike)
    pub = published_douyin() if draw_published else None
    if unlike and published is not False:
        subtitle += ("\nDouyin's published waits (kernel.md §1.4) are for the "
                     f"{DOUYIN_PRESET} preset: " + ("shown, but " if pub is not None
                                                   else "not shown, as ")
                     + "this cell differs" + ("" if is_base else " (above)")
                     + ("" if not is_base else ": " + ", ".join(unlike[:4])
                        + (f" and {len(unlike) - 4} more" if len(unlike) > 4 else "")))
    panels = [("read", "mmap_read_wait_hist", "mmap_read_wait_mean", "read_wait_hist"),
              ("write", "mmap_write_wait_hist", "mmap_write_wait_mean", "write_wait_hist")]
    panels = [p for p in panels if p[1] in ds]
    with context(style) as st:
        fig = new_figure(st, height=None if st.is_slides else 4.2)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        nbins = ds.sizes["wait_bin"]
        width = 0.8 / len(policies)
        centres = np.arange(nbins)
        floor = 1e-4
        for ax, (mode, hist_name, mean_name, pub_name) in zip(axes, panels):
            hist = ds[hist_name]
            ci = ds.get(f"{hist_name}_ci")
            for k, policy in enumerate(policies):
                x = centres - 0.4 + width * (k + 0.5)
                y = np.nan_to_num(np.asarray(hist.sel(policy=policy).values, dtype=float))
                shown = np.maximum(y, floor * 0.5)
                bars = ax.bar(x, np.where(y > 0, shown - floor * 0.5, 0), width=width * 0.92,
                              bottom=floor * 0.5, color=policy_colour(policy),
                              label=policy_label(policy), zorder=2)
                del bars
                if ci is not None:
                    h = np.nan_to_num(np.asarray(ci.sel(policy=policy).values, dtype=float))
                    ok = y > 0
                    ax.errorbar(x[ok], y[ok], yerr=[np.minimum(h[ok], y[ok] * 0.9), h[ok]],
                                fmt="none", ecolor=DARK_GREY, elinewidth=st.line_width * 0.4,
                                capsize=0, zorder=3)
                if pub is not None and policy in PUBLISHED_POLICY:
                    counts = pub[pub_name][policy]
                    p = _shares(counts)[:nbins]
                    ok = p > 0
                    ax.plot(x[ok], p[ok], linestyle="none", marker="*",
                            markersize=st.marker_size * 1.7, markerfacecolor=policy_colour(policy),
                            markeredgecolor="black", markeredgewidth=0.8 if st.is_slides else 0.5,
                            zorder=4)
            ax.set_yscale("log")
            ax.set_ylim(floor, 8 if st.is_slides else 12)
            ax.yaxis.set_major_formatter(_percent_formatter())
            ax.set_ylabel(f"share of {mode}\nacquisitions (%)")
            lines = []
            if mean_name in ds:
                parts = [f"{policy_label(p)} "
                         f"{format_seconds(float(ds[mean_name].sel(policy=p)), 2)}"
                         for p in ("mainline", "vma_retry") if p in policies]
                if parts:
                    lines.append("mean wait, model: " + ", ".join(parts))
            if pub is not None and not unlike:
                key = "read_wait_mean" if mode == "read" else "write_wait_mean"
                lines.append("mean wait, Douyin: mainline "
                             f"{format_seconds(pub[key]['mainline'], 3)}, vma_retry "
                             f"{format_seconds(pub[key]['vma_retry'], 3)}")
            if lines:
                ax.text(0.99, 0.97, "\n".join(lines), transform=ax.transAxes, ha="right",
                        va="top", fontsize=st.font_size * 0.7, color=DARK_GREY,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85,
                              "pad": 2})
            ax.set_title(f"mmap_lock {mode} waits", fontsize=st.font_size * 0.9)
            ax.grid(axis="x", visible=False)
        axes[-1].set_xticks(centres, DECADE_LABELS[:nbins])
        axes[-1].set_xlabel("wait, decade bins (µs / ms)")
        handles = [Patch(facecolor=policy_colour(p), label=policy_label(p)) for p in policies]
        handles.append(Line2D([], [], color=DARK_GREY, linestyle="-", linewidth=1,
                              label="95 % interval"))
        if pub is not None:
            handles.append(Line2D([], [], linestyle="none", marker="*", markerfacecolor="white",
                                  markeredgecolor="black", markersize=st.marker_size * 1.5,
                                  label="Douyin, published\n(mainline: before,\n"
                                        "vma_retry: after)"))
        place_legend(fig, handles, st, title="policy", ncol=3)
        title = (f"mmap_lock waits in decade bins at {name}: the model per policy"
                 + (" beside Douyin's published numbers" if pub is not None else ""))
        caption = (f"{title}. Share of mmap_lock read (top) and write (bottom) acquisitions by "
                   f"wait, in the decade bins of the kernel thread, from the {solver} "
                   f"({subtitle.split(chr(10))[0]})."
                   + (" Stars: Douyin warm start on an 8 GB phone (kernel.md §1.4), mainline "
                      "before and vma_retry after the patch, beside the model's bars of those "
                      "policies." if pub is not None else "")
                   + (" " + subtitle.split("\n", 1)[1] + "." if "\n" in subtitle else "")
                   + " Bars below 0.01 % are not drawn.")
        return finish(fig, st, title, caption, subtitle=subtitle)


def _fields_at(ds, dim: str, label) -> dict[str, Any]:
    """The Scenario fields the grid position ``label`` of ``dim`` sets."""
    from .data import level_fields
    values = ds[dim].values
    if values.dtype.kind in "iuf":
        return {dim: label}
    return level_fields(ds, dim, [str(v) for v in values].index(str(label)))


def _percent_formatter():
    from matplotlib.ticker import FuncFormatter

    def fmt(v, _pos):
        if v <= 0:
            return "0"
        pct = 100 * v
        return f"{pct:.2g}" if pct < 1 else f"{pct:.0f}"
    return FuncFormatter(fmt)
