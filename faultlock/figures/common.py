"""Pieces every figure family shares: titles and captions, the policy legend, facet labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .data import dim_label, format_value
from .style import Style, policy_colour, policy_label, policy_style, wrap_title

__all__ = ["finish", "caption_of", "title_of", "policy_handles", "policy_legend", "level_label",
           "log_edges", "place_legend", "CAPTION_ATTR", "TITLE_ATTR"]

CAPTION_ATTR = "_faultlock_caption"
TITLE_ATTR = "_faultlock_title"


def finish(fig: Figure, style: Style, title: str, caption: str) -> Figure:
    """Put the one-sentence title on the figure and attach the caption (for the paper/CLI)."""
    fig.suptitle(wrap_title(title, style), fontweight="bold" if style.is_slides else "normal")
    setattr(fig, TITLE_ATTR, title)
    setattr(fig, CAPTION_ATTR, caption)
    return fig


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
