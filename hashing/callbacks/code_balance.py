"""Lightning callback: how balanced each bit of the database codes is, and whether any bit died.

Any method can silently waste bits: a bit that is +1 (or -1) for every item carries nothing, and
codes that are all one code rank the database by its order alone. At every validation and test
epoch this callback counts, per bit, the fraction of database codes (dataloader 1 of
``validation_step`` / ``test_step``, the ``{"codes", ...}`` the retrieval evaluation reads) that
are +1, and logs ``<stage>/bit_balance_{min,max,mean}``, ``<stage>/dead_bits`` (bits constant up
to 1% of the items) and ``<stage>/all_codes_equal`` (1.0 when every code is the same code),
warning in that last case. Only per-bit counts are kept, summed over DDP ranks at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from hashing.metrics.functional.bit_balance import codes_all_equal, dead_bits

DATABASE_LOADER = 1


class CodeBalance(pl.Callback):
    """Log the database codes' bit balance and dead bits at validation and test (every method).

    The collapse warning ends with the module's ``collapse_advice`` where it has one (TBH
    names the setting that usually causes it).
    """

    def __init__(self) -> None:
        super().__init__()
        self._ones: Tensor | None = None
        self._count = 0

    def _reset(self) -> None:
        self._ones, self._count = None, 0

    def _feed(self, outputs: Any, dataloader_idx: int) -> None:
        if dataloader_idx != DATABASE_LOADER or not isinstance(outputs, Mapping):
            return
        codes = outputs.get("codes")
        if codes is None:
            return
        ones = (codes > 0).sum(dim=0).to(torch.float64)
        self._ones = ones if self._ones is None else self._ones + ones
        self._count += codes.shape[0]

    def _log(self, stage: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ones, count = self._ones, self._count
        self._reset()
        if ones is None:
            return
        ones = trainer.strategy.reduce(ones, reduce_op="sum")
        total = trainer.strategy.reduce(
            torch.tensor(float(count), dtype=torch.float64, device=ones.device), reduce_op="sum"
        )
        balance = ones / total
        collapsed = codes_all_equal(balance)
        for name, value in (
            ("bit_balance_min", balance.min()),
            ("bit_balance_max", balance.max()),
            ("bit_balance_mean", balance.mean()),
            ("dead_bits", torch.tensor(float(dead_bits(balance)))),
            ("all_codes_equal", torch.tensor(float(collapsed))),
        ):
            pl_module.log(f"{stage}/{name}", value.float(), sync_dist=False)
        if collapsed:
            advice = getattr(pl_module, "collapse_advice", "")
            rank_zero_warn(
                f"every {stage} database code is the same code (all {balance.numel()} bits "
                "constant), so retrieval ranks by database order alone: the codes collapsed."
                + (f" {advice}" if advice else "")
            )

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking:
            self._feed(outputs, dataloader_idx)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._feed(outputs, dataloader_idx)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._log("val", trainer, pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log("test", trainer, pl_module)
