"""Files the package writes and reads: atomic writes, checksummed loads that never execute code.

Every file is written to a temporary name in the target's folder and renamed over the target
(os.replace is atomic on POSIX and Windows), so a failed or interrupted save leaves the previous
file intact. A symbolic link is followed: the file it points to is replaced and the link kept.
Temporary files that a killed save left behind are removed by the next save of the same file.

Checkpoints are dicts read with ``torch.load(weights_only=True)``: tensors, numbers, strings,
lists and dicts only. Each carries a SHA-256 of its content under the key "sha256", checked on
load together with the CRC-32 of every record of torch's zip container, so a damaged file is an
error naming it instead of parameters silently off. Files without the key (written before it
existed) still load, checked by their CRCs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

__all__ = [
    "atomic_path", "atomic_save", "atomic_write_text", "load_checkpoint", "check_writable", "check_file_target",
    "content_digest",
]  # fmt: skip

#: the checkpoint key holding content_digest() of the other entries
DIGEST_KEY = "sha256"
#: temporary files of killed saves older than this many seconds are removed by the next save
STALE_AFTER_S = 60.0


@contextmanager
def atomic_path(path: str | os.PathLike, stale_after: float = STALE_AFTER_S) -> Iterator[Path]:
    """Yield a temporary path beside `path`'s final target; on success it replaces the target,
    on failure it is removed.

    A symbolic link at `path` (dangling or not) is followed: its target is replaced and the
    link stays. Temporary files of earlier saves of the same target older than `stale_after`
    seconds (left by killed processes) are removed first. OS errors of creating, writing or
    renaming the temporary file name `path` (same exception type).
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    folder = target.parent if str(target.parent) else Path(".")
    _remove_stale_temps(folder, target.name, stale_after)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise _naming(err, path) from None
    os.close(fd)
    try:
        os.chmod(tmp, _new_file_mode(target))  # mkstemp makes 0600; the result gets an ordinary file's mode
        try:
            yield Path(tmp)
            os.replace(tmp, target)
        except OSError as err:  # a full disk while writing, a failed rename
            raise _naming(err, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_stale_temps(folder: Path, name: str, stale_after: float) -> None:
    """Remove `.{name}.XXXXXXXX.tmp` files (atomic_path's own names) older than `stale_after` s."""
    own = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # mkstemp reports a missing or unreadable folder
    now = time.time()
    for entry in entries:
        try:
            if own.fullmatch(entry.name) and entry.is_file(follow_symlinks=False) \
                    and now - entry.stat(follow_symlinks=False).st_mtime > stale_after:
                os.unlink(entry.path)
        except OSError:
            pass  # removed by another process meanwhile, or not ours to remove


def _new_file_mode(path: Path) -> int:
    """The mode `path` has, or the mode a newly created file gets under the current umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _naming(err: OSError, path: Path) -> OSError:
    """`err` as the same OSError type with a message naming the file the caller asked for."""
    return type(err)(err.errno, f"cannot write {str(path)!r}: {err.strerror or err}")


def content_digest(obj: Any) -> str:
    """SHA-256 (hex) of a checkpoint's content: dicts, lists, tuples, tensors, numbers, strings.

    The same for a checkpoint before saving and after loading (on any device): dict order,
    types, tensor dtypes, shapes and bytes, and exact float values all count.
    """
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest, obj: Any) -> None:
    """Add an unambiguous encoding of `obj` to `digest`: a type tag, a length, then the bytes."""

    def put(tag: bytes, data: bytes) -> None:
        digest.update(tag + struct.pack("<Q", len(data)) + data)

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        put(b"T", f"{t.dtype}{tuple(t.shape)}".encode())
        put(b"B", t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        put(b"D", str(len(obj)).encode())
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        put(b"L" if isinstance(obj, list) else b"U", str(len(obj)).encode())
        for value in obj:
            _feed(digest, value)
    elif obj is None or isinstance(obj, (bool, int)):
        put(b"I", repr(obj).encode())
    elif isinstance(obj, float):
        put(b"F", obj.hex().encode())
    elif isinstance(obj, str):
        put(b"S", obj.encode("utf-8", "surrogatepass"))
    elif isinstance(obj, bytes):
        put(b"Y", obj)
    else:
        raise TypeError(f"a checkpoint holds tensors, numbers, strings, lists and dicts only; got {type(obj).__name__}")


def atomic_save(obj: dict, path: str | os.PathLike) -> None:
    """torch.save(obj) to `path` atomically (the previous file survives any failure), with
    content_digest(obj) added under the key "sha256"."""
    if DIGEST_KEY in obj:
        raise ValueError(f"a checkpoint cannot hold the key {DIGEST_KEY!r}: it is added by atomic_save")
    buffer = io.BytesIO()  # serialised first: a full disk is then an OSError of the write, naming the file
    torch.save({**obj, DIGEST_KEY: content_digest(obj)}, buffer)
    _write_bytes(buffer.getbuffer(), path)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    _write_bytes(text.encode("utf-8"), path)


def _write_bytes(data, path: str | os.PathLike) -> None:
    """Write `data` to `path` atomically, on the disk (fsync) before it replaces the old file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def load_checkpoint(path: str | os.PathLike, what: str, fmt: str, map_location: Any = "cpu") -> dict:
    """Read a checkpoint dict written with format tag `fmt`; ValueError naming the file otherwise.

    The file's record CRCs and its SHA-256 (when it has one) are checked: a damaged file is a
    ValueError. The returned dict no longer holds the "sha256" entry.

    Args:
        path: the file.
        what: what is being loaded, for messages ("a QKAN", "a DDQN agent").
        fmt: the expected value of the checkpoint's "format" entry.
        map_location: the device the tensors go to (None: the CPU); one that does not exist
            here is a ValueError saying so (not a complaint about the file).
    """
    from qkan._checks import check_device

    path = Path(path)
    device = check_device(map_location, "map_location")
    if not path.is_file():
        raise ValueError(f"cannot load {what} from {str(path)!r}: {'a folder' if path.is_dir() else 'no such file'}")
    damaged = f"cannot load {what} from {str(path)!r}: the file is damaged"
    bad_record = _bad_zip_record(path)
    if bad_record:
        raise ValueError(f"{damaged} ({bad_record})")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)  # checked on the CPU, then moved
    except Exception as err:  # torch raises several types for corrupt, foreign or unsafe files
        raise ValueError(f"cannot load {what} from {str(path)!r}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise ValueError(f"cannot load {what} from {str(path)!r}: not a qkan checkpoint (format {fmt!r} expected)")
    if DIGEST_KEY in blob:
        stored = blob.pop(DIGEST_KEY)
        try:
            actual = content_digest(blob)
        except TypeError as err:
            raise ValueError(f"{damaged} ({err})") from None
        if stored != actual:
            raise ValueError(f"{damaged} (its SHA-256 does not match its content)")
    return blob if device is None or device.type == "cpu" else _to_device(blob, device)


def _to_device(obj: Any, device: torch.device) -> Any:
    """`obj` with every tensor in it moved to `device` (dicts keep their type and order)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, _to_device(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _bad_zip_record(path: Path) -> str | None:
    """Why torch's zip container at `path` is damaged (a record whose CRC-32 fails, a broken
    directory), or None when every record checks out or the file is not a zip file (torch.load
    then judges it)."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            name = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as err:
        return f"broken zip container: {err}"
    return None if name is None else f"record {name!r} fails its CRC-32 check"


def check_writable(folder: str | os.PathLike, arg: str | None = None, reserve: int = 0) -> Path:
    """Create `folder` if needed and check a file can be written there (before long work starts).

    Args:
        folder: the folder files will go to.
        arg: the argument that named it, for the message (e.g. "--checkpoint").
        reserve: bytes that must fit: written once and removed (a full disk fails now, not
            after hours of training).
    Raises:
        ValueError naming the folder (and `arg`) when it cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".qkan-write-test") as probe:
            for start in range(0, reserve, 1 << 20):
                probe.write(bytes(min(1 << 20, reserve - start)))
            probe.flush()
    except OSError as err:
        reason = err.strerror or err
        if arg is not None:
            raise ValueError(f"`{arg}` folder {str(folder)!r} is not writable: {reason}") from None
        raise ValueError(f"cannot write to {str(folder)!r}: {reason}") from None
    return folder


def check_file_target(path: str | os.PathLike, arg: str, reserve: int = 0) -> Path:
    """Check that a file can be saved at `path` (before long work starts): not an existing
    folder, its folder writable with `reserve` bytes free (see check_writable).

    Raises:
        ValueError naming `arg` and the path otherwise.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"`{arg}` must be a file path; {str(path)!r} is a folder")
    check_writable(path.parent if str(path.parent) else Path("."), arg, reserve)
    return path
