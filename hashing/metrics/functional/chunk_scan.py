"""Walk the queries in memory-bounded chunks, yielding each chunk's distances and relevance."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from hashing.metrics.functional.chunking import (
    BYTES_PER_PAIR,
    DEFAULT_MEMORY_BUDGET,
    query_chunk_size,
    query_chunks,
)
from hashing.metrics.functional.hamming import hamming_from_operand, hamming_matmul_operand
from hashing.metrics.functional.relevance import relevance
from hashing.metrics.functional.validation import check_retrieval_inputs


class QueryChunk(NamedTuple):
    """One chunk of queries against the whole database."""

    rows: slice
    distances: Tensor  # (chunk, N) integer Hamming distances
    relevant: Tensor  # (chunk, N) bool


def scan_query_chunks(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Iterator[QueryChunk]:
    """Validate the inputs, then yield (rows, distances, relevance) chunk by chunk.

    Only one chunk's (chunk × N) tensors exist at a time, so memory stays bounded by
    ``memory_budget`` (or by ``chunk_size`` queries when given) whatever the number of queries.
    """
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    device = database_codes.device
    num_database = database_codes.shape[0]
    if chunk_size is None:
        chunk_size = query_chunk_size(num_database, memory_budget, BYTES_PER_PAIR)
    operand = hamming_matmul_operand(database_codes)
    db_labels = database_labels.to(device)
    q_labels = query_labels.to(device)
    if q_labels.ndim == 2:
        db_labels = db_labels.to(torch.float32)
    for rows in query_chunks(query_codes.shape[0], chunk_size):
        distances = hamming_from_operand(query_codes[rows].to(device), operand)
        yield QueryChunk(rows, distances, relevance(q_labels[rows], db_labels))
