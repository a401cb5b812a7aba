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
from hashing.metrics.functional.ranking import stable_order
from hashing.metrics.functional.validation import check_top_k


def relevant_positions(distances: Tensor, relevant: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Positions of the relevant items in each row's stable ranking.

    Returns (row, position, relevant_rank), flat, row-major, positions and ranks 1-based:
    the relevant_rank-th relevant item of ``row`` sits at ``position`` of the ranking.
    """
    order = stable_order(distances).to(relevant.device)
    ranked_relevant = torch.gather(relevant, 1, order)
    rows, cols = ranked_relevant.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=relevant.shape[0])
    row_start = torch.cumsum(counts, 0) - counts
    relevant_rank = torch.arange(1, rows.numel() + 1, device=rows.device) - row_start[rows]
    return rows, cols + 1, relevant_rank


def average_precision_chunk(
    distances: Tensor, relevant: Tensor, top_ks: Sequence[int | None]
) -> Tensor:
    """AP@k (chunk, len(top_ks)) float64 for one chunk of queries."""
    num_queries, num_database = distances.shape
    rows, positions, relevant_rank = relevant_positions(distances, relevant)
    precision = relevant_rank.to(torch.float64) / positions.to(torch.float64)
    out = torch.zeros(num_queries, len(top_ks), dtype=torch.float64, device=relevant.device)
    for j, k in enumerate(top_ks):
        cut = num_database if k is None else min(k, num_database)
        inside = positions <= cut
        r_k = torch.bincount(rows[inside], minlength=num_queries)
        total = torch.zeros(num_queries, dtype=torch.float64, device=relevant.device)
        total.index_add_(0, rows[inside], precision[inside])
        out[:, j] = torch.where(r_k > 0, total / r_k.clamp(min=1), 0.0)
    return out


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
