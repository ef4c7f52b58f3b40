"""Native CPU kernels, built on first use with the system C++ compiler and called through ctypes.

The C++ sources (su2_kernel.cpp: the per-sample part; prepare_kernel.cpp: theta -> the
prepared circuit table; fourier_kernel.cpp: the closed-form compile and features) have a plain C ABI and needs no torch headers, so a build takes
seconds. The shared library is cached under ``$QKAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/qkan``,
else ``~/.cache/qkan``, named by a hash of the source, the compiler and the flags; a build
writes a temporary file and renames it into place, so concurrent processes never load a half
written library. Portable flags only (no -march=native); on x86-64 an AVX2+FMA version of the
hot loops is chosen at run time.

Set ``QKAN_NATIVE=0`` to disable the native path (the pure-torch evaluators run instead), or
``CXX`` to choose the compiler. ``python -m qkan.simulators.native --build`` builds ahead of time.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from qkan._warn import warn

__all__ = ["SOURCES", "FLAGS", "cache_dir", "library_path", "build", "load", "available", "unavailable_reason", "enabled"]

_HERE = Path(__file__).parent
#: compiled together into one library; the header is part of the hash
SOURCES = (_HERE / "su2_kernel.cpp", _HERE / "prepare_kernel.cpp", _HERE / "fourier_kernel.cpp")
_HEADERS = (_HERE / "simd.h", _HERE / "circuit.h")
FLAGS = ("-O3", "-std=gnu++17", "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=fast", "-pthread", "-Wno-psabi")
#: bumped with the C ABI; checked after loading
ABI_VERSION = 4

_lock = threading.Lock()
_state: dict = {}  # "lib": ctypes.CDLL | None, "reason": str | None, "path": Path


def enabled() -> bool:
    """False when the environment variable QKAN_NATIVE is "0", "false", "no" or "off"."""
    return os.environ.get("QKAN_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    """Where built libraries live: $QKAN_CACHE_DIR, $XDG_CACHE_HOME/qkan or ~/.cache/qkan."""
    if os.environ.get("QKAN_CACHE_DIR"):
        return Path(os.environ["QKAN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qkan"


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def library_path(compiler: str | None = None) -> Path:
    """The cached library for the current source, compiler and flags."""
    digest = hashlib.sha256()
    parts = [f.read_bytes() for f in (*SOURCES, *_HEADERS)] + [str(compiler or _compiler()).encode(), " ".join(FLAGS).encode()]
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return cache_dir() / f"qkan_su2_{digest.hexdigest()[:16]}.so"


def build(force: bool = False) -> Path:
    """Compile the kernel into the cache (unless it is there already); returns the library's path.

    Raises:
        RuntimeError: no compiler found, or compilation failed (with the compiler's message).
    """
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    path = library_path(compiler)
    if path.exists() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        done = subprocess.run([compiler, *FLAGS, *map(str, SOURCES), "-o", tmp], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling the qkan native kernels with {compiler} failed:\n{done.stderr.strip()}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load() -> ctypes.CDLL | None:
    """The kernel library (built if needed), or None when it cannot be built; tried once per process."""
    with _lock:
        if "lib" not in _state:
            _state["lib"], _state["reason"] = None, None
            try:
                path = build()
                lib = ctypes.CDLL(str(path))
                if lib.qkan_abi_version() != ABI_VERSION:
                    raise RuntimeError(f"{path} has ABI {lib.qkan_abi_version()}, expected {ABI_VERSION}")
                lib.qkan_su2.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_void_p)]
                lib.qkan_su2.restype = ctypes.c_int
                p64 = ctypes.POINTER(ctypes.c_int64)
                lib.qkan_prepare.argtypes = [ctypes.c_int, p64, p64, ctypes.POINTER(ctypes.c_void_p)]
                lib.qkan_prepare.restype = ctypes.c_int
                lib.qkan_fourier_compile.argtypes = [ctypes.c_int, p64, p64, ctypes.POINTER(ctypes.c_void_p)]
                for fn in (lib.qkan_fourier_features, lib.qkan_fourier_weights):
                    fn.argtypes = [ctypes.c_int, p64, ctypes.POINTER(ctypes.c_void_p)]
                for fn in (lib.qkan_fourier_compile, lib.qkan_fourier_features, lib.qkan_fourier_weights):
                    fn.restype = ctypes.c_int
                _state["lib"], _state["path"] = lib, path
            except (OSError, RuntimeError) as err:
                _state["reason"] = str(err)
                warn(f"qkan native kernel unavailable, using the pure-torch path: {err}", RuntimeWarning)
        return _state["lib"]


def available() -> bool:
    """True when the native path is enabled (QKAN_NATIVE) and its library loads."""
    return enabled() and load() is not None


def unavailable_reason() -> str | None:
    """Why the native path is not used, or None when it is available."""
    if not enabled():
        return "disabled by QKAN_NATIVE=" + os.environ.get("QKAN_NATIVE", "")
    return None if load() is not None else _state.get("reason")
