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

__all__ = ["dodge", "method_handles", "plot_metric"]


def dodge(x: np.ndarray, k: int, n: int, log: bool, spread: float = 0.035) -> np.ndarray:
    """Shift policy ``k`` of ``n`` a little along x so that markers do not hide each other."""
    offset = (k - (n - 1) / 2) * spread
    if log:
        return x * np.exp(offset * np.log(2) * 1.0)
    span = float(np.nanmax(x) - np.nanmin(x)) if len(x) > 1 else 1.0
    return x + offset * 0.5 * span


def plot_metric(ax, style: Style, x_dim: str, metric: str, policies, mc: xr.Dataset | None,
                analytic: xr.Dataset | None, *, x_values_mc=None, x_values_an=None,
                log_x: bool = True, band: bool = True, spread: float = 0.035) -> dict:
    """Plot ``metric`` against ``x_dim`` for every policy; returns what was drawn (counts).

    ``x_values_*`` replace the coordinate values (categorical axes: positions 0..n-1).
    """
    drawn = {"mc": 0, "analytic": 0, "unstable": 0}
    n = len(policies)
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for k, policy in enumerate(policies):
        colour = policy_colour(policy)
        kw = policy_style(policy, style)
        if analytic is not None and metric in analytic and policy in analytic["policy"].values:
            a = analytic[metric].sel(policy=policy)
            xa = np.asarray(x_values_an if x_values_an is not None else a[x_dim].values,
                            dtype=float)
            ya = finite(a.values)
            if ax.get_yscale() == "log":
                ya[ya <= 0] = np.nan
            if np.isfinite(ya).any():
                ax.plot(xa, ya, color=colour, linewidth=style.line_width, linestyle="-",
                        marker=None, zorder=2, alpha=0.9)
                drawn["analytic"] += 1
        if mc is not None and metric in mc and policy in mc["policy"].values:
            m = mc[metric].sel(policy=policy)
            xm = np.asarray(x_values_mc if x_values_mc is not None else m[x_dim].values,
                            dtype=float)
            raw = np.asarray(m.values, dtype=float)
            ym = finite(raw)
            if ax.get_yscale() == "log":
                ym[ym <= 0] = np.nan
            ci_name = f"{metric}_ci"
            h = finite(mc[ci_name].sel(policy=policy).values) if ci_name in mc \
                else np.zeros_like(ym)
            h = np.where(np.isfinite(h), h, 0.0)
            xd = dodge(xm, k, n, log_x, spread) if n > 1 else xm
            if band and np.isfinite(ym).sum() > 1:
                lo = np.maximum(ym - h, ym * 0.1 if ax.get_yscale() == "log" else -np.inf)
                ax.fill_between(xm, lo, ym + h, color=colour, alpha=0.15, linewidth=0, zorder=1)
            if np.isfinite(ym).any():
                joined = analytic is None or metric not in analytic
                kw = kw | {"linestyle": ":" if joined else "none",
                           "linewidth": style.line_width * 0.6}
                if not band:  # intervals as error bars instead of bands
                    lower = np.minimum(h, ym * 0.9) if ax.get_yscale() == "log" else h
                    ax.errorbar(xd, ym, yerr=[lower, h], capsize=0, zorder=3,
                                elinewidth=style.line_width * 0.5, markeredgewidth=0.6,
                                markeredgecolor="white" if style.is_slides else colour, **kw)
                else:
                    ax.plot(xm, ym, zorder=3, markeredgewidth=0.6,
                            markeredgecolor="white" if style.is_slides else colour, **kw)
                drawn["mc"] += 1
            unstable = np.isinf(raw)
            if unstable.any():
                ax.plot(xd[unstable], np.full(unstable.sum(), 0.985), transform=top,
                        linestyle="none", marker="^", color=colour,
                        markersize=style.marker_size, clip_on=False, zorder=4)
                drawn["unstable"] += int(unstable.sum())
    return drawn


def method_handles(style: Style, analytic: bool, mc: bool, unstable: bool = False,
                   band: bool = True) -> list:
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
                              markersize=style.marker_size, label="unstable (past capacity)"))
    return handles
