"""Progress: a tqdm bar on a terminal, one line per epoch anywhere else.

Off a terminal (a log file, a batch job, CI) tqdm's carriage-return redraws turn into hundreds
of lines (272 for the default 30-epoch run); there :class:`EpochProgress` logs one line per
epoch instead: the epoch, the few values that say how it went (training loss, validation mAP,
the number of dead bits when there are any) and the epoch's time. Every other logged value stays in
the loggers (``csv/metrics.csv``).

The line is written once the epoch's own values are logged: methods log their training means in
``LightningModule.on_train_epoch_end``, which Lightning calls after the callbacks' hook of that
name, so the line waits for the next epoch's start (or the end of training).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

log = logging.getLogger(__name__)

#: values on the epoch line when logged (the rest stay in the loggers)
LINE_METRICS = ("train/loss", "val/mAP", "val/dead_bits")
#: counts of something wrong: shown (without decimals) only when not 0
ALERTS = ("val/dead_bits",)


def on_terminal() -> bool:
    """Whether stderr (where tqdm draws) is a terminal."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class EpochProgress(TQDMProgressBar):
    """TQDMProgressBar on a terminal; elsewhere (or with ``bar: false``) one log line an epoch.

    Args:
        refresh_rate: the bar's refresh rate in batches (0 disables the bar and the lines).
        bar: true = always the bar, false = always the lines, null = the bar on a terminal only.
        metrics: the logged values an epoch line shows (those a method does not log are skipped).
        **kwargs: TQDMProgressBar arguments.
    """

    def __init__(
        self,
        refresh_rate: int = 1,
        bar: bool | None = None,
        metrics: Sequence[str] = LINE_METRICS,
        **kwargs: Any,
    ) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self.lines = int(refresh_rate) > 0 and not (on_terminal() if bar is None else bar)
        if self.lines:
            self.disable()
        self.metrics = tuple(metrics)
        self._epoch_started = time.perf_counter()
        self._validated_epoch: int | None = None
        #: (epoch, seconds) of an ended epoch whose line is not written yet
        self._pending: tuple[int, float] | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        """Write the previous epoch's line; start this epoch's clock (and the bar, if any)."""
        self._write_pending(trainer)
        self._epoch_started = time.perf_counter()
        super().on_train_epoch_start(trainer, *args)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Note that this epoch has validation values of its own."""
        super().on_validation_epoch_end(trainer, pl_module)
        if not trainer.sanity_checking:
            self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Stop the epoch's clock; its line follows once its training values are logged."""
        super().on_train_epoch_end(trainer, pl_module)
        if self.lines and not trainer.sanity_checking:
            self._pending = (trainer.current_epoch, time.perf_counter() - self._epoch_started)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the last epoch's line."""
        self._write_pending(trainer)
        super().on_train_end(trainer, pl_module)

    def _write_pending(self, trainer: pl.Trainer) -> None:
        if self._pending is None:
            return
        epoch, seconds = self._pending
        self._pending = None
        if trainer.is_global_zero:
            validated = self._validated_epoch == epoch
            log.info(epoch_line(trainer, epoch, seconds, self.metrics, validated))


def epoch_line(
    trainer: pl.Trainer,
    epoch: int,
    seconds: float,
    metrics: Sequence[str] = LINE_METRICS,
    validated: bool = True,
) -> str:
    """``epoch 3/30 · train/loss 0.4900 · val/mAP 0.6770 · 0.3 s`` for 0-based ``epoch``:
    the listed values that were logged (``val/*`` only when ``validated`` this epoch; an alert
    count only when not 0)."""
    total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
    parts = [f"epoch {epoch + 1}/{total}"]
    logged = trainer.callback_metrics
    for key in metrics:
        if key not in logged or (key.startswith("val/") and not validated):
            continue
        value = float(logged[key])
        if key in ALERTS:
            if value:
                parts.append(f"{key} {value:.0f}")
        else:
            parts.append(f"{key} {value:.4f}")
    parts.append(f"{seconds:.1f} s")
    return " · ".join(parts)
