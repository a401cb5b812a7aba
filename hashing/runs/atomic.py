"""Atomic file writes: write to a temporary file beside the target, fsync, then ``os.replace``.

A crash, a full disk or an exception mid-write leaves either the old file or nothing, never half
a file, so run artifacts (checkpoints, metrics, status markers) and caches (split files, decoded
images, SHC stages, features) can be trusted whenever they exist. Every writer in the project
goes through this module. An OSError from a write that names no file (``write()`` on a full
disk) is raised again naming the target, so the message can say which folder is full.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's data, or a folder's entries (a rename inside it), to the disk (a
    full disk may only say so here)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def naming_target(target: Path) -> Iterator[None]:
    """Re-raise an OSError that names no file as one naming ``target`` (same errno)."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror, str(target)) from error


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success it is fsynced and replaces
    ``target``; on an exception it is removed."""
    target = Path(target)
    with naming_target(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files: the usual mode
            yield Path(tmp)
            fsync_file(tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write(target: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary binary file and move it to ``target`` atomically."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        write(handle)
    return Path(target)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target``, atomically."""
    return atomic_write(target, lambda handle: handle.write(text.encode("utf-8")))


def write_json_atomic(target: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented, key-sorted JSON, atomically."""
    return write_text_atomic(target, json.dumps(payload, indent=2, sort_keys=True))
