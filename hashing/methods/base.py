"""The LightningModule every hashing method builds on.

It owns what all methods share: the backbone, the hash layer, encoding to ±1 codes, the
evaluation steps that feed :class:`hashing.callbacks.RetrievalEvaluation`, and the optimiser and
scheduler built from config. A method adds its loss (``training_step``) and, where it has one, a
preparation stage that runs before training (``prepare``: the centers of CSQ/MDS/SHC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from hashing.runs.errors import UserError

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


def binarize(u: Tensor) -> Tensor:
    """Map real outputs to ±1 codes; 0 maps to +1 so that a code never holds a 0."""
    return torch.where(u >= 0, torch.ones_like(u), -torch.ones_like(u))


class HashingModule(pl.LightningModule):
    """Backbone -> Linear(d, bits) -> tanh, with ±1 codes by sign.

    Args:
        backbone: a module with an ``out_features`` attribute.
        bits: code length ``q``.
        num_classes: number of classes of the dataset (labels are indices or multi-hot).
        multi_label: whether labels are multi-hot vectors.
        optimizer: a partial of a torch optimiser; called with the parameters.
        scheduler: a partial of a torch LR scheduler, called with the optimiser, or None.
        scheduler_interval: "epoch" or "step", how often the scheduler steps.
        name: the method's short name (logged with the hyperparameters).
    """

    #: which training items and labels the method uses (docs/labels.md): ``labelled`` (the
    #: labelled items only: a supervised method that knows nothing of unlabelled items), ``mask``
    #: (every item, an unlabelled one's label ``hashing.data.labels.UNLABELLED``) or ``none``
    #: (every item, labels ignored); the pipeline has the DataModule serve that view
    label_use: str = "labelled"

    #: init arguments that are objects, not values: kept out of the checkpoint's hyperparameters
    #: so checkpoints load with ``torch.load(weights_only=True)``
    non_hyperparameters: tuple[str, ...] = ("backbone", "optimizer", "scheduler")

    def __init__(
        self,
        backbone: nn.Module,
        bits: int,
        num_classes: int,
        multi_label: bool = False,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        name: str = "hashing",
    ) -> None:
        super().__init__()
        if not isinstance(bits, int) or isinstance(bits, bool) or bits <= 0:
            raise UserError(f"bits must be a positive integer, got {bits!r}")
        if scheduler_interval not in ("epoch", "step"):
            raise UserError(
                f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}"
            )
        self.save_hyperparameters(ignore=list(self.non_hyperparameters))
        self.backbone = backbone
        self.bits = bits
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.hash_layer = self.build_hash_layer()
        self._train_keys: list[str] = []
        self._train_sums: Tensor | None = None
        self._train_count = 0

    def build_hash_layer(self) -> nn.Module:
        """The layer from backbone features to ``bits`` real outputs."""
        return nn.Linear(int(self.backbone.out_features), self.bits)

    def prepare(self, datamodule: pl.LightningDataModule, output_dir: Path) -> None:
        """Run the method's pre-training stages (nothing by default).

        Called by the pipeline after the data is set up and before ``Trainer.fit``, also when
        resuming, so anything it computes must be deterministic or cached.
        """

    def forward(self, x: Tensor) -> Tensor:
        """Relaxed codes ``u = tanh(W f(x) + b)`` in (-1, 1)."""
        return torch.tanh(self.hash_layer(self.backbone(x)))

    # --- training values: summed per step, logged once per epoch ----------------------------
    def accumulate_training_values(self, values: Mapping[str, Tensor], batch_size: int) -> None:
        """Add a step's values, weighted by ``batch_size``, to the epoch's sums.

        :meth:`log_training_epoch` logs their per-sample means, the value Lightning's
        ``self.log(..., on_step=False, on_epoch=True)`` logs, without its per-call cost (about
        a millisecond a call: more than a whole step of a linear head on cached features).
        """
        batch = torch.stack([v.detach().float() for v in values.values()]) * batch_size
        if self._train_sums is None:
            self._train_keys, self._train_sums = list(values), batch
        else:
            self._train_sums = self._train_sums + batch
        self._train_count += batch_size

    def log_training_epoch(self) -> None:
        """Log ``train/<value>`` epoch means (per sample), averaged over ranks; the loss also in
        the progress bar."""
        if self._train_sums is None:
            return
        means = self._train_sums / self._train_count
        for key, value in zip(self._train_keys, means, strict=True):
            self.log(f"train/{key}", value, prog_bar=key == "loss", sync_dist=True)
        self._train_sums, self._train_count = None, 0

    def on_train_epoch_start(self) -> None:
        """Start the epoch's sums of the logged training values."""
        self._train_sums, self._train_count = None, 0

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training values."""
        self.log_training_epoch()

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """±1 codes of a batch (float tensor of shape (B, bits))."""
        return binarize(self(x))

    def _evaluation_step(self, batch: tuple[Tensor, Tensor, Tensor]) -> dict[str, Tensor]:
        x, y, index = batch
        return {"codes": self.encode(x), "labels": y, "index": index}

    def validation_step(
        self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """Codes for the retrieval callback: loader 0 holds queries, loader 1 the database."""
        return self._evaluation_step(batch)

    def test_step(
        self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """Codes for the retrieval callback: loader 0 holds queries, loader 1 the database."""
        return self._evaluation_step(batch)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """±1 codes of the batch's inputs (export and search use this)."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self.encode(x)

    def configure_optimizers(self) -> Any:
        """Optimiser (and scheduler) from the partials the config gave."""
        if self.optimizer_factory is None:
            raise UserError("no optimizer configured: set method.optimizer in the config")
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }
