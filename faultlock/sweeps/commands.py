"""The ``faultlock sweep`` and ``faultlock show`` commands, for ``faultlock/cli.py`` to call.

Both take ``argv`` (without the command name), print to stdout, return an exit code, and raise
ValueError (SpecError, StoreError) for bad input, so the CLI can print the message and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .run import SweepIncomplete, run_sweep
from .spec import list_specs
from .summary import show

__all__ = ["main_show", "main_sweep", "show_parser", "sweep_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit; the CLI decides
        raise ValueError(f"{self.prog}: {message}")


def sweep_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="faultlock sweep",
        description="Run a sweep spec (a shipped name or a TOML file) into a zarr store, on a "
                    "local Dask cluster (one process per core) or an existing one.")
    parser.add_argument("spec", nargs="?", help="shipped spec name (see --list) or a .toml path")
    parser.add_argument("-o", "--output", metavar="STORE",
                        help="zarr store to write: a new path ending in .zarr, in an existing "
                             "directory")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: one per core; 0: no Dask)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--resume", action="store_true",
                        help="continue an existing store, skipping cells already done")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing zarr store at STORE (start the sweep again)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the shipped specs and exit")
    return parser


def show_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faultlock show", description="Summarise a sweep store.")
    parser.add_argument("store", help="a zarr store written by faultlock sweep")
    return parser


def main_sweep(argv: Sequence[str] | None = None) -> int:
    """``faultlock sweep SPEC -o STORE [--workers N] [--scheduler ADDR] [--resume]``,
    ``faultlock sweep --list``. Returns 0, or 1 if some cells failed (resumable)."""
    args = sweep_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.list:
        specs = list_specs()
        width = max(map(len, specs), default=0)
        for name, description in specs.items():
            print(f"{name:<{width}}  {description}")
        return 0
    if not args.spec:
        raise ValueError("faultlock sweep: a SPEC is required (a shipped name from --list, or a "
                         ".toml path)")
    if not args.output:
        raise ValueError("faultlock sweep: -o STORE is required (the zarr store to write)")
    try:
        run_sweep(args.spec, args.output, workers=args.workers, scheduler=args.scheduler,
                  resume=args.resume, progress=not args.no_progress, force=args.force,
                  option="-o/--output")
    except SweepIncomplete as exc:
        print(str(exc), file=sys.stderr)
        print(show(args.output))
        return 1
    print(show(args.output))
    return 0


def main_show(argv: Sequence[str] | None = None) -> int:
    """``faultlock show STORE``."""
    args = show_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    print(show(args.store), end="")
    return 0
