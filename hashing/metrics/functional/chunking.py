"""Split the queries into chunks so one chunk's (chunk × database) work fits a memory budget."""

from __future__ import annotations

from collections.abc import Iterator

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes the per-chunk temporaries may take (the evaluation's peak is about this much)."""

BYTES_PER_PAIR = 48
"""Upper bound of temporary bytes per (query, database item) pair in one chunk: float32 inner
product, uint8 distance, int64 sort permutation, two bool relevance maps and the per-relevant
item positions (int64) and precisions (float64)."""


def query_chunk_size(
    num_database: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    bytes_per_pair: int = BYTES_PER_PAIR,
) -> int:
    """Queries per chunk so that chunk × num_database × bytes_per_pair <= memory_budget (>= 1)."""
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    return max(1, memory_budget // max(1, num_database * bytes_per_pair))


def query_chunks(num_queries: int, chunk_size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk_size`` queries covering 0..num_queries."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}")
    for start in range(0, num_queries, chunk_size):
        yield slice(start, min(start + chunk_size, num_queries))
