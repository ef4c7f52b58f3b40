"""Native CPU kernels, built on first use with the system C++ compiler and called through ctypes.

The C++ sources (su2_kernel.cpp: the per-sample part; prepare_kernel.cpp: theta -> the
prepared circuit table; fourier_kernel.cpp: the closed-form compile and features) need no torch
headers, so a build takes seconds. Their C ABI is one header, abi.h: every entry point takes one
struct of named fields, mirrored by the ctypes Structures of abi.py; a library whose ABI version
or struct sizes differ from abi.py's is not used (the torch path runs, with a warning).

The shared library is cached under ``$QKAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/qkan``, else
``~/.cache/qkan``, named by a hash of the source, the compiler and the flags; a build writes a
temporary file and renames it into place, so concurrent processes never load a half written
library. Portable flags only (no -march=native); on x86-64 an AVX2+FMA version of the hot loops
is chosen at run time.

Loading a library runs code, so a cached one is loaded only when it is a regular file owned by
the current user, not writable by others, in a folder that nobody else can write to, and its
SHA-256 equals the one recorded beside it (``<library>.sha256``) when it was built. A library
that fails a check is rebuilt; a cache folder that others can write to is not used (the
library is built in a private temporary folder for the process, with a warning). A compiler
that runs longer than ``$QKAN_BUILD_TIMEOUT`` seconds (default 120) is killed; whenever the
kernels cannot be built or loaded, the pure-torch path runs, with a warning.

Set ``QKAN_NATIVE=0`` to disable the native path (the pure-torch evaluators run instead), or
``CXX`` to choose the compiler. ``python -m qkan.simulators.native --build`` builds ahead of time.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from qkan._io import atomic_path, atomic_write_text
from qkan._warn import warn
from qkan.simulators.native import abi

__all__ = ["SOURCES", "FLAGS", "cache_dir", "library_path", "build", "load", "available", "unavailable_reason", "enabled"]

_HERE = Path(__file__).parent
#: compiled together into one library; the headers are part of the hash
SOURCES = (_HERE / "su2_kernel.cpp", _HERE / "prepare_kernel.cpp", _HERE / "fourier_kernel.cpp", _HERE / "abi.cpp")
_HEADERS = (_HERE / "simd.h", _HERE / "circuit.h", _HERE / "abi.h")
FLAGS = ("-O3", "-std=gnu++17", "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=fast", "-pthread", "-Wno-psabi")
#: seconds a build may take before the compiler is killed (override: $QKAN_BUILD_TIMEOUT)
BUILD_TIMEOUT_S = 120.0

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


def library_path(compiler: str | None = None, folder: Path | None = None) -> Path:
    """The library for the current source, compiler and flags in `folder` (default: cache_dir())."""
    digest = hashlib.sha256()
    parts = [f.read_bytes() for f in (*SOURCES, *_HEADERS)] + [str(compiler or _compiler()).encode(), " ".join(FLAGS).encode()]
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return (folder or cache_dir()) / f"qkan_su2_{digest.hexdigest()[:16]}.so"


def build(force: bool = False, folder: Path | None = None) -> Path:
    """Compile the kernel into `folder` (default: the cache) unless a library that passes every
    check is there already; returns the library's path. Says on stderr what it builds and why.

    Raises:
        RuntimeError: no compiler found, compilation failed (with the compiler's message) or
            timed out, or the folder cannot be used safely (others can write to it).
    """
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    path = library_path(compiler, folder)
    problem = _folder_problem(path.parent)
    if problem:
        raise RuntimeError(f"the cache folder {str(path.parent)!r} {problem}")
    why = "a forced rebuild" if force else _distrust(path)
    if why is None:
        return path
    if path.is_symlink():
        path.unlink()  # atomic_path would write to the link's target instead
    timeout = _build_timeout()
    sys.stderr.write(f"qkan: compiling the native CPU kernels with {compiler} into {path} ({why}); "
                     "once per qkan version and compiler (`python -m qkan.simulators.native --build` does it ahead of "
                     "time) ...")
    sys.stderr.flush()
    start, outcome = time.perf_counter(), "failed"
    try:
        with atomic_path(path, stale_after=timeout + 60) as tmp:
            _compile(compiler, tmp, timeout)
            os.chmod(tmp, 0o644)
            atomic_write_text(hashlib.sha256(tmp.read_bytes()).hexdigest() + "\n", _record(path))
        outcome = "done"
    finally:
        sys.stderr.write(f" {outcome} in {time.perf_counter() - start:.1f} s\n")
        sys.stderr.flush()
    return path


def _compile(compiler: str, out: Path, timeout: float) -> None:
    """Run the compiler (in its own process group, killed whole after `timeout` seconds)."""
    cmd = [compiler, *FLAGS, *map(str, SOURCES), "-o", str(out)]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as err:
        raise RuntimeError(f"cannot run the C++ compiler {compiler!r}: {err.strerror or err}") from None
    try:
        _, errors = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise RuntimeError(f"compiling the qkan native kernels with {compiler} did not finish in {timeout:g} s and was "
                           "stopped (set QKAN_BUILD_TIMEOUT to allow longer)") from None
    except BaseException:  # Ctrl-C: no compiler left running
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"compiling the qkan native kernels with {compiler} failed:\n{errors.strip()}")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the compiler and every process it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass  # already gone
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        pass  # a process that left the group keeps the pipes open: do not wait for it


def _build_timeout() -> float:
    text = os.environ.get("QKAN_BUILD_TIMEOUT", "").strip()
    if not text:
        return BUILD_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise RuntimeError(f"QKAN_BUILD_TIMEOUT must be a number of seconds > 0; got {text!r}")
    return value


def _record(path: Path) -> Path:
    """The file beside a library holding its SHA-256, written when it was built."""
    return path.with_name(path.name + ".sha256")


def _owner_problem(st: os.stat_result) -> str | None:
    """Why a file or folder with this stat could have been written by someone else, or None."""
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by the current user (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _folder_problem(folder: Path) -> str | None:
    """Create `folder` (private) if needed; why nobody but the current user may write there, or None.

    Its parents may be writable by others only with the sticky bit (as /tmp), and must belong
    to the user or root, so nobody else can swap the folder.
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(folder)
    except OSError as err:
        return f"cannot be created or read ({err.strerror or err})"
    problem = _owner_problem(st)
    if problem:
        return problem
    for parent in Path(os.path.realpath(folder)).parents:
        st = os.stat(parent)
        if hasattr(os, "geteuid") and st.st_uid not in (0, os.geteuid()):
            return f"lies in {str(parent)!r}, owned by uid {st.st_uid}"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"lies in {str(parent)!r}, which other users can write to"
    return None


def _distrust(path: Path) -> str | None:
    """Why the library at `path` must not be loaded, or None when it may (in a checked folder)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "no library built yet for this qkan version, compiler and flags"
    except OSError as err:
        return f"the cached library cannot be read ({err.strerror or err})"
    if not stat.S_ISREG(st.st_mode):
        return "the cached library is not a regular file"
    problem = _owner_problem(st)
    if problem:
        return f"the cached library {problem}"
    try:
        expected = _record(path).read_text(encoding="utf-8").strip()
        data = path.read_bytes()
    except (OSError, UnicodeDecodeError):
        return "the cached library has no SHA-256 record from its build"
    if hashlib.sha256(data).hexdigest() != expected:
        return "the cached library's SHA-256 differs from the one recorded at its build (damaged or replaced)"
    return _elf_problem(data)


def _elf_problem(data: bytes) -> str | None:
    """Why an ELF file is cut short (dlopen would crash on it), or None (also for other formats)."""
    if data[:4] != b"\x7fELF" or len(data) < 64 or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None if data[:4] != b"\x7fELF" else "the cached library is cut short (an incomplete ELF header)"
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # 64-bit: e_shoff at 0x28, e_shentsize/e_shnum at 0x3A
        (shoff,), (entsize, count) = struct.unpack_from(order + "Q", data, 0x28), struct.unpack_from(order + "HH", data, 0x3A)
    else:
        (shoff,), (entsize, count) = struct.unpack_from(order + "I", data, 0x20), struct.unpack_from(order + "HH", data, 0x2E)
    if shoff + entsize * count > len(data):
        return f"the cached library is cut short ({len(data)} bytes; its section table ends at byte {shoff + entsize * count})"
    return None


def _open(path: Path) -> ctypes.CDLL:
    """dlopen a library that passes every check and set up its entry points."""
    why = _distrust(path)
    if why:
        raise RuntimeError(f"{path}: {why}")
    lib = ctypes.CDLL(str(path))
    try:
        version = lib.qkan_abi_version()
        lib.qkan_args_size.argtypes, lib.qkan_args_size.restype = [ctypes.c_char_p], ctypes.c_int64
        lib.qkan_table_width.argtypes, lib.qkan_table_width.restype = [ctypes.c_int64, ctypes.c_int64], ctypes.c_int64
        for name, args in abi.ENTRY_POINTS.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = [ctypes.c_int, ctypes.POINTER(args)], ctypes.c_int
    except AttributeError as err:
        raise RuntimeError(f"{path} is not a qkan kernel library ({err})") from None
    if version != abi.VERSION:
        raise RuntimeError(f"{path} has ABI {version}, expected {abi.VERSION}")
    for name, args in abi.ENTRY_POINTS.items():  # the two sides of the ABI declare the same fields
        size, expected = lib.qkan_args_size(name.encode()), ctypes.sizeof(args)
        if size != expected:
            raise RuntimeError(f"{path}: the arguments of {name} take {size} bytes there (abi.h) but {expected} in "
                               f"abi.py ({args.__name__}): the two declare different fields")
    return lib


def load() -> ctypes.CDLL | None:
    """The kernel library (built if needed), or None when it cannot be built; tried once per process.

    A cache folder that others can write to is not used: the library is then built in a private
    temporary folder, loaded and the folder removed (with a warning saying how to fix the cache).
    """
    with _lock:
        if "lib" not in _state:
            _state["lib"], _state["reason"] = None, None
            try:
                folder = cache_dir()
                problem = _folder_problem(folder)
                if problem is None:
                    path = build()
                    try:
                        lib = _open(path)
                    except (OSError, RuntimeError):  # checked but unloadable (junk, foreign): built afresh, once
                        lib = _open(build(force=True))
                else:
                    warn(f"qkan native kernels: the cache folder {str(folder)!r} {problem}, so libraries there are "
                         "not loaded; building in a private temporary folder for this process instead (make the "
                         "folder yours and private, e.g. chmod go-w, or set QKAN_CACHE_DIR)", RuntimeWarning)
                    private = Path(tempfile.mkdtemp(prefix="qkan-native-"))
                    try:
                        path = build(folder=private)
                        lib = _open(path)
                    finally:
                        shutil.rmtree(private, ignore_errors=True)  # the loaded library stays mapped
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
