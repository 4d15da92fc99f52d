"""Tails with confidence: log-binned latency histograms, quantiles from them, a cluster bootstrap
over repeats, and the lock effect (in-process writer minus the same writer in another process).

Why histograms
    p99 of one ~1,000-fault run rests on ~10 faults, and the median of five such p99s says little
    about the kernel's tail. Every run's whole distribution is kept instead, as integer counts in
    log-spaced bins (``LATENCY_BINS_PER_DECADE`` = 100 per decade from 1 µs to 1 s: a bin is 2.3 %
    wide, so a quantile read from the histogram is within ~1.2 % of the exact sample quantile, and
    never more than one bin width off). Runs are pooled by adding their counts.

Why a cluster bootstrap
    Faults of one run are not independent: a slow host second, another tenant's burst or a writer
    phase-locked to the readers moves many of them together. The unit of replication is the run,
    so confidence intervals resample *runs* with replacement (the cluster, or block, bootstrap;
    Davison & Hinkley 1997, §3.8), pool the chosen runs' histograms and take the quantile of the
    pool. The interval is the percentile interval of ``n_boot`` such resamples. With R runs its
    width reflects run-to-run spread, which is what separates noise from a lock effect.

The lock effect
    For a cell with a writer in the measured process (``writer_where == 'thread'``) the control is
    the same writer in another process (``'process'``: same CPU load, different ``mmap_lock``).
    ``lock_effect_pQ`` = pooled quantile(thread) - pooled quantile(process); its interval comes
    from independent bootstraps of the two cells (their runs are independent), and it is
    *significant* when the 95 % interval excludes 0. The ratio thread / process is given the same
    way.

Functions work on numpy arrays (``latency_histogram``, ``hist_quantile``, ``bootstrap_quantiles``,
``effect_interval``) and on a measurement dataset (``add_tails``: xarray in, xarray out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["LATENCY_BINS_PER_DECADE", "LATENCY_DECADES", "LATENCY_BIN_EDGES", "latency_bin_index",
           "latency_histogram", "full_bins", "hist_quantile", "bootstrap_quantiles",
           "effect_interval", "control_of", "add_tails", "QUANTILES", "DEFAULT_RESAMPLES",
           "MIN_BOOTSTRAP_RUNS", "markdown_tables"]

LATENCY_BINS_PER_DECADE = 100
LATENCY_DECADES = 6                      # 1 µs .. 1 s
QUANTILES = (0.5, 0.9, 0.99)
DEFAULT_RESAMPLES = 2000
#: fewer runs than this give a point estimate but no interval: with two runs the bootstrap has
#: three distinct resamples, and its "interval" is the two runs' own values
MIN_BOOTSTRAP_RUNS = 3


def _edges_ns() -> np.ndarray:
    """Lower edges in ns, 10^(3+d) x 10^(j/100), with every decade's first edge exact (the
    harness, ``harness.c: init_lat_edges``, builds the same table), and the upper edge 1 s."""
    j = np.arange(LATENCY_BINS_PER_DECADE) / LATENCY_BINS_PER_DECADE
    edges = [10.0 ** (3 + d) * 10.0 ** j for d in range(LATENCY_DECADES)]
    out = np.concatenate(edges + [np.array([10.0 ** (3 + LATENCY_DECADES)])])
    out[::LATENCY_BINS_PER_DECADE] = 10.0 ** (3 + np.arange(LATENCY_DECADES + 1))
    return out


_EDGES_NS = _edges_ns()
#: lower edges (s) of the ``LATENCY_BINS_PER_DECADE x LATENCY_DECADES`` latency bins
LATENCY_BIN_EDGES = _EDGES_NS[:-1] * 1e-9
_EDGES_S = _EDGES_NS * 1e-9
NBINS = LATENCY_BIN_EDGES.size


def latency_bin_index(latency_ns) -> np.ndarray:
    """Bin of each latency (integer or float ns): the last lower edge <= it. Below 1 µs counts in
    bin 0 and 1 s or more in the last bin (the histogram's range covers every fault seen here)."""
    x = np.asarray(latency_ns, dtype=np.float64)
    return np.clip(np.searchsorted(_EDGES_NS, x, side="right") - 1, 0, NBINS - 1)


def latency_histogram(latency_ns) -> np.ndarray:
    """Integer counts (int64, ``NBINS``) of latencies given in ns."""
    return np.bincount(latency_bin_index(latency_ns).ravel(), minlength=NBINS).astype(np.int64)


def hist_quantile(counts, q) -> np.ndarray:
    """Quantile(s) ``q`` of histogram(s) ``counts`` (last axis the bins), in seconds.

    The rank q x N is located in the cumulative counts and interpolated inside its bin
    log-linearly (a log-spaced bin's mass is spread evenly in log latency), so the result is
    within the bin holding the exact sample quantile. Empty histograms give NaN. Returns shape
    ``counts.shape[:-1] + np.shape(q)``.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.shape[-1] != NBINS:
        raise ValueError(f"counts has {c.shape[-1]} bins; the latency histogram has {NBINS}")
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    if np.any((qs < 0) | (qs > 1)) or np.any(~np.isfinite(qs)):
        raise ValueError(f"q={q!r} is not allowed: probabilities in [0, 1]")
    cum = np.cumsum(c, axis=-1)
    total = cum[..., -1:]
    out = []
    for p in qs:
        target = p * total                                             # (..., 1)
        # the bin holding the rank: first whose cumulative count reaches it (q = 0: the first
        # non-empty bin)
        k = np.minimum((cum < np.maximum(target, 1e-9)).sum(axis=-1, keepdims=True), NBINS - 1)
        below = np.where(k > 0, np.take_along_axis(cum, np.maximum(k - 1, 0), -1), 0.0)
        inside = np.take_along_axis(c, k, -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.clip(np.where(inside > 0, (target - below) / inside, 0.0), 0.0, 1.0)
        lo, hi = _EDGES_S[k], _EDGES_S[k + 1]
        value = lo * (hi / lo) ** frac
        out.append(np.where(total > 0, value, np.nan)[..., 0])
    result = np.stack(out, axis=-1)
    return result[..., 0] if np.ndim(q) == 0 else result


def full_bins(counts: xr.DataArray) -> np.ndarray:
    """The values of a histogram DataArray with a ``latency_bin`` axis (last) that may hold only
    a range of the bins, on the whole ``LATENCY_BIN_EDGES`` axis (zeros elsewhere)."""
    edges = counts["latency_bin"].values
    start = int(np.searchsorted(LATENCY_BIN_EDGES, edges[0] * (1 - 1e-9)))
    if edges.size + start > NBINS or not np.allclose(
            edges, LATENCY_BIN_EDGES[start:start + edges.size], rtol=1e-9, atol=0):
        raise ValueError("latency_bin is not a range of tails.LATENCY_BIN_EDGES")
    values = counts.transpose(..., "latency_bin").values
    out = np.zeros(values.shape[:-1] + (NBINS,), dtype=values.dtype)
    out[..., start:start + edges.size] = values
    return out


def _valid_runs(run_hists) -> np.ndarray:
    h = np.asarray(run_hists, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != NBINS:
        raise ValueError(f"run histograms of shape {h.shape} are not allowed: (runs, {NBINS})")
    keep = np.all(np.isfinite(h), axis=1) & (h.sum(axis=1) > 0)      # runs not made are NaN
    return h[keep]


def bootstrap_quantiles(run_hists, q: Sequence[float] | float = QUANTILES, *,
                        n_boot: int = DEFAULT_RESAMPLES, level: float = 0.95,
                        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
                        ) -> dict[str, np.ndarray]:
    """Pooled quantiles of R runs' histograms and their cluster-bootstrap percentile interval.

    Parameters
    ----------
    run_hists : array (runs, NBINS)
        One histogram per run; runs with no count (or NaN: not made) are left out.
    q : probabilities
    n_boot : int
        Resamples (each draws R runs with replacement and pools them).
    level : float
        Confidence level of the percentile interval.
    rng : Generator, SeedSequence or int

    Returns
    -------
    dict
        ``point`` (Q,) pooled quantiles of all runs, ``lo``/``hi`` (Q,) the interval (NaN with
        fewer than ``MIN_BOOTSTRAP_RUNS`` runs), ``samples`` (n_boot, Q) the bootstrap
        replicates, ``runs`` the number of runs used.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} is not allowed: an integer >= 1")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not allowed: a probability in (0, 1)")
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    h = _valid_runs(run_hists)
    runs = h.shape[0]
    nan = np.full(qs.size, np.nan)
    if runs == 0:
        return {"point": nan, "lo": nan, "hi": nan, "samples": np.full((n_boot, qs.size), np.nan),
                "runs": 0}
    point = hist_quantile(h.sum(axis=0), qs)
    if runs < MIN_BOOTSTRAP_RUNS:
        return {"point": point, "lo": nan, "hi": nan,
                "samples": np.full((n_boot, qs.size), np.nan), "runs": runs}
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    picks = gen.integers(0, runs, size=(n_boot, runs))
    weights = np.zeros((n_boot, runs))
    np.add.at(weights, (np.repeat(np.arange(n_boot), runs), picks.ravel()), 1.0)
    samples = hist_quantile(weights @ h, qs)                        # (n_boot, Q)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha], axis=0)
    return {"point": point, "lo": lo, "hi": hi, "samples": samples, "runs": runs}


def effect_interval(a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, level: float = 0.95
                    ) -> dict[str, np.ndarray]:
    """Difference ``a - b`` and ratio ``a / b`` of two cells' pooled quantiles, with percentile
    intervals from their independent bootstrap replicates (outputs of
    :func:`bootstrap_quantiles` made with independent generators and the same ``n_boot``).
    ``significant`` is 1.0 where the difference's interval excludes 0, 0.0 where it does not,
    NaN where there is no interval."""
    alpha = (1 - level) / 2
    diff_s = a["samples"] - b["samples"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_s = a["samples"] / b["samples"]
        ratio = a["point"] / b["point"]
    with np.errstate(invalid="ignore"):
        d_lo, d_hi = np.quantile(diff_s, [alpha, 1 - alpha], axis=0)
        r_lo, r_hi = np.quantile(ratio_s, [alpha, 1 - alpha], axis=0)
    significant = np.where(np.isfinite(d_lo) & np.isfinite(d_hi),
                           ((d_lo > 0) | (d_hi < 0)).astype(float), np.nan)
    return {"diff": a["point"] - b["point"], "diff_lo": d_lo, "diff_hi": d_hi,
            "ratio": ratio, "ratio_lo": r_lo, "ratio_hi": r_hi, "significant": significant}


_MATCH = ("threads", "group", "writer_op", "writer_rate", "writer_pages", "writer_calls",
          "writer_count")


def control_of(ds: xr.Dataset) -> np.ndarray:
    """For every config, the index of its control (the same T, G and writer in another process)
    if it is an in-process writer cell with a measured control, else -1."""
    n = ds.sizes["config"]
    where = ds["writer_where"].values
    keys = list(zip(*[ds[k].values.tolist() for k in _MATCH if k in ds.variables], strict=True))
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if where[i] != "thread":
            continue
        for j in range(n):
            if where[j] == "process" and keys[j] == keys[i]:
                out[i] = j
                break
    return out


def _pct(q: float) -> str:
    return f"p{q * 100:g}".replace(".", "")


def add_tails(ds: xr.Dataset, *, q: Sequence[float] = QUANTILES, n_boot: int = DEFAULT_RESAMPLES,
              seed: int = 0, level: float = 0.95) -> xr.Dataset:
    """A copy of measurement ``ds`` with pooled quantiles, their bootstrap intervals and the lock
    effects.

    Needs ``fault_latency_hist_runs(config, repeat, latency_bin)``; uses
    ``writer_op_latency_hist_runs`` too where present. Adds, for every Q in ``q`` (``p50``...):

    ``fault_latency_pQ_pooled``, ``_ci_lo``, ``_ci_hi`` (config)
        quantile of all runs pooled, and its cluster-bootstrap interval;
    ``writer_op_latency_pQ_pooled``, ``_ci_lo``, ``_ci_hi``
        the same for the writer's own operations (NaN without writer);
    ``lock_effect_pQ``, ``_ci_lo``, ``_ci_hi``, ``_significant``; ``lock_effect_ratio_pQ``,
    ``_ci_lo``, ``_ci_hi``
        in-process writer cell minus (over) its control, NaN for other cells;
    ``lock_effect_control``
        the control's config index (-1: none).

    Resamples are drawn from ``numpy.random.SeedSequence(seed)``: one child stream per cell and
    histogram kind, so every cell's interval is reproducible and the two cells of an effect are
    bootstrapped independently.
    """
    if "fault_latency_hist_runs" not in ds:
        raise ValueError("the dataset has no fault_latency_hist_runs (measured before per-run "
                         "histograms were kept); re-measure with this version")
    out = ds.copy()
    n = ds.sizes["config"]
    qs = tuple(float(x) for x in q)
    names = [_pct(x) for x in qs]
    kinds = [k for k in ("fault_latency", "writer_op_latency") if f"{k}_hist_runs" in ds]
    streams = np.random.SeedSequence(seed).spawn(n * len(kinds))
    boots: dict[str, list] = {}
    for kk, kind in enumerate(kinds):
        hists = full_bins(ds[f"{kind}_hist_runs"].transpose("config", "repeat", "latency_bin"))
        boots[kind] = []
        point = np.full((n, len(qs)), np.nan)
        lo, hi = point.copy(), point.copy()
        used = np.zeros(n, dtype=np.int64)
        for i in range(n):
            b = bootstrap_quantiles(hists[i], qs, n_boot=n_boot, level=level,
                                    rng=np.random.default_rng(streams[kk * n + i]))
            boots[kind].append(b)
            point[i], lo[i], hi[i], used[i] = b["point"], b["lo"], b["hi"], b["runs"]
        for j, name in enumerate(names):
            what = "fault latency" if kind == "fault_latency" else "writer operation time"
            attrs = {"units": "s", "long_name": f"{name} of {what}, all runs pooled",
                     "method": f"quantile of the pooled log-binned histogram "
                               f"({LATENCY_BINS_PER_DECADE} bins per decade)"}
            out[f"{kind}_{name}_pooled"] = ("config", point[:, j], attrs)
            ci = {"units": "s", "long_name": f"{level:.0%} cluster-bootstrap interval of "
                  f"{kind}_{name}_pooled", "method": f"runs resampled with replacement, "
                  f"{n_boot} resamples, percentile interval"}
            out[f"{kind}_{name}_ci_lo"] = ("config", lo[:, j], ci)
            out[f"{kind}_{name}_ci_hi"] = ("config", hi[:, j], ci)
        if kind == "fault_latency" and 0.5 in qs and 0.99 in qs:
            # the tail's spread: p99 / p50 of the pooled runs, interval from the same resamples
            j50, j99 = qs.index(0.5), qs.index(0.99)
            ratio = point[:, j99] / point[:, j50]
            with np.errstate(invalid="ignore", divide="ignore"):
                reps = np.stack([b["samples"][:, j99] / b["samples"][:, j50]
                                 for b in boots[kind]])
                r_lo, r_hi = np.nanquantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=1) \
                    if np.isfinite(reps).any() else (np.full(n, np.nan), np.full(n, np.nan))
            ok = np.array([b["runs"] >= MIN_BOOTSTRAP_RUNS for b in boots[kind]])
            out["fault_latency_p99_over_p50"] = ("config", ratio, {
                "units": "1", "long_name": "p99 / p50 of fault latency, all runs pooled"})
            out["fault_latency_p99_over_p50_ci_lo"] = ("config", np.where(ok, r_lo, np.nan),
                                                       {"units": "1"})
            out["fault_latency_p99_over_p50_ci_hi"] = ("config", np.where(ok, r_hi, np.nan),
                                                       {"units": "1"})
        out[f"{kind}_bootstrap_runs"] = ("config", used, {"units": "1", "long_name":
                                         "runs with a histogram used by the bootstrap"})
    control = control_of(ds)
    out["lock_effect_control"] = ("config", control, {"long_name": "config index of the "
                                  "control (same writer in another process); -1: none"})
    fields = {f: np.full((n, len(qs)), np.nan) for f in
              ("diff", "diff_lo", "diff_hi", "significant", "ratio", "ratio_lo", "ratio_hi")}
    for i in np.flatnonzero(control >= 0):
        e = effect_interval(boots["fault_latency"][i], boots["fault_latency"][control[i]],
                            level=level)
        for f in fields:
            fields[f][i] = e[f]
    for j, name in enumerate(names):
        base = f"lock_effect_{name}"
        desc = f"{name} fault latency, writer in the process minus the same writer in another"
        out[base] = ("config", fields["diff"][:, j], {"units": "s", "long_name": desc})
        for f, suffix in (("diff_lo", "_ci_lo"), ("diff_hi", "_ci_hi")):
            out[base + suffix] = ("config", fields[f][:, j], {
                "units": "s", "long_name": f"{level:.0%} interval of {base} (independent "
                f"cluster bootstraps of the two cells, {n_boot} resamples)"})
        out[base + "_significant"] = ("config", fields["significant"][:, j], {
            "units": "1", "long_name": f"1 where the {level:.0%} interval of {base} excludes 0"})
        rbase = f"lock_effect_ratio_{name}"
        out[rbase] = ("config", fields["ratio"][:, j], {"units": "1", "long_name":
                      f"{name} fault latency, writer in the process over its control"})
        out[rbase + "_ci_lo"] = ("config", fields["ratio_lo"][:, j], {"units": "1"})
        out[rbase + "_ci_hi"] = ("config", fields["ratio_hi"][:, j], {"units": "1"})
    out.attrs["bootstrap"] = (f"cluster bootstrap over repeats: {n_boot} resamples, "
                              f"SeedSequence({seed}), {level:.0%} percentile intervals")
    return out


def _us(x: float) -> str:
    if not np.isfinite(x):
        return "-"
    return f"{x * 1e6:.0f}" if abs(x) >= 9.5e-6 else f"{x * 1e6:.1f}"


def markdown_tables(ds: xr.Dataset, *, q: Sequence[float] = QUANTILES) -> str:
    """Two markdown tables of a dataset with :func:`add_tails`'s variables: every cell's pooled
    fault-latency quantiles with their intervals (µs), and every lock effect (µs, and the ratio)
    with its interval, marked where significant."""
    names = [_pct(x) for x in q]
    head = "| cell | runs | " + " | ".join(f"{n} [95 % CI] (µs)" for n in names) + " |"
    lines = [head, "|" + "---|" * (2 + len(names))]
    for i in range(ds.sizes["config"]):
        cols = [str(ds["label"].values[i]), str(int(ds["fault_latency_bootstrap_runs"].values[i]))]
        for n in names:
            v = [float(ds[f"fault_latency_{n}{s}"].values[i]) for s in ("_pooled", "_ci_lo",
                                                                       "_ci_hi")]
            cols.append(f"{_us(v[0])} [{_us(v[1])}, {_us(v[2])}]")
        lines.append("| " + " | ".join(cols) + " |")
    lines += ["", "| in-process writer cell | " + " | ".join(
        f"effect {n} [95 % CI] (µs) | ratio {n} [95 % CI]" for n in names) + " |",
        "|" + "---|" * (1 + 2 * len(names))]
    for i in np.flatnonzero(ds["lock_effect_control"].values >= 0):
        cols = [str(ds["label"].values[i])]
        for n in names:
            e = [float(ds[f"lock_effect_{n}{s}"].values[i]) for s in ("", "_ci_lo", "_ci_hi")]
            r = [float(ds[f"lock_effect_ratio_{n}{s}"].values[i]) for s in ("", "_ci_lo",
                                                                            "_ci_hi")]
            star = " **\\***" if ds[f"lock_effect_{n}_significant"].values[i] == 1 else ""
            cols.append(f"{_us(e[0])} [{_us(e[1])}, {_us(e[2])}]{star}")
            cols.append(f"{r[0]:.2f} [{r[1]:.2f}, {r[2]:.2f}]")
        lines.append("| " + " | ".join(cols) + " |")
    lines.append("")
    lines.append("\\* the 95 % interval of the difference excludes 0 (significant lock effect)")
    return "\n".join(lines)
