"""Precision@k under the stable ranking: relevant items among the top k, divided by k.

For k larger than the database, the top k is the whole database and the divisor is the
database size (so P@k never counts slots that cannot be filled).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.ranked_block import RankedBlock
from hashing.metrics.functional.ranked_scan import Backend, query_means
from hashing.metrics.functional.validation import check_retrieval_inputs, check_top_k


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


def block_precision_at_k(block: RankedBlock, num_database: int, ks: Sequence[int]) -> Tensor:
    """P@k (rows, len(ks)) float64 for ascending ``ks`` from a block's ranked positions."""
    positions = block.relevant_position
    cuts = torch.tensor(
        [min(k, num_database) for k in ks], dtype=torch.int64, device=positions.device
    )
    # Count relevant items per (row, first cut >= position), then cumulate over the cuts.
    slot = torch.searchsorted(cuts, positions)
    keys = block.relevant_row * (len(ks) + 1) + slot
    counts = torch.bincount(keys, minlength=block.num_rows * (len(ks) + 1))
    within = torch.cumsum(counts.view(block.num_rows, len(ks) + 1)[:, : len(ks)], 1)
    return within.to(torch.float64) / cuts.to(torch.float64)


def precision_at_k(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    ks: Sequence[int],
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> dict[int, float]:
    """Mean P@k over queries for each k: {k: P@k}, ties ranked by database index."""
    ks = check_ks(ks)
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    num_database = database_codes.shape[0]
    means, _ = query_means(
        lambda block: {"p": block_precision_at_k(block, num_database, ks).sum(0).cpu()},
        {"p": torch.zeros(len(ks), dtype=torch.float64)},
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        what="P@k",
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )
    return {k: float(means["p"][j]) for j, k in enumerate(ks)}
