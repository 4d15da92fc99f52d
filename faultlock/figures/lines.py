"""Drawing one metric against one axis for every policy: Monte Carlo markers with their 95 %
interval band, analytic lines, unstable points marked at the top edge."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from .data import finite
from .style import DARK_GREY, Style, policy_colour, policy_style

__all__ = ["dodge", "fit_y_limits", "method_handles", "plot_metric", "usable"]


def dodge(x: np.ndarray, k: int, n: int, log: bool, spread: float = 0.035) -> np.ndarray:
    """Shift policy ``k`` of ``n`` a little along x so that markers do not hide each other."""
    offset = (k - (n - 1) / 2) * spread
    if log:
        return x * np.exp(offset * np.log(2) * 1.0)
    span = float(np.nanmax(x) - np.nanmin(x)) if len(x) > 1 else 1.0
    return x + offset * 0.5 * span


def usable(ds: xr.Dataset, metric: str, policy: str, ceiling: float | None = None,
           log: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, unstable, off_scale)`` of one policy's metric along the remaining axis.

    ``values`` holds only what can be drawn: finite, from a stable steady state (the solver's
    ``stable`` flag where it gives one), positive on a log axis and at most ``ceiling``; NaN
    elsewhere. ``unstable`` marks points with no steady state (``stable`` false, or inf):
    a lock or the device past capacity, where a line would run off to a meaningless number.
    ``off_scale`` marks stable, finite values above ``ceiling``.
    """
    raw = np.asarray(ds[metric].sel(policy=policy).values, dtype=float)
    unstable = np.isinf(raw)
    if "stable" in ds and "policy" in ds["stable"].dims:
        flag = ds["stable"].sel(policy=policy)
        flag = flag.broadcast_like(ds[metric].sel(policy=policy)).values.astype(bool)
        unstable |= ~flag & ~np.isnan(raw)
    values = finite(raw)
    values[unstable] = np.nan
    if log:
        values[values <= 0] = np.nan
    off_scale = np.zeros_like(unstable)
    if ceiling is not None:
        off_scale = np.isfinite(values) & (values > ceiling)
        values[off_scale] = np.nan
    return values, unstable, off_scale


def plot_metric(ax, style: Style, x_dim: str, metric: str, policies, mc: xr.Dataset | None,
                analytic: xr.Dataset | None, *, x_values_mc=None, x_values_an=None,
                log_x: bool = True, band: bool = True, spread: float = 0.035,
                ceiling: float | None = None) -> dict:
    """Plot ``metric`` against ``x_dim`` for every policy; returns what was drawn.

    Only stable, finite values are drawn (see :func:`usable`); unstable points are marked by a
    filled triangle at the top edge, values above ``ceiling`` by an open one, so that neither
    stretches the y axis. The returned dict counts the lines (``mc``, ``analytic``), the
    ``unstable`` and ``off_scale`` marks, and lists the drawn ``values`` (for the y limits).
    ``x_values_*`` replace the coordinate values (categorical axes: positions 0..n-1).
    """
    drawn = {"mc": 0, "analytic": 0, "unstable": 0, "off_scale": 0, "values": []}
    n = len(policies)
    log_y = ax.get_yscale() == "log"
    top = blended_transform_factory(ax.transData, ax.transAxes)

    def mark(x, where, filled, colour):
        if where.any():
            ax.plot(x[where], np.full(int(where.sum()), 0.975), transform=top,
                    linestyle="none", marker="^", color=colour,
                    markerfacecolor=colour if filled else "white",
                    markersize=style.marker_size * 0.9, clip_on=False, zorder=4)

    for k, policy in enumerate(policies):
        colour = policy_colour(policy)
        kw = policy_style(policy, style)
        if analytic is not None and metric in analytic and policy in analytic["policy"].values:
            a = analytic[metric].sel(policy=policy)
            xa = np.asarray(x_values_an if x_values_an is not None else a[x_dim].values,
                            dtype=float)
            ya, unstable, off = usable(analytic, metric, policy, ceiling, log_y)
            if np.isfinite(ya).any():
                ax.plot(xa, ya, color=colour, linewidth=style.line_width, linestyle="-",
                        marker=None, zorder=2, alpha=0.9)
                ok = np.isfinite(ya)
                alone = ok & ~np.r_[False, ok[:-1]] & ~np.r_[ok[1:], False]
                if alone.any():   # a stable point between unstable ones: no line to draw
                    ax.plot(xa[alone], ya[alone], color=colour, linestyle="none", marker="o",
                            markersize=style.marker_size * 0.5, zorder=2)
                drawn["analytic"] += 1
                drawn["values"].extend(ya[np.isfinite(ya)])
            xd = dodge(xa, k, n, log_x, spread) if n > 1 else xa
            mark(xd, unstable, True, colour)
            mark(xd, off, False, colour)
            drawn["unstable"] += int(unstable.sum())
            drawn["off_scale"] += int(off.sum())
        if mc is not None and metric in mc and policy in mc["policy"].values:
            m = mc[metric].sel(policy=policy)
            xm = np.asarray(x_values_mc if x_values_mc is not None else m[x_dim].values,
                            dtype=float)
            ym, unstable, off = usable(mc, metric, policy, None, log_y)
            ci_name = f"{metric}_ci"
            h = finite(mc[ci_name].sel(policy=policy).values) if ci_name in mc \
                else np.zeros_like(ym)
            h = np.where(np.isfinite(h), h, 0.0)
            xd = dodge(xm, k, n, log_x, spread) if n > 1 else xm
            if band and np.isfinite(ym).sum() > 1:
                lo = np.maximum(ym - h, ym * 0.1 if log_y else -np.inf)
                ax.fill_between(xm, lo, ym + h, color=colour, alpha=0.15, linewidth=0, zorder=1)
            if np.isfinite(ym).any():
                joined = analytic is None or metric not in analytic
                kw = kw | {"linestyle": ":" if joined else "none",
                           "linewidth": style.line_width * 0.6}
                if not band:  # intervals as error bars instead of bands
                    lower = np.minimum(h, ym * 0.9) if log_y else h
                    ax.errorbar(xd, ym, yerr=[lower, h], capsize=0, zorder=3,
                                elinewidth=style.line_width * 0.5, markeredgewidth=0.6,
                                markeredgecolor="white" if style.is_slides else colour, **kw)
                else:
                    ax.plot(xm, ym, zorder=3, markeredgewidth=0.6,
                            markeredgecolor="white" if style.is_slides else colour, **kw)
                drawn["mc"] += 1
                ok = np.isfinite(ym)
                drawn["values"].extend(ym[ok])
                drawn["values"].extend((ym + h)[ok])
            mark(xd, unstable, True, colour)
            drawn["unstable"] += int(unstable.sum())
    return drawn


def fit_y_limits(ax, values, log: bool, extra=(), headroom: float = 0.0) -> None:
    """Y limits from the drawn (finite, stable) values and ``extra`` reference lines, with
    ``headroom`` (a share of the span) kept free at the top for the unstable marks."""
    v = np.asarray([*values, *extra], dtype=float)
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    if log:
        lo_l, hi_l = np.log10(lo), np.log10(hi)
        span = max(hi_l - lo_l, 0.3)
        ax.set_ylim(10 ** (lo_l - 0.08 * span), 10 ** (hi_l + (0.08 + headroom) * span))
    else:
        span = max(hi - lo, abs(hi) * 0.1, 1e-12)
        ax.set_ylim(lo - 0.08 * span, hi + (0.08 + headroom) * span)


def method_handles(style: Style, analytic: bool, mc: bool, unstable: bool = False,
                   band: bool = True, off_scale: float | None = None) -> list:
    """Legend entries explaining the encodings (not the policies)."""
    handles = []
    if mc and band:
        handles.append(Line2D([], [], color=DARK_GREY, marker="o", linestyle="none",
                              markersize=style.marker_size, label="Monte Carlo"))
        handles.append(Patch(facecolor=DARK_GREY, alpha=0.25, label="95 % interval"))
    elif mc:
        handles.append(Line2D([], [], color=DARK_GREY, marker="o", linestyle="-",
                              linewidth=style.line_width * 0.5, markersize=style.marker_size,
                              label="Monte Carlo, 95 % interval"))
    if analytic:
        handles.append(Line2D([], [], color=DARK_GREY, linestyle="-",
                              linewidth=style.line_width, label="analytic model"))
    if unstable:
        handles.append(Line2D([], [], color=DARK_GREY, marker="^", linestyle="none",
                              markersize=style.marker_size * 0.9,
                              label="unstable: no steady state\n(marked at the top)"))
    if off_scale is not None:
        from .style import format_seconds
        handles.append(Line2D([], [], color=DARK_GREY, marker="^", markerfacecolor="white",
                              linestyle="none", markersize=style.marker_size * 0.9,
                              label=f"analytic above {format_seconds(off_scale)}\n"
                                    "(off the axis)"))
    return handles
