"""Whether a figure's text can be read: no two labels overlap and none is cut off at the edge.

Matplotlib places tick labels, facet titles and legends where it is told, overlapping or not;
constrained layout makes room for them but does not thin ticks or stop a long facet label from
running into the next panel's. :func:`text_collisions` draws the figure with the Agg renderer
and compares the window extent (in pixels) of every text that is drawn: tick labels inside the
view limits, axis labels, titles, the suptitle, legend entries and annotations. The figure tests
use it on every figure in both styles; :func:`faultlock.figures.render_all` reports what it
finds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedFormatter, FixedLocator

__all__ = ["TextBox", "drawn_texts", "fit_tick_labels", "text_collisions"]


@dataclass(frozen=True)
class TextBox:
    """One drawn text and its extent in display pixels (x0, y0, x1, y1)."""

    text: str
    extent: tuple[float, float, float, float]
    owner: str   # what the text belongs to: "tick", "legend", "title", "label", "text"

    def __str__(self) -> str:
        x0, y0, x1, y1 = self.extent
        return f"{self.text!r} ({self.owner}, x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px)"


def _tick_labels(axis: Axis) -> Iterator[Text]:
    """The labels of the ticks the axis draws (those inside its view interval)."""
    for tick in axis._update_ticks():
        yield from (tick.label1, tick.label2)


def drawn_texts(fig: Figure, draw: bool = True) -> list[TextBox]:
    """Every non-empty text the figure draws, with its pixel extent (the figure is drawn first
    unless ``draw`` is false: it was just drawn)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    if draw:
        canvas.draw()
    renderer = canvas.get_renderer()
    tick_texts: set[int] = set()
    boxes: list[TextBox] = []

    def add(text: Text, owner: str) -> None:
        if not text.get_visible() or not text.get_text().strip():
            return
        bbox = text.get_window_extent(renderer)
        if bbox.width <= 0 or bbox.height <= 0:
            return
        boxes.append(TextBox(text.get_text(), (bbox.x0, bbox.y0, bbox.x1, bbox.y1), owner))

    for ax in fig.get_axes():
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_texts.update({id(tick.label1), id(tick.label2)})
        if not ax.get_visible():
            for text in ax.findobj(Text):
                tick_texts.add(id(text))
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            for label in _tick_labels(axis):
                add(label, "tick")
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.get_axes() if ax.get_legend()]
    legend_texts = {id(t) for legend in legends for t in legend.findobj(Text)}
    for text in fig.findobj(Text):
        if id(text) in tick_texts:
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        if id(text) in legend_texts:
            owner = "legend"
        elif text is getattr(fig, "_suptitle", None) or (text.axes is not None
                                                        and text in _titles(text.axes)):
            owner = "title"
        elif isinstance(text.get_parent() if hasattr(text, "get_parent") else None, Axis):
            owner = "label"
        else:
            owner = "text"
        add(text, owner)
    return boxes


def _titles(ax) -> tuple[Text, ...]:
    return (ax.title, ax._left_title, ax._right_title)


def text_collisions(fig: Figure, tolerance: float = 1.0) -> list[str]:
    """What is wrong with the figure's text: pairs of texts that overlap, and texts that reach
    past the figure's edge (by more than ``tolerance`` pixels). Empty when all can be read."""
    boxes = drawn_texts(fig)
    problems = []
    width, height = fig.canvas.get_width_height()
    for box in boxes:
        x0, y0, x1, y1 = box.extent
        if x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance \
                or y1 > height + tolerance:
            problems.append(f"cut off at the edge of the {width}x{height} px figure: {box}")
    if len(boxes) > 1:
        e = np.array([b.extent for b in boxes])
        x0, y0, x1, y1 = (e[:, i] for i in range(4))
        overlap_x = (np.minimum(x1[:, None], x1[None, :])
                     - np.maximum(x0[:, None], x0[None, :])) > tolerance
        overlap_y = (np.minimum(y1[:, None], y1[None, :])
                     - np.maximum(y0[:, None], y0[None, :])) > tolerance
        hit = np.triu(overlap_x & overlap_y, k=1)
        for i, j in zip(*np.nonzero(hit)):
            if boxes[i].text == boxes[j].text and boxes[i].extent == boxes[j].extent:
                continue   # the same text drawn twice in one place (e.g. a shared label)
            problems.append(f"overlap: {boxes[i]} and {boxes[j]}")
    return problems


def _crowded_axes(fig: Figure, pad: float) -> list[Axis]:
    """The axes (x or y) with a tick label that overlaps another text, drawn as it is now."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    owners: list[Axis | None] = []
    extents = []
    for ax in fig.get_axes():
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            for label in _tick_labels(axis):
                if label.get_visible() and label.get_text().strip():
                    b = label.get_window_extent(renderer)
                    # a tick label needs a little air on both sides along its axis
                    grow = pad * label.get_fontsize() * fig.dpi / 72
                    if axis is ax.xaxis and not label.get_rotation():
                        extents.append((b.x0 - grow / 2, b.y0, b.x1 + grow / 2, b.y1))
                    else:
                        extents.append((b.x0, b.y0 - grow / 4, b.x1, b.y1 + grow / 4))
                    owners.append(axis)
    for box in drawn_texts(fig, draw=False):
        if box.owner != "tick":
            extents.append(box.extent)
            owners.append(None)
    if len(extents) < 2:
        return []
    e = np.array(extents)
    x0, y0, x1, y1 = (e[:, i] for i in range(4))
    hit = ((np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :]) > 0)
           & (np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :]) > 0))
    np.fill_diagonal(hit, False)
    crowded: list[Axis] = []
    for i in np.nonzero(hit.any(axis=1))[0]:
        axis = owners[i]
        # shared axes share one Ticker (locator and formatter): thin the group once
        if axis is not None and all(axis.major is not a.major for a in crowded):
            crowded.append(axis)
    return crowded


def fit_tick_labels(fig: Figure, pad: float = 0.6, rounds: int = 4) -> None:
    """Thin or turn tick labels until none overlaps another text.

    A numeric axis keeps every other tick (so a log axis stays regular: 1, 4, 16 ... then 1, 16,
    256 ...); an axis of named categories (level names) cannot lose a label, so its labels are
    turned by 35 degrees, then set smaller. ``pad`` is the air kept between neighbouring labels,
    in units of their font size.
    """
    for _ in range(rounds):
        crowded = _crowded_axes(fig, pad)
        if not crowded:
            return
        for axis in crowded:
            labels = [t for t in _tick_labels(axis) if t.get_visible() and t.get_text().strip()]
            size = labels[0].get_fontsize() if labels else None
            if isinstance(axis.get_major_formatter(), FixedFormatter):
                turned = any(t.get_rotation() for t in labels)
                if not turned and axis.axis_name == "x":
                    axis.set_tick_params(labelrotation=35)
                    for t in axis.get_ticklabels():
                        t.set_horizontalalignment("right")
                        t.set_rotation_mode("anchor")
                elif size:
                    for sibling in _siblings(axis):
                        sibling.set_tick_params(labelsize=size * 0.85)
                continue
            low, high = sorted(axis.get_view_interval())
            locs = [v for v in axis.get_majorticklocs() if low <= v <= high]
            if len(locs) > 2:
                axis.set_major_locator(FixedLocator(locs[::2]))
            elif size:
                for sibling in _siblings(axis):
                    sibling.set_tick_params(labelsize=size * 0.85)


def _siblings(axis: Axis) -> list[Axis]:
    """The axes that share this one's ticks (itself included)."""
    ax = axis.axes
    group = ax._shared_axes[axis.axis_name].get_siblings(ax)
    return [getattr(a, f"{axis.axis_name}axis") for a in group]
