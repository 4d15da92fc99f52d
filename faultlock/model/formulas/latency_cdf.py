"""The latency distribution's building block: a stratum of the read time plus a wait.

``uniform_plus_wait_cdf``: P(X + Y <= t) for X uniform on one stratum of the read time's law and
Y an atom at 0 or an exponential wait.  The analytic model's latency CDF is a mixture of these.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .registry import MODEL_REFERENCE, Formula, register, scalar_or_array
from .symbols import latency, no_wait_probability, read_low, read_width, wait_mean

__all__ = ["uniform_plus_wait", "uniform_plus_wait_cdf"]

# --------------------------------------------------------------------------------------------
# Latency distribution: a stratum of the read time plus an atom-or-exponential wait
# --------------------------------------------------------------------------------------------

_t, _x0, _dx, _p0, _wbar = latency, read_low, read_width, no_wait_probability, wait_mean
_u_local = _t - _x0
_stratum_cdf = sp.Min(sp.Max(_u_local / _dx, 0), 1)
_stratum_exp = sp.Piecewise(
    (0, _u_local < 0),
    (_wbar / _dx * (sp.exp(-(_t - sp.Min(_t, _x0 + _dx)) / _wbar) - sp.exp(-_u_local / _wbar)),
     True))

uniform_plus_wait_cdf = register(Formula(
    name="uniform_plus_wait_cdf",
    lhs=sp.Symbol("F(t)"),
    expr=_stratum_cdf - (1 - _p0) * _stratum_exp,
    symbols=(_t, _x0, _dx, _p0, _wbar),
    assumptions="P(X + Y <= t) for X uniform on [x_0, x_0 + Delta x] (one stratum of a read "
                "time's law, whose CDF is taken linear between quantile levels) and an "
                "independent wait Y that is 0 with probability p_0 and otherwise Exp(mean "
                "w-bar): E[1{X<=t}] - (1 - p_0) E[e^{-(t-X)/w-bar}; X <= t].  The fault "
                "latency's CDF is a mixture of these over fault classes and strata, shifted by "
                "each class's fixed CPU and wake-up times; quantiles are read from it.",
    reference="Convolution of a uniform and an exponential law (Feller Vol. 2, §I.3); "
              + MODEL_REFERENCE,
))


def uniform_plus_wait(t, x0, width, p0, wbar):
    """Vectorised :data:`uniform_plus_wait_cdf`, also for ``width = 0`` (an atom) and
    ``wbar = 0`` (no wait)."""
    t, x0, width, p0, wbar = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                                  for v in (t, x0, width, p0, wbar)))
    u = t - x0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pos = width > 0
        safe_w = np.where(pos, width, 1.0)
        cdf_x = np.where(pos, np.clip(u / safe_w, 0.0, 1.0), (u >= 0).astype(float))
        safe_wbar = np.where(wbar > 0, wbar, 1.0)
        top = np.minimum(u, np.where(pos, width, 0.0))        # integrate X over [x0, x0 + top]
        # (wbar/width) (e^{-(u - top)/wbar} - e^{-u/wbar})
        #   = e^{-(u-top)/wbar} wbar/width (1 - e^{-top/wbar})
        spread = np.where(pos, -np.expm1(-np.maximum(top, 0.0) / safe_wbar) * safe_wbar / safe_w,
                          1.0)
        exp_part = np.exp(-np.maximum(u - np.maximum(top, 0.0), 0.0) / safe_wbar) * spread
        exp_part = np.where((u >= 0) & (wbar > 0), exp_part, 0.0)
        out = cdf_x - (1.0 - p0) * exp_part
    return scalar_or_array(np.clip(out, 0.0, 1.0))
