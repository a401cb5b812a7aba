"""Stop on SIGINT/SIGTERM at the next batch boundary with a checkpoint, so the run can resume.

Lightning 2.6 on its own: SIGTERM sets ``trainer.received_sigterm`` and raises
``SIGTERMException`` after the current batch (or in the middle of validation) without saving
anything; SIGINT raises ``KeyboardInterrupt`` wherever the code is, also without a checkpoint.
This callback replaces both handlers while ``fit`` trains (installed at ``on_train_start``, after
Lightning registered its own, and restored at ``on_train_end`` / ``on_exception``): a signal
only sets a flag; at the end of the current training batch (or of training) every rank agrees
on it, ``checkpoints/last.ckpt`` is written atomically (temporary file + rename) with the full
training state, ``interrupted.json`` records where it stopped, and :class:`TrainingInterrupted`
(a ``SystemExit`` with status 128 + signal number) ends the process, a Hydra sweep included.
A signal arriving during validation waits for the validation to finish (the evaluation
callback's accumulated codes are not part of a checkpoint). A second SIGINT stops at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl

from hashing.runs.status import write_interruption

log = logging.getLogger(__name__)


class TrainingInterrupted(SystemExit):
    """Training stopped by a signal after writing its checkpoint; exit status 128 + signal."""

    def __init__(self, signum: int, checkpoint: Path) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.checkpoint = checkpoint


def signal_number(name: str) -> int:
    """``"SIGTERM"`` -> 15; ValueError naming the allowed names otherwise."""
    allowed = ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2")
    if name not in allowed or not hasattr(signal, name):
        raise ValueError(f"signal {name!r} is not handled: use one of {list(allowed)}")
    return int(getattr(signal, name))


class InterruptCheckpoint(pl.Callback):
    """On a signal, checkpoint at the end of the batch and stop (see the module docstring).

    Args:
        dirpath: checkpoint folder (the ModelCheckpoint's, so ``resume`` finds ``last.ckpt``).
        run_dir: run folder, where ``interrupted.json`` goes.
        filename: checkpoint file name.
        signals: names of the signals to handle.
    """

    def __init__(
        self,
        dirpath: str | Path,
        run_dir: str | Path,
        filename: str = "last.ckpt",
        signals: Sequence[str] = ("SIGINT", "SIGTERM"),
    ) -> None:
        if not filename.endswith(".ckpt"):
            raise ValueError(f"filename={filename!r} must end in .ckpt")
        self.dirpath = Path(dirpath)
        self.run_dir = Path(run_dir)
        self.filename = filename
        self.signals = [signal_number(name) for name in signals]
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}
        self._trainer: pl.Trainer | None = None

    @property
    def checkpoint_path(self) -> Path:
        """Where the interrupt checkpoint is written."""
        return self.dirpath / self.filename

    # --- signal handlers -------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        first = self.requested is None
        self.requested = signum
        log.warning(
            "received %s: saving a checkpoint at the end of this batch, then stopping "
            "(press Ctrl+C again to stop at once)",
            signal.Signals(signum).name,
        )
        launcher = self._trainer.strategy.launcher if self._trainer is not None else None
        if first and signum == signal.SIGTERM and launcher is not None:
            # what Lightning's own SIGTERM handler does: pass it on to the processes it started
            launcher.kill(signum)

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("not in the main thread: SIGINT/SIGTERM will not save a checkpoint")
            return
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def _uninstall(self) -> None:
        for signum, handler in self._previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, handler)
        self._previous = {}

    # --- hooks -----------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Take over the signals (Lightning registered its SIGTERM handler just before)."""
        self._trainer = trainer
        self.requested = None
        self._install()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """The batch is done: stop here if any rank was signalled."""
        self._stop_if_requested(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A signal during the last validation still stops the job (before testing)."""
        try:
            self._stop_if_requested(trainer)
        finally:
            self._uninstall()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Give the signals back to Lightning before it tears down."""
        self._uninstall()

    # --- stopping --------------------------------------------------------------------------
    def _stop_if_requested(self, trainer: pl.Trainer) -> None:
        requested = self.requested is not None
        if trainer.world_size > 1:
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if not requested:
            return
        signum = self.requested if self.requested is not None else int(signal.SIGTERM)
        path = self.save(trainer)
        if trainer.is_global_zero:
            write_interruption(
                self.run_dir,
                {
                    "signal": signal.Signals(signum).name,
                    "epoch": trainer.current_epoch,
                    "global_step": trainer.global_step,
                    "checkpoint": str(path),
                    "resume": f"python -m hashing.train resume={self.run_dir}",
                },
            )
            log.warning(
                "stopped by %s at epoch %d, step %d; resume with: "
                "python -m hashing.train resume=%s",
                signal.Signals(signum).name,
                trainer.current_epoch,
                trainer.global_step,
                self.run_dir,
            )
        raise TrainingInterrupted(signum, path)

    def save(self, trainer: pl.Trainer) -> Path:
        """Write the full training checkpoint atomically; every rank must call it."""
        path = self.checkpoint_path
        tmp = path.with_name(f".{path.name}.interrupt.tmp")
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, path)
        trainer.strategy.barrier("interrupt_checkpoint")
        return path
