"""Status markers of a run folder: why a job has no metrics, so sweeps and reports can say so.

A finished job leaves ``metrics.json``. A job that raised leaves ``failed.json`` (the exception
and its traceback); one stopped by SIGINT/SIGTERM leaves ``interrupted.json`` (where it stopped
and the checkpoint to resume from). A folder with none of them is still running or was killed
without warning (SIGKILL, out of memory). Starting or resuming a run clears stale markers.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from hashing.runs.atomic import write_json_atomic
from hashing.runs.errors import StorageError, UserError, find_user_error

log = logging.getLogger(__name__)

FAILED = "failed.json"
INTERRUPTED = "interrupted.json"
METRICS = "metrics.json"
#: the run's config, resolved, written when it starts (what a resume and a report read back)
RESOLVED_CONFIG = "config_resolved.yaml"

T = TypeVar("T")


def now() -> str:
    """UTC time stamp for markers."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def clear_markers(output_dir: Path) -> None:
    """Remove the failure and interruption markers of an earlier attempt."""
    for name in (FAILED, INTERRUPTED):
        (output_dir / name).unlink(missing_ok=True)


def write_failure(output_dir: Path, error: BaseException) -> Path:
    """Record an exception (type, message, traceback) in ``failed.json``."""
    path = output_dir / FAILED
    write_json_atomic(
        path,
        {
            "time": now(),
            "type": type(error).__name__,
            "message": str(error),
            "traceback": "".join(traceback.format_exception(error)),
        },
    )
    return path


def write_interruption(output_dir: Path, details: dict[str, Any]) -> Path:
    """Record a signal stop (signal, epoch, step, checkpoint) in ``interrupted.json``."""
    path = output_dir / INTERRUPTED
    write_json_atomic(path, {"time": now(), **details})
    return path


def is_multirun() -> bool:
    """Whether this job is one of a Hydra multirun (False outside Hydra)."""
    if not HydraConfig.initialized():
        return False
    return HydraConfig.get().mode == RunMode.MULTIRUN


def fail_fast(cfg: DictConfig) -> bool:
    """``cfg.fail_fast``, where null means: stop on error in a single run, go on in a sweep."""
    value = cfg.get("fail_fast")
    if value is None:
        return not is_multirun()
    if not isinstance(value, bool):
        raise UserError(f"fail_fast={value!r} is invalid: use true, false or null (auto)")
    return value


def try_write_failure(output_dir: Path, error: BaseException) -> str:
    """:func:`write_failure` where the folder still takes it; says where it went, or why not
    (a full or read-only disk must not turn one error into two)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        return str(write_failure(output_dir, error))
    except OSError as marker_error:
        return f"no {FAILED}: {marker_error.strerror or marker_error}"


def record_failures(job: Callable[[DictConfig], T], cfg: DictConfig) -> T | None:
    """Run ``job(cfg)``; on an exception write ``failed.json`` in the run folder, then re-raise
    it when fail-fast, else log it and return None so that the sweep's other jobs still run.

    A storage error (full, read-only or forbidden folder) is re-raised as the
    :class:`UserError` that names the folder. Only ``Exception`` is caught: an interrupt
    (SystemExit, KeyboardInterrupt) stops the sweep.
    """
    try:
        return job(cfg)
    except Exception as error:
        output_dir = Path(cfg.paths.output_dir)
        marker = try_write_failure(output_dir, error)
        user_error = find_user_error(error, output_dir)
        if fail_fast(cfg):
            if isinstance(user_error, StorageError):  # made here, naming the run folder
                raise user_error from error
            raise
        if user_error is not None:
            log.error("job failed (recorded in %s): %s; the sweep goes on", marker, user_error)
        else:
            log.exception("job failed (recorded in %s); the sweep goes on", marker)
        return None
