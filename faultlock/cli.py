"""The ``faultlock`` command.

``faultlock whatif``     one scenario under every policy: a table of the main metrics with intervals
``faultlock validate``   the analytic model against the Monte Carlo over a grid: error per metric
``faultlock measure``    measure mainline on this machine's kernel (a C harness built at run time)
``faultlock calibrate``  fit Scenario fields to a measurement (or ``--douyin``: the published table)
``faultlock compare``    the model against a measurement, cell by cell
``faultlock sweep``      a sweep spec over a grid, on a local or existing Dask cluster, into zarr
``faultlock show``       a sweep store's dimensions, progress and winner shares
``faultlock figures``    figures from a sweep store, for slides or the paper
``faultlock paper``      the paper and the slides, from the sweeps and the formulas

Every Scenario field is a flag (``--io-latency 2ms``, ``--threads 400``); times take units. Bad
flags or values print one line and exit with status 2, without a traceback. Outputs (``-o``) follow
one set of rules (:mod:`faultlock.outputs`), checked before any work: the parent directory must
exist, the name says the format, an existing output is replaced only with ``--force`` (a sweep
store is continued with ``--resume``), and every write is renamed into place when complete.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys

from .model import arguments
from .model.arguments import BATCHES_LIMIT, OPERATIONS_LIMIT
from .model.policies import POLICIES, check_policies
from .model.scenario import Scenario
from .outputs import check_output, write_dataset

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
    ("miss", "retry_miss_ratio", "%"),
    ("reads", "io_read_rate", "1/s"),
)
#: columns shown only where some policy has a finite value (a workload or mode that has them)
WHATIF_OPTIONAL = (
    ("rounds", "round_rate", "1/s"),
    ("cache life", "cache_lifetime_mean", "s"),
)


def _columns(ds) -> tuple:
    extra = tuple(c for c in WHATIF_OPTIONAL
                  if c[1] in ds and any(math.isfinite(float(v)) for v in ds[c[1]].values.ravel()))
    return WHATIF_COLUMNS + extra


def format_table(ds, title: str = "") -> str:
    """One row per policy, one column per main metric (``±`` the 95 % half-width)."""
    columns = _columns(ds)
    headers = ["policy"] + [h for h, _, _ in columns] + ["ok"]
    rows, invalid = [], []
    for policy in ds.policy.values:
        row = [str(policy)] + [_cell(ds, m, policy, u) for _, m, u in columns]
        flags = []
        if "stable" in ds and not bool(ds.stable.sel(policy=policy)):
            flags.append("UNSTABLE")
        if "converged" in ds and not bool(ds.converged.sel(policy=policy)):
            flags.append("not converged")
        if "valid" in ds and not bool(ds.valid.sel(policy=policy)):
            flags.append("INVALID")   # the reasons follow the table (model/checks.py)
            invalid.append(f"{policy}: valid: no ({ds.invalid_reason.sel(policy=policy).item()})")
        row.append(", ".join(flags) or "yes")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines += invalid
    return "\n".join(lines)


# ---- options checked as the Python API checks its arguments ------------------------------------
SEED = arguments.option_type("seed", arguments.check_seed)
OPERATIONS = arguments.option_type("operations", functools.partial(
    arguments.check_integer, low=100, high=OPERATIONS_LIMIT))
BATCHES = arguments.option_type("batches", functools.partial(
    arguments.check_integer, low=2, high=BATCHES_LIMIT))


# ---- scenario flags -----------------------------------------------------------------------------
def add_scenario_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scenario (every field of faultlock.Scenario)")
    group.add_argument("--preset", help="start from a preset: " + ", ".join(Scenario.presets()))
    for name, field in Scenario.FIELDS.items():
        flag = "--" + name.replace("_", "-")
        text = f"{field.meaning} [{field.allowed}; default {field.default}]"
        group.add_argument(flag, dest=name, default=None, metavar=field.unit.upper(),
                           help=text.replace("%", "%%"))   # argparse formats help with %


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
def format_gap(analytic, montecarlo) -> str:
    """Relative gap analytic / Monte Carlo - 1, per policy and main metric."""
    headers = ["policy"] + [h for h, _, _ in WHATIF_COLUMNS]
    rows = []
    for policy in montecarlo.policy.values:
        row = [str(policy)]
        for _, name, _ in WHATIF_COLUMNS:
            if name not in analytic or name not in montecarlo:
                row.append("-")
                continue
            a = float(analytic[name].sel(policy=policy))
            m = float(montecarlo[name].sel(policy=policy))
            row.append(f"{a / m - 1:+.1%}" if m and math.isfinite(a) and math.isfinite(m) else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]
    lines = ["relative gap, analytic / Monte Carlo - 1",
             "  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _check_output(args: argparse.Namespace) -> None:
    """Refuse a bad ``-o`` before any work is done (the rules: :mod:`faultlock.outputs`)."""
    if args.output is not None:
        check_output(args.output, (".nc", ".zarr"), option="-o/--output", force=args.force)


def _save(ds, path: str) -> None:
    """Write through a temporary sibling renamed into place: never half a file."""
    write_dataset(ds, path, option="-o/--output")


def cmd_whatif(args: argparse.Namespace) -> int:
    scenario = scenario_from_args(args)
    policies = _policies(args.policies)
    _check_output(args)
    name = args.preset or "scenario"
    results = {}
    if args.method in ("analytic", "both"):
        from . import predict
        results["analytic"] = predict(scenario, policies)
        print(format_table(results["analytic"], f"{name}: {scenario!r}\nanalytic model"))
    if args.method in ("mc", "both"):
        from . import simulate
        results["mc"] = simulate(scenario, policies, seed=args.seed, operations=args.operations,
                                 batches=args.batches)
        title = (f"{name}: {scenario!r}\nMonte Carlo, {args.operations} operations per policy, "
                 f"seed {args.seed}, 95% batch-means intervals")
        if args.method == "both":
            print()
            title = "Monte Carlo"
        print(format_table(results["mc"], title))
    if args.method == "both":
        print()
        print(format_gap(results["analytic"], results["mc"]))
    if args.output:
        ds = results.get("mc", results.get("analytic"))
        _save(ds, args.output)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .model import validation
    policies = _policies(args.policies)
    _check_output(args)
    if args.preset and args.grid:
        raise UsageError(f"--preset {args.preset} --grid {args.grid} is not allowed: one of them")
    grid = args.grid or "issue3"
    if grid == "memory_limit":
        return _validate_memory_limit(args)
    scenarios = args.preset.split(",") if args.preset else validation.GRIDS[grid]()
    from .sweeps.progress import CellProgress, status
    status(f"validate: the analytic model, then the Monte Carlo ({args.operations} operations "
           "per cell and policy) ...", enabled=not args.no_progress)
    bar = CellProgress("validate: Monte Carlo", enabled=not args.no_progress)
    try:
        ds = validation.validate(scenarios, policies, operations=args.operations, seed=args.seed,
                                 progress=bar)
    finally:
        bar.close()
    table = validation.summary(ds)
    print("analytic against Monte Carlo: share of cells agreeing (within the MC interval plus "
          "the stated tolerance)\nand |relative error| over "
          f"{', '.join(scenarios) if args.preset else 'the ' + grid + ' grid'}")
    print(table.to_string(float_format=lambda x: f"{x:.3g}"))
    for name, limit in validation.ANALYTIC_LIMITS.items():
        print(f"limit of the analytic model ({name}): {limit}")
    if args.output:
        _save(ds, args.output)
    return 0


def _validate_memory_limit(args: argparse.Namespace) -> int:
    """Issue 12's grid: the analytic model's characteristic time against the Monte Carlo's LRU."""
    from .model.analytic import lru_validation
    from .sweeps.progress import status
    policies = _policies(args.policies) if args.policies else lru_validation.POLICIES
    status(f"validate: the memory_limit grid, analytic model then Monte Carlo "
           f"({args.operations} operations per cell and policy; minutes) ...",
           enabled=not args.no_progress)
    ds = lru_validation.validate_lru(policies=policies, operations=args.operations,
                                     seed=args.seed)
    print("analytic against Monte Carlo under a memory limit: share of cells agreeing (within "
          "the MC interval plus\nthe stated tolerance) and |relative error|, over limit / "
          "working set x threads x window x lists")
    print(lru_validation.summary(ds).to_string(float_format=lambda x: f"{x:.3g}"))
    if args.output:
        _save(ds, args.output)
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
    "sweep": ("faultlock.sweeps.commands.main_sweep",
              "run (or resume) a sweep spec on Dask into a zarr store; --list lists the specs"),
    "show": ("faultlock.sweeps.commands.main_show",
             "summarise a sweep store: dimensions, cells done, where each policy wins"),
    "figures": ("faultlock.figures.main_figures",
                "render the figures of a sweep store (PNG and PDF, slides or paper style)"),
    "paper": ("faultlock.paper.main_paper",
              "run or resume the paper's sweeps, render figures and tables, build the PDFs"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faultlock", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)
    whatif = sub.add_parser("whatif", help="one scenario under every policy")
    add_scenario_flags(whatif)
    whatif.add_argument("--policies", help="comma-separated subset of: " + ", ".join(POLICIES))
    whatif.add_argument("--operations", type=OPERATIONS, default=100_000,
                        help="faults and writer sections measured per policy (default 100000)")
    whatif.add_argument("--batches", type=BATCHES, default=20,
                        help="batches for the intervals (default 20)")
    whatif.add_argument("--seed", type=SEED, default=0, help="root seed (default 0)")
    whatif.add_argument("--method", choices=("mc", "analytic", "both"), default="mc",
                        help="Monte Carlo (default), the analytic model (instant), or both with "
                             "the relative gap")
    whatif.add_argument("-o", "--output", help="also save the dataset (.nc or .zarr; a new "
                        "path in an existing directory)")
    whatif.add_argument("--force", action="store_true",
                        help="replace an existing -o output (a file, or a zarr store)")
    whatif.set_defaults(run=cmd_whatif)
    validate = sub.add_parser("validate", help="the analytic model against the Monte Carlo")
    validate.add_argument("--preset", help="comma-separated presets instead of the default grid "
                          "(threads x I/O latency x memory pressure x writer load)")
    validate.add_argument("--grid", choices=["issue3", "workloads", "memory_limit"],
                          help="the grid: 'issue3' (default: threads x I/O latency x memory "
                               "pressure x writer rate), 'workloads' (group walks against "
                               "writer threads, as the measurement harness runs them) or "
                               "'memory_limit' (limit / working set 0.1-2 x threads x retry "
                               "window x LRU lists: issue 12)")
    validate.add_argument("--policies", help="comma-separated subset of: " + ", ".join(POLICIES))
    validate.add_argument("--operations", type=OPERATIONS, default=20_000,
                          help="Monte Carlo operations per cell and policy (default 20000)")
    validate.add_argument("--seed", type=SEED, default=0, help="root seed (default 0)")
    validate.add_argument("-o", "--output", help="save the validation dataset (.nc or .zarr; "
                          "a new path in an existing directory)")
    validate.add_argument("--force", action="store_true",
                          help="replace an existing -o output (a file, or a zarr store)")
    validate.add_argument("--no-progress", action="store_true",
                          help="no progress bar on stderr")
    validate.set_defaults(run=cmd_validate)
    for name, (_function, help_text) in DELEGATED.items():
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
