"""Exact mean average precision at k under the stable (distance, database index) ranking.

AP@k = (1/R_k) * sum over relevant positions r <= k of (relevant items in top r) / r, with R_k the
relevant items in the top k; R_k = 0 gives AP 0 and still counts in the mean. k = None means
the whole database (no DeepHash-pytorch off-by-one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hashing.metrics.functional.chunk_scan import scan_query_chunks
from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.ranking import relevant_positions
from hashing.metrics.functional.validation import check_top_k


def average_precision_from_positions(
    rows: Tensor,
    positions: Tensor,
    relevant_rank: Tensor,
    num_queries: int,
    num_database: int,
    top_ks: Sequence[int | None],
) -> Tensor:
    """AP@k (Q, len(top_ks)) float64 from the ranked positions of the relevant items."""
    precision = relevant_rank.to(torch.float64) / positions.to(torch.float64)
    out = torch.zeros(num_queries, len(top_ks), dtype=torch.float64, device=positions.device)
    for j, k in enumerate(top_ks):
        cut = num_database if k is None else min(k, num_database)
        if cut >= num_database:
            r, p = rows, precision
        else:
            inside = positions <= cut
            r, p = rows[inside], precision[inside]
        hits = torch.bincount(r, minlength=num_queries)
        total = torch.zeros(num_queries, dtype=torch.float64, device=positions.device)
        total.index_add_(0, r, p)
        out[:, j] = torch.where(hits > 0, total / hits.clamp(min=1), 0.0)
    return out


def average_precision_chunk(
    distances: Tensor, relevant: Tensor, top_ks: Sequence[int | None]
) -> Tensor:
    """AP@k (chunk, len(top_ks)) float64 for one chunk of queries."""
    num_queries, num_database = distances.shape
    rows, positions, relevant_rank = relevant_positions(distances, relevant)
    return average_precision_from_positions(
        rows, positions, relevant_rank, num_queries, num_database, top_ks
    )


def average_precision(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_ks: Sequence[int | None] = (None,),
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Tensor:
    """Per-query AP@k, shape (Q, len(top_ks)) float64, one stable ranking shared by all k."""
    top_ks = list(top_ks)
    if not top_ks:
        raise ValueError("top_ks must name at least one k (an int, or None for ALL)")
    for k in top_ks:
        check_top_k(k, "top_ks entry")
    parts = [
        average_precision_chunk(chunk.distances, chunk.relevant, top_ks)
        for chunk in scan_query_chunks(
            query_codes, database_codes, query_labels, database_labels, chunk_size, memory_budget
        )
    ]
    if not parts:
        return torch.zeros(0, len(top_ks), dtype=torch.float64, device=database_codes.device)
    return torch.cat(parts)


def mean_average_precision(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_k: int | None = None,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> float:
    """mAP@top_k (None = ALL = the whole database) under the stable Hamming ranking."""
    check_top_k(top_k)
    ap = average_precision(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        (top_k,),
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )
    if ap.shape[0] == 0:
        raise ValueError("query_codes is empty; mAP needs at least one query")
    return float(ap.mean())


def mean_average_precisions(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_ks: Sequence[int | None],
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> dict[int | None, float]:
    """mAP for several k in one pass: {k: mAP@k}, k None = ALL."""
    ap = average_precision(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        top_ks,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )
    if ap.shape[0] == 0:
        raise ValueError("query_codes is empty; mAP needs at least one query")
    means = ap.mean(dim=0)
    return {k: float(means[j]) for j, k in enumerate(top_ks)}
