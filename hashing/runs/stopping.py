"""Ctrl-C or SIGTERM outside the training loop: stop at once, exit 128 + signal, no traceback.

While ``fit`` trains, :class:`~hashing.callbacks.interrupt.InterruptCheckpoint` owns the signals
(checkpoint, then stop). Everywhere else (building the data, SHC's stage 1 classifier and its
stage 2, testing, extracting features) Python raises ``KeyboardInterrupt`` wherever the code
is, and Lightning turns one inside a ``Trainer`` call into ``sys.exit(1)``: a traceback or a
status that looks like a failure, and no marker. :func:`stop_on_signal` handles both signals
for a block: the signal raises :class:`Stopped` (a ``SystemExit``, which Lightning passes on
after its teardown), a run folder gets ``interrupted.json`` saying where it stopped and how to
go on, and the command ends with one line and status 130 (SIGINT) or 143 (SIGTERM).
Temporary files are removed on the way out (:mod:`hashing.runs.atomic`), so nothing is left
half-written.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from hashing.runs.status import write_interruption

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(SystemExit):
    """A signal stopped the command; exit status 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    for number in SIGNALS:  # a second Ctrl-C during the clean-up must not interrupt it
        signal.signal(number, signal.SIG_IGN)
    raise Stopped(signum)


class Stage:
    """What a guarded block is doing now (the caller updates ``doing`` as it goes on) and,
    once it has a checkpoint, the command that resumes it."""

    def __init__(self, doing: str) -> None:
        self.doing = doing
        self.resume: str | None = None


@contextlib.contextmanager
def stop_on_signal(doing: str, run_dir: Path | None = None) -> Iterator[Stage]:
    """Turn SIGINT/SIGTERM (and a ``KeyboardInterrupt``) inside the block into :class:`Stopped`.

    Yields a :class:`Stage` whose ``doing`` names the message's and the marker's stage;
    ``run_dir`` gets an ``interrupted.json`` (with ``stage.resume``, or null: start again).
    Outside the main thread the signals are left alone.
    """
    stage = Stage(doing)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for number in SIGNALS:
            previous[number] = signal.getsignal(number)
            signal.signal(number, _raise_stopped)
    try:
        yield stage
    except (Stopped, KeyboardInterrupt) as error:
        signum = error.signum if isinstance(error, Stopped) else int(signal.SIGINT)
        name = signal.Signals(signum).name
        if run_dir is not None:
            details = {"signal": name, "stage": stage.doing, "checkpoint": None}
            write_interruption(run_dir, {**details, "resume": stage.resume})
        again = stage.resume or "start it again (finished stages are cached and reused)"
        log.warning("stopped by %s while %s; no file was left half-written; to go on: %s",
                    name, stage.doing, again)  # fmt: skip
        raise Stopped(signum) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
