"""Precision@k under the stable ranking: relevant items among the top k, divided by k.

For k larger than the database, the top k is the whole database and the divisor is the
database size (so P@k never counts slots that cannot be filled).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hashing.metrics.functional.chunk_scan import scan_query_chunks
from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.ranking import relevant_positions
from hashing.metrics.functional.validation import check_top_k


def precision_at_k_from_positions(
    rows: Tensor, positions: Tensor, num_queries: int, num_database: int, ks: Sequence[int]
) -> Tensor:
    """P@k (Q, len(ks)) float64 from the ranked positions of the relevant items."""
    cuts = torch.tensor(
        [min(k, num_database) for k in ks], dtype=torch.int64, device=positions.device
    )
    # Relevant items at rank <= cut: count per (row, position) then cumulate over the cuts.
    slot = torch.searchsorted(cuts, positions)  # first cut >= position
    keys = rows * (len(ks) + 1) + slot
    counts = torch.bincount(keys, minlength=num_queries * (len(ks) + 1))
    within = torch.cumsum(counts.view(num_queries, len(ks) + 1)[:, : len(ks)], 1)
    return within.to(torch.float64) / cuts.to(torch.float64)


def check_ks(ks: Sequence[int], name: str = "ks") -> list[int]:
    """Validate a non-empty list of positive ints; return it sorted ascending and unique."""
    ks = list(ks)
    if not ks:
        raise ValueError(f"{name} must name at least one positive int")
    for k in ks:
        if k is None:
            raise ValueError(f"{name} entries must be positive ints, got None")
        check_top_k(k, f"{name} entry")
    return sorted(set(ks))


def precision_at_k(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    ks: Sequence[int],
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> dict[int, float]:
    """Mean P@k over queries for each k: {k: P@k}, ties ranked by database index."""
    ks = check_ks(ks)
    totals = torch.zeros(len(ks), dtype=torch.float64)
    num_queries = 0
    for chunk in scan_query_chunks(
        query_codes, database_codes, query_labels, database_labels, chunk_size, memory_budget
    ):
        rows, positions, _ = relevant_positions(chunk.distances, chunk.relevant)
        values = precision_at_k_from_positions(
            rows, positions, chunk.distances.shape[0], chunk.distances.shape[1], ks
        )
        totals += values.sum(0).cpu()
        num_queries += chunk.distances.shape[0]
    if num_queries == 0:
        raise ValueError("query_codes is empty; P@k needs at least one query")
    return {k: float(totals[j] / num_queries) for j, k in enumerate(ks)}
