"""One look for every figure: the policy palette, the two styles, and axis helpers with units.

Colours are Paul Tol's *muted* qualitative scheme (distinguishable under the common forms of
colour blindness, and in greyscale by marker); each policy keeps the same colour and marker in every
figure, slide and paper. ``pale grey`` is kept for cells with no decision (undecided, no data).

Two styles:

``slides``
    16:9 (13.33 x 7.5 in, the size of a 16:9 slide), large type (18 pt), thick lines: readable from
    the back of the room.
``paper``
    one column (3.4 in wide, the column of the ACM/IEEE/USENIX two-column formats), 8 pt type.

A figure function builds its figure inside :func:`context` (the rcParams are read when artists are
created) and sizes it with :func:`new_figure`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = [
    "DARK_GREY",
    "GREY",
    "POLICY_COLOURS",
    "POLICY_LABELS",
    "POLICY_MARKERS",
    "STYLES",
    "UNDECIDED_HATCH",
    "UNIT_LABELS",
    "Style",
    "context",
    "format_seconds",
    "get_style",
    "log_axis",
    "new_figure",
    "plain_numbers",
    "policy_colour",
    "policy_label",
    "policy_style",
    "seconds_axis",
    "share_axis",
    "threads_axis",
]

# Paul Tol, "muted" (https://personal.sron.nl/~pault/#sec:qualitative)
_TOL_MUTED = {
    "indigo": "#332288", "cyan": "#88CCEE", "teal": "#44AA99", "green": "#117733",
    "olive": "#999933", "sand": "#DDCC77", "rose": "#CC6677", "wine": "#882255",
    "purple": "#AA4499", "pale_grey": "#DDDDDD",
}
GREY = _TOL_MUTED["pale_grey"]
DARK_GREY = "#555555"
UNDECIDED_HATCH = "///"

#: policy -> colour: history in warm-to-cool order; the two "uptodate" variants are the light
#: shades of their parents' hue family
POLICY_COLOURS = {
    "legacy_hold": _TOL_MUTED["wine"],
    "legacy_retry": _TOL_MUTED["rose"],
    "mainline": _TOL_MUTED["indigo"],
    "mainline_uptodate": _TOL_MUTED["cyan"],
    "vma_retry": _TOL_MUTED["green"],
    "vma_retry_uptodate": _TOL_MUTED["teal"],
    "vma_wait": _TOL_MUTED["olive"],
}
POLICY_MARKERS = {
    "legacy_hold": "X",
    "legacy_retry": "P",
    "mainline": "o",
    "mainline_uptodate": "h",
    "vma_retry": "s",
    "vma_retry_uptodate": "D",
    "vma_wait": "v",
}
#: names as printed (the code names: the paper and the kernel thread use them)
POLICY_LABELS = {name: name for name in POLICY_COLOURS}
_SPARE = [_TOL_MUTED["purple"], _TOL_MUTED["sand"], "#000000"]


def policy_colour(policy: str) -> str:
    """The policy's colour (a spare colour for names outside :data:`POLICY_COLOURS`)."""
    if policy in POLICY_COLOURS:
        return POLICY_COLOURS[policy]
    return _SPARE[hash(policy) % len(_SPARE)]


def policy_label(policy: str) -> str:
    return POLICY_LABELS.get(policy, policy)


def policy_style(policy: str, style: Style) -> dict:
    """Keyword arguments for ``ax.plot`` / ``ax.errorbar``: colour, marker and sizes."""
    return {"color": policy_colour(policy), "marker": POLICY_MARKERS.get(policy, "o"),
            "markersize": style.marker_size, "linewidth": style.line_width,
            "label": policy_label(policy)}


@dataclass(frozen=True)
class Style:
    """Sizes of one style (inches and points)."""

    name: str
    width: float                 # figure width (in)
    height: float                # default figure height (in)
    font_size: float             # base font size (pt)
    title_size: float            # suptitle (pt)
    line_width: float
    marker_size: float
    dpi: int                     # PNG resolution
    max_title_chars: int         # wrap titles longer than this

    @property
    def is_slides(self) -> bool:
        return self.name == "slides"

    def rc(self) -> dict:
        small = self.font_size * 0.85
        return {
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
            "font.size": self.font_size,
            "axes.titlesize": self.font_size,
            "axes.labelsize": self.font_size,
            "axes.linewidth": 0.8 if not self.is_slides else 1.2,
            "axes.grid": True,
            "axes.axisbelow": True,
            "grid.color": "#E5E5E5",
            "grid.linewidth": 0.5 if not self.is_slides else 0.9,
            "xtick.labelsize": small,
            "ytick.labelsize": small,
            "legend.fontsize": small,
            "legend.title_fontsize": small,
            "legend.frameon": False,
            "figure.titlesize": self.title_size,
            "figure.dpi": 100,
            "savefig.dpi": self.dpi,
            "lines.linewidth": self.line_width,
            "lines.markersize": self.marker_size,
            "hatch.linewidth": 0.6 if not self.is_slides else 1.2,
            "hatch.color": DARK_GREY,
            "pdf.fonttype": 42,          # TrueType in the PDF: searchable, editable text
            "ps.fonttype": 42,
            "svg.fonttype": "none",
            "axes.prop_cycle": mpl.cycler(color=list(POLICY_COLOURS.values())),
        }


STYLES = {
    "slides": Style("slides", width=13.33, height=7.5, font_size=18, title_size=22,
                    line_width=2.6, marker_size=10, dpi=150, max_title_chars=62),
    "paper": Style("paper", width=3.4, height=2.6, font_size=7.5, title_size=8,
                   line_width=1.1, marker_size=4, dpi=300, max_title_chars=60),
}


def get_style(style: str | Style) -> Style:
    """The :class:`Style` of a name (``slides`` or ``paper``); ValueError otherwise."""
    if isinstance(style, Style):
        return style
    if style not in STYLES:
        raise ValueError(f"style={style!r} is not allowed: one of {', '.join(STYLES)}")
    return STYLES[style]


@contextlib.contextmanager
def context(style: str | Style) -> Iterator[Style]:
    """rcParams of the style for the duration of the block (figures are built inside it)."""
    s = get_style(style)
    with mpl.rc_context(s.rc()):
        yield s


def new_figure(style: Style, height: float | None = None, width: float | None = None) -> Figure:
    """A Figure of the style's size (not registered with pyplot: nothing global is touched).

    In the ``slides`` style the size is always 16:9; ``height`` applies to the ``paper`` style,
    whose width is the column.
    """
    if style.is_slides:
        size = (style.width, style.height)
    else:
        size = (width or style.width, height or style.height)
    return Figure(figsize=size, layout="constrained")


def wrap_title(text: str, style: Style, chars: int | None = None) -> str:
    """Break a long title into lines of at most ``chars`` (``style.max_title_chars``)
    characters; line breaks already in the text are kept."""
    import textwrap
    width = chars or style.max_title_chars
    return "\n".join(line for part in text.split("\n")
                     for line in (textwrap.wrap(part, width, break_on_hyphens=False) or [""]))


# ---- axes with units ------------------------------------------------------------------------
UNIT_LABELS = {"s": "s", "1/s": "1/s", "1": "", "%": "%"}

def format_seconds(value: float, digits: int = 3) -> str:
    """A time as ``"350 µs"``, ``"16.7 ms"`` (engineering prefixes)."""
    if value is None or not np.isfinite(value):
        return "inf" if value is not None and np.isinf(value) else "n/a"
    if value == 0:
        return "0 s"
    exponent = math.floor(math.log10(abs(value)) + 1e-12)
    base = max(-9, min(0, 3 * math.floor(exponent / 3)))
    prefix = {-9: "n", -6: "µ", -3: "m", 0: ""}[base]
    mantissa = float(f"{value / 10.0 ** base:.{digits}g}")
    return f"{mantissa:g}\u2009{prefix}s"


def seconds_axis(ax, which: str = "y", label: str = "latency", log: bool = True,
                 numticks: int = 12) -> None:
    """A time axis: log scale, ticks as 10 µs / 1 ms, label ``"<label> (s)"``."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    if log:
        (ax.set_yscale if which == "y" else ax.set_xscale)("log")
        low, high = ax.dataLim.intervaly if which == "y" else ax.dataLim.intervalx
        narrow = low > 0 and np.isfinite(high / low) and high / low < 30
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if narrow else (1.0,),
                                          numticks=numticks))
        axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_seconds(v)))
    (ax.set_ylabel if which == "y" else ax.set_xlabel)(f"{label} (s)")


def _tick_seconds(value: float) -> str:
    if value <= 0 or not np.isfinite(value):
        return "0" if value == 0 else ""
    exponent = math.floor(math.log10(value) + 1e-9)
    prefixes = {-9: "n", -6: "µ", -3: "m", 0: "", 3: "k"}
    base = 3 * math.floor(exponent / 3)
    prefix = prefixes.get(base)
    if prefix is None:
        return f"{value:g} s"
    mantissa = value / 10.0 ** base
    return f"{mantissa:g}\u2009{prefix}s"


def threads_axis(ax, values: Sequence[float] | None = None, which: str = "x",
                 max_ticks: int = 7) -> None:
    """A thread-count axis: log2 scale, ticks at the values (powers of two), label with units."""
    set_scale = ax.set_xscale if which == "x" else ax.set_yscale
    set_scale("log", base=2)
    axis = ax.xaxis if which == "x" else ax.yaxis
    if values is not None and len(values):
        ticks = [v for v in values if v > 0]
        if len(ticks) > max_ticks:
            ticks = ticks[::math.ceil(len(ticks) / max_ticks)]
        axis.set_ticks(ticks)
        axis.set_ticks([], minor=True)
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    (ax.set_xlabel if which == "x" else ax.set_ylabel)("threads (count, log\u2082)")


def plain_numbers(ax, which: str = "y") -> None:
    """Tick labels as plain numbers (``0.5``, ``2``, ``4k``), also on log axes."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    if (ax.get_yscale() if which == "y" else ax.get_xscale()) == "log":
        low, high = ax.dataLim.intervaly if which == "y" else ax.dataLim.intervalx
        narrow = low > 0 and np.isfinite(high / low) and high / low < 100
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if narrow else (1.0,),
                                          numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _plain(v)))
    axis.set_minor_formatter(NullFormatter())


def _plain(value: float) -> str:
    if value == 0 or not np.isfinite(value):
        return "0" if value == 0 else ""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def log_axis(ax, which: str, label: str, unit: str) -> None:
    """A log axis labelled ``"<label> (<unit>)"``."""
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    (ax.set_ylabel if which == "y" else ax.set_xlabel)(f"{label} ({unit})")


def share_axis(ax, which: str = "y", label: str = "share", log: bool = False,
               floor: float = 1e-4) -> None:
    """A share axis in percent (log optional, floored at ``floor``)."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    if log:
        (ax.set_yscale if which == "y" else ax.set_xscale)("log")
        (ax.set_ylim if which == "y" else ax.set_xlim)(bottom=floor) if which == "y" else None
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _percent(v)))
    axis.set_minor_formatter(NullFormatter())
    (ax.set_ylabel if which == "y" else ax.set_xlabel)(f"{label} (%)")


def _percent(value: float) -> str:
    if value <= 0:
        return "0"
    pct = 100 * value
    return f"{pct:.{max(0, -math.floor(math.log10(pct)))}f}" if pct < 1 else f"{pct:g}"
