"""Test helper: hold training at a given global batch until the job is signalled from outside."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from hashing.callbacks.interrupt import InterruptCheckpoint


class WaitForSignal(pl.Callback):
    """After global batch ``batch`` (0-based), write ``<output_dir>/waiting`` and sleep until the
    run's :class:`InterruptCheckpoint` has received a signal (RuntimeError after ``timeout_s``),
    so that a test can signal a SLURM job at a known point of its training."""

    def __init__(self, batch: int, output_dir: str, timeout_s: float = 120.0) -> None:
        self.batch = batch
        self.output_dir = Path(output_dir)
        self.timeout_s = timeout_s

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Wait at the chosen batch (never again after a resume past it)."""
        if trainer.global_step - 1 != self.batch:
            return
        [interrupt] = [cb for cb in trainer.callbacks if isinstance(cb, InterruptCheckpoint)]
        (self.output_dir / "waiting").write_text(str(self.batch))
        deadline = time.monotonic() + self.timeout_s
        while interrupt.requested is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no signal within {self.timeout_s} s at batch {self.batch}")
            time.sleep(0.1)
