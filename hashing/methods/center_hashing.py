"""Hash-center hashing: CSQ, MDS and SHC share this module and differ only in their centers.

Loss (docs/methods.md#center-loss):
``mean BCE((u + 1)/2, (c_y + 1)/2) + lambda_q * mean((|u| - 1)^2)`` with ``c_y`` the center of the
sample's class. A multi-label sample's target is the CSQ rule:
``sign(mean of its positive labels' centers)``, a zero entry replaced by a fixed random ±1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from hashing.methods.base import HashingModule
from hashing.runs.errors import UserError


class CenterSource(Protocol):
    """Where a center method's centers come from (see :mod:`hashing.methods.center_sources`)."""

    def validate(self, num_classes: int, bits: int) -> None:
        """Raise ValueError naming ``bits`` when this source cannot serve (classes, bits)."""

    def __call__(
        self, num_classes: int, bits: int, datamodule: pl.LightningDataModule, output_dir: Path
    ) -> Tensor:
        """The (num_classes, bits) ±1 centers; may write artifacts into ``output_dir``."""


def center_targets(
    labels: Tensor, centers: Tensor, tie_breaker: Tensor, multi_label: bool
) -> Tensor:
    """Per-sample target codes in {-1, +1}.

    Single-label: the class's center. Multi-label: ``sign`` of the mean of the positive labels'
    centers, where a zero entry (a tie, or a sample without positive labels) takes the fixed
    random ``tie_breaker`` bit.
    """
    if not multi_label:
        return centers[labels.long()]
    summed = labels.to(centers.dtype) @ centers
    return torch.where(summed == 0, tie_breaker.expand_as(summed), torch.sign(summed))


def center_loss(u: Tensor, targets: Tensor, lambda_q: float) -> Tensor:
    """BCE between ``(u+1)/2`` and ``(target+1)/2`` plus the quantisation term
    (docs/methods.md#center-loss)."""
    bce = F.binary_cross_entropy((u + 1) / 2, (targets + 1) / 2)
    quantization = ((u.abs() - 1) ** 2).mean()
    return bce + lambda_q * quantization


class CenterHashing(HashingModule):
    """Backbone -> Linear -> tanh trained against fixed per-class hash centers.

    Args:
        center_source: builds the centers before training (CSQ, MDS or SHC).
        lambda_q: weight of the quantisation term (1e-4 as in DeepHash-pytorch and SHC).
        tie_breaker_seed: seed of the fixed random bits that break multi-label ties.
        similarity: the class similarity SHC's source fits (``classifier``/``taxonomy``;
            None for CSQ and MDS): the source reads it from its own config, the module keeps it
            among the hyperparameters so that runs of either kind tell apart.
        **kwargs: :class:`HashingModule` arguments.
    """

    non_hyperparameters = (*HashingModule.non_hyperparameters, "center_source")

    def __init__(
        self,
        center_source: CenterSource,
        lambda_q: float = 1e-4,
        tie_breaker_seed: int = 0,
        similarity: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if lambda_q < 0:
            raise UserError(f"method.lambda_q must be >= 0, got {lambda_q}")
        self.center_source = center_source
        self.lambda_q = lambda_q
        self.similarity = similarity
        generator = torch.Generator().manual_seed(tie_breaker_seed)
        tie_breaker = torch.randint(0, 2, (self.bits,), generator=generator).float() * 2 - 1
        self.register_buffer("tie_breaker", tie_breaker)
        self.register_buffer("centers", torch.empty(0, self.bits))
        center_source.validate(self.num_classes, self.bits)

    def prepare(self, datamodule: pl.LightningDataModule, output_dir: Path) -> None:
        """Build the centers (cached or deterministic, so resuming rebuilds the same ones)."""
        centers = self.center_source(self.num_classes, self.bits, datamodule, output_dir)
        expected = (self.num_classes, self.bits)
        if tuple(centers.shape) != expected:
            raise ValueError(f"center source returned shape {tuple(centers.shape)}, not {expected}")
        if not bool(((centers == 1) | (centers == -1)).all()):
            raise ValueError("center source returned entries outside {-1, +1}")
        self.centers = centers.to(self.tie_breaker)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Size the centers buffer to the checkpoint's so it loads without ``prepare``."""
        stored = checkpoint.get("state_dict", {}).get("centers")
        if stored is not None:
            self.centers = torch.empty_like(stored, device=self.tie_breaker.device)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        """Center loss of one batch."""
        if self.centers.numel() == 0:
            raise RuntimeError("centers are not built: call prepare(datamodule, output_dir) first")
        x, y, _ = batch
        u = self(x)
        targets = center_targets(y, self.centers, self.tie_breaker, self.multi_label)
        loss = center_loss(u, targets, self.lambda_q)
        self.accumulate_training_values({"loss": loss}, y.shape[0])
        return loss
