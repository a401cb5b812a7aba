"""Keep the resolved run config inside every checkpoint, so a checkpoint alone rebuilds its run."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

CONFIG_KEY = "hashing_config"


class ConfigSnapshot(pl.Callback):
    """Writes the resolved config under ``checkpoint["hashing_config"]``."""

    def __init__(self, resolved_config: dict[str, Any]) -> None:
        self.resolved_config = resolved_config

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Store the config beside the weights."""
        checkpoint[CONFIG_KEY] = self.resolved_config
