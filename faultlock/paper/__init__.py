"""The paper and the slides, generated from the code and the sweep stores.

``build_paper(outdir)`` (the command ``faultlock paper [-o DIR]``) runs or resumes the sweeps it
needs (:mod:`faultlock.paper.specs`), renders every figure in both styles
(:mod:`faultlock.figures`), writes the equations (from :mod:`faultlock.model.formulas`), the tables
and the numbers as LaTeX (:mod:`faultlock.paper.tex`), and runs ``latexmk`` on ``paper/paper.tex``
and ``paper/slides.tex``. Without TeX it says which packages to install and still produces every
figure and table.
"""

from .build import BuildReport, TEX_PACKAGES, build_paper, main_paper, tex_available
from .specs import PAPER_SPECS, paper_specs

__all__ = ["build_paper", "main_paper", "BuildReport", "TEX_PACKAGES", "tex_available",
           "PAPER_SPECS", "paper_specs"]
