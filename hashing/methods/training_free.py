"""Training-free hashing as a method: LSH, PCA-sign and ITQ through the training pipeline.

``method=lsh|pcah|itq`` fits ``sign((f(x) - mean) @ W)`` (:mod:`hashing.baselines.projections`)
on the backbone's features ``f(x)`` of the training (``fit``) split in :meth:`prepare`, before
``Trainer.fit``; the fit then takes no gradient step and stops after its first epoch, whose
validation writes the checkpoint, so the run folder, ``metrics.json``, ``hashing.eval``,
``hashing.export`` and ``hashing.report`` treat it as any other run. ``f`` is the configured
backbone as it is (frozen): with ``backbone=identity`` (the features presets) it is the
features themselves, on images the flattened pixels; a backbone nobody trained gives random
features. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from hashing.baselines.projections import PROJECTIONS, fit_projection
from hashing.methods.base import HashingModule
from hashing.runs.errors import UserError


class TrainingFreeHashing(HashingModule):
    """Backbone (frozen) -> a fitted linear projection -> sign; no gradient steps.

    Args:
        projection: ``lsh`` (random hyperplanes), ``pcah`` (PCA-sign) or ``itq``.
        seed: seed of LSH's planes and of ITQ's start rotation.
        iterations: ITQ's rotation updates (50 in Gong & Lazebnik 2011).
        fit_batch_size: batch size of the pass that computes the training features.
        **kwargs: :class:`HashingModule` arguments (no optimiser is used).
    """

    label_use = "none"

    def __init__(
        self,
        projection: str,
        seed: int = 0,
        iterations: int = 50,
        fit_batch_size: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if projection not in PROJECTIONS:
            raise UserError(f"method.projection={projection!r} unknown; use one of {PROJECTIONS}")
        if iterations < 0:
            raise UserError(f"method.iterations={iterations} is invalid: use 0 or more")
        width = int(self.backbone.out_features)
        if projection != "lsh" and self.bits > width:
            raise UserError(
                f"bits={self.bits} is more than the {width} backbone features that PCA can "
                f"project to: use bits <= {width} with method={projection}"
            )
        self.projection = projection
        self.seed = int(seed)
        self.iterations = int(iterations)
        self.fit_batch_size = int(fit_batch_size)
        self.requires_grad_(False)

    @torch.no_grad()
    def training_features(self, datamodule: pl.LightningDataModule) -> Tensor:
        """(N, D) float64 backbone features of the ``fit`` split (eval transforms)."""
        loader = DataLoader(datamodule.dataset("fit"), batch_size=self.fit_batch_size)
        self.backbone.eval()
        return torch.cat([self.backbone(batch[0]).double() for batch in loader])

    def prepare(self, datamodule: pl.LightningDataModule, output_dir: Path) -> None:
        """Fit the projection on the training features and load it into the hash layer
        (deterministic: a resume refits the same one)."""
        features = self.training_features(datamodule)
        if self.projection != "lsh" and self.bits > features.shape[0]:
            raise UserError(
                f"bits={self.bits} is more than the {features.shape[0]} training items that "
                f"PCA can project to: use bits <= {features.shape[0]}"
            )
        mean, weights = fit_projection(
            self.projection, features, self.bits, self.seed, self.iterations
        )
        layer = self.hash_layer
        layer.weight.copy_(weights.T.to(layer.weight))
        layer.bias.copy_((-(mean @ weights)).to(layer.bias))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """Nothing to learn: the step is skipped."""
        return None

    def on_train_epoch_end(self) -> None:
        """Stop after the first epoch: its validation records the fitted codes' val/mAP and the
        checkpoint; further epochs would repeat it."""
        self.trainer.should_stop = True

    def configure_optimizers(self) -> Any:
        """No optimiser: nothing is trained."""
        return None
