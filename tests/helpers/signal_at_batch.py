"""Test helper: a callback that signals its own process at a given global training batch."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytorch_lightning as pl


class SignalAtBatch(pl.Callback):
    """Sends ``signal_name`` to this process once, after global batch ``batch`` (0-based)."""

    def __init__(self, batch: int, signal_name: str = "SIGTERM") -> None:
        self.batch = batch
        self.signum = getattr(signal, signal_name)
        self.sent = False

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Signal once the batch is done."""
        if not self.sent and trainer.global_step - 1 == self.batch:
            self.sent = True
            os.kill(os.getpid(), self.signum)
