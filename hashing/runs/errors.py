"""Errors a user caused (a config value, a file, a folder) and the one place that reports them.

A :class:`UserError` carries a message that names the key or file and what would be right; the
entry points run under :func:`readable_errors`, which prints that message as one paragraph on
stderr and exits with status 2 instead of showing a traceback (``HYDRA_FULL_ERROR=1`` shows the
full one, as Hydra does for its own errors). A training run also records the traceback in its
``failed.json``. A full, read-only or forbidden folder (``ENOSPC``, ``EDQUOT``, ``EROFS``,
``EACCES``) is the user's to fix too (:func:`storage_error`). Any other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from hydra.errors import InstantiationException
from omegaconf.errors import MissingMandatoryValue

from hashing.runs.torch_versions import find_version_mismatch

USAGE_EXIT_CODE = 2


class UserError(ValueError):
    """Bad input from the user, reported as its message alone (a ValueError for callers)."""


class MissingFileError(FileNotFoundError):
    """A file or folder the user named does not exist: reported like a :class:`UserError`
    (its message alone), a FileNotFoundError for callers."""


class StorageError(UserError):
    """A folder that cannot take a file (full, read-only, forbidden): see :func:`storage_error`."""


#: errno of an OSError about the storage, not the code -> what failed, why, what to do
STORAGE_ERRORS = {
    errno.ENOSPC: ("cannot write in", "no space is left on its device", "free space there"),
    errno.EDQUOT: ("cannot write in", "the disk quota is used up", "free space there"),
    errno.EROFS: ("cannot write in", "its file system is read-only", "mount it writable"),
    errno.EACCES: ("cannot use", "permission is denied", "give this user access to it"),
}
#: where the project writes, by the keys that move it
WHERE_TO_WRITE = (
    "runs: hydra.run.dir=<folder> (a sweep: hydra.sweep.dir); caches (splits, features, "
    "centers): paths.cache_dir=<folder>; an index: out=<folder>"
)


def storage_error(error: BaseException, folder: str | Path | None = None) -> StorageError | None:
    """A :class:`StorageError` for an OSError about the storage (:data:`STORAGE_ERRORS`), naming
    the folder (of the error's file, else ``folder``) and the keys that write elsewhere; None
    for any other error."""
    if not isinstance(error, OSError) or error.errno not in STORAGE_ERRORS:
        return None
    failed, meaning, remedy = STORAGE_ERRORS[error.errno]
    name = error.filename2 or error.filename  # a copy or rename names its target second
    if name is not None:
        path = Path(os.fsdecode(name))
        where = str(path if path.is_dir() else path.parent)
    else:
        where = str(folder) if folder is not None else "a folder the command writes"
    return StorageError(
        f"{failed} {where}: {meaning} ({errno.errorcode[error.errno]}: {error.strerror}). "
        f"Files are written whole or not at all, so none was left half-written; {remedy}, or "
        f"write to another folder ({WHERE_TO_WRITE})"
    )


def find_user_error(error: BaseException, folder: str | Path | None = None) -> UserError | None:
    """The :class:`UserError` in ``error``'s cause/context chain (Hydra wraps errors raised by
    instantiated targets in an InstantiationException), or None. A mandatory config value left
    unset (``???``) counts as one, and so do a storage error (:func:`storage_error`; ``folder``
    is named when the error names no file) and torch and torchvision that do not match
    (:mod:`hashing.runs.torch_versions`)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        if isinstance(current, MissingFileError):
            return UserError(str(current))
        if isinstance(current, MissingMandatoryValue):
            key = current.full_key or "a key"
            return UserError(f"{key} is required (??? in the config): give it, e.g. {key}=...")
        storage = storage_error(current, folder)
        if storage is not None:
            return storage
        mismatch = find_version_mismatch(current)
        if mismatch is not None:
            return UserError(mismatch)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def as_user_error(where: str, kinds: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Report a missing file or folder the user named (:class:`MissingFileError`) while
    building a config part as a :class:`UserError` prefixed by ``where`` (e.g. ``data
    (hashing.data.folder.FolderDataModule)``), also when Hydra wrapped it in an
    InstantiationException, and so any error of ``kinds`` (for parts whose third-party errors
    are the user's to fix, such as a missing optional package). A :class:`UserError` passes
    unchanged (taken out of Hydra's wrapper); any other error is a bug and keeps its
    traceback."""
    user_kinds = (MissingFileError, *kinds)
    try:
        yield
    except UserError:
        raise
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, UserError):
            raise cause from None  # Hydra's wrapper adds nothing the message needs
        if isinstance(cause, user_kinds):
            raise UserError(f"{where}: {cause}") from cause
        raise
    except user_kinds as error:
        raise UserError(f"{where}: {error}") from error


def full_error_requested() -> bool:
    """Whether ``HYDRA_FULL_ERROR=1`` asks for the full traceback."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def write_to_log_files(message: str, level: int = logging.INFO) -> None:
    """Emit ``message`` to the root logger's file handlers only (the job's ``<task>.log``):
    for text that is already on the terminal (a summary table, an error paragraph)."""
    record = logging.LogRecord("hashing", level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
            handler.handle(record)


class readable_errors(contextlib.ContextDecorator):
    """Turn a :class:`UserError` into a one-paragraph message and exit status 2.

    Usable as a decorator of a Hydra task function or around code that runs before Hydra. A
    class, not a generator-based context manager: launchers (joblib) pickle the task function.
    """

    def __enter__(self) -> readable_errors:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if not isinstance(error, Exception):
            return False
        user_error = find_user_error(error)
        if user_error is None or full_error_requested():
            return False
        message = str(user_error).strip()
        write_to_log_files(message, logging.ERROR)
        print(
            f"error: {message}\n(set HYDRA_FULL_ERROR=1 for the traceback)",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(USAGE_EXIT_CODE) from None
