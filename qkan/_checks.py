"""Argument checks shared by the public entry points: errors name the argument and what was expected."""

from __future__ import annotations

import numbers

__all__ = ["check_int", "check_number", "check_interval", "check_choice"]


def check_int(arg: str, value, low: int = 1, allow_none: bool = False) -> None:
    """`value` must be an int >= low (or None where allowed); ValueError naming `arg` otherwise."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"`{arg}` must be an int >= {low}{' or None' if allow_none else ''}; got {value!r}")


def check_number(arg: str, value, low: float = 0.0) -> float:
    """`value` must be a real number >= low; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= low:
        raise ValueError(f"`{arg}` must be a number >= {low:g}; got {value!r}")
    return float(value)


def check_interval(arg: str, value, low: float, high: float, *, open_low: bool = False) -> float:
    """`value` must be a real number in [low, high] ((low, high] with open_low); returns it as a float."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not (low < value if open_low else low <= value) or not value <= high):
        raise ValueError(f"`{arg}` must be a number in {'(' if open_low else '['}{low:g}, {high:g}]; got {value!r}")
    return float(value)


def check_choice(arg: str, value, choices) -> None:
    """`value` must be one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{arg}` must be one of {list(choices)}; got {value!r}")
