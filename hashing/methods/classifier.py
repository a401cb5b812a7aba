"""The classification LightningModule of SHC's stage 1 (class similarity from logits).

``backbone -> Linear(d, C)`` trained with softmax cross-entropy on class indices, or with
binary cross-entropy on logits for multi-hot labels. Deviation from the SHC code, which applies
cross-entropy to softmax outputs (a double softmax, docs/methods.md#shc-stage-1): the loss here
takes the raw logits, as cross-entropy is defined. ``predict_step`` returns the logits, which stage
1 turns into the class-similarity matrix; :func:`fit_classifier` runs the whole stage on a
``pl.Trainer`` of its own (no logger, no checkpoints) and returns the training-set logits.
"""

from __future__ import annotations

import logging
import random
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from hashing.runs.errors import UserError

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


def classification_loss(logits: Tensor, labels: Tensor, multi_label: bool) -> Tensor:
    """Softmax cross-entropy on class indices; BCE-with-logits on multi-hot labels."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.cross_entropy(logits, labels.long())


def classification_accuracy(logits: Tensor, labels: Tensor, multi_label: bool) -> Tensor:
    """Top-1 accuracy (single-label) or per-label accuracy at logit 0 (multi-label)."""
    if multi_label:
        return ((logits >= 0) == labels.bool()).float().mean()
    return (logits.argmax(dim=1) == labels.long()).float().mean()


class ClassifierModule(pl.LightningModule):
    """Backbone -> Linear(out_features, num_classes) -> logits.

    Args:
        backbone: a module with an ``out_features`` attribute (a fresh instance: stage 1 does
            not share weights with the hashing network).
        num_classes: number of classes ``C``.
        multi_label: whether labels are multi-hot (BCE-with-logits) or indices (cross-entropy).
        optimizer: a partial of a torch optimiser, called with the parameters.
        scheduler: a partial of a torch LR scheduler (stepped per epoch), or None.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        multi_label: bool = False,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        if int(num_classes) < 2:
            raise UserError(f"num_classes must be >= 2, got {num_classes}")
        self.backbone = backbone
        self.head = nn.Linear(int(backbone.out_features), int(num_classes))
        self.num_classes = int(num_classes)
        self.multi_label = bool(multi_label)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        #: per-epoch mean training loss and accuracy, filled in by ``on_train_epoch_end``
        self.history: dict[str, list[float]] = {"loss": [], "acc": []}
        self._epoch_sums = torch.zeros(3, dtype=torch.float64)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, C)."""
        return self.head(self.backbone(x))

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """Classification loss of one batch; logs ``train/loss`` and ``train/acc`` per epoch."""
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = classification_loss(logits, y, self.multi_label)
        accuracy = classification_accuracy(logits.detach(), y, self.multi_label)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        self.log("train/acc", accuracy, on_step=False, on_epoch=True)
        size = float(x.shape[0])
        self._epoch_sums += torch.tensor(
            [float(loss.detach()) * size, float(accuracy) * size, size], dtype=torch.float64
        )
        return loss

    def on_train_epoch_start(self) -> None:
        """Reset the running sums of this epoch's loss and accuracy."""
        self._epoch_sums.zero_()

    def on_train_epoch_end(self) -> None:
        """Append this epoch's sample-weighted mean loss and accuracy to ``history``; log it."""
        loss_sum, acc_sum, count = self._epoch_sums.tolist()
        if count > 0:
            self.history["loss"].append(loss_sum / count)
            self.history["acc"].append(acc_sum / count)
            log.info(
                "classifier epoch %d/%s: loss %.4f, accuracy %.4f",
                self.current_epoch + 1,
                self.trainer.max_epochs if self._trainer is not None else "?",
                loss_sum / count,
                acc_sum / count,
            )

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Logits of the batch's inputs."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x)

    def configure_optimizers(self) -> Any:
        """Optimiser (and per-epoch scheduler) from the configured partials."""
        if self.optimizer_factory is None:
            raise UserError("no classifier optimizer configured: set classifier.optimizer")
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        schedule = {"scheduler": scheduler, "interval": "epoch"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}


@contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch for a sub-run, then restore the caller's states.

    Stage 1 runs only on a cache miss; restoring the generators (and torch's deterministic
    flag, which a ``pl.Trainer`` sets globally) keeps the hashing run that follows identical
    whether the classifier was trained now or loaded from the cache.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def fit_classifier(
    module: ClassifierModule,
    train_set: Dataset,
    predict_set: Dataset,
    *,
    max_epochs: int,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    num_workers: int = 0,
    trainer_options: Mapping[str, Any] | None = None,
) -> Tensor:
    """Train ``module`` on ``train_set`` with a ``pl.Trainer``; return logits of ``predict_set``.

    The trainer writes nothing that outlives the call (no logger, no checkpoints, a temporary
    root folder); shuffling uses its own generator seeded with ``seed``. ``trainer_options``
    are further ``pl.Trainer`` arguments (accelerator, devices, precision, deterministic).
    Returns float32 CPU logits in ``predict_set`` order, shape (len(predict_set), C).
    """
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        train_set, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers
    )
    predict_loader = DataLoader(
        predict_set, batch_size=eval_batch_size, shuffle=False, num_workers=num_workers
    )
    with tempfile.TemporaryDirectory(prefix="shc-classifier-") as root:
        trainer = pl.Trainer(
            default_root_dir=root,
            max_epochs=max_epochs,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=False,
            num_sanity_val_steps=0,
            **dict(trainer_options or {}),
        )
        trainer.fit(module, train_dataloaders=train_loader)
        batches = trainer.predict(module, dataloaders=predict_loader)
    if not batches:
        raise RuntimeError("stage 1: the classifier's prediction over the training set was empty")
    return torch.cat([b.detach().float().cpu() for b in batches])
