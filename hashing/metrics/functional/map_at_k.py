"""Exact mean average precision at k under the stable (distance, database index) ranking.

AP@k = (1/R_k) * sum over relevant positions r <= k of (relevant items in top r) / r, with R_k the
relevant items in the top k; R_k = 0 gives AP 0 and still counts in the mean. k = None means
the whole database (no DeepHash-pytorch off-by-one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.ranked_block import RankedBlock
from hashing.metrics.functional.ranked_scan import Backend, query_rows
from hashing.metrics.functional.validation import check_retrieval_inputs, check_top_k


def check_top_ks(top_ks: Sequence[int | None]) -> list[int | None]:
    """A non-empty list of cut-offs, each a positive int or None (= ALL)."""
    top_ks = list(top_ks)
    if not top_ks:
        raise ValueError("top_ks must name at least one k (an int, or None for ALL)")
    for k in top_ks:
        check_top_k(k, "top_ks entry")
    return top_ks


def block_average_precision(
    block: RankedBlock, num_database: int, top_ks: Sequence[int | None]
) -> Tensor:
    """AP@k (rows, len(top_ks)) float64 from a block's ranked positions of relevant items."""
    rows, positions = block.relevant_row, block.relevant_position
    precision = block.relevant_rank.to(torch.float64) / positions.to(torch.float64)
    out = torch.zeros(block.num_rows, len(top_ks), dtype=torch.float64, device=positions.device)
    for j, k in enumerate(top_ks):
        cut = num_database if k is None else min(k, num_database)
        if cut >= num_database:
            r, p = rows, precision
        else:
            inside = positions <= cut
            r, p = rows[inside], precision[inside]
        hits = torch.bincount(r, minlength=block.num_rows)
        total = torch.zeros(block.num_rows, dtype=torch.float64, device=positions.device)
        total.index_add_(0, r, p)
        out[:, j] = torch.where(hits > 0, total / hits.clamp(min=1), 0.0)
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
    backend: Backend = "auto",
) -> Tensor:
    """Per-query AP@k, shape (Q, len(top_ks)) float64, one stable ranking shared by all k."""
    top_ks = check_top_ks(top_ks)
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    num_database = database_codes.shape[0]
    return query_rows(
        lambda block: block_average_precision(block, num_database, top_ks),
        len(top_ks),
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )


def mean_average_precisions(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_ks: Sequence[int | None],
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
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
        backend=backend,
    )
    if ap.shape[0] == 0:
        raise ValueError("query_codes is empty; mAP needs at least one query")
    means = ap.mean(dim=0)
    return {k: float(means[j]) for j, k in enumerate(top_ks)}


def mean_average_precision(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_k: int | None = None,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> float:
    """mAP@top_k (None = ALL = the whole database) under the stable Hamming ranking."""
    check_top_k(top_k)
    values = mean_average_precisions(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        (top_k,),
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )
    return values[top_k]
