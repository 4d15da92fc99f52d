"""Figures, the figures command and the paper's generated LaTeX, from real (tiny) sweep stores.

Content, not pixels: every figure in both styles names every policy in its legend, labels its axes
with units, has no empty panel, and carries a title and a caption; figures the data cannot give
say what is missing. The stores are real sweeps (the shipped ``smoke`` spec, and a tiny spec with
every axis the figures use and both solvers), computed once per session.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from faultlock import POLICIES
from faultlock.figures import (
    FigureDataError,
    caption_of,
    history,
    latency_vs_threads,
    main_figures,
    open_data,
    refault_amplification,
    render_all,
    title_of,
    validation_error_map,
    validation_scatter,
    wait_histograms,
    winner_map,
    writer_cost,
)
from faultlock.figures.common import subtitle_of
from faultlock.figures.layout import text_collisions
from faultlock.figures.style import POLICY_COLOURS, POLICY_MARKERS, STYLES, get_style
from faultlock.figures.winners import FACET_LABEL_GID
from faultlock.sweeps import run_sweep

# Every axis the figures use, both solvers, every policy; runs of a few hundred faults.
TINY_ALL_AXES = """
description = "figure tests: every axis, both solvers, all policies, very short runs"
method = "both"
policies = "all"
seed = 5

[base]
preset = "android_warm_start"

[grid]
threads = { pow2 = [1, 16], step = 2 }
io_latency = ["200us", "5ms"]

[grid.memory_pressure]
levels.none = { reclaim_rate_cached = "0/s", reclaim_rate_mapped = "0/s" }
levels.severe = { reclaim_rate_cached = "5000/s", reclaim_rate_mapped = "50/s" }

[grid.writer_load]
levels.light = { writer_rate = "100/s", writer_fork_share = 0.0 }
levels.forks = { writer_rate = "350/s", writer_fork_share = 0.3 }

[mc]
operations = 300
batches = 5
chunk_cells = 6

[analytic]
chunk_cells = 24
"""

# The android_warm_start preset itself (the conditions of Douyin's numbers), very short runs.
PRESET_ONLY = """
description = "figure tests: the android_warm_start preset, both solvers, very short runs"
method = "both"
policies = "all"
seed = 7

[base]
preset = "android_warm_start"

[grid]
threads = [300]

[mc]
operations = 300
batches = 5
chunk_cells = 1

[analytic]
chunk_cells = 1
"""

FIGURE_FUNCTIONS = {
    "winner_map": winner_map,
    "latency_vs_threads": latency_vs_threads,
    "wait_histograms": wait_histograms,
    "refault_amplification": refault_amplification,
    "writer_cost": writer_cost,
    "validation_scatter": validation_scatter,
    "validation_error_map": validation_error_map,
    "history": history,
}
UNIT = re.compile(r"\(([^()]*)\)\s*$")


@pytest.fixture(scope="session")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("figure-stores")
    spec = root / "tiny_all_axes.toml"
    spec.write_text(TINY_ALL_AXES)
    run_sweep(spec, root / "all_axes.zarr", workers=0, progress=False)
    run_sweep("smoke", root / "smoke.zarr", workers=0, progress=False)
    preset = root / "preset.toml"
    preset.write_text(PRESET_ONLY)
    run_sweep(preset, root / "preset.zarr", workers=0, progress=False)
    return {"all_axes": root / "all_axes.zarr", "smoke": root / "smoke.zarr",
            "preset": root / "preset.zarr"}


@pytest.fixture(scope="session")
def preset_store(stores):
    return open_data(stores["preset"])


@pytest.fixture(scope="session")
def all_axes(stores):
    return open_data(stores["all_axes"])


@pytest.fixture(scope="session")
def smoke(stores):
    return open_data(stores["smoke"])


# ---- content checks ---------------------------------------------------------------------------
def legend_texts(fig: Figure) -> set[str]:
    texts = set()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    for legend in legends:
        texts |= {t.get_text() for t in legend.get_texts()}
    return texts


def has_data(ax) -> bool:
    """Something drawn from data: a line with finite points, a filled collection, bars, a mesh."""
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if y.size and np.isfinite(y).any():
            return True
    for coll in ax.collections:
        if isinstance(coll, Collection) and len(coll.get_paths()) > 0:
            arr = coll.get_array()
            if arr is None or np.isfinite(np.asarray(arr, dtype=float)).any():
                return True
    if any(isinstance(p, Rectangle) and p.get_height() > 0 for p in ax.patches):
        return True
    return any(isinstance(i, AxesImage) for i in ax.images)


def check_figure(fig: Figure, policies, style: str) -> None:
    assert isinstance(fig, Figure)
    assert title_of(fig) and fig._suptitle is not None and fig._suptitle.get_text()
    assert len(caption_of(fig)) > len(title_of(fig)), "the caption says more than the title"
    # the key: legend entries, or panel titles where each panel is one policy (the error map)
    named = legend_texts(fig) | {ax.get_title() for ax in fig.axes}
    missing = set(policies) - named
    assert not missing, f"policies missing from the legend: {missing}"
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison
              and ax.get_label() != "<colorbar>"]
    assert panels
    for ax in panels:
        assert has_data(ax), f"empty panel: {ax.get_title()!r}"
    xlabels = [ax.get_xlabel() for ax in panels if ax.get_xlabel()]
    ylabels = [ax.get_ylabel() for ax in panels if ax.get_ylabel()
               and ax.yaxis.label.get_gid() != FACET_LABEL_GID]     # row facets: level names
    sup = getattr(fig, "_supylabel", None)
    if sup is not None and sup.get_text():
        ylabels.append(sup.get_text())
    assert xlabels and ylabels, "axes without labels"
    for label in xlabels + ylabels:
        assert UNIT.search(label), f"axis label without a unit in parentheses: {label!r}"
    problems = text_collisions(fig)
    assert not problems, "text that cannot be read:\n" + "\n".join(problems[:10])
    width, height = fig.get_size_inches()
    if style == "slides":
        assert abs(width / height - 16 / 9) < 0.01
        assert get_style(style).font_size >= 16
    else:
        assert width <= 3.5


# ---- every figure, both styles ----------------------------------------------------------------
@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("name", sorted(FIGURE_FUNCTIONS))
def test_every_figure_from_a_store_with_every_axis(all_axes, name, style):
    fig = FIGURE_FUNCTIONS[name](all_axes, style)
    check_figure(fig, POLICIES, style)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_smoke_store_gives_what_its_axes_allow(smoke, style):
    """The smoke sweep (threads x I/O latency, three policies) gives the winner maps, latency
    versus threads, the histograms, the history and, when it has both solvers, the validation
    figures; the figures that need a memory-pressure or fork-share axis say so."""
    policies = [str(p) for p in smoke.attrs["policies"]]
    drawable = [winner_map, latency_vs_threads, wait_histograms, history]
    validation = [validation_scatter, validation_error_map]
    both = {"mc", "analytic"} <= set(smoke.children)
    for function in drawable + (validation if both else []):
        check_figure(function(smoke, style), policies, style)
    refused = [(refault_amplification, "memory-pressure"), (writer_cost, "writer_fork_share")]
    refused += [] if both else [(f, "both solvers") for f in validation]
    for function, needs in refused:
        with pytest.raises(FigureDataError, match=needs):
            function(smoke, style)


def test_winner_map_hatches_undecided_cells_and_marks_every_objective(all_axes):
    from faultlock.figures.winners import objectives_of
    names = objectives_of(all_axes)
    assert names[0] == "fault_p99" and "fault_p99_bounded_writer" in names
    tree_mc = all_axes["mc"].to_dataset()
    undecided = int((tree_mc["winner_fault_p99"] == -1).sum())
    fig = winner_map(all_axes, "slides", objective="fault_p99", method="mc")
    hatched = sum(len(c.get_paths()) for ax in fig.axes for c in ax.collections
                  if c.get_hatch())
    assert hatched == undecided
    assert any("undecided" in t for t in legend_texts(fig))
    fig = winner_map(all_axes, "paper", objective="jank", method="analytic")
    assert "analytic" in caption_of(fig)


def test_policy_colours_and_markers_are_fixed_and_distinct():
    assert set(POLICY_COLOURS) == set(POLICIES) == set(POLICY_MARKERS)
    assert len(set(POLICY_COLOURS.values())) == len(POLICIES)
    assert len(set(POLICY_MARKERS.values())) == len(POLICIES)


def test_the_same_policy_has_the_same_colour_in_every_figure(all_axes):
    colours = {}
    for name in ("latency_vs_threads", "history", "writer_cost"):
        fig = FIGURE_FUNCTIONS[name](all_axes, "paper")
        for legend in fig.legends:
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                if text.get_text() in POLICIES and isinstance(handle, Line2D):
                    colours.setdefault(text.get_text(), set()).add(handle.get_color())
    assert all(len(c) == 1 for c in colours.values()) and len(colours) == len(POLICIES)


def stars_of(fig):
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_marker() == "*"]


def test_douyin_numbers_only_beside_the_cell_they_were_measured_in(all_axes, preset_store):
    """Douyin's published waits are for the android_warm_start preset: beside the model at that
    preset (read and write panels x mainline before, vma_retry after), and left out, with the
    reason on the figure, for a grid cell that is not the preset (1-16 threads here, not 300)."""
    fig = wait_histograms(preset_store, "slides")
    assert len(stars_of(fig)) == 4
    assert "at the android_warm_start preset" in title_of(fig)
    fig = wait_histograms(all_axes, "slides")
    assert stars_of(fig) == []
    assert "nearest the android_warm_start preset" in title_of(fig)
    assert "threads 16 vs 300" in subtitle_of(fig) and "not shown" in subtitle_of(fig)
    assert len(stars_of(wait_histograms(all_axes, "paper", published=True))) == 4


def test_history_names_the_cell_it_shows(all_axes, preset_store):
    assert "History: the android_warm_start preset" in title_of(history(preset_store, "paper"))
    fig = history(all_axes, "paper", select={"threads": 4})
    assert "the grid cell nearest the android_warm_start preset" in title_of(fig)
    assert "threads 4 vs 300" in subtitle_of(fig)


def test_winner_map_star_only_in_the_panel_holding_the_base_scenario(all_axes):
    """The tiny store holds neither the preset's 300 threads nor its reclaim rates (525/s,
    0.5/s): no star, and the subtitle says why; a map whose levels hold it has one star."""
    def stars(fig):
        return [ax for ax in fig.axes for line in ax.get_lines() if line.get_marker() == "*"]
    fig = winner_map(all_axes, "slides", objective="fault_p99", method="analytic")
    assert stars(fig) == [] and "no star" not in subtitle_of(fig) \
        and "lies outside the threads x I/O latency range" in subtitle_of(fig)
    tree = all_axes.copy()
    base = dict(tree.attrs["base_scenario"])
    base.update(reclaim="hazard",
                reclaim_rate_cached=5000.0, reclaim_rate_mapped=50.0, writer_rate=350.0,
                writer_fork_share=0.3, threads=8, io_latency=1e-3)
    tree.attrs["base_scenario"] = base
    fig = winner_map(tree, "paper", objective="fault_p99", method="analytic")
    starred = stars(fig)
    # row severe (2nd), column forks (2nd) of the 2 x 2 grid
    assert len(starred) == 1 and starred[0] is fig.axes[3]
    assert "severe" in fig.axes[2].get_ylabel() and "forks" in fig.axes[1].get_title()


def test_unstable_analytic_values_are_marked_not_drawn():
    """An analytic curve that is unstable past 64 threads and absurd (1e5 s, 'stable') at 128
    is drawn only where it is stable and below the ceiling; the y axis stays near the data."""
    import xarray as xr
    threads = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256])
    p99 = np.array([1e-3, 1.1e-3, 1.2e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 1e5, np.inf])
    stable = np.array([True] * 8 + [False])
    ds = xr.Dataset(
        {"fault_latency_p50": (("threads", "policy"), np.c_[p99 / 3, p99 / 3]),
         "fault_latency_p99": (("threads", "policy"), np.c_[p99, p99 * 0.9]),
         "stable": (("threads", "policy"), np.c_[stable, stable])},
        coords={"threads": threads, "policy": ["mainline", "vma_retry"]},
        attrs={"solver": "analytic"})
    for style in STYLES:
        fig = latency_vs_threads(ds, style)
        for ax in fig.axes:
            _low, high = ax.get_ylim()
            assert high < 1.0, f"y axis runs to {high} s"
            for line in ax.get_lines():
                y = np.asarray(line.get_ydata(), dtype=float)
                if line.get_linestyle() == "-" and y.size == threads.size:
                    assert np.isnan(y[-2:]).all() and np.isfinite(y[:-2]).all()
        triangles = [line for ax in fig.axes for line in ax.get_lines()
                     if line.get_marker() == "^"]
        assert triangles, "unstable and off-scale points are marked"
        assert "unstable" in caption_of(fig) and "above 10" in caption_of(fig)


def test_text_checker_finds_overlaps_and_cut_off_text():
    """The checker itself: two texts on one spot overlap; turned labels a strip apart do not;
    text past the right edge is cut off."""
    def fig_with(*texts, layout="constrained"):
        fig = Figure(figsize=(3, 2), layout=layout)   # constrained layout makes room for text
        ax = fig.subplots()
        ax.set_axis_off()
        for x, text, angle in texts:
            ax.text(x, 0.5, text, rotation=angle)
        return fig
    assert any("overlap" in p for p in text_collisions(
        fig_with((0.3, "hello world", 0), (0.32, "other text", 0))))
    assert text_collisions(fig_with((0.1, "hello world", 35), (0.3, "other text", 35))) == []
    assert any("overlap" in p for p in text_collisions(
        fig_with((0.1, "hello world", 35), (0.13, "other text", 35))))
    assert any("cut off" in p for p in text_collisions(
        fig_with((0.9, "runs past the right edge", 0), layout=None)))


def test_bad_input_is_a_clear_error(all_axes):
    with pytest.raises(ValueError, match="style='poster' is not allowed"):
        latency_vs_threads(all_axes, "poster")
    with pytest.raises(ValueError, match="select memory_pressure='extreme'"):
        latency_vs_threads(all_axes, "paper", select={"memory_pressure": "extreme"})
    with pytest.raises(ValueError, match="not allowed"):
        open_data(42)


# ---- render_all and the command --------------------------------------------------------------
def test_render_all_writes_png_pdf_and_captions(stores, tmp_path):
    report = render_all([stores["smoke"], stores["all_axes"]], tmp_path, "slides",
                        only=["fig2", "fig7", "fig5"])
    assert set(report.figures) == {"fig2_latency_vs_threads", "fig5_writer_cost",
                                   "fig7_history"}
    # each figure from the first source that can give it: the smoke store for fig2 and fig7
    assert report.figures["fig2_latency_vs_threads"]["source"].endswith("smoke.zarr")
    assert report.figures["fig5_writer_cost"]["source"].endswith("all_axes.zarr")
    for name in report.figures:
        for suffix in (".png", ".pdf", ".txt"):
            assert (tmp_path / f"{name}{suffix}").stat().st_size > 0
    assert (tmp_path / "fig7_history.pdf").read_bytes().startswith(b"%PDF")
    listing = json.loads((tmp_path / "figures.json").read_text())
    assert listing["style"] == "slides" and set(listing["figures"]) == set(report.figures)


def test_main_figures_command(stores, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main_figures([str(stores["smoke"]), "-o", str(out), "--style", "paper",
                         "--only", "fig1_winners_fault_p99", "--format", "png"]) == 0
    assert (out / "fig1_winners_fault_p99_mc.png").is_file()
    captured = capsys.readouterr()
    assert "fig1_winners_fault_p99_mc" in captured.out
    # progress on stderr: a line before the first figure, then one per figure, counted
    lines = captured.err.splitlines()
    assert lines[0].startswith("figures: ") and lines[0].endswith("(paper style)")
    total = int(lines[0].split()[1])
    assert len(lines) == 1 + total and lines[1].startswith(f"[1/{total}] fig1_winners")
    assert main_figures([str(stores["smoke"]), "-o", str(out), "--force", "--only", "fig1",
                         "--format", "png", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="invalid choice: 'poster'"):
        main_figures([str(stores["smoke"]), "--style", "poster"])
    with pytest.raises(ValueError, match="no such store"):
        main_figures([str(tmp_path / "missing.zarr")])
    with pytest.raises(ValueError, match="the following arguments are required"):
        main_figures([])


# ---- the paper's generated LaTeX ---------------------------------------------------------------
def test_generated_latex_comes_from_the_code_and_the_stores(stores, tmp_path):
    import xarray as xr

    from faultlock.model.formulas import FORMULAS
    from faultlock.paper.build import write_generated
    from faultlock.paper.tex import escape, macro_name

    tree = xr.open_datatree(str(stores["all_axes"]), engine="zarr", consolidated=False)
    figroot = tmp_path / "figures"
    render_all(tree, figroot / "paper", "paper", formats=("pdf",), only=["fig2"])
    gen = tmp_path / "generated"
    write_generated(gen, {"paper_grid": tree, "paper_preset": tree}, figroot)
    formulas = (gen / "formulas.tex").read_text()
    for name, formula in FORMULAS.items():
        assert f"\\label{{eq:{name}}}" in formulas
        assert formula.latex(with_condition=True) in formulas
    macros = (gen / "macros.tex").read_text()
    assert "\\newcommand{\\FLDouyinReadWaitMainline}{534\\,\\ensuremath{\\mu}s}" in macros
    assert "\\" + macro_name("wins", "fault_p99", "mc", "best") + "}" in macros
    for name in ("policies", "preset", "preset_metrics", "douyin", "winners", "validation",
                 "provenance"):
        text = (gen / f"{name}.tex").read_text()
        assert "\\begin{tabular}" in text, name
    assert "fig:fig2_latency_vs_threads" in (gen / "paper" / "fig2_latency_vs_threads.tex"
                                             ).read_text()
    assert escape("50 µs ≥ 1 %_x") == "50 \\ensuremath{\\mu}s $\\geq$ 1 \\%\\_x"


def test_paper_command_rejects_bad_input():
    from faultlock.paper import main_paper
    with pytest.raises(ValueError, match="invalid choice: 'huge'"):
        main_paper(["--resolution", "huge"])
    with pytest.raises(ValueError, match="--workers -1 is not allowed"):
        main_paper(["--workers", "-1"])
