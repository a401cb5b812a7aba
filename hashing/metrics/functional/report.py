"""Every retrieval number of one evaluation from a single pass over the query chunks.

The distances, relevance and stable sort dominate the cost, so the evaluation callback
computes mAP@k, tie-aware mAP, P@k and the radius curves from one shared scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.harmonic import harmonic_table
from hashing.metrics.functional.map_at_k import block_average_precision
from hashing.metrics.functional.precision_at_k import block_precision_at_k, check_ks
from hashing.metrics.functional.radius import RadiusCurve, radius_statistics
from hashing.metrics.functional.ranked_block import RankedBlock
from hashing.metrics.functional.ranked_scan import Backend, query_means
from hashing.metrics.functional.tie_aware import tie_aware_average_precision_chunk
from hashing.metrics.functional.validation import check_retrieval_inputs, check_top_k


@dataclass(frozen=True)
class RetrievalReport:
    """Means over queries; dict keys are k (None = ALL)."""

    map_at_k: dict[int | None, float]
    tie_aware_map_at_k: dict[int | None, float]
    precision_at_k: dict[int, float]
    radius_curve: RadiusCurve
    num_queries: int
    num_database: int
    bits: int

    def precision_within_radius(self, radius: int = 2) -> float:
        """Mean precision within Hamming radius ``radius`` (empty retrieval scores 0)."""
        if radius < 0:
            raise ValueError(f"radius must be a non-negative int, got {radius}")
        return float(self.radius_curve.precision[min(radius, self.bits)])


def evaluate_retrieval(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_ks: Sequence[int | None] = (100, 1000, None),
    tie_aware_ks: Sequence[int | None] = (None,),
    precision_ks: Sequence[int] = (100, 1000),
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> RetrievalReport:
    """mAP@k, tie-aware mAP@k, P@k and precision/recall by radius in one scan."""
    top_ks, tie_aware_ks = list(top_ks), list(tie_aware_ks)
    for k in [*top_ks, *tie_aware_ks]:
        check_top_k(k, "top_ks entry")
    precision_ks = check_ks(precision_ks, "precision_ks") if len(precision_ks) else []
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    bits = query_codes.shape[1]
    num_database = database_codes.shape[0]
    zeros = {
        "ap": torch.zeros(len(top_ks), dtype=torch.float64),
        "tie": torch.zeros(len(tie_aware_ks), dtype=torch.float64),
        "p": torch.zeros(len(precision_ks), dtype=torch.float64),
        "radius": torch.zeros(3, bits + 1, dtype=torch.float64),
    }
    harmonic = harmonic_table(num_database)

    def kernel(block: RankedBlock) -> dict[str, Tensor]:
        counts = block.counts
        out: dict[str, Tensor] = {
            "ap": block_average_precision(block, num_database, top_ks).sum(0).cpu(),
            "p": (
                block_precision_at_k(block, num_database, precision_ks).sum(0).cpu()
                if precision_ks
                else torch.zeros(0, dtype=torch.float64)
            ),
        }
        if tie_aware_ks:
            table = harmonic.to(counts.total.device)
            out["tie"] = (
                tie_aware_average_precision_chunk(
                    counts.total, counts.relevant, tie_aware_ks, table
                )
                .sum(0)
                .cpu()
            )
        stats = radius_statistics(counts.total, counts.relevant)
        out["radius"] = torch.stack([s.sum(0) for s in stats]).cpu()
        return out

    means, num_queries = query_means(
        kernel,
        zeros,
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        what="evaluation",
        positions=True,
        counts=True,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )
    radius = means["radius"]
    return RetrievalReport(
        map_at_k={k: float(means["ap"][j]) for j, k in enumerate(top_ks)},
        tie_aware_map_at_k={k: float(means["tie"][j]) for j, k in enumerate(tie_aware_ks)},
        precision_at_k={k: float(means["p"][j]) for j, k in enumerate(precision_ks)},
        radius_curve=RadiusCurve(torch.arange(bits + 1), radius[0], radius[1], radius[2]),
        num_queries=num_queries,
        num_database=num_database,
        bits=bits,
    )
