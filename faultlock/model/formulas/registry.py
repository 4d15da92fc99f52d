"""The registry of formulas: :class:`Formula`, :data:`FORMULAS`, and how a formula is evaluated.

Each formula is a sympy expression built once at import (by the modules of this package, one per
family of derivations), registered in :data:`FORMULAS` with its ordered symbols, assumptions and
reference (a paper, and the section of ``reference/queueing.md`` that quotes it).  From the one
expression come:

* :meth:`Formula.hash`, the sha256 of its canonical ``srepr``, recorded in sweep provenance
  (``formula_hashes``): it changes exactly when the expression or its condition does;
* :meth:`Formula.latex`, which the paper prints;
* :meth:`Formula.numeric`, a cached numpy-vectorised ``sp.lambdify`` (keywords: the public
  names of :data:`~faultlock.model.formulas.symbols.PARAMETER_NAMES`);
* :meth:`Formula.compiled`, a scalar numba function for the compiled analytic model.

A formula whose expression overflows or cancels in floating point carries ONE numeric kernel
instead: a scalar numba function (``compiled_implementation``) and, for arrays, that kernel's
numba ufunc (``implementation``), so both evaluations do the same arithmetic; the tests check
the kernel against the expression (tests/test_formulas.py).  ``mmc_wait`` has only an array
``implementation`` (scipy's Poisson law), no compiled form.

Stability convention (DESIGN.md): a formula whose regime can be unstable carries a ``condition``;
outside it :meth:`Formula.numeric` returns ``inf``, never a meaningless finite number.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np
import sympy as sp
from numba import njit

from .symbols import PARAMETER_NAMES

# (MODEL_REFERENCE, register, convergent_branch and scalar_or_array are for this package's modules)
__all__ = ["FORMULAS", "Formula"]

#: the reference shared by the formulas of the page-fault model.
MODEL_REFERENCE = "faultlock issue 3 (the analytic model); MODEL.md; reference/kernel.md §6"

@dataclass(frozen=True)
class Formula:
    """One closed-form result: ``lhs = expr`` (valid where ``condition`` holds).

    Attributes
    ----------
    name : registry key.
    lhs : symbol printed on the left-hand side by :meth:`latex`.
    expr : the sympy expression.
    symbols : its free symbols, in the positional order of :meth:`numeric`.
    assumptions : the modelling assumptions under which it is exact.
    reference : where it comes from (paper; section of reference/queueing.md).
    condition : stability / validity condition; where it is false, :meth:`numeric` gives ``inf``.
    implementation : optional vectorised numeric implementation that :meth:`numeric` returns
        instead of the lambdified expression (used when the expression, e.g. a finite ``Sum``,
        overflows or cancels in floating point); it must agree with :meth:`lambdified` where
        both are finite.  With a ``compiled_implementation``, it is that kernel's ufunc.
    compiled_implementation : optional scalar numba kernel that :meth:`compiled` returns for a
        formula with an ``implementation`` (the one numeric kernel of the formula).
    """

    name: str
    lhs: sp.Symbol
    expr: sp.Expr
    symbols: tuple[sp.Symbol, ...]
    assumptions: str
    reference: str
    condition: sp.Basic | None = None
    implementation: Callable[..., np.ndarray] | None = field(default=None, compare=False)
    compiled_implementation: Callable[..., float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        free = set(self.expr.free_symbols)
        if self.condition is not None:
            free |= set(self.condition.free_symbols)
        if free - set(self.symbols):
            raise ValueError(f"{self.name}: symbols {free - set(self.symbols)} not declared")

    @property
    def parameters(self) -> tuple[str, ...]:
        """Public parameter names, in the order of :attr:`symbols`."""
        return tuple(PARAMETER_NAMES[s] for s in self.symbols)

    def latex(self, with_condition: bool = False) -> str:
        """``sp.latex(Eq(lhs, expr))``, optionally followed by the validity condition."""
        text = sp.latex(sp.Eq(self.lhs, self.expr, evaluate=False))
        if with_condition and self.condition is not None:
            text += r"\quad \text{for } " + sp.latex(self.condition)
        return text

    def hash(self) -> str:
        """Stable sha256 hex digest of ``sp.srepr(expr)`` (plus the condition's, if any).

        ``srepr`` is canonical (args in sympy's sort-key order, not Python hash order), so the
        digest is the same across processes and ``PYTHONHASHSEED`` values; it changes exactly when
        the expression or its validity condition changes.
        """
        text = sp.srepr(self.expr)
        if self.condition is not None:
            text += "\n" + sp.srepr(self.condition)
        return hashlib.sha256(text.encode()).hexdigest()

    def lambdified(self) -> Callable[..., np.ndarray]:
        """The expression as a numpy callable (``sp.lambdify(symbols, expr, "numpy")``), cached.

        Expressions containing a ``Sum`` with a symbolic bound are wrapped in ``np.vectorize``
        (integer symbols cast to ``int``) so that they broadcast like the others.
        """
        return _lambdify(self.expr, self.symbols)

    def numeric(self) -> Callable[..., np.ndarray | float]:
        """A numpy-vectorised callable of :attr:`symbols` (positional) or parameter names
        (keywords); ``inf`` where :attr:`condition` fails; cached."""
        return _numeric(self)

    def compiled(self) -> Callable[..., float]:
        """A scalar numba function of :attr:`symbols` (positional, floats), for compiled code.

        Built from the same expression as :meth:`numeric` (``sp.lambdify(symbols, expr,
        "math")`` under ``numba.njit``), ``inf`` where :attr:`condition` fails (``nan`` in,
        ``nan`` out, as :meth:`numeric`); a formula with an ``implementation`` returns its
        ``compiled_implementation``.  Cached; compiled at the first call from compiled code (the
        callers' ``cache=True`` keeps the machine code between processes).
        """
        return _compiled(self)

    def __call__(self, *args, **kwargs):
        return self.numeric()(*args, **kwargs)


@functools.cache
def _lambdify(expr: sp.Expr, symbols: tuple[sp.Symbol, ...]) -> Callable[..., np.ndarray]:
    f = sp.lambdify(symbols, expr, "numpy")
    if not expr.has(sp.Sum):
        return f
    integer = [bool(s.is_integer) for s in symbols]

    def scalar(*args):
        return f(*(int(a) if is_int else float(a) for a, is_int in zip(args, integer)))

    return np.vectorize(scalar, otypes=[float])


@functools.cache
def _numeric(formula: Formula) -> Callable[..., np.ndarray | float]:
    value = formula.implementation or formula.lambdified()
    cond = None
    if formula.condition is not None:
        cond = sp.lambdify(formula.symbols, formula.condition, "numpy")
    params = formula.parameters

    def evaluate(*args, **kwargs):
        if kwargs:
            extra = set(kwargs) - set(params[len(args):])
            if extra:
                raise TypeError(f"{formula.name}: unexpected parameters {sorted(extra)}; "
                                f"expected {params}")
            missing = [p for p in params[len(args):] if p not in kwargs]
            if missing:
                raise TypeError(f"{formula.name}: missing parameters {missing}")
            args = args + tuple(kwargs[p] for p in params[len(args):])
        if len(args) != len(params):
            raise TypeError(f"{formula.name}: expected {len(params)} arguments {params}")
        args = tuple(np.asarray(a, dtype=float) for a in args)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(value(*args), dtype=float)
            if cond is not None:
                ok = np.asarray(cond(*args), dtype=bool)
                missing = np.zeros((), dtype=bool)
                for a in args:
                    missing = missing | np.isnan(a)
                out = np.where(ok | missing, out, np.inf)  # nan in, nan out
            # broadcast constant expressions to the shape of the inputs
            out = out + np.zeros(np.broadcast_shapes(*(np.shape(a) for a in args)))
        return scalar_or_array(out)

    evaluate.__name__ = formula.name
    evaluate.__doc__ = f"{formula.name}({', '.join(params)}) = {formula.expr}"
    return evaluate


@functools.cache
def _compiled(formula: Formula) -> Callable[..., float]:
    if formula.implementation is not None:
        if formula.compiled_implementation is None:
            raise NotImplementedError(f"{formula.name}: no compiled_implementation")
        return formula.compiled_implementation
    if formula.expr.has(sp.Sum):
        raise NotImplementedError(f"{formula.name}: a Sum has no scalar compiled form")
    value = njit(error_model="numpy")(sp.lambdify(formula.symbols, formula.expr, "math"))
    if formula.condition is None:
        return value
    cond = njit(error_model="numpy")(sp.lambdify(formula.symbols, formula.condition, "math"))
    names = [f"a{i}" for i in range(len(formula.symbols))]
    args = ", ".join(names)
    nan_in = " or ".join(f"{a} != {a}" for a in names)
    source = (f"def {formula.name}({args}):\n"
              f"    out = value({args})\n"
              f"    if cond({args}) or {nan_in}:\n"
              f"        return out\n"
              f"    return math.inf\n")
    scope = {"value": value, "cond": cond, "math": math}
    exec(source, scope)  # noqa: S102 -- a fixed arity wrapper, the text above
    return njit(error_model="numpy")(scope[formula.name])


#: every formula, by name.
FORMULAS: dict[str, Formula] = {}


def register(formula: Formula) -> Formula:
    """Add ``formula`` to :data:`FORMULAS` (names are unique) and return it."""
    if formula.name in FORMULAS:
        raise ValueError(f"duplicate formula {formula.name}")
    FORMULAS[formula.name] = formula
    return formula



def convergent_branch(expr: sp.Expr) -> sp.Expr:
    """First branch of the Piecewise sympy returns for a geometric-type series."""
    expr = sp.piecewise_fold(expr)
    if isinstance(expr, sp.Piecewise):
        return expr.args[0][0]
    return expr


def scalar_or_array(x):
    """A 0-d result as a Python float, anything else as an array."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x
