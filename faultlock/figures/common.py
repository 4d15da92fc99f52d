"""Pieces every figure family shares: titles and captions, the policy legend, facet labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .data import dim_label, format_value
from .layout import fit_tick_labels
from .style import DARK_GREY, Style, policy_colour, policy_label, policy_style, wrap_title

__all__ = [
    "CAPTION_ATTR",
    "TITLE_ATTR",
    "caption_of",
    "finish",
    "fixed_text",
    "level_label",
    "log_edges",
    "one_cell",
    "place_legend",
    "policy_handles",
    "policy_legend",
    "subtitle_of",
    "title_of",
]

CAPTION_ATTR = "_faultlock_caption"
SUBTITLE_ATTR = "_faultlock_subtitle"
SUBTITLE_GID = "faultlock-subtitle"
TITLE_ATTR = "_faultlock_title"


def finish(fig: Figure, style: Style, title: str, caption: str,
           subtitle: str | None = None) -> Figure:
    """Put the one-sentence title on the figure, the fixed conditions below it (``subtitle``:
    what every panel holds constant, so that the figure says it without its caption), attach the
    caption (for the paper/CLI), and thin or turn tick labels that would overlap."""
    fig.suptitle(wrap_title(title, style), fontweight="bold" if style.is_slides else "normal")
    if subtitle:
        _place_subtitle(fig, style, subtitle)
    setattr(fig, TITLE_ATTR, title)
    setattr(fig, SUBTITLE_ATTR, subtitle or "")
    setattr(fig, CAPTION_ATTR, caption)
    fit_tick_labels(fig)
    return fig


def _place_subtitle(fig: Figure, style: Style, subtitle: str) -> None:
    """The fixed conditions in small grey type right under the title, with room made for them:
    constrained layout keeps the title at the top and lays the panels out below ``rect``."""
    chars = int(style.max_title_chars * (1.45 if style.is_slides else 1.15))
    text = fig.text(0.5, 1.0, wrap_title(subtitle, style, chars), ha="center", va="top",
                    fontsize=style.font_size * (0.75 if style.is_slides else 0.85),
                    color=DARK_GREY, gid=SUBTITLE_GID)
    text.set_in_layout(False)
    canvas = FigureCanvasAgg(fig) if not isinstance(fig.canvas, FigureCanvasAgg) else fig.canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    to_fig = fig.transFigure.inverted()
    title_bottom = to_fig.transform((0, fig._suptitle.get_window_extent(renderer).y0))[1] \
        if fig._suptitle is not None else 1.0
    gap = 0.25 * style.font_size / 72 / fig.get_figheight()
    text.set_y(title_bottom - gap)
    extent = text.get_window_extent(renderer)
    height = (extent.y1 - extent.y0) / fig.bbox.height
    fig.get_layout_engine().set(rect=(0, 0, 1, 1 - height - 2 * gap))


def subtitle_of(fig: Figure) -> str:
    """The fixed conditions a figure states under its title (``""`` if none)."""
    return getattr(fig, SUBTITLE_ATTR, "")


def caption_of(fig: Figure) -> str:
    """The caption a figure function attached (``""`` if none)."""
    return getattr(fig, CAPTION_ATTR, "")


def title_of(fig: Figure) -> str:
    return getattr(fig, TITLE_ATTR, "")


def policy_handles(policies: Sequence[str], style: Style, line: bool = True,
                   marker: bool = True) -> list[Line2D]:
    handles = []
    for p in policies:
        kw = policy_style(p, style)
        if not marker:
            kw["marker"] = None
        handles.append(Line2D([], [], linestyle="-" if line else "none", **kw))
    return handles


def policy_legend(fig: Figure, policies: Sequence[str], style: Style, extra: Sequence = (),
                  line: bool = True, marker: bool = True, title: str = "policy",
                  where: str = "right"):
    """One legend for the whole figure: every policy (and ``extra`` handles) in a fixed order."""
    handles = policy_handles(policies, style, line=line, marker=marker) + list(extra)
    if where == "bottom":
        ncol = min(len(handles), 4 if style.is_slides else 3)
        return fig.legend(handles=handles, loc="outside lower center", ncol=ncol, title=title)
    return fig.legend(handles=handles, loc="outside right upper", title=title)


def place_legend(fig: Figure, handles: Sequence, style: Style, title: str = "policy",
                 ncol: int | None = None):
    """The figure's one legend: at the right of a slide, below a paper figure."""
    if style.is_slides:
        return fig.legend(handles=handles, loc="outside right center", title=title)
    return fig.legend(handles=handles, loc="outside lower center", ncol=ncol or 3, title=title,
                      columnspacing=0.8, handletextpad=0.3, handlelength=1.4,
                      fontsize=style.font_size * 0.8)


def level_label(ds: xr.Dataset, dim: str, index: int, short: bool = False,
                with_dim: bool = False) -> str:
    """A facet title: the level name and the field values it sets (``app: 350/s, fork 2 %``)."""
    value = ds[dim].values[index]
    if not isinstance(value, str) and not (hasattr(value, "dtype") and value.dtype.kind in "OUT"):
        plain = value.item() if hasattr(value, "item") else value
        return f"{dim_label(dim)} {format_value(dim, plain)}"
    parts = []
    for name in ds.coords:
        if name == dim or ds[name].dims != (dim,):
            continue
        v = ds[name].values[index]
        parts.append(_short_field(str(name), v.item() if hasattr(v, "item") else v))
    text = f"{_FACET_PREFIX.get(dim, dim_label(dim))}: {value}" if with_dim else str(value)
    if parts and not short:
        text += ("\n" if with_dim else " (") + ", ".join(parts) + ("" if with_dim else ")")
    return text


_FACET_PREFIX = {"memory_pressure": "pressure", "writer_load": "writers"}
_SHORT = {"writer_rate": "", "writer_fork_share": "fork ", "writer_vma_share": "VMA ",
          "reclaim_rate_cached": "cached ", "reclaim_rate_mapped": "mapped "}


def fixed_text(ds: xr.Dataset, chosen: dict, preset: str | None = None,
               solver: str | None = None) -> str:
    """The subtitle of a figure that holds some axes fixed: ``"analytic model; fixed: mean I/O
    latency 1.12 ms, pressure heavy (cached 200/s, mapped 5/s); other fields: the
    android_warm_start preset"``."""
    parts = []
    for dim, label in chosen.items():
        if dim in ds.coords and ds[dim].dtype.kind not in "iuf":
            index = [str(v) for v in ds[dim].values].index(str(label))
            fields = [_short_field(str(c), ds[c].values[index].item()
                                   if hasattr(ds[c].values[index], "item")
                                   else ds[c].values[index])
                      for c in ds.coords if c != dim and ds[c].dims == (dim,)]
            parts.append(f"{_FACET_PREFIX.get(dim, dim_label(dim))} {label}"
                         + (f" ({', '.join(fields)})" if fields else ""))
        else:
            parts.append(f"{dim_label(dim)} {format_value(dim, label)}")
    text = "; ".join(x for x in (solver or "",
                                 "fixed: " + ", ".join(parts) if parts else "",
                                 f"other fields: the {preset} preset" if preset else "") if x)
    return text


def one_cell(ds: xr.Dataset, chosen: dict, base: dict, preset: str | None,
             solver: str | None = None) -> tuple[bool, str, str]:
    """What a one-cell figure (histograms, history) shows: ``(is_base, name, subtitle)``.

    ``is_base`` is true when every coordinate chosen from the grid is the base scenario's (so
    the figure may say "the android_warm_start preset"); ``name`` is ``"the
    android_warm_start preset"`` or ``"the grid cell nearest the android_warm_start preset"``;
    ``subtitle`` states the cell and, when it is not the preset, which fields differ.
    """
    from .data import describe_cell
    _, differing = describe_cell(ds, chosen, base, preset)
    label = f"the {preset} preset" if preset else "the base scenario"
    cell = fixed_text(ds, chosen).removeprefix("fixed: ")
    if not differing:
        subtitle = "; ".join(x for x in (solver or "", label
                                         + (f" ({cell})" if cell else "")) if x)
        return True, label, subtitle
    name = f"the grid cell nearest {label}"
    subtitle = "; ".join(x for x in (solver or "", f"cell: {cell}" if cell else "",
                                     f"unlike the preset: {', '.join(differing)}") if x)
    return False, name, subtitle


def _short_field(name: str, value) -> str:
    prefix = _SHORT.get(name, name.replace("_", " ") + " ")
    return f"{prefix}{format_value(name, value)}"


def log_edges(values: Sequence[float], base: float = 10.0) -> np.ndarray:
    """Cell edges around positive values on a log axis (geometric midpoints)."""
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return np.array([v[0] / np.sqrt(base), v[0] * np.sqrt(base)])
    logs = np.log(v)
    mids = (logs[1:] + logs[:-1]) / 2
    first = logs[0] - (mids[0] - logs[0])
    last = logs[-1] + (logs[-1] - mids[-1])
    return np.exp(np.concatenate([[first], mids, [last]]))


def colour_of(policy: str) -> str:
    return policy_colour(policy)


def label_of(policy: str) -> str:
    return policy_label(policy)
