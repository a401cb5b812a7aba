"""How near the top-k results sit to the query in a class taxonomy (docs/taxonomy.md).

For each query, the top k database items under the stable (Hamming distance, database index)
ranking that mAP uses; with ``distance`` (C, C) = edges through the lowest common ancestor and
``similarity`` (C, C) = Wu-Palmer similarity of two classes:

* ``tax_dist@k``: mean over queries of the mean ``distance(query class, result class)`` over
  its top k (0 when all are of the query's class);
* ``miss_tax_dist@k``: the same over the results of another class only, averaged over the
  queries that have such a result (how far the misses are);
* ``ndcg_wup@k``: NDCG@k with graded relevance ``similarity(query class, result class)``
  (1 for the query's class) and discount ``1 / log2(1 + rank)``, divided by the DCG of the
  best ranking of the same database.

``k`` larger than the database means the whole database. Single-label data only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import (
    DEFAULT_MEMORY_BUDGET,
    query_chunk_size,
    query_chunks,
)
from hashing.metrics.functional.hamming import hamming_from_operand, hamming_matmul_operand
from hashing.metrics.functional.validation import check_retrieval_inputs, check_top_k

#: temporary bytes per (query, database item) pair: float32 product, uint8 distance, int64 key
BYTES_PER_PAIR = 24
NAMES = ("tax_dist", "miss_tax_dist", "ndcg_wup")


@dataclass(frozen=True)
class TaxonomyReport:
    """Means over queries (``miss_tax_dist`` over the queries with a miss; NaN when none)."""

    tax_dist: float
    miss_tax_dist: float
    ndcg_wup: float
    k: int
    num_queries: int
    queries_with_miss: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """``{prefix}tax_dist@k`` etc."""
        return {f"{prefix}{name}@{self.k}": getattr(self, name) for name in NAMES}


def block_top_k(distances: Tensor, k: int) -> Tensor:
    """The first ``k`` columns (``k <= N``) of each row's stable (distance, index) order: the
    key ``distance * N + index`` is unique per row, so its ``topk`` is that order's head."""
    num_database = distances.shape[1]
    index = torch.arange(num_database, device=distances.device, dtype=torch.int64)
    key = distances.to(torch.int64) * num_database + index
    return torch.topk(key, k, dim=1, largest=False, sorted=True).indices


def stable_top_k(
    query_codes: Tensor,
    database_codes: Tensor,
    k: int,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Iterator[tuple[slice, Tensor]]:
    """Per block of queries: (rows, top-k database indices (rows, min(k, N)) int64).

    The order is ascending Hamming distance, ties by database index, exactly the first k of
    the stable sort behind mAP (:func:`~hashing.metrics.functional.ranking.stable_order`).
    """
    check_top_k(k, "k")
    num_database = database_codes.shape[0]
    keep = min(k, num_database)
    if chunk_size is None:
        chunk_size = query_chunk_size(num_database, memory_budget, BYTES_PER_PAIR)
    operand = hamming_matmul_operand(database_codes)
    for rows in query_chunks(query_codes.shape[0], chunk_size):
        yield rows, block_top_k(hamming_from_operand(query_codes[rows], operand), keep)


def check_class_matrix(matrix: Tensor, num_classes: int, name: str) -> None:
    """Raise ValueError unless ``matrix`` is a (C, C) tensor covering every label."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square (C, C) matrix, got shape {tuple(matrix.shape)}")
    if matrix.shape[0] < num_classes:
        raise ValueError(
            f"{name} covers {matrix.shape[0]} classes but the labels go up to {num_classes - 1}"
        )


def ideal_dcg(
    similarity: Tensor, database_labels: Tensor, classes: Tensor, k: int, discount: Tensor
) -> Tensor:
    """Best achievable DCG@k for a query of each class in ``classes``: the database's gains
    sorted in descending order."""
    gains = similarity[classes][:, database_labels]
    best = torch.topk(gains, discount.numel(), dim=1, largest=True, sorted=True).values
    return (best * discount).sum(1)


def taxonomy_scores(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    distance: Tensor,
    similarity: Tensor,
    k: int = 100,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Tensor:
    """Per query (Q, 3) float64: mean distance, mean distance of the misses (NaN without a
    miss) and NDCG of its top k, in the order of :data:`NAMES`."""
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    if query_labels.ndim != 1:
        raise ValueError("taxonomy metrics need class indices (N,); multi-hot labels have none")
    device = database_codes.device
    query_labels = query_labels.to(device).long()
    database_labels = database_labels.to(device).long()
    num_classes = int(max(query_labels.max(), database_labels.max())) + 1
    check_class_matrix(distance, num_classes, "distance")
    check_class_matrix(similarity, num_classes, "similarity")
    distance = distance.to(device, torch.float64)
    similarity = similarity.to(device, torch.float64)
    keep = min(k, database_codes.shape[0])
    discount = 1.0 / torch.log2(torch.arange(2, keep + 2, device=device, dtype=torch.float64))
    classes = torch.unique(query_labels)
    ideal = torch.zeros(similarity.shape[0], dtype=torch.float64, device=device)
    ideal[classes] = ideal_dcg(similarity, database_labels, classes, keep, discount)
    out = torch.empty(query_codes.shape[0], 3, dtype=torch.float64, device=device)
    for rows, top in stable_top_k(
        query_codes, database_codes, k, chunk_size=chunk_size, memory_budget=memory_budget
    ):
        mine = query_labels[rows][:, None]
        found = database_labels[top]
        hops = distance[mine, found]
        miss = found != mine
        misses = miss.sum(1)
        out[rows, 0] = hops.mean(1)
        out[rows, 1] = torch.where(
            misses > 0, (hops * miss).sum(1) / misses.clamp(min=1), torch.nan
        )
        dcg = (similarity[mine, found] * discount).sum(1)
        out[rows, 2] = dcg / ideal[mine[:, 0]]
    return out.cpu()


def taxonomy_metrics(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    distance: Tensor,
    similarity: Tensor,
    k: int = 100,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> TaxonomyReport:
    """``tax_dist@k``, ``miss_tax_dist@k`` and ``ndcg_wup@k`` (see the module doc)."""
    scores = taxonomy_scores(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        distance,
        similarity,
        k,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )
    if scores.shape[0] == 0:
        raise ValueError("query_codes is empty; the taxonomy metrics need at least one query")
    with_miss = ~torch.isnan(scores[:, 1])
    count = int(with_miss.sum())
    return TaxonomyReport(
        tax_dist=float(scores[:, 0].mean()),
        miss_tax_dist=float(scores[with_miss, 1].mean()) if count else float("nan"),
        ndcg_wup=float(scores[:, 2].mean()),
        k=int(k),
        num_queries=int(scores.shape[0]),
        queries_with_miss=count,
    )
