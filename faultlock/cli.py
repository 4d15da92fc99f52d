"""The ``faultlock`` command.

``faultlock whatif``     one scenario under every policy: a table of the main metrics with intervals
``faultlock measure``    measure mainline on this machine's kernel (a C harness built at run time)
``faultlock calibrate``  fit Scenario fields to a measurement (or ``--douyin``: the published table)
``faultlock compare``    the model against a measurement, cell by cell

Every Scenario field is a flag (``--io-latency 2ms``, ``--threads 400``); times take units. Bad
flags or values print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from .model.policies import POLICIES, check_policies
from .model.scenario import Scenario

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage and a second line
        raise UsageError(f"{self.prog}: {message}")


# ---- formatting ---------------------------------------------------------------------------------
def format_quantity(value: float, unit: str) -> str:
    """A number in readable units: seconds as ns/µs/ms/s, rates with k/M, shares as %."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    if unit == "s":
        for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
            if abs(value) >= scale or scale == 1e-9:
                return f"{value / scale:.3g}{suffix}"
    if unit == "1/s":
        for scale, suffix in ((1e6, "M/s"), (1e3, "k/s"), (1.0, "/s")):
            if abs(value) >= scale or scale == 1.0:
                return f"{value / scale:.3g}{suffix}"
    if unit == "%":
        return f"{100 * value:.3g}%"
    return f"{value:.3g}"


def _cell(ds, name: str, policy: str, unit: str) -> str:
    if name not in ds:
        return "-"
    text = format_quantity(float(ds[name].sel(policy=policy)), unit)
    ci_name = name + "_ci"
    if ci_name in ds:
        ci = float(ds[ci_name].sel(policy=policy))
        if math.isfinite(ci):
            text += "±" + format_quantity(ci, unit)
    return text


#: the columns of the whatif table: (header, metric, display unit)
WHATIF_COLUMNS = (
    ("fault mean", "fault_latency_mean", "s"),
    ("fault p50", "fault_latency_p50", "s"),
    ("fault p99", "fault_latency_p99", "s"),
    ("jank", "jank_share", "%"),
    ("faults", "fault_rate", "1/s"),
    ("mmap rd", "mmap_read_rate", "1/s"),
    ("rd wait", "mmap_read_wait_mean", "s"),
    ("wr wait", "mmap_write_wait_mean", "s"),
    ("writer p99", "writer_latency_p99", "s"),
    ("retry/flt", "retries_per_fault", "1"),
    ("refault/flt", "refaults_per_fault", "1"),
    ("reads", "io_read_rate", "1/s"),
)


def format_table(ds, title: str = "") -> str:
    """One row per policy, one column per main metric (``±`` the 95 % half-width)."""
    headers = ["policy"] + [h for h, _, _ in WHATIF_COLUMNS] + ["ok"]
    rows = []
    for policy in ds.policy.values:
        row = [str(policy)] + [_cell(ds, m, policy, u) for _, m, u in WHATIF_COLUMNS]
        flags = []
        if "stable" in ds and not bool(ds.stable.sel(policy=policy)):
            flags.append("UNSTABLE")
        if "converged" in ds and not bool(ds.converged.sel(policy=policy)):
            flags.append("not converged")
        row.append(", ".join(flags) or "yes")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


# ---- scenario flags -----------------------------------------------------------------------------
def add_scenario_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scenario (every field of faultlock.Scenario)")
    group.add_argument("--preset", help="start from a preset: " + ", ".join(Scenario.presets()))
    for name, field in Scenario.FIELDS.items():
        flag = "--" + name.replace("_", "-")
        group.add_argument(flag, dest=name, default=None, metavar=field.unit.upper(),
                           help=f"{field.meaning} [{field.allowed}; default {field.default}]")


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    changes = {}
    for name, field in Scenario.FIELDS.items():
        raw = getattr(args, name, None)
        if raw is None:
            continue
        if field.kind == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{name}={raw!r} is not allowed: true or false")
            changes[name] = lowered in ("true", "1", "yes")
        elif field.kind == "count":
            try:
                changes[name] = int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not allowed: {field.allowed}") from None
        elif field.kind == "name":
            changes[name] = raw
        elif field.kind in ("time", "rate"):
            changes[name] = raw          # Scenario parses units
        else:
            try:
                changes[name] = float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not allowed: {field.allowed}") from None
    if args.preset:
        return Scenario.preset(args.preset, **changes)
    return Scenario(**changes)


def _policies(text: str | None):
    if text is None:
        return POLICIES
    return check_policies([p.strip() for p in text.split(",") if p.strip()])


# ---- commands -----------------------------------------------------------------------------------
def cmd_whatif(args: argparse.Namespace) -> int:
    scenario = scenario_from_args(args)
    policies = _policies(args.policies)
    from . import simulate
    ds = simulate(scenario, policies, seed=args.seed, operations=args.operations,
                  batches=args.batches)
    title = (f"{args.preset or 'scenario'}: {scenario!r}\nMonte Carlo, {args.operations} "
             f"operations per policy, seed {args.seed}, 95% batch-means intervals")
    print(format_table(ds, title))
    if args.output:
        ds.to_netcdf(args.output) if args.output.endswith(".nc") else ds.to_zarr(args.output, mode="w")
    return 0


def _run_delegated(name: str, argv: list[str]) -> int:
    """A subcommand whose options belong to another module's ``main(argv)``."""
    import importlib
    module_name, function_name = DELEGATED[name][0].rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)(argv)


#: subcommands parsed by their own modules: name -> (main function, one-line help)
DELEGATED = {
    "measure": ("faultlock.measure.commands.main_measure",
                "measure mainline on this machine's kernel"),
    "calibrate": ("faultlock.measure.commands.main_calibrate",
                  "fit Scenario fields to a measurement, or --douyin to the published table"),
    "compare": ("faultlock.measure.commands.main_compare",
                "predict each measured configuration and show the error"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faultlock", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)
    whatif = sub.add_parser("whatif", help="one scenario under every policy")
    add_scenario_flags(whatif)
    whatif.add_argument("--policies", help="comma-separated subset of: " + ", ".join(POLICIES))
    whatif.add_argument("--operations", type=int, default=100_000,
                        help="faults and writer sections measured per policy (default 100000)")
    whatif.add_argument("--batches", type=int, default=20, help="batches for the intervals")
    whatif.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    whatif.add_argument("-o", "--output", help="also save the dataset (.nc or .zarr)")
    whatif.set_defaults(run=cmd_whatif)
    for name, (function, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)   # listed; parsed by its module
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] in DELEGATED:
            return _run_delegated(argv[0], argv[1:])
        args = parser.parse_args(argv)
        return args.run(args)
    except (UsageError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if not message.startswith("faultlock"):
            message = f"faultlock: error: {message}"
        print(message, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("faultlock: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
