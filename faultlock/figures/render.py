"""Render every figure a set of datasets can give, as PNG and PDF: ``faultlock figures``.

:func:`render_all` takes one source or several (sweep stores, datasets); each figure is drawn from
the first source that has what it needs, and the figures no source can give are reported with the
reason (e.g. the validation figures need a sweep with both solvers). Next to each figure it writes
``<name>.txt`` (title and caption) and, for the whole set, ``figures.json`` (name, files, caption,
source), which the paper builder reads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..outputs import DIRECTORY, check_output, replacing, write_text
from .amplification import refault_amplification, writer_cost
from .common import caption_of, title_of
from .data import FigureDataError, open_data
from .history import history
from .latency import latency_vs_threads
from .style import STYLES, get_style
from .validation import validation_error_map, validation_scatter
from .waits import wait_histograms
from .winners import objectives_of, winner_map

__all__ = ["FIGURES", "RenderReport", "figure_specs", "main_figures", "render_all"]


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the set: a file stem, the function and its keyword arguments."""

    name: str
    number: int
    function: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    headline: bool = False   # in the slide deck


#: the figure families, in the order of issue 5 (winner maps are added per objective and solver)
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig2_latency_vs_threads", 2, latency_vs_threads, headline=True),
    FigureSpec("fig3_wait_histograms", 3, wait_histograms, headline=True),
    FigureSpec("fig4_refault_amplification", 4, refault_amplification, headline=True),
    FigureSpec("fig5_writer_cost", 5, writer_cost, headline=True),
    FigureSpec("fig6a_validation_scatter", 6, validation_scatter),
    FigureSpec("fig6b_validation_error_map", 6, validation_error_map),
    FigureSpec("fig7_history", 7, history, headline=True),
)


def figure_specs(sources: Sequence[Any]) -> list[FigureSpec]:
    """The figure set for these sources: a winner map per objective and solver, then the rest."""
    specs: list[FigureSpec] = []
    seen: set[str] = set()
    for data in sources:
        from .data import methods
        results = methods(data)
        for objective in objectives_of(data):
            for method in ("mc", "analytic"):
                if method in results and f"winner_{objective}" in results[method]:
                    name = f"fig1_winners_{objective}_{method}"
                    if name not in seen:
                        seen.add(name)
                        specs.append(FigureSpec(name, 1, winner_map,
                                                {"objective": objective, "method": method},
                                                headline=objective == "fault_p99"))
    if not specs:  # no stored winner maps: computed from the metrics, if the data allows
        specs.append(FigureSpec("fig1_winners_fault_p99", 1, winner_map,
                                {"objective": "fault_p99"}, headline=True))
    return specs + list(FIGURES)


@dataclass
class RenderReport:
    """What :func:`render_all` did: the files of each figure, and the figures it could not draw."""

    outdir: Path
    style: str
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.figures)} figures ({self.style} style) in {self.outdir}"]
        for name, info in self.figures.items():
            lines.append(f"  {name}: {', '.join(Path(f).name for f in info['files'])}")
        for name, why in self.skipped.items():
            lines.append(f"  skipped {name}: {why}")
        return "\n".join(lines)


def _label(source: Any, index: int) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"source {index}"


def render_all(store_or_dataset: Any, outdir: str | Path, style: str = "slides", *,
               formats: Sequence[str] = ("png", "pdf"), only: Sequence[str] | None = None,
               progress: Callable[[str], None] | None = None) -> RenderReport:
    """Render every figure the data can give into ``outdir`` (PNG and PDF, plus captions).

    Parameters
    ----------
    store_or_dataset : a sweep store path, a dataset path (.nc/.zarr), an xarray Dataset or
        DataTree, or a list of them (each figure from the first source that can give it)
    outdir : directory to write (created, with its parents: this is the library call; the
        ``faultlock figures`` command checks its ``-o`` first, see :mod:`faultlock.outputs`).
        Every file is written under a temporary name and renamed into place
    style : ``"slides"`` or ``"paper"``
    formats : file formats (``png``, ``pdf``, ``svg``, ``pgf``)
    only : render only the figures whose names start with one of these
    progress : called with one line per figure, as it is written or skipped
        (``[3/14] fig1_winner_fault_p99_mc: ... (2.1 s)``), and one before the first
    """
    st = get_style(style)
    raw = store_or_dataset if isinstance(store_or_dataset, (list, tuple)) else [store_or_dataset]
    if not raw:
        raise ValueError("store_or_dataset=[] is not allowed: at least one store or dataset")
    sources = [open_data(s) for s in raw]
    labels = [_label(s, i) for i, s in enumerate(raw)]
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg", "pgf"):
            raise ValueError(f"format={fmt!r} is not allowed: png, pdf, svg or pgf")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    report = RenderReport(out, st.name)
    specs = figure_specs(sources)
    if only:
        specs = [s for s in specs if any(s.name.startswith(o) for o in only)]
    if progress:
        progress(f"figures: {len(specs)} to render from {len(sources)} source"
                 f"{'s' if len(sources) != 1 else ''} into {out} ({st.name} style)")
    for number, spec in enumerate(specs, 1):
        started = time.perf_counter()
        counter = f"[{number}/{len(specs)}]"
        reasons = []
        for data, label in zip(sources, labels):
            try:
                fig = spec.function(data, st.name, **spec.kwargs)
            except FigureDataError as exc:
                reasons.append(f"{label}: {exc}")
                continue
            files = []
            for fmt in formats:
                path = out / f"{spec.name}.{fmt}"
                with replacing(path) as temporary:  # never half an image
                    fig.savefig(temporary, dpi=st.dpi, format=fmt,
                                metadata=_metadata(fmt, title_of(fig)))
                files.append(str(path))
            caption = caption_of(fig)
            write_text(out / f"{spec.name}.txt", f"{title_of(fig)}\n\n{caption}\n")
            report.figures[spec.name] = {"files": files, "title": title_of(fig),
                                         "caption": caption, "source": label,
                                         "number": spec.number, "headline": spec.headline}
            if progress:
                progress(f"{counter} {spec.name}: {', '.join(Path(f).name for f in files)} "
                         f"({time.perf_counter() - started:.1f} s)")
            break
        else:
            report.skipped[spec.name] = "; ".join(reasons) or "no source"
            if progress:
                progress(f"{counter} {spec.name}: skipped ({report.skipped[spec.name]})")
    write_text(out / "figures.json", json.dumps(
        {"style": st.name, "figures": report.figures, "skipped": report.skipped}, indent=2))
    return report


def _metadata(fmt: str, title: str) -> dict[str, str] | None:
    from .. import __version__
    if fmt == "png":
        return {"Title": title, "Software": f"faultlock {__version__}"}
    if fmt in ("pdf", "svg"):
        return {"Title": title, "Creator": f"faultlock {__version__}"}
    return None


# ---- the command ----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # the CLI prints the message and exits 2
        raise ValueError(f"{self.prog}: {message}")


def figures_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faultlock figures",
                     description="Render the figures of one or more sweep stores (or datasets) "
                                 "as PNG and PDF, with a caption file per figure.")
    parser.add_argument("stores", nargs="+", metavar="STORE",
                        help="sweep store(s) written by faultlock sweep, or .nc/.zarr datasets; "
                             "each figure comes from the first that can give it")
    parser.add_argument("-o", "--output", metavar="DIR", default="figures",
                        help="directory to write: new, or empty, in an existing directory "
                             "(default: ./figures)")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing, non-empty DIR (files of the same names "
                             "are replaced; others are left)")
    parser.add_argument("--style", default="slides", choices=list(STYLES),
                        help="slides: 16:9, large type; paper: one column (default: slides)")
    parser.add_argument("--format", dest="formats", action="append", metavar="FMT",
                        help="file format, repeatable (default: png and pdf)")
    parser.add_argument("--only", action="append", metavar="PREFIX",
                        help="only figures whose names start with PREFIX (e.g. fig1)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no line per figure on stderr")
    return parser


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main_figures(argv: Sequence[str] | None = None) -> int:
    """``faultlock figures STORE [STORE...] -o DIR --style slides|paper``.

    Prints what it wrote and which figures the data cannot give; returns 0 if at least one
    figure was written, 1 if none. Raises ValueError for bad arguments or unreadable stores.
    """
    args = figures_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    for store in args.stores:
        if not Path(store).exists():
            raise ValueError(f"faultlock figures: {store}: no such store or dataset")
    check_output(args.output, DIRECTORY, option="faultlock figures: -o", force=args.force)
    report = render_all(args.stores, args.output, args.style,
                        formats=tuple(args.formats or ("png", "pdf")), only=args.only,
                        progress=None if args.no_progress else _stderr_line)
    print(report.summary())
    return 0 if report.figures else 1


