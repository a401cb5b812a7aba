"""Errors a user caused (a config value, a file, a folder) and the one place that reports them.

A :class:`UserError` carries a message that names the key or file and what would be right; the
entry points run under :func:`readable_errors`, which prints that message as one paragraph on
stderr and exits with status 2 instead of showing a traceback (``HYDRA_FULL_ERROR=1`` shows the
full one, as Hydra does for its own errors). A training run also records the traceback in its
``failed.json``. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from types import TracebackType

from hydra.errors import InstantiationException
from omegaconf.errors import MissingMandatoryValue

from hashing.runs.torch_versions import find_version_mismatch

USAGE_EXIT_CODE = 2


class UserError(ValueError):
    """Bad input from the user, reported as its message alone (a ValueError for callers)."""


def find_user_error(error: BaseException) -> UserError | None:
    """The :class:`UserError` in ``error``'s cause/context chain (Hydra wraps errors raised by
    instantiated targets in an InstantiationException), or None. A mandatory config value left
    unset (``???``) counts as one, and so do torch and torchvision that do not match
    (:mod:`hashing.runs.torch_versions`)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        if isinstance(current, MissingMandatoryValue):
            key = current.full_key or "a key"
            return UserError(f"{key} is required (??? in the config): give it, e.g. {key}=...")
        mismatch = find_version_mismatch(current)
        if mismatch is not None:
            return UserError(mismatch)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def as_user_error(
    where: str, kinds: tuple[type[Exception], ...] = (ValueError, OSError)
) -> Iterator[None]:
    """Re-raise an error of ``kinds`` from building a config part as a :class:`UserError`
    prefixed by ``where`` (e.g. ``data (hashing.data.folder.FolderDataModule)``), also when
    Hydra wrapped it in an InstantiationException: a bad value, a missing file or package is
    the user's to fix. Other errors pass unchanged."""
    try:
        yield
    except UserError:
        raise
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, kinds) and not isinstance(cause, UserError):
            raise UserError(f"{where}: {cause}") from cause
        raise
    except kinds as error:
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
