"""Exact Euclidean k-NN retrieval on float features, scored with the codes' AP@k kernel."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import query_chunks
from hashing.metrics.functional.map_at_k import block_average_precision, check_top_ks
from hashing.metrics.functional.ranked_block import RankedBlock
from hashing.metrics.functional.ranking import relevant_positions
from hashing.metrics.functional.relevance import relevance
from hashing.metrics.functional.validation import check_retrieval_labels


def check_features(query_features: Tensor, database_features: Tensor) -> None:
    """Raise ValueError unless both are (N, D) tensors of one ``D`` on one device and the
    database is not empty (the float ranking's counterpart of the codes' input check)."""
    for name, features in (("query", query_features), ("database", database_features)):
        if features.ndim != 2:
            raise ValueError(f"{name} features must have shape (N, D), got {tuple(features.shape)}")
    if query_features.shape[1] != database_features.shape[1]:
        raise ValueError(
            f"query features are {query_features.shape[1]}-d, database features "
            f"{database_features.shape[1]}-d: they must match"
        )
    if database_features.shape[0] == 0:
        raise ValueError("database features are empty; the database needs at least one item")
    if query_features.device != database_features.device:
        raise ValueError(
            f"query features are on {query_features.device} but database features on "
            f"{database_features.device}; put both on one device"
        )


def float_average_precision(
    query_features: Tensor,
    database_features: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_ks: Sequence[int | None] = (None,),
    chunk_size: int = 256,
) -> Tensor:
    """Per-query AP@k (Q, len(top_ks)) float64 under the squared Euclidean distance.

    The ranking is ascending distance with ties by database index (the stable rule of
    docs/metrics.md#tie-handling), and AP@k is the same function the codes are scored with, so the
    two rows compare like for like. Queries go in chunks of ``chunk_size`` (a chunk holds a (chunk,
    N) distance matrix).
    """
    top_ks = check_top_ks(top_ks)
    check_features(query_features, database_features)
    num_database = database_features.shape[0]
    check_retrieval_labels(query_labels, database_labels, query_features.shape[0], num_database)
    database = database_features.double()
    norms = (database * database).sum(1)
    parts = []
    for rows in query_chunks(query_features.shape[0], int(chunk_size)):
        query = query_features[rows].double()
        distances = norms[None, :] - 2.0 * query @ database.T
        relevant = relevance(query_labels[rows], database_labels)
        row, position, rank = relevant_positions(distances, relevant)
        block = RankedBlock(rows, query.shape[0], row, position, rank, None)
        parts.append(block_average_precision(block, num_database, top_ks))
    if not parts:
        return torch.zeros(0, len(top_ks), dtype=torch.float64)
    return torch.cat(parts)
