"""Fit the Scenario fields a measurement pins down, and set the model against the measurement.

:func:`calibrate` reads a dataset made by :func:`faultlock.measure.measure`:

``io_latency``, ``io_latency_cv``
    the O_DIRECT 4 KiB read at queue depth 1, as a log-normal fitted to its median and 90th
    percentile (robust to the host's rare very slow reads, which a moment fit lets dominate the cv);
``io_depth_slope`` or ``io_parallelism``
    the mean latency against depth d: either ``L1 + slope * (d - 1)`` (each read already in flight
    adds ``slope``, the model's ``io_depth_slope``) or c identical servers, ``max(L1, d * L1 / c)``
    (``io_parallelism``); the one with the smaller RMS relative error is used, both are reported;
``fault_cpu_time``
    the median minor-fault latency of the harness's minor pass (cached, unlocked folio, one
    attempt);
``think_time``
    the harness's per-touch loop overhead (clock and getrusage calls) plus its configured think
    time;
``wakeup_latency``
    the harness's futex wake-to-run latency (median): a thread woken with a CPU free;
``io_latency`` level (default ``io_source="faults"``)
    the single-thread cold walk's median major fault less the model's CPU and wake-up per major
    fault (found by a short Monte Carlo run with deterministic reads): the device as the fault path
    sees it, which on the virtio VM is faster than an O_DIRECT pread;
``writer_hold``, ``writer_hold_cv``
    per writer kind (op and region size), the perf-traced write hold (mean; cv from its p50 and p99)
    in the cell with the fewest threads; without tracing, the control process's operation time per
    write lock (an upper bound);
``writer_gap_cpu`` (per writer kind, ``Calibration.writer_gaps``)
    the control process's operation time per write lock less that hold: the writers' CPU outside
    the lock (SCENARIO_SPEC.md §4); 0 when the hold itself came from the control.

The model against the measurement (``compare``) is :mod:`faultlock.measure.compare`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..model.laws import fit_lognormal, lognormal_cv_from_mean_quantile, stall_quantile
from ..model.scenario import Scenario
from .mapping import writer_kind

__all__ = ["Calibration", "calibrate", "check_measurement", "fit_lognormal", "fit_device_curve",
           "fit_douyin"]

@dataclass
class Calibration:
    """Fitted Scenario ``fields``, the write hold of every measured writer kind
    (``writer_holds[kind] = (mean, cv)``) and the fit's ``details``."""

    fields: dict[str, Any]
    writer_holds: dict[str, tuple[float, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: CPU outside the lock per write acquisition, per writer kind (``writer_gap_cpu``)
    writer_gaps: dict[str, float] = field(default_factory=dict)

    def scenario(self, preset: str = "virtio_2cpu", **overrides: Any) -> Scenario:
        """The preset with the fitted fields (and ``overrides``) applied."""
        known = {k: v for k, v in self.fields.items() if k in Scenario.FIELDS}
        return Scenario.preset(preset, **{**known, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return {"fields": self.fields, "writer_holds": {k: list(v) for k, v in
                                                        self.writer_holds.items()},
                "writer_gaps": dict(self.writer_gaps), "details": _jsonable(self.details)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(dict(data["fields"]), {k: tuple(v) for k, v in
                                          data.get("writer_holds", {}).items()},
                   dict(data.get("details", {})),
                   {k: float(v) for k, v in data.get("writer_gaps", {}).items()})

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return cls.from_dict(json.loads(text))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------------
# fits
# ----------------------------------------------------------------------------------------------

def _cv_from_mean_p99(mean: float, p99: float) -> float:
    """cv of the log-normal with this mean and 99th percentile (the smaller sigma that fits)."""
    return lognormal_cv_from_mean_quantile(mean, p99, level=0.99)


def fit_device_curve(depths, means, iops=None) -> dict[str, float]:
    """Fit the mean read latency against queue depth two ways (see the module docstring)."""
    d = np.asarray(depths, dtype=float)
    y = np.asarray(means, dtype=float)
    ok = np.isfinite(y)
    d, y = d[ok], y[ok]
    if d.size == 0:
        raise ValueError("no device latency to fit")
    l1 = float(y[np.argmin(d)])
    if d.size >= 2:
        A = np.stack([np.ones_like(d), d - 1], axis=1)
        (intercept, slope), *_ = np.linalg.lstsq(A, y, rcond=None)
        slope = max(float(slope), 0.0)
    else:
        intercept, slope = l1, 0.0
    linear = float(intercept) + slope * (d - 1)
    rms_linear = float(np.sqrt(np.mean((linear / y - 1) ** 2)))
    if iops is not None:
        top = float(np.nanmax(np.asarray(iops, dtype=float)[ok]))
    else:
        top = float(np.max(d / y))
    servers = max(1, int(round(top * l1)))
    parallel = np.maximum(l1, d * l1 / servers)
    rms_parallel = float(np.sqrt(np.mean((parallel / y - 1) ** 2)))
    return {"l1": l1, "intercept": float(intercept), "slope": slope, "rms_linear": rms_linear,
            "servers": servers, "rms_parallel": rms_parallel,
            "choice": "io_depth_slope" if rms_linear <= rms_parallel else "io_parallelism"}


#: the largest share of reads the tail fit lets stall
STALL_SHARE_MAX = 0.5
#: the device curve's statistics the tail law is fitted to, and the quantile level of each
TAIL_STATISTICS = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("mean", None))


def device_tail_predictions(depths, io_mean: float, io_cv: float, slope: float, share: float,
                            stall_mean: float, stall_cv: float) -> dict[str, np.ndarray]:
    """p50, p90, p99 and mean of an O_DIRECT read at each depth d under the read law with stalls:
    ``slope (d - 1) + B + S`` (B log-normal of mean ``io_mean`` and cv ``io_cv``, S a stall with
    probability ``share``: :func:`faultlock.model.laws.stall_cdf`), as the engine draws a read
    that finds d - 1 others in flight (``montecarlo/device.py``)."""
    d = np.asarray(depths, dtype=float)
    shift = slope * (d - 1)            # the depth moves the whole law: one inversion serves all
    levels = np.array([lv for _, lv in TAIL_STATISTICS if lv is not None])
    q = np.atleast_1d(stall_quantile(levels, "lognormal", io_mean, io_cv, share, stall_mean,
                                     stall_cv))
    out = {k: shift + v for (k, _), v in zip(TAIL_STATISTICS, q)}
    out["mean"] = shift + io_mean + share * stall_mean
    return out


def fit_device_tail(depths, measured: Mapping[str, Any], io_mean: float, io_cv: float,
                    slope: float) -> dict[str, Any]:
    """Fit the read stalls (``io_stall_share``, ``io_stall_latency``, ``io_stall_cv``) to the
    O_DIRECT curve's p50, p90, p99 and mean at every depth at once, the body (log-normal at
    depth 1 plus ``slope`` per read in flight) held as fitted from the medians.

    The loss is the sum over depths and statistics of ln(predicted / measured)^2 (Nelder-Mead
    from two starts, in the logit of share / ``STALL_SHARE_MAX``, log stall mean and log stall
    cv). Returns the
    parameters, the relative error of each statistic at each depth with and without stalls, and
    the RMS of their logarithms.
    """
    from scipy import optimize

    d = np.asarray(depths, dtype=float)
    target = {k: np.asarray(measured[k], dtype=float) for k, _ in TAIL_STATISTICS}
    ok = np.ones(d.shape, bool)
    for k in target:
        ok &= np.isfinite(target[k]) & (target[k] > 0)
    if ok.sum() == 0:
        raise ValueError("no depth with a finite p50, p90, p99 and mean to fit the tail to")

    def errors(share, stall_mean, stall_cv):
        pred = device_tail_predictions(d[ok], io_mean, io_cv, slope, share, stall_mean, stall_cv)
        return {k: pred[k] / target[k][ok] - 1 for k, _ in TAIL_STATISTICS}

    def share_of(x0):          # a stall is a rare event: at most half the reads
        return STALL_SHARE_MAX / (1 + math.exp(-min(max(x0, -700.0), 700.0)))

    def loss(x):
        share = share_of(x[0])
        err = errors(share, math.exp(x[1]), math.exp(x[2]))
        return float(sum(np.sum(np.log1p(e) ** 2) for e in err.values()))

    best = None
    for share0, mean0 in ((0.003, 1e-3), (0.02, 3e-3)):       # a rare and a common stall
        x0 = np.array([math.log(share0 / (STALL_SHARE_MAX - share0)), math.log(mean0),
                       math.log(0.5)])
        res = optimize.minimize(loss, x0, method="Nelder-Mead",
                                options={"xatol": 1e-4, "fatol": 1e-8, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    share = share_of(best.x[0])
    stall_mean, stall_cv = math.exp(best.x[1]), math.exp(best.x[2])
    with_stalls = errors(share, stall_mean, stall_cv)
    without = errors(0.0, 1.0, 0.0)

    def table(err):
        return {k: dict(zip([int(v) for v in d[ok]], [float(x) for x in err[k]]))
                for k in err}

    def rms(err):            # of ln(predicted / measured): the loss, per statistic and depth
        return float(np.sqrt(np.mean(np.concatenate([np.log1p(e) ** 2 for e in err.values()]))))

    return {"io_stall_share": share, "io_stall_latency": stall_mean, "io_stall_cv": stall_cv,
            "errors": table(with_stalls), "rms": rms(with_stalls),
            "errors_without_stalls": table(without), "rms_without_stalls": rms(without),
            "on": "O_DIRECT p50, p90, p99 and mean at every depth (errors: predicted / "
                  "measured - 1; rms of ln(predicted / measured))"}


#: what every measurement dataset holds (``faultlock measure`` writes it): the cells along
#: ``config`` with their thread count and group size, and the device's latency by depth
MEASUREMENT_DIMS = ("config", "io_depth")
MEASUREMENT_COORDS = ("threads", "group")
MEASUREMENT_VARIABLES = ("device_latency_p50",)


def check_measurement(ds: Any, name: str = "ds") -> xr.Dataset:
    """``ds`` if it is a measurement dataset, else one ValueError naming ``name`` and what it
    lacks (a dataset of another kind, e.g. a ``whatif`` or ``compare`` result, is refused here,
    not deep inside the fit)."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{name}={type(ds).__name__} is not allowed: an xarray.Dataset written "
                        "by faultlock measure")
    missing = ([f"dimension {d}" for d in MEASUREMENT_DIMS if d not in ds.dims]
               + [f"coordinate {c}" for c in MEASUREMENT_COORDS
                  if c not in ds.coords or ds[c].dims != ("config",)]
               + [f"variable {v}" for v in MEASUREMENT_VARIABLES if v not in ds.data_vars])
    if missing:
        raise ValueError(f"{name} is not allowed: not a faultlock measurement (it has no "
                         f"{', '.join(missing)}); make one with faultlock measure")
    return ds


def _value(ds: xr.Dataset, name: str, **sel: Any) -> float:
    if name not in ds:
        return float("nan")
    return float(ds[name].sel(**sel).values) if sel else float(ds[name].values)


def _cells(ds: xr.Dataset) -> list[dict[str, Any]]:
    coord_names = [c for c in ds.coords if ds.coords[c].dims == ("config",)]
    return [{c: _plain(ds.coords[c].values[i]) for c in coord_names}
            for i in range(ds.sizes["config"])]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _model_major_offset(fields: Mapping[str, Any], io: float) -> float:
    """The model's major fault latency beyond the read itself (its CPU and wake-up): one thread,
    deterministic reads of ``io``, the fitted CPU and wake-up costs (Monte Carlo)."""
    from ..model.montecarlo.simulate import simulate

    known = {k: v for k, v in fields.items() if k in Scenario.FIELDS}
    s = Scenario.preset("virtio_2cpu", **{**known, "threads": 1, "io_distribution": "deterministic",
                                          "io_latency": io,
                                          "io_depth_slope": 0.0, "io_parallelism": 0,
                                          "io_stall_share": 0.0,   # the body, not the tail
                                          "writer_rate": 0.0, "pages_per_vma": 2**22,
                                          "page_popularity": 0.0, "readaround_pages": 1})
    ds = simulate(s, policies=["mainline"], operations=2000, seed=0)
    return float(ds["fault_latency_mean"].values[0]) - io


def calibrate(ds: xr.Dataset, *, io_source: str = "faults", use_model: bool = True,
              progress: Callable[[str], None] | None = None) -> Calibration:
    """Fit the Scenario fields a measurement dataset pins down (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`faultlock.measure.measure` (or made like it).
    io_source : {"faults", "device"}
        Where the level of the read latency comes from. ``"faults"`` (default): the median major
        fault of the single-thread cold walk less the model's CPU and wake-up per major fault, so
        the device is taken as the fault path sees it (an O_DIRECT pread has its own syscall,
        iomap and wake-up costs); its spread (cv) and depth curve still come from O_DIRECT.
        ``"device"``: the O_DIRECT median itself.
    use_model : bool
        Find the model's CPU per major fault with a short Monte Carlo run (else assume 3 fault
        attempts' CPU and one wake-up, the engine's count today).
    progress : callable, optional
        Called with one line per fit step (``faultlock calibrate`` prints them on stderr).

    Raises
    ------
    ValueError
        The dataset lacks the device curve or a single-thread cell without writers.
    """
    if io_source not in ("faults", "device"):
        raise ValueError(f"io_source={io_source!r} is not allowed: 'faults' or 'device'")
    check_measurement(ds)

    def say(text: str) -> None:
        if progress is not None:
            progress(f"calibrate: {text}")

    details: dict[str, Any] = {}
    depths = ds["io_depth"].values
    d1 = int(depths.min())
    p50 = _value(ds, "device_latency_p50", io_depth=d1)
    p90 = _value(ds, "device_latency_p90", io_depth=d1)
    io_mean, io_cv = fit_lognormal(p50, p90)
    details["device_qd1"] = {"p50": p50, "p90": p90, "raw_mean": _value(ds, "device_latency_mean",
                                                                          io_depth=d1),
                             "raw_cv": _value(ds, "device_latency_cv", io_depth=d1),
                             "lognormal_mean": io_mean, "lognormal_cv": io_cv}
    # medians: the means carry the host's rare multi-ms reads, which are not a depth effect
    curve = fit_device_curve(depths, ds["device_latency_p50"].values,
                             ds["device_iops"].values if "device_iops" in ds else None)
    curve["on"] = "median latency by depth"
    details["device_curve"] = curve
    details["device_curve_means"] = fit_device_curve(depths, ds["device_latency_mean"].values)
    fields: dict[str, Any] = {"io_latency": io_mean, "io_latency_cv": io_cv,
                              "io_distribution": "lognormal", "readaround_pages": 1}
    if curve["choice"] == "io_depth_slope":
        fields.update(io_depth_slope=curve["slope"], io_parallelism=0)
    else:
        fields.update(io_depth_slope=0.0, io_parallelism=curve["servers"])
    # the tail: the host's rare slow reads (p99 and mean far above the body), one stall law for
    # every depth, fitted to p50, p90, p99 and the mean of the whole curve
    if all(f"device_latency_{k}" in ds for k, _ in TAIL_STATISTICS):
        tail = fit_device_tail(depths, {k: ds[f"device_latency_{k}"].values
                                        for k, _ in TAIL_STATISTICS},
                               io_mean, io_cv, fields["io_depth_slope"])
        details["device_tail"] = tail
        if tail["rms"] < tail["rms_without_stalls"]:
            fields.update(io_stall_share=tail["io_stall_share"],
                          io_stall_latency=tail["io_stall_latency"],
                          io_stall_cv=tail["io_stall_cv"])
    say(f"1/4 device latency: lognormal at depth {d1}, {curve['choice']} over {len(depths)} "
        "depths")

    cells = _cells(ds)
    quiet = [i for i, c in enumerate(cells) if c.get("writer_where", "none") == "none"] or \
        list(range(len(cells)))
    minor = ds["minor_fault_latency_p50"].values[quiet] if "minor_fault_latency_p50" in ds else []
    minor = np.asarray(minor)[np.isfinite(minor)]
    fields["fault_cpu_time"] = float(np.median(minor)) if minor.size else 2e-6
    details["fault_cpu_time_from"] = f"median minor-pass latency of {minor.size} quiet cells"
    overhead = ds["touch_overhead"].values[quiet] if "touch_overhead" in ds else []
    overhead = np.asarray(overhead)[np.isfinite(overhead)]
    think = 0.0
    try:
        think = float(json.loads(ds.attrs.get("config", "{}")).get("think_time", 0.0))
    except (ValueError, TypeError, AttributeError):
        pass
    fields["think_time"] = (float(np.median(overhead)) if overhead.size else 1e-6) + think
    if "cpus_online" in ds.attrs:
        fields["cpus"] = int(ds.attrs["cpus_online"])
    wake = _value(ds, "wakeup_latency_p50")
    fields["wakeup_latency"] = wake if wake == wake else 10e-6
    details["wakeup_from"] = "futex wake-to-run median" if wake == wake else \
        "not measured: Scenario default"

    say(f"2/4 fault CPU, touch overhead and wake-up from {len(quiet)} cells without writers")

    single = [i for i in quiet if cells[i].get("threads") == 1 and cells[i].get("group") == 1]
    if single and use_model:
        say("3/4 the model's CPU and wake-up per major fault: a 2,000-operation Monte Carlo run "
            "(the first run of a checkout compiles the engine: a minute or two) ...")
    if single:
        major = float(np.nanmedian(ds["major_latency_p50"].values[single]))
        offset = _model_major_offset(fields, p50) if use_model else \
            3 * fields["fault_cpu_time"] + fields["wakeup_latency"]
        fault_io = major - offset
        details["fault_path"] = {"major_p50": major, "model_cpu_and_wakeup_per_major": offset,
                                 "fault_io_p50": fault_io, "device_p50": p50,
                                 "fault_io_over_device": fault_io / p50}
        if io_source == "faults":
            if fault_io <= 0:
                raise ValueError(f"the single-thread major fault ({major:.3g} s) is shorter than "
                                 f"the model's CPU and wake-up per major fault ({offset:.3g} s)")
            fields["io_latency"] = fit_lognormal(fault_io, fault_io * p90 / p50)[0]
    elif io_source == "faults":
        raise ValueError("io_source='faults' needs a single-thread cell without writers "
                         "(threads=1, group=1, no writer)")
    details["io_source"] = io_source

    holds: dict[str, tuple[float, float]] = {}
    hold_src: dict[str, str] = {}
    for source in ("thread", "process"):
        for i, c in sorted(enumerate(cells), key=lambda ic: ic[1].get("threads", 0)):
            if c.get("writer_where") != source:
                continue
            kind = writer_kind(c["writer_op"], c["writer_pages"])
            if kind in holds:
                continue
            if source == "thread":
                mean = _value(ds, "mmap_write_hold_mean", config=i)
                h50 = _value(ds, "mmap_write_hold_p50", config=i)
                h99 = _value(ds, "mmap_write_hold_p99", config=i)
                how = f"perf-traced hold, cell {c.get('label', i)}"
            else:
                k = max(int(c.get("writer_locks_per_op", 1)), 1)
                mean = _value(ds, "writer_op_latency_mean", config=i) / k
                h50 = _value(ds, "writer_op_latency_p50", config=i) / k
                h99 = _value(ds, "writer_op_latency_p99", config=i) / k
                how = f"control-process syscall time per write lock (upper bound), cell " \
                      f"{c.get('label', i)}"
            if not (mean > 0 and h99 >= mean):
                continue
            cv = fit_lognormal(h50, h99, level=0.99)[1] if h50 > 0 and h99 >= h50 else \
                _cv_from_mean_p99(mean, h99)
            holds[kind] = (mean, cv)
            hold_src[kind] = how
    details["writer_holds_from"] = hold_src
    say(f"4/4 writer holds: {', '.join(holds) or 'none measured'}")
    if holds:
        first = holds.get("mmap 1p") or next(iter(holds.values()))
        fields["writer_hold"], fields["writer_hold_cv"] = first
        fields["writer_hold_distribution"] = "lognormal"
    # the writers' CPU outside the lock: the control's operation time per acquisition less the hold
    gaps: dict[str, float] = {}
    for i, c in sorted(enumerate(cells), key=lambda ic: ic[1].get("threads", 0)):
        kind = writer_kind(c.get("writer_op", ""), c.get("writer_pages", 0) or 0)
        if c.get("writer_where") != "process" or kind in gaps or kind not in holds:
            continue
        k = max(int(c.get("writer_locks_per_op", 1)), 1)
        op = _value(ds, "writer_op_latency_mean", config=i)
        if op > 0:
            gaps[kind] = max(op / k - holds[kind][0], 0.0)
    return Calibration(fields, holds, details, gaps)


def fit_douyin(*args: Any, **kwargs: Any):
    """See :func:`faultlock.measure.douyin.fit_douyin`."""
    from .douyin import fit_douyin as _fit
    return _fit(*args, **kwargs)


fit_douyin.__doc__ = "Fit android_warm_start to the Douyin numbers (kernel.md §1.4); see " \
                     ":func:`faultlock.measure.douyin.fit_douyin`."


#: names that moved to :mod:`faultlock.measure.compare` (the model against the measurement);
#: ``from faultlock.measure.calibrate import compare`` still finds them there
_MOVED_TO_COMPARE = ("compare", "error_table", "analytic_solver", "COMPARED", "MEASURED_ONLY",
                     "MODEL_NAMES")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_COMPARE:
        import importlib
        return getattr(importlib.import_module("faultlock.measure.compare"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
