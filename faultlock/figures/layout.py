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

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedFormatter, FixedLocator

__all__ = [
    "TextBox",
    "drawn_texts",
    "fit_tick_labels",
    "overlapping_pairs",
    "text_collisions",
]


@dataclass(frozen=True)
class TextBox:
    """One drawn text and its extent in display pixels (x0, y0, x1, y1)."""

    text: str
    extent: tuple[float, float, float, float]
    owner: str   # what the text belongs to: "tick", "legend", "title", "label", "text"
    angle: float = 0.0   # rotation (degrees); the extent is then the rotated text's bounding box

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
        boxes.append(TextBox(text.get_text(), (bbox.x0, bbox.y0, bbox.x1, bbox.y1), owner,
                             float(text.get_rotation())))

    for ax in fig.get_axes():
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_texts.update({id(tick.label1), id(tick.label2)})
        if not ax.get_visible():
            for text in ax.findobj(Text):
                tick_texts.add(id(text))
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible() or not ax.axison:
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


def _corners(extent, angle: float) -> np.ndarray:
    """The four corners of a text turned by ``angle`` degrees whose bounding box is ``extent``
    (its width and height recovered from the box: W = w cos + h sin, H = w sin + h cos)."""
    x0, y0, x1, y1 = extent
    big, tall = x1 - x0, y1 - y0
    theta = np.radians(angle % 180)
    c, s = abs(np.cos(theta)), abs(np.sin(theta))
    det = c * c - s * s
    if abs(det) < 0.05:        # near 45 degrees the box does not tell: assume a one-line text
        h = min(big, tall) * 0.3
        w = (big - h * s) / max(c, 1e-9)
    else:
        w, h = (c * big - s * tall) / det, (c * tall - s * big) / det
    w, h = max(w, 0.0), max(h, 0.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    u = np.array([np.cos(theta), np.sin(theta)])
    v = np.array([-np.sin(theta), np.cos(theta)])
    return np.array([[cx, cy] + a * w / 2 * u + b * h / 2 * v
                     for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def _separated(p: np.ndarray, q: np.ndarray, tolerance: float) -> bool:
    """Separating-axis test of two convex quadrilaterals (corners in order)."""
    for poly in (p, q):
        for k in range(4):
            edge = poly[(k + 1) % 4] - poly[k]
            normal = np.array([-edge[1], edge[0]])
            norm = np.hypot(*normal)
            if norm == 0:
                continue
            normal /= norm
            a, b = p @ normal, q @ normal
            if a.max() - b.min() <= tolerance or b.max() - a.min() <= tolerance:
                return True
    return False


def overlapping_pairs(extents, angles, tolerance: float = 1.0) -> list[tuple[int, int]]:
    """Index pairs of texts that overlap by more than ``tolerance`` pixels: bounding boxes first,
    then, for turned texts, their true (rotated) outlines."""
    if len(extents) < 2:
        return []
    e = np.asarray(extents, dtype=float)
    x0, y0, x1, y1 = (e[:, i] for i in range(4))
    hit = ((np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
            > tolerance)
           & (np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
              > tolerance))
    pairs = []
    for i, j in zip(*np.nonzero(np.triu(hit, k=1))):
        if (angles[i] % 180 or angles[j] % 180) and _separated(
                _corners(e[i], angles[i]), _corners(e[j], angles[j]), tolerance):
            continue
        pairs.append((int(i), int(j)))
    return pairs


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
    for i, j in overlapping_pairs([b.extent for b in boxes], [b.angle for b in boxes],
                                  tolerance):
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
    extents, angles = [], []
    for ax in fig.get_axes():
        if not ax.get_visible() or not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            for label in _tick_labels(axis):
                if label.get_visible() and label.get_text().strip():
                    b = label.get_window_extent(renderer)
                    # a tick label needs a little air on both sides along its axis
                    grow = pad * label.get_fontsize() * fig.dpi / 72
                    angle = label.get_rotation() % 180
                    if angle:
                        extents.append((b.x0, b.y0, b.x1, b.y1))
                    elif axis is ax.xaxis:
                        extents.append((b.x0 - grow / 2, b.y0, b.x1 + grow / 2, b.y1))
                    else:
                        extents.append((b.x0, b.y0 - grow / 4, b.x1, b.y1 + grow / 4))
                    angles.append(angle)
                    owners.append(axis)
    for box in drawn_texts(fig, draw=False):
        if box.owner != "tick":
            extents.append(box.extent)
            angles.append(box.angle)
            owners.append(None)
    pairs = overlapping_pairs(extents, angles, tolerance=0.0)
    hits = sorted({k for pair in pairs for k in pair})
    crowded: list[Axis] = []
    for i in hits:
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
            if _named(axis):
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


def _named(axis: Axis) -> bool:
    """Whether the tick labels are names given with the ticks (``set_xticks(x, labels)``):
    categories that cannot be dropped, unlike the numbers of a scale."""
    formatter = axis.get_major_formatter()
    if isinstance(formatter, FixedFormatter):
        return True
    func = getattr(formatter, "func", None)   # matplotlib >= 3.8: a dict behind a FuncFormatter
    return isinstance(func, functools.partial) and \
        getattr(func.func, "__name__", "") == "_format_with_dict"


def _siblings(axis: Axis) -> list[Axis]:
    """The axes that share this one's ticks (itself included)."""
    ax = axis.axes
    group = ax._shared_axes[axis.axis_name].get_siblings(ax)
    return [getattr(a, f"{axis.axis_name}axis") for a in group]
