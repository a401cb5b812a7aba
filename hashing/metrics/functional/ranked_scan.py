"""Choose a backend and block size, and yield RankedBlocks for the metric kernels.

Backends: ``"numpy"`` (CPU: bit-packed popcount, threaded; the fast path) and ``"torch"``
(float matmul + torch ops; runs wherever the codes are, e.g. CUDA). ``"auto"`` picks numpy for
CPU tensors and torch otherwise. Both give identical results (tests check both).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor

from hashing.metrics.functional.bucket_counts import bucket_counts
from hashing.metrics.functional.chunk_scan import scan_query_chunks
from hashing.metrics.functional.chunking import (
    BYTES_PER_PAIR,
    DEFAULT_MEMORY_BUDGET,
    query_chunk_size,
)
from hashing.metrics.functional.packed_scan import packed_blocks
from hashing.metrics.functional.ranked_block import RankedBlock
from hashing.metrics.functional.ranking import relevant_positions
from hashing.metrics.functional.validation import check_retrieval_inputs

T = TypeVar("T")
Backend = Literal["auto", "numpy", "torch"]
BACKENDS = ("auto", "numpy", "torch")


def resolve_backend(backend: str, database_codes: Tensor) -> str:
    """``auto`` -> numpy on CPU, torch elsewhere; reject unknown names."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "numpy" if database_codes.device.type == "cpu" else "torch"
    return backend


def ranked_blocks(
    kernel: Callable[[RankedBlock], T],
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    positions: bool = True,
    counts: bool = False,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    backend: Backend = "auto",
) -> Iterator[T]:
    """Validate, then yield ``kernel(block)`` for each block of queries, in query order.

    A block carries the ranked positions of its relevant items (``positions``) and/or its
    per-distance histograms (``counts``); the kernel reduces it to what the metric keeps.
    """
    check_retrieval_inputs(query_codes, database_codes, query_labels, database_labels)
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    backend = resolve_backend(backend, database_codes)
    bits = query_codes.shape[1]
    num_queries, num_database = query_codes.shape[0], database_codes.shape[0]
    if backend == "numpy":
        workers = max(1, torch.get_num_threads())
        if chunk_size is None:
            # Up to workers + 1 blocks are alive at once; keep them all inside the budget,
            # and cut the queries into enough blocks to keep every worker busy.
            budget_rows = query_chunk_size(num_database, max(1, memory_budget // (workers + 1)))
            chunk_size = max(1, min(budget_rows, math.ceil(num_queries / (4 * workers))))
        yield from packed_blocks(
            query_codes,
            database_codes,
            query_labels,
            database_labels,
            chunk_size,
            positions,
            counts,
            workers,
            kernel,
        )
        return
    if chunk_size is None:
        chunk_size = query_chunk_size(num_database, memory_budget, BYTES_PER_PAIR)
    for chunk in scan_query_chunks(
        query_codes, database_codes, query_labels, database_labels, chunk_size, memory_budget
    ):
        num_rows = chunk.distances.shape[0]
        rows = ranks = located = None
        if positions:
            rows, located, ranks = relevant_positions(chunk.distances, chunk.relevant)
        histograms = bucket_counts(chunk.distances, chunk.relevant, bits) if counts else None
        yield kernel(RankedBlock(chunk.rows, num_rows, rows, located, ranks, histograms))


def query_rows(
    kernel: Callable[[RankedBlock], Tensor],
    width: int,
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    **scan: Any,
) -> Tensor:
    """``kernel``'s per-query rows of every block, concatenated in query order: (Q, width).

    ``scan`` takes :func:`ranked_blocks`' keyword options.
    """
    parts = list(
        ranked_blocks(kernel, query_codes, database_codes, query_labels, database_labels, **scan)
    )
    return torch.cat(parts) if parts else torch.zeros(0, width, dtype=torch.float64)


def query_means(
    kernel: Callable[[RankedBlock], Mapping[str, Tensor]],
    totals: Mapping[str, Tensor],
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    *,
    what: str,
    **scan: Any,
) -> tuple[dict[str, Tensor], int]:
    """Means over queries of the per-block sums ``kernel`` returns, and the number of queries.

    ``totals`` gives each sum's zero (its shape); a block may leave a key out. ``what`` names
    the metric in the error for an empty query set; ``scan`` takes :func:`ranked_blocks`'
    keyword options.
    """
    sums = {key: value.clone() for key, value in totals.items()}

    def counted(block: RankedBlock) -> tuple[Mapping[str, Tensor], int]:
        return kernel(block), block.num_rows

    num_queries = 0
    for part, rows in ranked_blocks(
        counted, query_codes, database_codes, query_labels, database_labels, **scan
    ):
        for key, value in part.items():
            sums[key] += value
        num_queries += rows
    if num_queries == 0:
        raise ValueError(f"query_codes is empty; {what} needs at least one query")
    return {key: value / num_queries for key, value in sums.items()}, num_queries
