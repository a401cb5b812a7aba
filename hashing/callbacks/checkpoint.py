"""ModelCheckpoint whose ``last.ckpt`` is the state at the end of the last epoch.

Lightning 2.6's ModelCheckpoint with a monitor, ``save_top_k`` and ``save_last=True`` writes
``last.ckpt`` only in an epoch where it also saves a top-k checkpoint, so after the best epoch
``last.ckpt`` stops moving: in a 30-epoch run whose best epoch is 28 it holds epoch 28, and
"continue from last.ckpt" re-trains the tail. This subclass writes ``last.ckpt`` at the end of
every epoch it would have considered for saving, whether or not the epoch was a new best.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class LastEpochCheckpoint(ModelCheckpoint):
    """ModelCheckpoint (same arguments) that keeps ``last.ckpt`` at the latest epoch."""

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's key, so checkpoints written before this class still restore."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def _last_is_due(self, trainer: pl.Trainer, on_train_epoch_end: bool) -> bool:
        """Whether the parent's hook of this kind saves (or skips top-k) at this point."""
        return (
            bool(self.save_last)
            and not self._should_skip_saving_checkpoint(trainer)
            and self._should_save_on_train_epoch_end(trainer) == on_train_epoch_end
        )

    def _save_last_if_skipped(self, trainer: pl.Trainer) -> None:
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save as the parent does, then ``last.ckpt`` if the parent left it behind."""
        due = self._last_is_due(trainer, on_train_epoch_end=True)
        super().on_train_epoch_end(trainer, pl_module)
        if due:
            self._save_last_if_skipped(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save as the parent does, then ``last.ckpt`` if the parent left it behind."""
        due = self._last_is_due(trainer, on_train_epoch_end=False)
        super().on_validation_end(trainer, pl_module)
        if due:
            self._save_last_if_skipped(trainer)
