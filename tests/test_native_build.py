"""The native kernels' build and cache (qkan.simulators.native): never load a library someone
else could have planted, rebuild damaged ones, stop a hanging compiler, fall back to torch.

A real compile takes half a minute, so most tests use a stand-in "compiler" (CXX) that copies
the real library built once for the session; the library name depends on the compiler, so the
stand-in's libraries never collide with the real cache.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qkan import QKANLayer
from qkan.simulators import native
from qkan.simulators.native import abi
from qkan.testing import reference_layer


#: a library that would announce its loading by creating the file named in QKAN_TEST_MARKER
PLANTED_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *marker = getenv("QKAN_TEST_MARKER");
    FILE *f = marker ? fopen(marker, "w") : NULL;
    if (f) { fputs("code ran", f); fclose(f); }
}
int qkan_abi_version(void) { return 4; }
"""


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def real_library() -> Path:
    if not native.available():
        pytest.skip(f"native kernels unavailable: {native.unavailable_reason()}")
    return native._state["path"]


@pytest.fixture(scope="module")
def planted_library(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted.c").write_text(PLANTED_SOURCE)
    out = folder / "planted.so"
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler for the planted library")
    subprocess.run([cc, "-shared", "-fPIC", str(folder / "planted.c"), "-o", str(out)], check=True)
    return out


@pytest.fixture
def cache(monkeypatch, tmp_path, real_library):
    """A fresh process's view: empty state, a private cache folder, the copying stand-in compiler."""
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("QKAN_CACHE_DIR", str(folder))
    monkeypatch.setenv("CXX", _script(tmp_path / "copy-cxx", f'while [ $# -gt 0 ]; do [ "$1" = -o ] && exec cp {real_library} "$2"; shift; done; exit 1\n'))
    monkeypatch.setenv("QKAN_TEST_MARKER", str(tmp_path / "MARKER"))
    return folder


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_kernels_work() -> None:
    """The loaded library is the real one: native su2 values equal the reference."""
    assert native.load() is not None and native._state["lib"].qkan_su2 is not None
    layer = QKANLayer(3, 2, 2, ansatz="mix", encoding="edge", evaluator="su2", dtype=torch.float64, seed=0)
    assert layer.get_evaluator().backend == "native"
    x = torch.rand(5, 3, dtype=torch.float64) * 1.2 - 0.6
    torch.testing.assert_close(layer.edge_outputs(x), torch.as_tensor(reference_layer(layer, x)), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------- planted libraries
@pytest.mark.parametrize("how", ["no record", "wrong record", "world-writable file", "symlink", "other owner"])
def test_planted_library_in_the_cache_never_runs(cache, planted_library, real_library, how, capfd):
    path = native.library_path()
    if how == "symlink":
        path.symlink_to(planted_library)
    else:
        shutil.copy(planted_library, path)
    if how != "no record":  # a record matching the planted bytes, except where it is the real one's
        (cache / (path.name + ".sha256")).write_text(_sha(real_library if how == "wrong record" else planted_library))
    if how == "world-writable file":
        path.chmod(0o666)
    if how == "other owner":
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(path, 12345, 12345)
    _check_kernels_work()
    assert not (cache.parent / "MARKER").exists()
    assert _sha(path) == _sha(real_library) and not path.is_symlink()  # replaced by a fresh build
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.stat().st_uid == os.geteuid()
    assert "qkan: compiling the native CPU kernels" in capfd.readouterr().err


@pytest.mark.parametrize("how", ["world-writable folder", "group-writable folder", "open parent", "other owner"])
def test_cache_folder_others_can_write_is_not_used(cache, planted_library, real_library, how):
    path = native.library_path()
    shutil.copy(planted_library, path)
    (cache / (path.name + ".sha256")).write_text(_sha(planted_library))  # the planter writes a matching record
    if how == "world-writable folder":
        cache.chmod(0o777)
    elif how == "group-writable folder":
        cache.chmod(0o770)
    elif how == "open parent":
        cache.parent.chmod(0o777)  # without the sticky bit: anyone could swap the cache folder
    else:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(cache, 12345, 12345)
    try:
        with pytest.warns(RuntimeWarning, match=r"cache folder .* so libraries there are not loaded; building in a private temporary folder"):
            _check_kernels_work()
    finally:
        cache.parent.chmod(0o700)
    assert not (cache.parent / "MARKER").exists()
    assert _sha(path) == _sha(planted_library)  # the shared folder is left alone
    assert not Path(native._state["path"]).exists()  # the private folder is gone, the library stays mapped


def test_build_refuses_a_shared_folder(cache):
    cache.chmod(0o777)
    with pytest.raises(RuntimeError, match=r"the cache folder .* is writable by other users \(mode 777\)"):
        native.build()


# -------------------------------------------------------------------- damaged and foreign files
@pytest.mark.parametrize("content", [b"", b"\x7fELF junk", "truncated"])
def test_damaged_cached_library_is_rebuilt(cache, real_library, content, capfd):
    path = native.library_path()
    data = real_library.read_bytes()[:4096] if content == "truncated" else content
    path.write_bytes(data)
    (cache / (path.name + ".sha256")).write_text(_sha(real_library))
    _check_kernels_work()
    assert _sha(path) == _sha(real_library)
    err = capfd.readouterr().err
    assert err.count("qkan: compiling") == 1 and "SHA-256 differs from the one recorded at its build" in err


@pytest.mark.parametrize("content", ["junk", "truncated", "header only"])
def test_junk_library_with_a_matching_record_is_rebuilt(cache, real_library, content):
    path = native.library_path()
    real = real_library.read_bytes()
    path.write_bytes({"junk": b"not a library", "truncated": real[: len(real) // 2], "header only": real[:40]}[content])
    (cache / (path.name + ".sha256")).write_text(_sha(path))  # e.g. written by another tool
    _check_kernels_work()  # refused before dlopen (a cut-short ELF would crash it) or dlopen fails: rebuilt once
    assert _sha(path) == _sha(real_library)


def test_foreign_library_falls_back_to_torch(cache, tmp_path, planted_library, monkeypatch):
    # a "compiler" that makes a library without the kernels: every load fails, the torch path runs
    monkeypatch.setenv("CXX", _script(tmp_path / "foreign-cxx", f'while [ $# -gt 0 ]; do [ "$1" = -o ] && exec cp {planted_library} "$2"; shift; done\n'))
    monkeypatch.delenv("QKAN_TEST_MARKER")  # this one is built by the user's own compiler: it may run
    with pytest.warns(RuntimeWarning, match=r"pure-torch path: .* is not a qkan kernel library"):
        assert native.load() is None
    layer = QKANLayer(3, 2, 2, ansatz="rpz", encoding="edge", evaluator="su2", dtype=torch.float64, seed=0)
    assert layer.get_evaluator().backend == "torch"
    x = torch.rand(4, 3, dtype=torch.float64) - 0.5
    torch.testing.assert_close(layer.edge_outputs(x), torch.as_tensor(reference_layer(layer, x)), rtol=0, atol=1e-12)


# -------------------------------------------------------------------------------- the C ABI
def _header_structs() -> dict[str, list[tuple[str, str]]]:
    """abi.h's structs: name -> [(field, "int" | "program" | "pointer")] in order."""
    text = re.sub(r"//[^\n]*", "", (Path(native.__file__).parent / "abi.h").read_text())
    structs = {}
    for name, body in re.findall(r"struct (\w+) \{(.*?)\};", text, re.S):
        fields = []
        for decl in filter(str.strip, body.split(";")):
            kind, names = re.fullmatch(r"\s*(?:const )?(int64_t|void)(.*)", decl, re.S).groups()
            for field in names.split(","):
                pointer = "*" in field
                fields.append((field.replace("*", "").strip(), ("program" if kind == "int64_t" else "pointer") if pointer else "int"))
        structs[name] = fields
    return structs


def test_structures_mirror_the_header():
    kinds = {ctypes.c_int64: "int", ctypes.POINTER(ctypes.c_int64): "program", ctypes.c_void_p: "pointer"}
    header = _header_structs()
    assert sorted(header) == sorted(args.__name__ for args in abi.ENTRY_POINTS.values())
    for args in abi.ENTRY_POINTS.values():
        assert [(name, kinds[kind]) for name, kind in args._fields_] == header[args.__name__], args.__name__
    source = (Path(native.__file__).parent / "abi.h").read_text()
    assert f"#define QKAN_ABI_VERSION {abi.VERSION}\n" in source
    for name, args in abi.ENTRY_POINTS.items():
        assert f"int {name}(int double_precision, const qkan::{args.__name__}* args);" in source


def test_arguments_name_every_field():
    with pytest.raises(TypeError, match=r"FourierFeaturesArgs takes every field of abi.h by name: missing \[.*'sig'.*\], unknown \['sigma'\]"):
        abi.FourierFeaturesArgs(N=1, I=1, K=1, slots=2, base=0, backward=0, threads=1, x=None, phi=None, g_phi=None, g_x=None, sigma=None)


def test_library_whose_structs_differ_from_abi_py_is_refused(cache, monkeypatch):
    class Short(ctypes.Structure):  # abi.py with a field of SU2Args forgotten
        _fields_ = abi.SU2Args._fields_[:-1]

    monkeypatch.setitem(abi.ENTRY_POINTS, "qkan_su2", Short)
    full, short = ctypes.sizeof(abi.SU2Args), ctypes.sizeof(Short)
    with pytest.warns(RuntimeWarning, match=rf"pure-torch path: .*: the arguments of qkan_su2 take {full} bytes there \(abi.h\) but {short} in abi.py \(Short\)"):
        assert native.load() is None
    assert "qkan_su2" in native.unavailable_reason()
    assert QKANLayer(2, 2, evaluator="su2").get_evaluator().backend == "torch"


def test_library_of_another_abi_version_is_refused(cache, monkeypatch):
    monkeypatch.setattr(abi, "VERSION", abi.VERSION + 1)
    with pytest.warns(RuntimeWarning, match=rf"has ABI {abi.VERSION - 1}, expected {abi.VERSION}"):
        assert native.load() is None


# ---------------------------------------------------------------------------- the compiler
def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a killed child waiting to be reaped is gone


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_hanging_compiler_is_stopped_with_its_children(cache, tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    monkeypatch.setenv("CXX", _script(tmp_path / "hang-cxx", f"echo $$ > {pids}; sleep 300 & echo $! >> {pids}; wait\n"))
    monkeypatch.setenv("QKAN_BUILD_TIMEOUT", "1.5")
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match=r"did not finish in 1.5 s and was stopped \(set QKAN_BUILD_TIMEOUT"):
        assert native.load() is None
    assert time.monotonic() - start < 30
    assert QKANLayer(2, 2, evaluator="su2").get_evaluator().backend == "torch"
    time.sleep(0.2)
    assert [int(p) for p in pids.read_text().split()] and not any(_alive(int(p)) for p in pids.read_text().split())
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # no half-written library left


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf"])
def test_bad_build_timeout_is_named(cache, monkeypatch, value):
    monkeypatch.setenv("QKAN_BUILD_TIMEOUT", value)
    with pytest.warns(RuntimeWarning, match=f"QKAN_BUILD_TIMEOUT must be a number of seconds > 0; got '{value}'"):
        assert native.load() is None


def test_failing_compiler_message_and_fallback(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", _script(tmp_path / "bad-cxx", "echo 'error: out of cheese' >&2; exit 1\n"))
    with pytest.warns(RuntimeWarning, match=r"pure-torch path: compiling the qkan native kernels with .*bad-cxx failed:\nerror: out of cheese"):
        assert native.load() is None
    assert "out of cheese" in native.unavailable_reason()


# ------------------------------------------------------------------------- the announcement
def test_build_announces_itself_once(cache, capfd):
    assert native.load() is not None
    err = capfd.readouterr().err
    path = native.library_path()
    assert err.count("qkan: compiling") == 1 and err.endswith(" s\n")
    assert f"into {path} (no library built yet for this qkan version, compiler and flags)" in err
    assert "python -m qkan.simulators.native --build" in err and " done in " in err
    native._state.clear()  # a new process: the checked cache is used silently
    assert native.load() is not None
    assert capfd.readouterr().err == ""


def test_build_cli_with_stand_in_compiler(cache):
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-m", "qkan.simulators.native", "--build"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.parent == cache and path.exists() and (cache / (path.name + ".sha256")).read_text().strip() == _sha(path)
    assert done.stderr.count("qkan: compiling") == 1
    again = subprocess.run([sys.executable, "-m", "qkan.simulators.native", "--build"], capture_output=True, text=True, env=env)
    assert again.stdout == done.stdout and "compiling" not in again.stderr
