"""Checks of the arguments of the solvers and commands, written once.

``simulate``, ``predict``, ``validate`` and the command line take, besides a
:class:`~faultlock.model.scenario.Scenario`, run lengths (``operations``, ``batches``,
``replications``, ``max_events``), tolerances, flags, a ``seed`` and a list of ``policies``. Each is
checked here, before any work is done, and a bad one raises :class:`ArgumentError` (a
``ValueError``; :class:`ArgumentTypeError` is also a ``TypeError`` for a value of the wrong type)
whose message names the argument, the value given and what is allowed, in the form the Scenario's
own errors take::

    >>> check_integer("operations", -1, low=100)
    Traceback (most recent call last):
    ...
    faultlock.model.arguments.ArgumentError: operations=-1 is not allowed: an integer >= 100

The same checks parse the command-line options (:func:`option_type`), so ``--seed -1`` and
``simulate(seed=-1)`` say the same thing.
"""

from __future__ import annotations

import argparse
import difflib
import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["ArgumentError", "ArgumentTypeError", "check_bool", "check_choice", "check_integer",
           "check_policies", "check_real", "check_scenario", "check_seed", "option_type"]


#: the largest run lengths accepted: ``operations`` per replication (the event budget derived
#: from it must fit an int64), ``batches`` (each holds its own counters and histograms) and
#: ``replications``
OPERATIONS_LIMIT = 10**12
BATCHES_LIMIT = 10_000
REPLICATIONS_LIMIT = 10_000


class ArgumentError(ValueError):
    """A bad argument: the message names it, the value given and what is allowed.

    Scenario fields raise it too (:meth:`faultlock.Scenario.__init__`), so one ``except
    ArgumentError`` (or ``except ValueError``) catches every bad input."""


class ArgumentTypeError(ArgumentError, TypeError):
    """A bad argument of the wrong type (also a ``TypeError``)."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(name: str, value: Any, allowed: str, why: str = "", *, wrong_type: bool = False):
    kind = ArgumentTypeError if wrong_type else ArgumentError
    return kind(f"{name}={_shown(value)} is not allowed: {allowed}{why}")


def _is_integer(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def _range_words(noun: str, low, high, low_open: bool = False, high_open: bool = False) -> str:
    def shown(x):
        if isinstance(x, float):
            return f"{x:g}"
        if x >= 2**16 and x & (x - 1) == 0:
            return f"2**{x.bit_length() - 1}"
        return f"{x:_}" if abs(x) >= 100_000 else str(x)
    if low is not None and high is not None:
        return f"{noun} in {'[('[low_open]}{shown(low)}, {shown(high)}{'])'[high_open]}"
    if low is not None:
        return f"{noun} {'>' if low_open else '>='} {shown(low)}"
    if high is not None:
        return f"{noun} {'<' if high_open else '<='} {shown(high)}"
    return noun


def check_integer(name: str, value: Any, *, low: int | None = None,
                  high: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool, not a float) in [low, high]."""
    allowed = _range_words("an integer", low, high)
    if not _is_integer(value):
        got = "a bool" if isinstance(value, (bool, np.bool_)) else type(value).__name__
        raise _refuse(name, value, allowed, f" (got {got})", wrong_type=True)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _refuse(name, value, allowed)
    return value


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, infinite: bool = False) -> float:
    """``value`` as a float, if it is a real number (not a bool) within the bounds; NaN never,
    infinity only with ``infinite=True`` (and within the bounds)."""
    noun = "a number" if not infinite else "a number (inf allowed)"
    allowed = _range_words(noun, low, high, low_open, high_open)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)) \
            or isinstance(value, np.complexfloating):
        got = "a bool" if isinstance(value, (bool, np.bool_)) else type(value).__name__
        raise _refuse(name, value, allowed, f" (got {got})", wrong_type=True)
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not infinite):
        raise _refuse(name, value, allowed)
    if low is not None and (number <= low if low_open else number < low):
        raise _refuse(name, value, allowed)
    if high is not None and (number >= high if high_open else number > high):
        raise _refuse(name, value, allowed)
    return number


def check_bool(name: str, value: Any, *, none: bool = False) -> bool | None:
    """``value`` if it is True or False (numpy bools too), or None when ``none`` is allowed."""
    if value is None and none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    allowed = "True, False or None" if none else "True or False"
    raise _refuse(name, value, allowed, f" (got {type(value).__name__})", wrong_type=True)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices`` (a close match is suggested)."""
    choices = tuple(choices)
    allowed = "one of " + ", ".join(map(repr, choices))
    if not isinstance(value, str):
        raise _refuse(name, value, allowed, f" (got {type(value).__name__})", wrong_type=True)
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        raise _refuse(name, value, allowed, f" (did you mean {close[0]!r}?)" if close else "")
    return value


#: largest seed accepted as an int (numpy's SeedSequence takes any non-negative int; a bound keeps
#: the message honest about what is useful: 128 bits of entropy)
SEED_LIMIT = 2**128 - 1


def check_seed(name: str, value: Any) -> np.random.SeedSequence:
    """The root :class:`numpy.random.SeedSequence` of ``value``: a non-negative integer, or a
    SeedSequence (used as it is)."""
    if isinstance(value, np.random.SeedSequence):
        return value
    allowed = "a non-negative integer or a numpy.random.SeedSequence"
    if not _is_integer(value):
        got = "a bool" if isinstance(value, (bool, np.bool_)) else type(value).__name__
        raise _refuse(name, value, allowed, f" (got {got})", wrong_type=True)
    if not 0 <= int(value) <= SEED_LIMIT:
        raise _refuse(name, value, allowed, " (at most 2**128 - 1)" if value > 0 else "")
    return np.random.SeedSequence(int(value))


def check_policies(value: Any, name: str = "policies") -> tuple[str, ...]:
    """A policy name or a non-empty sequence of distinct ones, as a tuple in the order given."""
    from .policies import POLICIES
    allowed = "a policy name or a non-empty sequence of them, from " + ", ".join(POLICIES)
    if isinstance(value, str):
        value = (value,)
    elif isinstance(value, np.ndarray):
        value = tuple(value.tolist())
    elif isinstance(value, (Iterable)) and not isinstance(value, (bytes, dict)):
        value = tuple(value)
    else:
        raise _refuse(name, value, allowed, f" (got {type(value).__name__})", wrong_type=True)
    if not value:
        raise _refuse(name, value, allowed)
    for item in value:
        if not isinstance(item, str):
            raise _refuse(name, value, allowed, f" ({item!r} is not a str)", wrong_type=True)
        if item not in POLICIES:
            close = difflib.get_close_matches(item, POLICIES, n=1)
            raise _refuse("policy", item, "one of " + ", ".join(POLICIES),
                          f" (did you mean {close[0]!r}?)" if close else "")
    if len(set(value)) != len(value):
        raise _refuse(name, value, "each policy at most once")
    return value


def check_scenario(value: Any, name: str = "scenario"):
    """``value`` if it is a :class:`~faultlock.model.scenario.Scenario`."""
    from .scenario import Scenario
    if not isinstance(value, Scenario):
        hint = (" (build one: faultlock.Scenario(**fields) or Scenario.preset(name))"
                if isinstance(value, (dict, str)) else "")
        raise _refuse(name, value, "a faultlock.Scenario", hint, wrong_type=True)
    return value


def option_type(name: str, check: Callable[[str, Any], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` that reads an integer option and applies ``check`` to it, so that the
    command line refuses ``--seed -1`` for the reason ``simulate(seed=-1)`` gives. argparse
    names the option: ``argument --seed: -1 is not allowed: a non-negative integer ...``."""
    def parse(text: str):
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not allowed: an integer"
                                                 ) from None
        try:
            check(name, number)
        except ArgumentError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{name}=")) from None
        return number
    parse.__name__ = name          # argparse names the type in its own messages
    return parse
