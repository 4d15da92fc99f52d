"""Figures of a measurement: measured against predicted fault latency (:func:`plot_comparison`)
and the device's latency curve with its fit (:func:`plot_device`). Dataset in, Figure out; nothing
is shown or saved here."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["plot_comparison", "plot_device"]

_METRICS = (("fault_latency_p50", "fault latency p50"),
            ("fault_latency_p90", "fault latency p90"),
            ("fault_latency_p99", "fault latency p99"),
            ("lock_effect_p99", "p99 in-process − control"),
            ("waiter_latency_p50", "folio-lock waiter latency p50"))
#: below this (in µs) a lock effect's axis is linear: effects change sign
_EFFECT_LINEAR_US = 10.0
_STYLE = {"measured": dict(marker="o", linestyle="-"),
          "montecarlo": dict(marker="s", linestyle="--", fillstyle="none"),
          "analytic": dict(marker="^", linestyle=":", fillstyle="none")}


def _writer_label(cmp: xr.Dataset, i: int) -> str:
    where = str(cmp["writer_where"].values[i])
    if where == "none":
        return "no writer"
    rate = float(cmp["writer_rate"].values[i])
    rate_s = "flat" if rate == 0 else f"{rate:g}/s"
    where = {"thread": "same proc", "process": "other proc"}.get(where, where)
    return f"{where}: {cmp['writer_op'].values[i]} {int(cmp['writer_pages'].values[i])}p {rate_s}"


def _measured_bars(cmp: xr.Dataset, metric: str, sel: list[int], y: np.ndarray):
    """The measured error bars: the 95 % CI (``<metric>_ci_lo``/``_ci_hi``) where the
    measurement has one, else the min-max over repeats (``_lo``/``_hi``), else none."""
    lo = np.full(len(sel), np.nan)
    hi = np.full(len(sel), np.nan)
    for low, high in (("_ci_lo", "_ci_hi"), ("_lo", "_hi")):
        if metric + low in cmp and metric + high in cmp:
            more = ~np.isfinite(lo)
            lo = np.where(more, cmp[metric + low].values[sel] * 1e6, lo)
            hi = np.where(more, cmp[metric + high].values[sel] * 1e6, hi)
    return np.vstack([np.maximum(y - lo, 0), np.maximum(hi - y, 0)])


def plot_comparison(cmp: xr.Dataset, metrics=_METRICS) -> Figure:
    """Measured (pooled quantile with its bootstrap 95 % CI; for older measurements the median
    over repeats with min-max bars) against predicted (Monte Carlo with 95 % CI; analytic if
    present) fault latency quantiles, the lock effect (in-process minus control p99, on the
    in-process cells) and waiter latency, against the writer load (x), one colour per thread
    count, one column per walk kind (G = 1: own pages; G = T: lock step).

    Parameters
    ----------
    cmp : xarray.Dataset
        From :func:`faultlock.measure.compare.compare`.
    metrics : sequence of (name, title)
        Rows of the figure (a metric the comparison lacks leaves its row empty).
    """
    n = cmp.sizes["config"]
    kinds = np.where(cmp["group"].values == 1, "G=1: own pages",
                     np.where(cmp["group"].values == cmp["threads"].values, "G=T: lock step",
                              "1<G<T"))
    columns = [k for k in ("G=1: own pages", "G=T: lock step", "1<G<T") if k in set(kinds)]
    writer_labels = [_writer_label(cmp, i) for i in range(n)]
    order = sorted(set(writer_labels),     # pairs: each load in this process, then the control
                   key=lambda s: (s != "no writer", s.split(": ", 1)[-1], s.startswith("other")))
    threads = sorted(set(int(t) for t in cmp["threads"].values))
    by_threads = len(order) == 1          # one writer load: the thread count is the x axis
    if by_threads:
        order = [f"T={t} ({order[0]})" for t in threads]
    x_of = {w: k for k, w in enumerate(order)}
    colours = {t: f"C{k}" for k, t in enumerate(threads)}
    sources = list(cmp["source"].values)
    fig = Figure(figsize=(4.2 * len(columns) + 1.5, 2.6 * len(metrics) + 1.2), layout="constrained")
    axes = fig.subplots(len(metrics), len(columns), squeeze=False, sharex=True)
    width = 0.8 / max((1 if by_threads else len(threads)) * len(sources), 1)

    def x_label(i: int) -> str:
        return order[threads.index(int(cmp["threads"].values[i]))] if by_threads \
            else writer_labels[i]
    for c, column in enumerate(columns):
        for r, (metric, title) in enumerate(metrics):
            ax = axes[r, c]
            if metric not in cmp:
                ax.set_visible(False)
                continue
            for t in threads:
                for s_idx, source in enumerate(sources):
                    sel = [i for i in range(n) if kinds[i] == column and
                           int(cmp["threads"].values[i]) == t]
                    if not sel:
                        continue
                    sel.sort(key=lambda i: x_of[x_label(i)])
                    y = cmp[metric].values[sel, s_idx] * 1e6
                    if not np.isfinite(y).any():
                        continue
                    slot = s_idx if by_threads else threads.index(t) * len(sources) + s_idx
                    x = np.array([x_of[x_label(i)] for i in sel]) - 0.4 + width * (slot + 0.5)
                    effect = metric.startswith("lock_effect")
                    if source == "measured":
                        yerr = _measured_bars(cmp, metric, sel, y)
                    else:
                        ci = cmp[metric + "_ci"].values[sel, s_idx] * 1e6 \
                            if metric + "_ci" in cmp else np.zeros(len(sel))
                        yerr = np.vstack([ci if effect else np.minimum(ci, y * 0.999), ci])
                    label = f"T={t} {source}" if (r == 0 and c == 0) else None
                    ax.errorbar(x, y, yerr=np.nan_to_num(yerr), color=colours[t], capsize=2,
                                markersize=4, linewidth=0.8, label=label, **_STYLE[source])
            if not ax.lines:
                ax.text(0.5, 0.5, "none in these cells", ha="center", va="center",
                        transform=ax.transAxes, color="0.5")
            elif metric.startswith("lock_effect"):
                ax.set_yscale("symlog", linthresh=_EFFECT_LINEAR_US)
                ax.axhline(0.0, color="0.5", linewidth=0.6)
            else:
                ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if r == 0:
                ax.set_title(column)
            if c == 0:
                ax.set_ylabel(f"{title} (µs)")
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels(order, rotation=35, ha="right", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    kernel = cmp.attrs.get("kernel_release", "?")
    fig.suptitle(f"mainline measured on {kernel} ({cmp.attrs.get('device', '?')}, "
                 f"{cmp.attrs.get('cpus_online', '?')} CPUs) against the model", fontsize=10)
    return fig


def plot_device(ds: xr.Dataset, calibration=None) -> Figure:
    """O_DIRECT 4 KiB read latency against queue depth (median, mean, p99 with min-max bars), and
    the fitted ``io_latency + io_depth_slope * (d - 1)`` line if a calibration is given."""
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    d = ds["io_depth"].values
    for name, style in (("device_latency_p50", "o-"), ("device_latency_mean", "s--"),
                        ("device_latency_p99", "^:")):
        y = ds[name].values * 1e6
        lo, hi = ds[name + "_lo"].values * 1e6, ds[name + "_hi"].values * 1e6
        ax.errorbar(d, y, yerr=np.vstack([y - lo, hi - y]), fmt=style, capsize=2,
                    label=name.replace("device_latency_", ""))
    if calibration is not None:
        curve = calibration.details.get("device_curve", {})
        if "slope" in curve:
            dd = np.linspace(d.min(), d.max(), 50)
            ax.plot(dd, (curve["intercept"] + curve["slope"] * (dd - 1)) * 1e6, "k-", lw=0.8,
                    label=f"fit: {curve['intercept'] * 1e6:.0f} µs + "
                          f"{curve['slope'] * 1e6:.1f} µs x (d-1)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("reads in flight (O_DIRECT threads)")
    ax.set_ylabel("read latency (µs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{ds.attrs.get('device', '?')} read_ahead_kb={ds.attrs.get('read_ahead_kb', '?')}"
                 f" ({ds.attrs.get('kernel_release', '?')})", fontsize=9)
    return fig
