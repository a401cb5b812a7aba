"""Retrieval metrics for hashing: exact stable-order mAP@k and friends (functional + Metric)."""

from hashing.metrics.accumulator import RetrievalAccumulator
from hashing.metrics.functional.map_at_k import (
    average_precision,
    mean_average_precision,
    mean_average_precisions,
)
from hashing.metrics.map_at_k import MeanAveragePrecision, k_name

__all__ = [
    "MeanAveragePrecision",
    "RetrievalAccumulator",
    "average_precision",
    "k_name",
    "mean_average_precision",
    "mean_average_precisions",
]
