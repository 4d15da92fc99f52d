"""Figures: pure functions from result datasets to matplotlib Figures, in two styles.

Every function takes *data* (a Dataset from :func:`faultlock.simulate` / ``predict``, a Dataset with
a ``method`` dimension, or a sweep store opened with :func:`faultlock.sweeps.open_sweep`) and a
style (``"slides"``: 16:9, large type; ``"paper"``: one column) and returns a
:class:`matplotlib.figure.Figure` whose title says what it shows (:func:`caption_of` gives the
caption). Nothing is shown or saved, and pyplot's global state is not touched.

=====  ================================  ==================================================
fig    function                          shows
=====  ================================  ==================================================
1      :func:`winner_map`                where each policy wins, undecided cells hatched
2      :func:`latency_vs_threads`        p50/p99 fault latency vs threads, MC bands, analytic
3      :func:`wait_histograms`           mmap_lock waits in decade bins beside Douyin's
4      :func:`refault_amplification`     reads per fault, retry misses, reads/s vs pressure
5      :func:`writer_cost`               writer p99 vs the share of fork-like writers
6      :func:`validation_scatter`,       analytic vs Monte Carlo (scatter, error map)
       :func:`validation_error_map`
7      :func:`history`                   one preset under every policy, legacy to proposals
=====  ================================  ==================================================

:func:`render_all` writes every figure the data can give as PNG and PDF; :func:`main_figures`
is ``faultlock figures``. Colours and markers per policy: :mod:`faultlock.figures.style`.
"""

from .amplification import refault_amplification, writer_cost
from .common import caption_of, title_of
from .data import FigureDataError, combine, open_data
from .history import history
from .latency import latency_vs_threads
from .render import FIGURES, RenderReport, main_figures, render_all
from .style import POLICY_COLOURS, POLICY_MARKERS, STYLES
from .validation import validation_error_map, validation_scatter
from .waits import wait_histograms
from .winners import winner_map

__all__ = [
           "FIGURES",
           "POLICY_COLOURS",
           "POLICY_MARKERS",
           "STYLES",
           "FigureDataError",
           "RenderReport",
           "caption_of",
           "combine",
           "history",
           "latency_vs_threads",
           "main_figures",
           "open_data",
           "refault_amplification",
           "render_all",
           "title_of",
           "validation_error_map",
           "validation_scatter",
           "wait_histograms",
           "winner_map",
           "writer_cost",
]
