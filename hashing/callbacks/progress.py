"""Progress: a tqdm bar on a terminal, one line per epoch anywhere else.

Off a terminal (a log file, a batch job, CI) tqdm's carriage-return redraws turn into hundreds
of lines (272 for the default 30-epoch run); there :class:`EpochProgress` logs one line per
epoch instead: the epoch, its training loss, the validation mAP and the epoch's time.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

log = logging.getLogger(__name__)


def on_terminal() -> bool:
    """Whether stderr (where tqdm draws) is a terminal."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class EpochProgress(TQDMProgressBar):
    """TQDMProgressBar on a terminal; elsewhere (or with ``bar: false``) one log line an epoch.

    Args:
        refresh_rate: the bar's refresh rate in batches (0 disables the bar and the lines).
        bar: true = always the bar, false = always the lines, null = the bar on a terminal only.
        **kwargs: TQDMProgressBar arguments.
    """

    def __init__(self, refresh_rate: int = 1, bar: bool | None = None, **kwargs: Any) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self.lines = int(refresh_rate) > 0 and not (on_terminal() if bar is None else bar)
        if self.lines:
            self.disable()
        self._epoch_started = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        """Start the epoch's clock (and the bar, when there is one)."""
        self._epoch_started = time.perf_counter()
        super().on_train_epoch_start(trainer, *args)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log ``epoch 3/30 · train/loss 0.49 · val/mAP 0.677 · 0.3 s`` (after validation)."""
        super().on_train_epoch_end(trainer, pl_module)
        if self.lines and trainer.is_global_zero and not trainer.sanity_checking:
            log.info(epoch_line(trainer, time.perf_counter() - self._epoch_started))


def epoch_line(trainer: pl.Trainer, seconds: float) -> str:
    """One line for the epoch just ended: its number, logged losses and val/mAP, its time."""
    total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
    parts = [f"epoch {trainer.current_epoch + 1}/{total}"]
    metrics = trainer.callback_metrics
    for key in sorted(metrics):
        if (key.startswith("train/") and not key.endswith("_step")) or key == "val/mAP":
            parts.append(f"{key.removesuffix('_epoch')} {float(metrics[key]):.4f}")
    parts.append(f"{seconds:.1f} s")
    return " · ".join(parts)
