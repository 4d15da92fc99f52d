"""Laws of random times (read latency, writer hold, ...) behind one interface.

A law is given the way a :class:`~faultlock.model.scenario.Scenario` gives it: a *name*
(``io_distribution``, ``writer_hold_distribution``), a *mean* (s) and a coefficient of variation
*cv* (``io_latency_cv``, ``writer_hold_cv``).  :class:`Law` turns these into what each part of the
project needs, in the manner of a frozen ``scipy.stats`` distribution, vectorised over numpy
arrays of means and cvs:

=============  =========================================  ===========================
law            parameters (:attr:`Law.params`)            cv
=============  =========================================  ===========================
exponential    scale = mean                               1 (the cv given is ignored)
deterministic  value = mean                               0 (the cv given is ignored)
gamma          shape = 1/cv^2, scale = mean/shape         any >= 0
lognormal      sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2/2   any >= 0
=============  =========================================  ===========================

A gamma or log-normal law with cv = 0 is the deterministic law (every method treats it so); a
mean of 0 is an atom at 0 under every law (the engine draws 0 for it).

Who uses what:

* the Monte Carlo engine draws variates in compiled code (``montecarlo/rng.py``); it takes the
  log-normal's (mu, sigma) and the gamma's (shape, scale) from :func:`lognormal_mu_sigma` and
  :func:`gamma_shape_scale`, the one compiled copy of the parameter maps, and the law's code from
  :data:`LAW_CODES` (:meth:`Law.engine_parameters`);
* the analytic model reads quantiles (:meth:`Law.ppf`, :func:`quantile`) of the sum of a fault's
  reads (:meth:`Law.sum_of`, :func:`sum_of_reads`);
* the refault-loop formulas (``formulas/refault.py``) use the Laplace-Stieltjes transform
  (:meth:`Law.lst`, :func:`lst`);
* the calibration fits a log-normal to measured quantiles (:func:`fit_lognormal`,
  :func:`lognormal_cv_from_mean_quantile`).

``cdf`` and ``sf`` are those of ``scipy.stats`` (:meth:`Law.scipy`); ``ppf`` is the same closed
form in ``scipy.special`` functions the analytic model has always used (tested against
``scipy.stats`` to 1e-12).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import special, stats

__all__ = ["DISTRIBUTIONS", "LAWS", "LAW_CODES", "Law", "LawError", "canonical_name",
           "fit_lognormal", "gamma_params", "gamma_shape_scale", "lognormal_cv_from_mean_quantile",
           "lognormal_mu_sigma", "lognormal_params", "lst", "quantile", "sample_stalled",
           "stall_cdf", "stall_mean_cv", "stall_quantile", "sum_of_reads"]

#: the laws, by canonical name
LAWS = ("exponential", "deterministic", "gamma", "lognormal")
#: accepted names (and abbreviations) -> canonical name
DISTRIBUTIONS: dict[str, str] = {
    "exponential": "exponential", "exp": "exponential",
    "deterministic": "deterministic", "det": "deterministic",
    "gamma": "gamma",
    "lognormal": "lognormal", "log-normal": "lognormal",
}
#: the integer codes the compiled engine uses for the laws (``montecarlo/rng.py``)
LAW_CODES = {"exponential": 0, "lognormal": 1, "gamma": 2, "deterministic": 3}


class LawError(ValueError):
    """A law's name or parameters are not allowed; the message names the field and the value."""


def canonical_name(name: str) -> str:
    """The canonical name of the law called ``name`` (``"exp"`` -> ``"exponential"``)."""
    canonical = DISTRIBUTIONS.get(str(name).lower())
    if canonical is None:
        raise LawError(f"law={name!r} is not allowed: one of {', '.join(LAWS)} "
                       f"(or {', '.join(k for k in DISTRIBUTIONS if k not in LAWS)})")
    return canonical


def _first_bad(values: np.ndarray, ok: np.ndarray):
    bad = np.asarray(values)[~np.asarray(ok)]
    return float(bad.flat[0])


def _check(field: str, values: np.ndarray, ok: np.ndarray, allowed: str) -> None:
    if not np.all(ok):
        raise LawError(f"{field}={_first_bad(values, ok)!r} is not allowed: {allowed}")


def _check_mean_cv(mean: np.ndarray, cv: np.ndarray) -> None:
    _check("mean", mean, np.isfinite(mean) & (mean >= 0), "a finite time >= 0 (s)")
    _check("cv", cv, np.isfinite(cv) & (cv >= 0), "a finite coefficient of variation >= 0")


def _output(x):
    """A 0-d result as a float, anything else as an array."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


# ----------------------------------------------------------------------------------------------
# The parameter maps: numpy, and the one compiled copy the engine's sampler calls
# ----------------------------------------------------------------------------------------------

def lognormal_params(mean, cv):
    """(mu, sigma) of the log-normal with this mean and cv: sigma^2 = ln(1 + cv^2),
    mu = ln(mean) - sigma^2/2 (so that E[e^(mu + sigma Z)] = mean).  Vectorised."""
    mean = np.asarray(mean, dtype=float)
    cv = np.asarray(cv, dtype=float)
    _check_mean_cv(mean, cv)
    sigma2 = np.log1p(cv**2)
    with np.errstate(divide="ignore"):
        mu = np.log(mean) - sigma2 / 2
    return _output(mu), _output(np.sqrt(sigma2))


def gamma_params(mean, cv):
    """(shape, scale) of the gamma law with this mean and cv > 0: shape = 1/cv^2,
    scale = mean/shape.  Vectorised."""
    mean = np.asarray(mean, dtype=float)
    cv = np.asarray(cv, dtype=float)
    _check_mean_cv(mean, cv)
    _check("cv", cv, cv > 0, "> 0 for a gamma law's shape (cv = 0 is the deterministic law)")
    shape = 1.0 / cv**2
    return _output(shape), _output(mean / shape)


@njit(cache=True, inline="always")
def lognormal_mu_sigma(mean, cv):
    """Compiled scalar :func:`lognormal_params` (the same operations), for the engine."""
    sigma2 = np.log1p(cv * cv)
    return np.log(mean) - 0.5 * sigma2, np.sqrt(sigma2)


@njit(cache=True, inline="always")
def gamma_shape_scale(mean, cv):
    """Compiled scalar :func:`gamma_params` (the same operations), for the engine."""
    shape = 1.0 / (cv * cv)
    return shape, mean / shape


# ----------------------------------------------------------------------------------------------
# The law
# ----------------------------------------------------------------------------------------------

class Law:
    """The law ``name`` with mean ``mean`` (s) and coefficient of variation ``cv``.

    ``mean`` and ``cv`` broadcast against each other (and against the arguments of the
    methods); the exponential law's cv is 1 and the deterministic law's 0, whatever is given.

    >>> law = Law("lognormal", 100e-6, 0.5)
    >>> round(law.ppf(0.5) * 1e6, 3), round(law.std() * 1e6, 3)
    (89.443, 50.0)
    """

    def __init__(self, name: str, mean, cv=None):
        self.name = canonical_name(name)
        mean = np.asarray(mean, dtype=float)
        if self.name == "exponential":
            cv = np.ones_like(mean)
        elif self.name == "deterministic":
            cv = np.zeros_like(mean)
        elif cv is None:
            raise LawError(f"cv=None is not allowed for the {self.name} law: a finite "
                           "coefficient of variation >= 0")
        mean, cv = np.broadcast_arrays(mean, np.asarray(cv, dtype=float))
        _check_mean_cv(mean, cv)
        self.mean = _output(mean)
        self.cv = _output(cv)

    def __repr__(self) -> str:
        return f"Law({self.name!r}, mean={self.mean!r}, cv={self.cv!r})"

    # moments and parameters -------------------------------------------------------------

    @property
    def params(self) -> tuple:
        """The law's own parameters: (scale,) for the exponential, (value,) for the
        deterministic, (shape, scale) for the gamma, (mu, sigma) for the log-normal (a gamma
        with cv = 0 has shape inf and scale 0)."""
        if self.name == "exponential":
            return (self.mean,)
        if self.name == "deterministic":
            return (self.mean,)
        if self.name == "gamma":
            cv = np.asarray(self.cv)
            with np.errstate(divide="ignore"):
                shape = 1.0 / cv**2
            return _output(shape), _output(np.where(cv > 0, np.asarray(self.mean) / shape, 0.0))
        return lognormal_params(self.mean, self.cv)

    def var(self):
        """Variance (s^2): (cv mean)^2."""
        return _output((np.asarray(self.cv) * np.asarray(self.mean)) ** 2)

    def std(self):
        """Standard deviation (s): cv mean."""
        return _output(np.asarray(self.cv) * np.asarray(self.mean))

    def engine_parameters(self) -> tuple[int, float, float]:
        """(law code, mean, cv) as the compiled engine's ``rng.sample_law`` takes them (a
        scalar law)."""
        if np.ndim(self.mean) != 0:
            raise LawError("engine_parameters needs a scalar law (one mean and one cv)")
        return LAW_CODES[self.name], float(self.mean), float(self.cv)

    @property
    def _degenerate(self) -> np.ndarray:
        """Where the law is an atom at its mean (deterministic, cv = 0 or mean = 0)."""
        return (np.asarray(self.cv) == 0) | (np.asarray(self.mean) == 0)

    # distribution functions -------------------------------------------------------------

    def scipy(self):
        """The frozen ``scipy.stats`` distribution (where the law is not an atom; an atom's
        elements get a stand-in with the right mean that :meth:`cdf` and :meth:`sf` replace)."""
        mean = np.where(np.asarray(self.mean) > 0, self.mean, 1.0)
        cv = np.where(np.asarray(self.cv) > 0, self.cv, 1.0)
        if self.name in ("exponential", "deterministic"):
            return stats.expon(scale=mean)
        if self.name == "gamma":
            shape = 1.0 / cv**2
            return stats.gamma(shape, scale=mean / shape)
        mu, sigma = lognormal_params(mean, cv)
        return stats.lognorm(sigma, scale=np.exp(mu))

    def cdf(self, t):
        """P(X <= t)."""
        return self._scipy_or_atom("cdf", t)

    def sf(self, t):
        """P(X > t), without cancellation in the tail."""
        return self._scipy_or_atom("sf", t)

    def _scipy_or_atom(self, function: str, t):
        """``scipy.stats``' ``cdf`` or ``sf`` at ``t``, an atom's step where the law is one."""
        t = np.asarray(t, dtype=float)
        at_or_above = t >= np.asarray(self.mean)
        atom = at_or_above if function == "cdf" else ~at_or_above
        with np.errstate(invalid="ignore"):
            smooth = getattr(self.scipy(), function)(t)
        return _output(np.where(self._degenerate, atom.astype(float), smooth))

    def ppf(self, levels):
        """Quantiles at ``levels`` in [0, 1] (the inverse of :meth:`cdf`)."""
        return quantile(self.name, self.mean, self.cv, levels)

    quantile = ppf

    def lst(self, s, complement: bool = False):
        """Laplace-Stieltjes transform E[exp(-s X)] (or 1 minus it); see :func:`lst`."""
        return lst(self.name, self.mean, self.cv, s, complement)

    def sum_of(self, n: int) -> Law:
        """The law of the sum of ``n`` independent copies (mean n times): exact for the
        exponential (a gamma of shape n), the gamma (shape n/cv^2) and the deterministic law;
        for the log-normal the Fenton-Wilkinson approximation (the log-normal with the sum's
        mean and variance)."""
        name, cv = sum_of_reads(self.name, self.cv, n)
        return Law(name, n * np.asarray(self.mean), cv)


# ----------------------------------------------------------------------------------------------
# The same as functions of (name, mean, cv), as the analytic model and the formulas call them
# ----------------------------------------------------------------------------------------------

def quantile(name: str, mean, cv, levels):
    """Quantiles at ``levels`` of the law ``name`` with this mean and cv.

    ``mean``/``cv`` broadcast against ``levels`` (use a trailing axis for the levels).  The
    exponential ignores cv (1), the deterministic returns the mean.  The closed forms:
    exponential -mean ln(1 - p); log-normal exp(mu + sigma Phi^-1(p)); gamma
    P^-1(shape, p) mean/shape (the inverse regularised incomplete gamma function).
    """
    name = canonical_name(name)
    mean, cv, levels = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                             for v in (mean, cv, levels)))
    _check_mean_cv(mean, cv)
    _check("levels", levels, (levels >= 0) & (levels <= 1), "probabilities in [0, 1]")
    if name == "deterministic":
        return _output(mean.copy())
    if name == "exponential":
        return _output(-mean * np.log1p(-levels))
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "lognormal":
            sigma2 = np.log1p(cv**2)
            return _output(np.exp(np.log(mean) - sigma2 / 2
                                  + np.sqrt(sigma2) * special.ndtri(levels)))
        safe_cv = np.where(cv > 0, cv, 1.0)
        shape = 1.0 / safe_cv**2
        out = special.gammaincinv(shape, levels) * mean / shape
    return _output(np.where(cv > 0, out, mean))


def sum_of_reads(name: str, cv, reads: int):
    """(law, cv) of the sum of ``reads`` i.i.d. times of the law ``name`` with this cv (its mean
    is ``reads`` times the mean): see :meth:`Law.sum_of`."""
    name = canonical_name(name)
    if isinstance(reads, bool) or not isinstance(reads, (int, np.integer)) or reads < 1:
        raise LawError(f"reads={reads!r} is not allowed: an integer >= 1")
    cv = np.asarray(cv, dtype=float)
    if name == "deterministic":
        return name, np.zeros_like(cv)
    if name == "exponential":
        return "gamma", np.ones_like(cv) / np.sqrt(reads)
    return name, cv / np.sqrt(reads)


def lst(name: str, mean, cv, s, complement: bool = False):
    """Laplace-Stieltjes transform E[exp(-s X)] of the law ``name`` with this mean and cv.

    exponential : 1/(1 + s m)                       (cv ignored: it is 1)
    deterministic : exp(-s m)                       (cv ignored: it is 0)
    gamma : (1 + s scale)^(-shape)                  (closed form; cv = 0 is deterministic)
    lognormal : E[exp(-s e^{mu + sigma Z})], Z ~ N(0, 1), numerical: trapezoidal rule in z on
        [-9, 9] with step min(0.1, 0.25/sigma) (spectrally accurate for this entire integrand:
        error ~ exp(-pi^2/(sigma step)) ~ 1e-17; truncation ~1e-19).

    ``complement=True`` returns 1 - E[exp(-sX)] computed without cancellation (the refault
    probability per attempt when s = theta).  Negative s gives the moment generating function
    E[exp(|s| X)], ``inf`` where it diverges (always, for the log-normal with cv > 0).
    Vectorised: mean, cv and s broadcast.
    """
    name = canonical_name(name)
    mean, cv, s = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (mean, cv, s)))
    _check_mean_cv(mean, cv)
    _check("s", s, ~np.isnan(s), "a real number (not nan)")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "deterministic":
            out = _lst_deterministic(mean, s, complement)
        elif name == "exponential":
            out = _lst_gamma(np.ones_like(mean), mean, s, complement)
        elif name == "gamma":
            safe_cv = np.where(cv > 0, cv, 1.0)
            gam = _lst_gamma(1.0 / safe_cv**2, mean * safe_cv**2, s, complement)
            out = np.where(cv > 0, gam, _lst_deterministic(mean, s, complement))
        else:
            out = _lst_lognormal(mean, cv, s, complement)
    return _output(out)


def _lst_deterministic(mean, s, complement):
    return -np.expm1(-s * mean) if complement else np.exp(-s * mean)


def _lst_gamma(shape, scale, s, complement):
    x = s * scale
    log_value = -shape * np.log1p(np.where(x > -1, x, 0.0))
    if shape.size and np.all(shape == 1):  # exponential: exact rational form
        value = 1.0 / (1.0 + x)
        comp = x / (1.0 + x)
    else:
        value = np.exp(log_value)
        comp = -np.expm1(log_value)
    out = comp if complement else value
    # MGF diverges for s scale <= -1
    return np.where(x > -1, out, -np.inf if complement else np.inf)


_LOGNORMAL_CHUNK = 1 << 15


def _lst_lognormal(mean, cv, s, complement):
    mu, sigma = (np.asarray(v) for v in lognormal_params(mean, cv))
    mu, sigma = np.broadcast_arrays(mu, sigma)
    flat_mu, flat_sigma, flat_s = mu.ravel(), sigma.ravel(), s.ravel()
    out = np.empty(flat_s.shape)
    for start in range(0, flat_s.size, _LOGNORMAL_CHUNK):
        sl = slice(start, start + _LOGNORMAL_CHUNK)
        m_, sg, ss = flat_mu[sl], flat_sigma[sl], flat_s[sl]
        step = min(0.1, 0.25 / max(float(sg.max(initial=0.0)), 1e-300))
        half = int(np.ceil(9.0 / step))
        z = np.arange(-half, half + 1) * step
        weights = np.exp(-z**2 / 2)
        weights /= weights.sum()
        x = np.exp(m_[:, None] + sg[:, None] * z[None, :])
        sx = np.abs(ss)[:, None] * x
        if complement:
            integrand = np.where(ss[:, None] >= 0, -np.expm1(-sx), -np.expm1(sx))
        else:
            integrand = np.where(ss[:, None] >= 0, np.exp(-sx), np.exp(sx))
        res = integrand @ weights
        # the MGF of a non-degenerate log-normal diverges
        diverges = (ss < 0) & (sg > 0)
        res = np.where(diverges, -np.inf if complement else np.inf, res)
        out[sl] = res
    return out.reshape(s.shape)


# ----------------------------------------------------------------------------------------------
# Fits (the calibration)
# ----------------------------------------------------------------------------------------------

def fit_lognormal(median: float, upper: float, level: float = 0.9) -> tuple[float, float]:
    """(mean, cv) of the log-normal with this median and quantile ``upper`` at ``level``:
    sigma = ln(upper/median) / Phi^-1(level), mean = median e^(sigma^2/2),
    cv = sqrt(e^(sigma^2) - 1)."""
    if not (0.5 < level < 1):
        raise LawError(f"level={level!r} is not allowed: a probability in (0.5, 1)")
    if not (median > 0 and math.isfinite(median) and upper >= median and math.isfinite(upper)):
        raise LawError(f"median={median!r}, upper={upper!r} are not allowed: a log-normal needs "
                       "0 < median <= upper, both finite")
    sigma = math.log(upper / median) / float(special.ndtri(level))
    return median * math.exp(sigma**2 / 2), math.sqrt(math.expm1(sigma**2))


def lognormal_cv_from_mean_quantile(mean: float, upper: float, level: float = 0.99) -> float:
    """cv of the log-normal with this mean and quantile ``upper`` at ``level`` (the smaller
    sigma that fits: ln(upper/mean) = z sigma - sigma^2/2 with z = Phi^-1(level); sigma = z when
    no sigma fits, the largest ratio upper/mean a log-normal reaches at that level)."""
    if not (0.5 < level < 1):
        raise LawError(f"level={level!r} is not allowed: a probability in (0.5, 1)")
    if not (mean > 0 and upper > 0 and math.isfinite(mean) and math.isfinite(upper)):
        raise LawError(f"mean={mean!r}, upper={upper!r} are not allowed: positive and finite")
    z = float(special.ndtri(level))
    disc = z**2 - 2 * math.log(upper / mean)
    sigma = z - math.sqrt(disc) if disc >= 0 else z
    return math.sqrt(math.expm1(sigma**2))


# ----------------------------------------------------------------------------------------------
# Read stalls: a rare slow component added to a read (the device's tail, issue 14)
# ----------------------------------------------------------------------------------------------

#: body quantile points of the stall mixture's numerical CDF (midpoints in probability)
STALL_POINTS = 128
#: points of the log-time grid on which :func:`stall_quantile` inverts the CDF
STALL_GRID = 800


def _check_stall(share, stall_mean, stall_cv) -> None:
    share, stall_mean, stall_cv = (np.asarray(v, dtype=float)
                                   for v in (share, stall_mean, stall_cv))
    _check("io_stall_share", share, np.isfinite(share) & (share >= 0) & (share < 1),
           "a probability in [0, 1)")
    _check("io_stall_latency", stall_mean, np.isfinite(stall_mean) & (stall_mean > 0),
           "a finite time > 0 (s)")
    _check("io_stall_cv", stall_cv, np.isfinite(stall_cv) & (stall_cv >= 0),
           "a finite coefficient of variation >= 0")


def _lognormal_cdf(x, mean: float, cv: float):
    """P(X <= x) of the log-normal (mean, cv), 0 for x <= 0; an atom at the mean if cv = 0."""
    x = np.asarray(x, dtype=float)
    if cv <= 0:
        return (x >= mean).astype(float)
    mu, sigma = lognormal_params(mean, cv)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(np.where(x > 0, x, 1.0)) - mu) / sigma
    return np.where(x > 0, special.ndtr(z), 0.0)


def stall_cdf(t, name: str, mean: float, cv: float, share: float, stall_mean: float,
              stall_cv: float, shift: float = 0.0):
    """P(X <= t) of a read X = shift + B + S, B of the law ``name`` (mean, cv), S = 0 with
    probability 1 - ``share`` and otherwise log-normal (``stall_mean``, ``stall_cv``): a read
    that the host holds up (a KVM guest's virtio read served in milliseconds now and then).

    P(B + S <= u) = (1 - share) F_B(u) + share E[F_S(u - B)], the expectation over B taken at
    ``STALL_POINTS`` equiprobable quantiles of B (exact to ~1/STALL_POINTS of B's spread, which
    a stall of milliseconds dwarfs).  Vectorised over ``t``.
    """
    _check_stall(share, stall_mean, stall_cv)
    u = np.asarray(t, dtype=float) - shift
    body = Law(name, mean, cv)
    f_body = np.where(u > 0, body.cdf(np.maximum(u, 0.0)), 0.0)
    if share == 0:
        return _output(f_body)
    points = np.asarray(quantile(name, mean, cv,
                                 (np.arange(STALL_POINTS) + 0.5) / STALL_POINTS), dtype=float)
    f_stall = _lognormal_cdf(u[..., None] - points, stall_mean, stall_cv).mean(axis=-1)
    return _output((1 - share) * f_body + share * f_stall)


def stall_quantile(levels, name: str, mean: float, cv: float, share: float, stall_mean: float,
                   stall_cv: float, shift: float = 0.0):
    """Quantiles of the read with stalls (:func:`stall_cdf`) at ``levels`` in [0, 1): its CDF on
    ``STALL_GRID`` points in log time, inverted by linear interpolation (the grid's relative step
    is under 1 %, so the error is far below that)."""
    levels = np.asarray(levels, dtype=float)
    _check("levels", levels, (levels >= 0) & (levels < 1), "probabilities in [0, 1)")
    if share == 0:
        return _output(shift + np.asarray(quantile(name, mean, cv, levels), dtype=float))
    top = float(np.max(levels))
    low = max(float(quantile(name, mean, cv, 1e-6)), mean * 1e-3, 1e-15)
    high = (float(quantile(name, mean, cv, max(top, 1 - 1e-9)))
            + float(Law("lognormal", stall_mean, stall_cv).ppf(min(0.5 + top / 2, 1 - 1e-12)))
            + mean)
    grid = np.exp(np.linspace(math.log(low), math.log(high), STALL_GRID))
    cdf = np.maximum.accumulate(np.asarray(stall_cdf(grid, name, mean, cv, share, stall_mean,
                                                     stall_cv)))
    out = np.exp(np.interp(levels, cdf, np.log(grid)))
    return _output(shift + np.where(levels <= 0, 0.0, out))


def stall_mean_cv(mean: float, cv: float, share: float, stall_mean: float, stall_cv: float
                  ) -> tuple[float, float]:
    """(mean, cv) of B + S (:func:`stall_cdf`): E = m + share m_s,
    Var = (cv m)^2 + share m_s^2 (1 + cv_s^2) - (share m_s)^2."""
    _check_stall(share, stall_mean, stall_cv)
    total = mean + share * stall_mean
    var = (cv * mean) ** 2 + share * stall_mean**2 * (1 + stall_cv**2) - (share * stall_mean) ** 2
    return total, (math.sqrt(max(var, 0.0)) / total if total > 0 else 0.0)


def sample_stalled(rng: np.random.Generator, size: int, name: str, mean: float, cv: float,
                   share: float, stall_mean: float, stall_cv: float) -> np.ndarray:
    """``size`` reads B + S drawn with numpy (the engine draws the same law in
    ``montecarlo/rng.py: stall``)."""
    _check_stall(share, stall_mean, stall_cv)
    body = Law(name, mean, cv)
    u = rng.random(size)
    x = np.asarray(body.ppf(u), dtype=float)
    stalled = rng.random(size) < share
    mu, sigma = lognormal_params(stall_mean, stall_cv)
    x[stalled] += np.exp(mu + sigma * rng.standard_normal(int(stalled.sum())))
    return x
