"""The latency distribution's building block: a stratum of the read time plus a wait.

``uniform_plus_wait_cdf``: P(X + Y <= t) for X uniform on one stratum of the read time's law and
Y an atom at 0 or an exponential wait.  The analytic model's latency CDF is a mixture of these.
:func:`uniform_plus_wait_scalar` is its one numeric kernel (compiled; it also takes the limits
the expression leaves out: an atom, width 0, and no wait, w-bar 0); :func:`uniform_plus_wait`
is that kernel on arrays (its ufunc).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from numba import njit, vectorize

from .registry import MODEL_REFERENCE, Formula, register, scalar_or_array
from .symbols import latency, no_wait_probability, read_low, read_width, wait_mean

__all__ = ["uniform_plus_wait", "uniform_plus_wait_cdf", "uniform_plus_wait_scalar"]


_t, _x0, _dx, _p0, _wbar = latency, read_low, read_width, no_wait_probability, wait_mean
_u_local = _t - _x0
_stratum_cdf = sp.Min(sp.Max(_u_local / _dx, 0), 1)
_stratum_exp = sp.Piecewise(
    (0, _u_local < 0),
    (_wbar / _dx * (sp.exp(-(_t - sp.Min(_t, _x0 + _dx)) / _wbar) - sp.exp(-_u_local / _wbar)),
     True))

@njit(cache=True, inline="always")
def _clip01(x):
    """np.clip(x, 0, 1) on a scalar: nan stays nan."""
    if x != x:
        return x
    return min(max(x, 0.0), 1.0)


@njit(cache=True, error_model="numpy")
def uniform_plus_wait_scalar(t, x0, width, p0, wbar):
    """P(X + Y <= t), X uniform on [x0, x0 + width], Y 0 w.p. p0 else Exp(mean wbar), at one
    point: the kernel of ``uniform_plus_wait_cdf``, also for ``width = 0`` (an atom) and
    ``wbar = 0`` (no wait)."""
    u = t - x0
    pos = width > 0
    safe_w = width if pos else 1.0
    if pos:
        cdf_x = _clip01(u / safe_w)
    else:
        cdf_x = 1.0 if u >= 0 else 0.0
    if not (u >= 0 and wbar > 0) or p0 == 1.0:
        return _clip01(cdf_x)
    # from here u >= 0 and wbar > 0 (neither is nan)
    top = max(min(u, width if pos else 0.0), 0.0)     # integrate X over [x0, x0 + top]
    # (wbar/width) (e^{-(u - top)/wbar} - e^{-u/wbar})
    #   = e^{-(u-top)/wbar} wbar/width (1 - e^{-top/wbar})
    spread = -math.expm1(-top / wbar) * wbar / safe_w if pos else 1.0
    exp_part = math.exp(-max(u - top, 0.0) / wbar) * spread
    return _clip01(cdf_x - (1.0 - p0) * exp_part)


@vectorize(["float64(float64, float64, float64, float64, float64)"], cache=True)
def _uniform_plus_wait_ufunc(t, x0, width, p0, wbar):
    return uniform_plus_wait_scalar(t, x0, width, p0, wbar)


def uniform_plus_wait(t, x0, width, p0, wbar):
    """:func:`uniform_plus_wait_scalar` elementwise (its ufunc), on arrays."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scalar_or_array(_uniform_plus_wait_ufunc(t, x0, width, p0, wbar))


uniform_plus_wait_cdf = register(Formula(
    name="uniform_plus_wait_cdf",
    lhs=sp.Symbol("F(t)"),
    expr=_stratum_cdf - (1 - _p0) * _stratum_exp,
    symbols=(_t, _x0, _dx, _p0, _wbar),
    implementation=uniform_plus_wait,
    compiled_implementation=uniform_plus_wait_scalar,
    assumptions="P(X + Y <= t) for X uniform on [x_0, x_0 + Delta x] (one stratum of a read "
                "time's law, whose CDF is taken linear between quantile levels) and an "
                "independent wait Y that is 0 with probability p_0 and otherwise Exp(mean "
                "w-bar): E[1{X<=t}] - (1 - p_0) E[e^{-(t-X)/w-bar}; X <= t].  The fault "
                "latency's CDF is a mixture of these over fault classes and strata, shifted by "
                "each class's fixed CPU and wake-up times; quantiles are read from it.",
    reference="Convolution of a uniform and an exponential law (Feller Vol. 2, §I.3); "
              + MODEL_REFERENCE,
))
