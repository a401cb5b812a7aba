"""Lightning callback: how balanced each bit of the database codes is, and whether any bit died.

Any method can silently waste bits: a bit that is +1 (or -1) for every item carries nothing, and
codes that are all one code rank the database by its order alone. At every validation and test
epoch this callback reads the database codes the retrieval evaluation gathered (over all DDP
ranks, each item once: :class:`hashing.callbacks.RetrievalEvaluation` hands them over), and
logs the per-bit fraction of +1 as ``<stage>/bit_balance_{min,max,mean}``, ``<stage>/dead_bits``
(bits constant up to 1% of the items) and ``<stage>/all_codes_equal`` (1.0 when every code is
the same code), warning in that last case.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from hashing.metrics.functional.bit_balance import bit_balance, codes_all_equal, dead_bits


class CodeBalance(pl.Callback):
    """Log the database codes' bit balance and dead bits at validation and test (every method).

    Needs the retrieval evaluation, which gathers the codes. The collapse warning ends with the
    module's ``collapse_advice`` where it has one (TBH names the setting that usually causes it).
    """

    def on_retrieval_codes(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        stage: str,
        splits: Mapping[str, Tensor],
    ) -> None:
        """Log the balance of the gathered database codes of this ``stage``'s epoch."""
        balance = bit_balance(splits["database_codes"])
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
