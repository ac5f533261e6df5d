"""Checks of parameters, shared by every module, with one wording: the parameter's name,
what it must be, and the value found.

A failed check raises :class:`ParameterError`, which is both a ``ValueError`` and a
``TypeError`` (as scikit-learn's ``InvalidParameterError``): a wrong type and a value out
of range are the same mistake to the caller.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import TypeVar

__all__ = ["ParameterError", "check_choice", "check_fraction", "check_integer", "check_seed"]

T = TypeVar("T")


class ParameterError(ValueError, TypeError):
    """A parameter of the wrong type or outside its range; the message names it."""


def check_choice(value: T, choices: Collection[object], name: str) -> T:
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(map(repr, choices))
        raise ParameterError(f"{name} must be one of {listed}; got {value!r}")
    return value


def check_integer(value: object, name: str, minimum: int = 0, *, allow_none: bool = False):
    """``value`` as a Python int (numpy integers accepted, booleans refused) when it is at
    least ``minimum``; None passes through when ``allow_none``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        also = " or None" if allow_none else ""
        raise ParameterError(f"{name} must be an integer >= {minimum}{also}; got {value!r}")
    return int(value)


def check_seed(value: object, name: str = "seed") -> int:
    """A seed: an integer >= 0."""
    return check_integer(value, name, 0)


def check_fraction(value: object, name: str, *, open_low: bool = False) -> float:
    """``value`` as a float when it lies in ``[0, 1]`` (``(0, 1]`` with ``open_low``)."""
    interval = "(0, 1]" if open_low else "[0, 1]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a number in {interval}; got {value!r}")
    number = float(value)
    low_ok = number > 0 if open_low else number >= 0
    if not (math.isfinite(number) and low_ok and number <= 1):
        raise ParameterError(f"{name} must lie in {interval}, got {value!r}")
    return number
