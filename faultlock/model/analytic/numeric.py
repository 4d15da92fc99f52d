"""numpy's elementwise semantics on scalars, for the compiled sub-models, and the share solve.

``np.minimum``/``np.maximum``/``np.clip`` propagate nan; ``np.nan_to_num`` maps nan and the
infinities; ``safe_div`` divides only by a positive number.  ``illinois_step`` is the one
bracketed root finder of the compiled model (regula falsi with the Illinois modification, driven
by its caller one evaluation at a time); ``share_fixed_point`` solves a station's time share
``u = rhs(u)`` (storage, CPUs) with it, returning what a bisection of [0, 1] would (so that the
outer iteration follows one path whatever the inner solver).  The closed forms themselves come
compiled from their sympy source in :mod:`faultlock.model.formulas` (``Formula.compiled()``):
they are bound here once.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import formulas as sym

JIT = {"cache": True, "error_model": "numpy"}
INF = math.inf
BIG = np.finfo(float).max                      # what np.nan_to_num makes of inf

# the closed forms, compiled from the same source as their sympy expressions
finite_source_wait = sym.FORMULAS["finite_source_wait"].compiled()
lag_inside_probability = sym.FORMULAS["lag_inside_probability"].compiled()
mg1_busy_period_residual = sym.FORMULAS["mg1_busy_period_residual"].compiled()
mg1_wait = sym.FORMULAS["mg1_wait"].compiled()
mginf_busy_period = sym.FORMULAS["mginf_busy_period"].compiled()
mginf_max_residual = sym.FORMULAS["mginf_max_residual"].compiled()
read_service_time = sym.FORMULAS["read_service_time"].compiled()
refault_success_window = sym.FORMULAS["refault_success_window"].compiled()
vma_abort_probability = sym.FORMULAS["vma_abort_probability"].compiled()
writer_utilisation = sym.FORMULAS["writer_utilisation"].compiled()
fs_tail = sym.finite_source_tail_scalar
fs_excess = sym.finite_source_excess_scalar
page_state_weights = sym.page_state_weights_scalar
lru_page_weights = sym.lru_page_weights_scalar       # the lru_page / two_list_page shares
lru_retry_miss = sym.lru_retry_miss_scalar           # P(retry window > T_c)
lag_inside_pair = sym.lag_inside_pair_scalar         # both lag_inside formulas at one point


@njit(**JIT)
def safe_div(a, b, default):
    """``a / b`` where ``b > 0``, else ``default`` (no division elsewhere)."""
    return a / b if b > 0 else default


@njit(**JIT)
def vmin(a, b):
    """np.minimum: nan if either is nan."""
    if a != a:
        return a
    if b != b:
        return b
    return min(a, b)


@njit(**JIT)
def vmax(a, b):
    """np.maximum: nan if either is nan."""
    if a != a:
        return a
    if b != b:
        return b
    return max(a, b)


@njit(**JIT)
def clip(a, lo, hi):
    return vmin(vmax(a, lo), hi)


@njit(**JIT)
def nan_to_num(v, nan, posinf, neginf):
    if v != v:
        return nan
    if v == INF:
        return posinf
    if v == -INF:
        return neginf
    return v


# ----------------------------------------------------------------------------------------------
# The bracketed root finder: regula falsi with the Illinois modification
# ----------------------------------------------------------------------------------------------

@njit(**JIT)
def false_position(lo, g_lo, hi, g_hi):
    """Where the chord through ``(lo, g_lo)`` and ``(hi, g_hi)`` crosses 0; the middle of the
    bracket where that is not strictly inside it (or not a number)."""
    x = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
    if not ((x > lo) and (x < hi)):
        x = 0.5 * (lo + hi)
    return x


@njit(**JIT)
def illinois_step(lo, g_lo, hi, g_hi, side, x, gx):
    """One step of regula falsi with the Illinois modification (Dowell & Jarratt 1971).

    A root of ``g`` is bracketed by ``lo < hi`` with ``g(lo) >= 0 > g(hi)`` (``g`` falls
    through the root); ``x`` inside the bracket was evaluated, ``gx = g(x)``.  The end on the
    side of ``x`` moves to it; where the same end is kept twice in a row (``side``: +1 the last
    step moved ``lo``, -1 ``hi``, 0 none yet) the value kept there is halved, which turns the
    linear convergence of plain regula falsi into superlinear (order 1.44) while the root stays
    bracketed.  An exact root (``gx == 0``) closes the bracket on it.  The caller drives it one
    evaluation at a time (reverse communication: no function passed in, so every solve of the
    compiled model shares it) and stops on the bracket's width.  Returns ``(lo, g_lo, hi, g_hi,
    side, next)``, ``next`` the point to evaluate next (:func:`false_position`).
    """
    above = gx >= 0
    if above and side > 0:
        g_hi = 0.5 * g_hi
    if (not above) and side < 0:
        g_lo = 0.5 * g_lo
    if above:
        lo, g_lo = x, gx
    else:
        hi, g_hi = x, gx
    if gx == 0:
        hi = x                                       # an exact root: both ends
    side = 1.0 if above else -1.0
    return lo, g_lo, hi, g_hi, side, false_position(lo, g_lo, hi, g_hi)


# ----------------------------------------------------------------------------------------------
# u = rhs(u) for a time share: regula falsi (Illinois) kept on the bisection's answer
# ----------------------------------------------------------------------------------------------

SHARE_STEPS = 24                 # the bisection's halvings: 2^-25 in u
RHS_STORAGE = 0                  # rate (S + W(u)) / N at the device (device.py)
RHS_CPU = 1                      # the computing threads' CPU share (cpu.py)


@njit(**JIT)
def _share_rhs(kind, u, p0, p1, p2, p3, p4, p5):
    if kind == RHS_STORAGE:      # p: rate, service, slots, others, cv, threads
        return p0 * (p1 + finite_source_wait(p2, p3, u, p1, p4)) / p5
    # RHS_CPU, p: access rate, think, threads, servers
    return p0 * p1 * (1 + fs_excess(p2 - 1, u, p3 - 1) / p3) / p2


@njit(**JIT)
def share_fixed_point(kind, p0, p1, p2, p3, p4, p5, has_guess, guess):
    """Solve ``u = rhs(u)`` for a time share ``u`` in [0, 1], ``rhs`` increasing.

    ``rhs(0) >= 0``; where ``rhs(1) >= 1`` the station is saturated and 1 is returned.  The root
    is kept bracketed, ``rhs(lo) >= lo`` and ``rhs(hi) < hi``, as by a bisection of [0, 1]
    whose ``SHARE_STEPS`` halvings give the accuracy asked for; the bracket shrinks by regula
    falsi with the Illinois modification (superlinear).  With ``guess`` (the share at the
    previous pass of the outer fixed point) it starts from a bracket around the guess: the
    guess and a step past it, twice the residual there.  The result is the bisection's, bit for
    bit (the middle of its last interval: two more evaluations check which), so that the outer
    fixed point follows the same path.  Where ``rhs`` is not a number: 2^-25.
    """
    steps = SHARE_STEPS
    tol = 0.5 ** (steps + 1)
    r1 = _share_rhs(kind, 1.0, p0, p1, p2, p3, p4, p5)
    if r1 >= 1.0:                                            # saturated
        return 1.0
    lo, g_lo = 0.0, math.nan
    hi, g_hi = 1.0, r1 - 1.0
    if has_guess:
        u0 = clip(nan_to_num(guess, 0.5, BIG, -BIG), tol, 1 - tol)
        g0 = _share_rhs(kind, u0, p0, p1, p2, p3, p4, p5) - u0
        u1 = clip(u0 + (1.0 if g0 >= 0 else -1.0) * (2 * abs(g0) + 4 * tol), 0.0, 1.0)
        g1 = _share_rhs(kind, u1, p0, p1, p2, p3, p4, p5) - u1
        for j in range(2):
            u, gu = (u0, g0) if j == 0 else (u1, g1)
            above, inside = gu >= 0, (u > lo) and (u < hi)
            if above and inside:
                lo, g_lo = u, gu
            if (not above) and inside:
                hi, g_hi = u, gu
    if g_lo != g_lo:
        g_lo = _share_rhs(kind, lo, p0, p1, p2, p3, p4, p5) - lo
    side = 0.0
    if g_lo != g_lo or g_hi != g_hi:
        result = tol
        pending = False
    else:
        result = 0.5 * (lo + hi)
        pending = not (hi - lo <= tol)
    if pending:
        x = false_position(lo, g_lo, hi, g_hi)
        for _ in range(4 * steps):
            gx = _share_rhs(kind, x, p0, p1, p2, p3, p4, p5) - x
            lo, g_lo, hi, g_hi, side, x = illinois_step(lo, g_lo, hi, g_hi, side, x, gx)
            nan = gx != gx
            result = tol if nan else 0.5 * (lo + hi)
            if (hi - lo <= 0.5 * tol) or nan:
                break
    # the bisection's answer: the middle of the cell k 2^-steps .. (k+1) 2^-steps with the root
    if result != tol:
        cells = 2.0 ** steps
        k = clip(np.floor(result * cells), 0.0, cells - 1)
        if k > 0 and _share_rhs(kind, k / cells, p0, p1, p2, p3, p4, p5) - k / cells < 0:
            k -= 1
        if k < cells - 1 and (_share_rhs(kind, (k + 1) / cells, p0, p1, p2, p3, p4, p5)
                              - (k + 1) / cells >= 0):
            k += 1
        result = (k + 0.5) / cells
    return result
