"""Stateful mAP@k: accumulate query and database batches, compute mAP at several k at once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hashing.metrics.accumulator import RetrievalAccumulator
from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.map_at_k import mean_average_precisions
from hashing.metrics.functional.validation import check_top_k


def k_name(top_k: int | None) -> str:
    """Display name of a cut-off: the int, or ``ALL`` for None."""
    return "ALL" if top_k is None else str(top_k)


class MeanAveragePrecision(RetrievalAccumulator):
    """mAP@k over the gathered queries and database; ``compute()`` -> {"mAP@100": ..., ...}.

    Example:
        metric = MeanAveragePrecision(top_ks=(100, 1000, None))
        metric.update(codes, labels, index, role="query")     # per query batch
        metric.update(codes, labels, index, role="database")  # per database batch
        metric.compute()  # {"mAP@100": tensor, "mAP@1000": tensor, "mAP@ALL": tensor}
    """

    def __init__(
        self,
        top_ks: Sequence[int | None] = (100, 1000, None),
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.top_ks = list(top_ks)
        if not self.top_ks:
            raise ValueError("top_ks must name at least one k (an int, or None for ALL)")
        for k in self.top_ks:
            check_top_k(k, "top_ks entry")
        self.memory_budget = memory_budget

    def compute(self) -> dict[str, Tensor]:
        """mAP@k for every configured k, as float64 scalars keyed ``mAP@<k>`` (``mAP@ALL``)."""
        query_codes, query_labels, _ = self.split("query")
        database_codes, database_labels, _ = self.split("database")
        values = mean_average_precisions(
            query_codes,
            database_codes,
            query_labels,
            database_labels,
            self.top_ks,
            memory_budget=self.memory_budget,
        )
        return {f"mAP@{k_name(k)}": torch.tensor(v, dtype=torch.float64) for k, v in values.items()}
