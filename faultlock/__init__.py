"""faultlock: page faults that wait for I/O under mmap_lock, per-VMA locks, folio locks and reclaim.

The notebook API::

    >>> import faultlock
    >>> s = faultlock.Scenario.preset("android_warm_start", threads=400)
    >>> ds = faultlock.simulate(s, policies=["mainline", "vma_retry"],
    ...                         operations=20_000)  # doctest: +SKIP

The names below are imported on first use (PEP 562 module ``__getattr__``): ``import faultlock``
and ``faultlock --help`` do not pay for numba, dask, matplotlib, scipy.stats or sympy, which only
the solvers, sweeps and figures need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "ArgumentError": "faultlock.model.arguments",
    "POLICIES": "faultlock.model.policies",
    "POLICY_TABLE": "faultlock.model.policies",
    "Policy": "faultlock.model.policies",
    "PRESETS": "faultlock.model.scenario",
    "Scenario": "faultlock.model.scenario",
    "parse_time": "faultlock.model.scenario",
    "simulate": "faultlock.model.montecarlo.simulate",
    "predict": "faultlock.model.analytic",
    "run_sweep": "faultlock.sweeps",
}

__all__ = ["ArgumentError", "Scenario", "PRESETS", "POLICIES", "POLICY_TABLE", "Policy",
           "parse_time", "simulate", "predict", "run_sweep", "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .model.analytic import predict
    from .model.arguments import ArgumentError
    from .model.montecarlo.simulate import simulate
    from .model.policies import POLICIES, POLICY_TABLE, Policy
    from .model.scenario import PRESETS, Scenario, parse_time
    from .sweeps import run_sweep


def __getattr__(name: str):
    """Import a public name's module the first time the name is used, then keep it here."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'faultlock' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
