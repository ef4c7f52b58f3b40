"""The C ABI of the native kernels (abi.h) as ctypes Structures: one per entry point, with the
names, order and kinds (int64_t or pointer) of the header's fields.

The loader compares VERSION and every Structure's size with the library's before it uses it
(a mismatch leaves the torch path running); tests/test_native_build.py compares the fields with
abi.h. Change both files together and bump the version with any change.
"""

from __future__ import annotations

import ctypes

__all__ = ["VERSION", "Args", "SU2Args", "PrepareArgs", "FourierCompileArgs", "FourierFeaturesArgs",
           "FourierWeightsArgs", "ENTRY_POINTS"]

#: QKAN_ABI_VERSION of abi.h
VERSION = 5

_int, _ptr, _program = ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)


def _fields(ints: str, ptrs: str, program: bool = False) -> list[tuple[str, type]]:
    """int64_t fields, then the program (an int64_t array) where there is one, then data pointers."""
    return [(n, _int) for n in ints.split()] + ([("program", _program)] if program else []) + [(n, _ptr) for n in ptrs.split()]


class Args(ctypes.Structure):
    """An entry point's arguments; made with every field named (a forgotten one would be 0 or null)."""

    _names: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._names = frozenset(name for name, _ in cls.__dict__.get("_fields_", ()))

    def __init__(self, **fields) -> None:
        names = self._names
        if fields.keys() != names:
            raise TypeError(f"{type(self).__name__} takes every field of abi.h by name: missing "
                            f"{sorted(names - fields.keys())}, unknown {sorted(fields.keys() - names)}")
        super().__init__(**fields)


class SU2Args(Args):
    _fields_ = _fields("N O I R measure enc arccos mode threads backward",
                       "x table w b scale out g_out g_table g_w g_b g_scale g_x")


class PrepareArgs(Args):
    _fields_ = _fields("E R n_slots k measure backward threads", "theta table g_table g_theta", program=True)


class FourierCompileArgs(Args):
    _fields_ = _fields("E R n_slots k backward threads", "theta coeffs g_coeffs g_theta saved", program=True)


class FourierFeaturesArgs(Args):
    _fields_ = _fields("N I K slots base backward threads", "x phi g_phi g_x sig")


class FourierWeightsArgs(Args):
    _fields_ = _fields("O I Og Ig K S backward",
                       "coeffs scale cnst base_w W bias g_W g_const g_coeffs g_scale g_base_w")


#: every entry point of the kernels and its arguments: int name(int double_precision, const Args* args)
ENTRY_POINTS: dict[str, type[Args]] = {
    "qkan_su2": SU2Args,
    "qkan_prepare": PrepareArgs,
    "qkan_fourier_compile": FourierCompileArgs,
    "qkan_fourier_features": FourierFeaturesArgs,
    "qkan_fourier_weights": FourierWeightsArgs,
}
