"""Functional retrieval metrics over ±1 codes (torchmetrics style: pure functions)."""

from hashing.metrics.functional.hamming import hamming_distance
from hashing.metrics.functional.map_at_k import (
    average_precision,
    mean_average_precision,
    mean_average_precisions,
)
from hashing.metrics.functional.relevance import relevance

__all__ = [
    "average_precision",
    "hamming_distance",
    "mean_average_precision",
    "mean_average_precisions",
    "relevance",
]
