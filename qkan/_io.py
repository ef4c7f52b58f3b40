"""Files the package writes and reads: atomic writes, loads that never execute code.

Every file is written to a temporary name in the target's folder and renamed over the target
(os.replace is atomic on POSIX and Windows), so a failed or interrupted save leaves the previous
file intact. Checkpoints are read with ``torch.load(weights_only=True)``: tensors, numbers,
strings, lists and dicts only.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

__all__ = ["atomic_path", "atomic_save", "atomic_write_text", "load_checkpoint", "check_writable"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    OS errors of creating or renaming the temporary file name `path` (same exception type).
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    except OSError as err:
        raise _naming(err, path) from None
    os.close(fd)
    try:
        os.chmod(tmp, _new_file_mode(path))  # mkstemp makes 0600; the result gets an ordinary file's mode
        yield Path(tmp)
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise _naming(err, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save(obj) to `path` atomically (the previous file survives any failure)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def load_checkpoint(path: str | os.PathLike, what: str, fmt: str, map_location: Any = "cpu") -> dict:
    """Read a checkpoint dict written with format tag `fmt`; ValueError naming the file otherwise.

    Args:
        path: the file.
        what: what is being loaded, for messages ("a QKAN", "a DDQN agent").
        fmt: the expected value of the checkpoint's "format" entry.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot load {what} from {str(path)!r}: no such file")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt, foreign or unsafe files
        raise ValueError(f"cannot load {what} from {str(path)!r}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise ValueError(f"cannot load {what} from {str(path)!r}: not a qkan checkpoint (format {fmt!r} expected)")
    return blob


def check_writable(folder: str | os.PathLike, arg: str | None = None) -> Path:
    """Create `folder` if needed and check a file can be written there (before long work starts).

    Args:
        folder: the folder files will go to.
        arg: the argument that named it, for the message (e.g. "--checkpoint").
    Raises:
        ValueError naming the folder (and `arg`) when it cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".qkan-write-test"):
            pass
    except OSError as err:
        reason = err.strerror or err
        if arg is not None:
            raise ValueError(f"`{arg}` folder {str(folder)!r} is not writable: {reason}") from None
        raise ValueError(f"cannot write to {str(folder)!r}: {reason}") from None
    return folder
