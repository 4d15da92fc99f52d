#!/usr/bin/env bash
# CI: the TeX that `faultlock paper` needs to build paper.pdf and slides.pdf (Debian/Ubuntu).
#
# The smallest set of distribution packages that builds both documents (checked on Debian 12
# against the files latexmk's .fls recorded: every file read comes from one of these, the fonts
# from texlive-base, which they pull in):
#   latexmk                     the build driver `faultlock paper` runs
#   texlive-latex-base          LaTeX, amsmath, graphicx (texlive-base: Computer Modern Type 1)
#   texlive-latex-recommended   beamer, booktabs, microtype, hyperref, xcolor, geometry
#   texlive-pictures            pgf (beamer is built on it)
# Run as root (or with sudo available). Idempotent: a second run installs nothing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    latexmk texlive-latex-base texlive-latex-recommended texlive-pictures
latexmk -v | sed -n 1p        # sed reads everything: no SIGPIPE under pipefail
pdflatex --version | sed -n 1p
