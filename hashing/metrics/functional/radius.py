"""Precision and recall of Hamming-radius retrieval (the papers' PR curve), and P@H<=r.

Retrieving every database item within Hamming radius r of a query does not depend on the
order inside ties, so these come from the per-distance counts alone.

Conventions (stated because papers differ): a query that retrieves nothing within radius r
has precision 0 there (the HashNet/DPSH evaluation convention: empty retrieval is a failure,
not a gap), and a query with no relevant item in the database has recall 0. Means are over
all queries; ``retrieved_fraction`` reports how many queries retrieved anything, so an
empty-retrieval penalty can be told apart from bad ranking.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.ranked_block import RankedBlock
from hashing.metrics.functional.ranked_scan import Backend, query_means
from hashing.metrics.functional.validation import check_retrieval_inputs


class RadiusCurve(NamedTuple):
    """Mean precision, recall and fraction of queries retrieving anything, per radius 0..bits."""

    radius: Tensor  # (bits + 1,) int64
    precision: Tensor  # (bits + 1,) float64
    recall: Tensor  # (bits + 1,) float64
    retrieved_fraction: Tensor  # (bits + 1,) float64


def radius_statistics(total: Tensor, relevant: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-query precision, recall and any-retrieved (Q, bits + 1) from distance histograms."""
    retrieved = torch.cumsum(total, 1).to(torch.float64)
    hits = torch.cumsum(relevant, 1).to(torch.float64)
    all_relevant = hits[:, -1:]
    precision = torch.where(retrieved > 0, hits / retrieved.clamp(min=1), 0.0)
    recall = torch.where(all_relevant > 0, hits / all_relevant.clamp(min=1), 0.0)
    return precision, recall, (retrieved > 0).to(torch.float64)


def precision_recall_by_radius(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> RadiusCurve:
    """Mean precision and recall over queries when retrieving within radius r = 0..bits."""
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    bits = query_codes.shape[1]

    def kernel(block: RankedBlock) -> dict[str, Tensor]:
        stats = radius_statistics(block.counts.total, block.counts.relevant)
        return {"radius": torch.stack([s.sum(0) for s in stats]).cpu()}

    means, _ = query_means(
        kernel,
        {"radius": torch.zeros(3, bits + 1, dtype=torch.float64)},
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        what="the PR curve",
        positions=False,
        counts=True,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )
    radius = means["radius"]
    return RadiusCurve(torch.arange(bits + 1), radius[0], radius[1], radius[2])


def precision_within_radius(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    radius: int = 2,
    *,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> float:
    """Mean precision of the items within Hamming radius ``radius`` (P@H<=2 by default).

    A query retrieving nothing within the radius scores 0 and still counts in the mean.
    """
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    curve = precision_recall_by_radius(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        backend=backend,
    )
    return float(curve.precision[min(radius, len(curve.precision) - 1)])
