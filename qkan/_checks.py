"""Argument checks shared by the public entry points.

Errors name the argument, what was expected and what was given: TypeError for a wrong type,
ValueError for a wrong value. ``require`` is the one import guard of optional dependencies.
"""

from __future__ import annotations

import importlib
import math
import numbers
from types import ModuleType

__all__ = ["check_int", "check_number", "check_interval", "check_choice", "check_type", "check_bool", "check_device", "require"]


def check_int(arg: str, value, low: int = 1, allow_none: bool = False, high: int | None = None) -> int | None:
    """`value` must be an int in [low, high] (or None where allowed); returns it as a Python int.

    Integers of other types (numpy.int64, ...) are accepted. TypeError naming `arg` for a
    non-integer (bools included), ValueError for one out of range.
    """
    if value is None and allow_none:
        return None
    none = " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bound = f" in [{low}, {high}]" if high is not None else f" >= {low}"
        raise TypeError(f"`{arg}` must be an int{bound}{none}; got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"`{arg}` must be an int >= {low}{none}; got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"`{arg}` must be an int <= {high}{none}; got {value!r}")
    return int(value)


def check_number(arg: str, value, low: float = 0.0, high: float | None = None, allow_none: bool = False) -> float | None:
    """`value` must be a finite real number in [low, high]; returns it as a float.

    TypeError naming `arg` for a non-number (bools included), ValueError for NaN, infinity or a
    value out of range.
    """
    if value is None and allow_none:
        return None
    expected = f"a number >= {low:g}" + (f" and <= {high:g}" if high is not None else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{arg}` must be {expected}; got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{arg}` must be a finite number; got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"`{arg}` must be {expected}; got {value!r}")
    return value


def check_interval(arg: str, value, low: float, high: float, *, open_low: bool = False) -> float:
    """`value` must be a finite real number in [low, high] ((low, high] with open_low); returns it as a float.

    TypeError naming `arg` for a non-number (bools included), ValueError for NaN, infinity or a
    value outside the interval.
    """
    expected = f"a number in {'(' if open_low else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{arg}` must be {expected}; got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or not (low < value if open_low else low <= value) or not value <= high:
        raise ValueError(f"`{arg}` must be {expected}; got {value!r}")
    return float(value)


def check_choice(arg: str, value, choices) -> None:
    """`value` must be one of `choices` (ValueError listing them; TypeError for an unhashable value)."""
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"`{arg}` must be one of {list(choices)}; got {value!r}")


def check_type(arg: str, value, types: type | tuple[type, ...], allow_none: bool = False) -> None:
    """`value` must be an instance of `types` (or None where allowed); TypeError naming `arg` otherwise."""
    if value is None and allow_none:
        return
    if not isinstance(value, types):
        names = " or ".join(
            t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
            for t in (types if isinstance(types, tuple) else (types,))
        )
        raise TypeError(f"`{arg}` must be {names}{' or None' if allow_none else ''}; got {type(value).__name__}")


def check_bool(arg: str, value) -> None:
    """`value` must be True or False (numpy bools accepted); TypeError otherwise."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise TypeError(f"`{arg}` must be True or False; got {value!r} ({type(value).__name__})")


def check_device(device, arg: str = "device"):
    """`device` as a torch.device that can hold tensors here, or None; TypeError/ValueError naming `arg` otherwise."""
    import torch

    if device is None:
        return None
    check_type(arg, device, (str, torch.device, int))
    try:
        device = torch.device(device)
        torch.empty(0, device=device)
    except (RuntimeError, ValueError, AssertionError) as err:  # a CPU-only torch asserts on "cuda"
        message = " ".join(str(err).split())
        raise ValueError(f"`{arg}` must be an available torch device (e.g. 'cpu', 'cuda:0'); got {device!r}: {message}") from None
    return device


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency, or ImportError saying what needs it and how to install it.

    Args:
        module: the module to import, e.g. "pennylane".
        extra: qkan's extra that installs it, e.g. "pennylane".
        what: what needs it, e.g. "the 'pennylane' evaluator".
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f'{what} needs {module.split(".")[0]}: pip install "qkan-daruan[{extra}]"') from err
