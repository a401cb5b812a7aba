"""Test helper: record what the evaluation callback gathers at test time on each rank."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from hashing.callbacks import RetrievalEvaluation


class GatherProbe(pl.Callback):
    """Wraps ``gathered`` of the test codes that :class:`RetrievalEvaluation` shares and writes
    the sizes of the gathered query/database codes to ``<output_dir>/gathered_rank<r>.json``."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
        self.gathered: dict[str, list[int]] = {}
        self.local: dict[str, int] = {}

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Find the evaluation callback's shared test codes and wrap their ``gathered`` (the
        probe is listed after the evaluation, which has joined them by now)."""
        [evaluation] = [cb for cb in trainer.callbacks if isinstance(cb, RetrievalEvaluation)]
        codes = evaluation.codes["test"]
        gathered = codes.gathered

        def recording_gathered() -> dict[str, Any]:
            result = gathered()
            self.gathered = {key: list(value.shape) for key, value in result.items()}
            return result

        codes.gathered = recording_gathered  # type: ignore[method-assign]

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the items this rank evaluated (with DistributedSampler's padding)."""
        role = "query" if dataloader_idx == 0 else "database"
        self.local[role] = self.local.get(role, 0) + int(outputs["index"].numel())

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write this rank's record."""
        record = {"gathered": self.gathered, "local": self.local, "world_size": trainer.world_size}
        path = self.output_dir / f"gathered_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))
