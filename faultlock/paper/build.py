"""``build_paper(outdir)``: sweeps -> figures -> generated LaTeX -> paper.pdf and slides.pdf.

Steps, each resumable (a second run reuses what is there):

1. run or resume the paper's sweeps (:mod:`faultlock.paper.specs`) into ``OUTDIR/stores/``;
2. render every figure in the ``paper`` style (``OUTDIR/figures/paper/``) and the ``slides``
   style (``OUTDIR/figures/slides/``), PNG and PDF, with their captions;
3. write ``OUTDIR/generated/*.tex``: macros (numbers), equations (``model/formulas``), tables
   (policies, the preset, its metrics, Douyin, winners, validation, provenance) and one file per
   figure;
4. copy the hand-written sources (``paper/paper.tex``, ``paper/slides.tex``, ``paper/refs.bib``)
   into ``OUTDIR`` and run ``latexmk`` on both, if TeX is installed; otherwise say which Debian
   packages to install (everything else is still produced).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..outputs import DIRECTORY, check_output, replacing, write_text
from . import tex
from .specs import ROLES, paper_specs

__all__ = ["build_paper", "main_paper", "BuildReport", "TEX_PACKAGES", "sources_dir",
           "tex_available"]

#: Debian/Ubuntu packages that build both documents (the same list as .ci/install-tex.sh)
TEX_PACKAGES = ("latexmk", "texlive-latex-base", "texlive-latex-recommended", "texlive-pictures")
DOCUMENTS = ("paper", "slides")


@dataclass
class BuildReport:
    """What :func:`build_paper` produced."""

    outdir: Path
    stores: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, list[str]] = field(default_factory=dict)
    skipped_figures: dict[str, str] = field(default_factory=dict)
    generated: list[Path] = field(default_factory=list)
    pdfs: dict[str, Path] = field(default_factory=dict)
    tex_missing: str | None = None
    latex_errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.latex_errors

    def summary(self) -> str:
        lines = [f"paper build in {self.outdir}"]
        lines.append("  stores: " + ", ".join(f"{n} ({p.name})" for n, p in self.stores.items()))
        for style, names in self.figures.items():
            lines.append(f"  figures ({style}): {len(names)} in figures/{style}/")
        for name, why in self.skipped_figures.items():
            lines.append(f"  figure not drawn: {name}: {why}")
        lines.append(f"  generated: {len(self.generated)} files in generated/")
        for name, path in self.pdfs.items():
            lines.append(f"  {name}: {path}")
        if self.tex_missing:
            lines.append(self.tex_missing)
        for name, error in self.latex_errors.items():
            lines.append(f"  latexmk failed on {name}.tex: {error}")
        return "\n".join(lines)


def sources_dir() -> Path:
    """The hand-written LaTeX sources (``paper/`` at the top of the source tree)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "paper"
        if (candidate / "paper.tex").is_file() and (candidate / "slides.tex").is_file():
            return candidate
    raise ValueError("faultlock paper: the LaTeX sources (paper/paper.tex, paper/slides.tex) "
                     "are not found next to the package; run from a source checkout "
                     "(pip install -e .) or pass sources=PATH")


def tex_available() -> str | None:
    """None if latexmk and pdflatex are on PATH, else the message saying what to install."""
    missing = [tool for tool in ("latexmk", "pdflatex") if shutil.which(tool) is None]
    if not missing:
        return None
    return ("  TeX is not installed (" + ", ".join(missing) + " not found): every figure and "
            "table is built, the PDFs are not.\n  On Debian/Ubuntu: sudo apt-get install -y "
            "--no-install-recommends " + " ".join(TEX_PACKAGES) + "\n  (or run "
            ".ci/install-tex.sh), then run faultlock paper again.")


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    if progress is not None:
        progress(text)


def build_paper(outdir: str | Path = "paper-build", *, resolution: str = "small",
                workers: int | None = 0, latex: bool = True, sources: str | Path | None = None,
                progress: Callable[[str], None] | None = print,
                show_sweep_progress: bool = False) -> BuildReport:
    """Build the paper and the slides into ``outdir`` (see the module docstring).

    Parameters
    ----------
    outdir : the build directory (created; reused to resume)
    resolution : ``"small"`` (minutes on two cores) or ``"full"`` (the ``lsfmm`` and
        ``validation`` sweeps)
    workers : sweep worker processes (0: in this process; None: one per core)
    latex : run latexmk when TeX is installed
    sources : directory with paper.tex and slides.tex (default: ``paper/`` of the source tree)
    progress : called with one line per step (None: quiet)
    """
    from ..figures.render import render_all
    from ..sweeps import run_sweep

    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"faultlock paper: {out} exists and is not a directory")
    src = Path(sources) if sources is not None else sources_dir()
    if not (src / "paper.tex").is_file():
        raise ValueError(f"faultlock paper: {src}/paper.tex not found")
    (out / "stores").mkdir(parents=True, exist_ok=True)
    report = BuildReport(out)

    # 1. sweeps
    for name, spec in paper_specs(resolution).items():
        store = out / "stores" / f"{name}.zarr"
        started = time.perf_counter()
        _say(progress, f"sweep {name} -> {store}")
        stale = _stale(store, spec)
        if stale:
            _say(progress, f"  {stale}")
        run_sweep(spec, store, workers=workers, resume=True, progress=show_sweep_progress)
        _say(progress, f"  done in {time.perf_counter() - started:.0f} s")
        report.stores[name] = store

    # 2. figures: each figure from the store made for it first, then any other
    trees = {name: xr.open_datatree(str(path), engine="zarr", consolidated=False)
             for name, path in report.stores.items()}
    for style in ("paper", "slides"):
        figdir = out / "figures" / style
        drawn: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        for name, prefixes in ROLES.items():
            if name not in trees:
                continue
            order = [trees[name]] + [t for n, t in trees.items() if n != name]
            r = render_all(order, figdir, style, only=prefixes,
                           progress=(lambda s, st=style: _say(progress, f"  [{st}] {s}")))
            drawn.update(r.figures)
            skipped.update(r.skipped)
        for key in list(skipped):
            if key in drawn:
                del skipped[key]
        write_text(figdir / "figures.json", json.dumps(
            {"style": style, "figures": drawn, "skipped": skipped}, indent=2))
        report.figures[style] = sorted(drawn)
        report.skipped_figures.update(skipped)

    # 3. generated LaTeX
    gen = out / "generated"
    report.generated = write_generated(gen, trees, out / "figures")
    _say(progress, f"generated {len(report.generated)} LaTeX files in {gen}")

    # 4. sources and latexmk
    for path in sorted(src.iterdir()):
        if path.suffix in (".tex", ".bib", ".sty", ".cls") and path.is_file():
            with replacing(out / path.name) as temporary:
                shutil.copy2(path, temporary)
    missing = tex_available()
    if missing:
        report.tex_missing = missing
        _say(progress, missing)
        return report
    if latex:
        for doc in DOCUMENTS:
            _say(progress, f"latexmk {doc}.tex")
            pdf, error = _latexmk(out, doc)
            if pdf is not None:
                report.pdfs[doc] = pdf
            if error:
                report.latex_errors[doc] = error
                _say(progress, f"  failed: {error}")
    return report


def is_paper_build(path: Path) -> bool:
    """A directory an earlier ``faultlock paper`` wrote (its sweep stores live in ``stores/``),
    which a new build resumes."""
    return (path / "stores").is_dir()


def _stale(store: Path, spec) -> str | None:
    """Move aside a store made by another version of the spec (or of the sweep format), so that
    the sweep is computed again instead of mixing results; returns what was done."""
    from ..sweeps import load_spec
    from ..sweeps.store import SweepStore
    attrs = SweepStore(store).attrs()
    if attrs is None or "spec_fingerprint" not in attrs:
        return None
    if attrs["spec_fingerprint"] == load_spec(spec).fingerprint():
        return None
    aside = store.with_name(store.name + f".stale-{time.strftime('%Y%m%d-%H%M%S')}")
    store.rename(aside)
    return f"{store.name} was made by another version of its spec: moved to {aside.name}, " \
        "computing it again"


def _latexmk(out: Path, doc: str) -> tuple[Path | None, str | None]:
    command = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
               f"{doc}.tex"]
    try:
        done = subprocess.run(command, cwd=out, capture_output=True, text=True, timeout=900,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return None, "timed out after 900 s"
    pdf = out / f"{doc}.pdf"
    if done.returncode != 0:
        log = out / f"{doc}.log"
        errors = []
        if log.is_file():
            errors = [line.strip() for line in log.read_text(errors="replace").splitlines()
                      if line.startswith("!") or re.match(r"^\.?/?[^ ]+\.tex:\d+: ", line)]
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
        detail = errors[0] if errors else (tail[0] if tail else "latexmk failed")
        return (pdf if pdf.is_file() else None), f"{detail} (see {log})"
    return pdf, None


# ---- step 3 -----------------------------------------------------------------------------------
def _methods(tree: xr.DataTree) -> dict[str, xr.Dataset]:
    from ..figures.data import methods
    return methods(tree)


def write_generated(gen: Path, trees: dict[str, xr.DataTree], figroot: Path) -> list[Path]:
    """Every generated LaTeX file (see the module docstring); returns their paths."""
    from ..figures.data import base_scenario, describe_selection, select_cell
    from ..figures.style import format_seconds
    from ..measure.douyin import PUBLISHED
    from ..model.policies import POLICIES
    from ..model.scenario import Scenario
    from ..model.formulas import FORMULAS
    from .. import __version__

    written: list[Path] = []
    values: dict[str, str] = {}
    values["FLVersion"] = tex.escape(__version__)
    values["FLPolicyCount"] = str(len(POLICIES))
    values["FLFormulaCount"] = str(len(FORMULAS))
    # published numbers (kernel.md §1.4)
    for policy in ("mainline", "vma_retry"):
        values[tex.macro_name("douyin", "read", "acquisitions", policy)] = \
            tex.fmt_number(PUBLISHED["read_acquisitions"][policy])
        values[tex.macro_name("douyin", "read", "wait", policy)] = \
            tex.fmt_seconds(PUBLISHED["read_wait_mean"][policy])
        values[tex.macro_name("douyin", "write", "wait", policy)] = \
            tex.fmt_seconds(PUBLISHED["write_wait_mean"][policy])
    preset = Scenario.preset("android_warm_start")
    values["FLPresetThreads"] = str(preset.threads)
    values["FLPresetIOLatency"] = tex.fmt_seconds(preset.io_latency)
    values["FLJankThreshold"] = tex.fmt_seconds(preset.jank_threshold)

    # tables that do not need data
    written.append(tex.write(gen / "formulas.tex", tex.formulas_tex()))
    written.append(tex.write(gen / "policies.tex", tex.policies_tex()))
    written.append(tex.write(gen / "policies_tabular.tex", tex.tabular_of(tex.policies_tex())))
    written.append(tex.write(gen / "preset.tex", tex.preset_tex("android_warm_start")))

    # the preset store: metrics and Douyin
    cell_text = ""
    if "paper_preset" in trees:
        res = _methods(trees["paper_preset"])
        base = base_scenario(trees["paper_preset"])
        cells = {}
        chosen = {}
        for m, ds in res.items():
            cells[m], c = select_cell(ds, base=base)
            cells[m] = cells[m].load()
            chosen = chosen or c
        cell_text = "android\\_warm\\_start" if not chosen else \
            "android_warm_start, " + describe_selection(chosen)
        written.append(tex.write(gen / "preset_metrics.tex",
                                 tex.preset_metrics_tex(cells.get("mc"), cells.get("analytic"),
                                                        cell_text)))
        written.append(tex.write(gen / "douyin.tex", tex.douyin_tex(cells.get("mc"))))
        mc = cells.get("mc")
        if mc is not None:
            for policy in [str(p) for p in mc["policy"].values]:
                for metric in ("fault_latency_p99", "mmap_read_wait_mean",
                               "mmap_write_wait_mean", "writer_latency_p99"):
                    if metric in mc:
                        values[tex.macro_name("preset", metric, policy)] = tex.fmt_seconds(
                            float(mc[metric].sel(policy=policy)))
                if "jank_share" in mc:
                    values[tex.macro_name("preset", "jank", policy)] = tex.fmt_number(
                        float(mc["jank_share"].sel(policy=policy)), "%")
                if "mmap_read_rate" in mc:
                    values[tex.macro_name("preset", "read", "rate", policy)] = tex.fmt_number(
                        float(mc["mmap_read_rate"].sel(policy=policy)))
    else:
        written.append(tex.write(gen / "preset_metrics.tex", "% no paper_preset store\n"))
        written.append(tex.write(gen / "douyin.tex", tex.douyin_tex(None)))

    # the grid store: winners, validation
    if "paper_grid" in trees:
        tree = trees["paper_grid"]
        res = _methods(tree)
        policies = [str(p) for p in tree.attrs.get("policies", POLICIES)]
        objectives = dict(tree.attrs.get("objectives", {}))
        written.append(tex.write(gen / "winners.tex",
                                 tex.winners_tex(res, objectives, policies)))
        from ..sweeps.winners import winner_shares
        for method, ds in res.items():
            for objective in objectives:
                name = f"winner_{objective}"
                if name not in ds:
                    continue
                shares = winner_shares(ds[name].load(), policies)
                decided = {p: shares.get(p, 0.0) for p in policies}
                best = max(decided, key=decided.get)
                values[tex.macro_name("wins", objective, method, "best")] = tex.code(best)
                values[tex.macro_name("wins", objective, method, "best", "share")] = \
                    f"{100 * decided[best]:.0f}\\,\\%"
                values[tex.macro_name("wins", objective, method, "undecided")] = \
                    f"{100 * shares.get('undecided', 0.0):.0f}\\,\\%"
                values[tex.macro_name("wins", objective, method, "tie")] = \
                    f"{100 * shares.get('tie', 0.0):.0f}\\,\\%"
                for p in policies:
                    values[tex.macro_name("wins", objective, method, p)] = \
                        f"{100 * shares.get(p, 0.0):.0f}\\,\\%"
        if "mc" in res and "analytic" in res:
            from ..figures.validation import paired
            from ..model.validation import compare, summary
            mc, an = paired(tree)
            mc, an = mc.load(), an.load()
            table = summary(compare(an, mc))
            written.append(tex.write(gen / "validation.tex", tex.validation_tex(table)))
            if "fault_latency_mean" in table.index:
                r = table.loc["fault_latency_mean"]
                values["FLValidationMeanLatencyAgree"] = f"{100 * r['agree']:.0f}\\,\\%"
                values["FLValidationMeanLatencyMedianError"] = \
                    f"{100 * r['median_abs_rel_error']:.0f}\\,\\%"
            values["FLValidationCells"] = str(int(np.prod([mc.sizes[d] for d in mc.dims
                                                            if d not in ("policy", "latency_bin",
                                                                         "wait_bin")])))
        else:
            written.append(tex.write(gen / "validation.tex", "% no paired solvers\n"))
        values["FLGridCellsMC"] = str(int(np.prod([res["mc"].sizes[d] for d in res["mc"].dims
                                                   if d not in ("policy", "latency_bin",
                                                                "wait_bin", "seed_word")])))\
            if "mc" in res else "0"
        values["FLGridCellsAnalytic"] = str(int(np.prod(
            [res["analytic"].sizes[d] for d in res["analytic"].dims
             if d not in ("policy", "latency_bin", "wait_bin")]))) if "analytic" in res else "0"
        run = tree.attrs.get("spec", {}).get("mc", {})
        values["FLGridOperations"] = tex.fmt_number(run.get("operations", float("nan")))
    else:
        for name in ("winners", "validation"):
            written.append(tex.write(gen / f"{name}.tex", "% no paper_grid store\n"))

    written.append(tex.write(gen / "provenance.tex", tex.provenance_tex(
        {name: dict(tree.attrs) for name, tree in trees.items()})))
    values["FLGitRevision"] = tex.escape(str(next(iter(trees.values())).attrs.get(
        "git_revision", "unknown"))[:12]) if trees else "unknown"

    # figures: one file per figure and style
    for style in ("paper", "slides"):
        index = figroot / style / "figures.json"
        if not index.is_file():
            continue
        listing = json.loads(index.read_text())["figures"]
        for name, info in listing.items():
            pdf = f"figures/{style}/{name}.pdf"
            if style == "paper":
                body = tex.figure_tex(name, pdf, info["caption"])
            else:
                # the figure carries its own one-sentence title: no frame title
                body = ("\\begin{frame}\n\\centering\\includegraphics[width=\\textwidth,"
                        "height=0.95\\textheight,keepaspectratio]{" + pdf + "}\n\\end{frame}\n")
            written.append(tex.write(gen / style / f"{name}.tex", body))
            values[tex.macro_name("caption", name)] = tex.escape(info["caption"])
    written.append(tex.write(gen / "macros.tex", tex.macros(values)))
    _ = format_seconds
    return written


# ---- the command ----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ValueError(f"{self.prog}: {message}")


def paper_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faultlock paper",
                     description="Run (or resume) the paper's sweeps, render every figure, "
                                 "generate the equations and tables, and build paper.pdf and "
                                 "slides.pdf with latexmk (when TeX is installed).")
    parser.add_argument("-o", "--output", metavar="DIR", default="paper-build",
                        help="build directory, in an existing directory; an earlier build there "
                             "is resumed (default: ./paper-build)")
    parser.add_argument("--force", action="store_true",
                        help="build into an existing, non-empty DIR that is not a paper build")
    parser.add_argument("--resolution", choices=("small", "full"), default="small",
                        help="small: minutes on two cores (default); full: the lsfmm and "
                             "validation sweeps")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="sweep worker processes (default 0: in this process)")
    parser.add_argument("--no-latex", action="store_true",
                        help="do not run latexmk (figures and tables only)")
    parser.add_argument("--sources", metavar="DIR",
                        help="directory with paper.tex and slides.tex (default: paper/)")
    parser.add_argument("--require-pdf", action="store_true",
                        help="exit 1 unless paper.pdf and slides.pdf were built (for CI)")
    return parser


def main_paper(argv: Sequence[str] | None = None) -> int:
    """``faultlock paper [-o DIR]``: 0 when every requested PDF was built (or TeX is absent and
    everything else was), 1 when latexmk failed (or, with ``--require-pdf``, when a PDF is
    missing). Raises ValueError for bad arguments."""
    args = paper_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.workers < 0:
        raise ValueError(f"faultlock paper: --workers {args.workers} is not allowed: 0 or more")
    out = Path(args.output)
    check_output(out, DIRECTORY, option="faultlock paper: -o", force=args.force,
                 reuse=is_paper_build(out))
    report = build_paper(args.output, resolution=args.resolution,
                         workers=args.workers or 0, latex=not args.no_latex,
                         sources=args.sources,
                         progress=lambda s: print(s, file=sys.stderr, flush=True))
    print(report.summary())
    if args.require_pdf and set(report.pdfs) != set(DOCUMENTS):
        return 1
    return 0 if report.ok else 1
