"""Retrieval metrics for hashing: exact stable-order mAP@k and friends (functional + Metric)."""

from hashing.metrics.accumulator import RetrievalAccumulator
from hashing.metrics.functional import (
    RadiusCurve,
    RetrievalReport,
    average_precision,
    curve_ks,
    evaluate_retrieval,
    hamming_distance,
    mean_average_precision,
    mean_average_precisions,
    precision_at_k,
    precision_recall_by_radius,
    precision_within_radius,
    relevance,
    tie_aware_average_precision,
    tie_aware_mean_average_precision,
)
from hashing.metrics.map_at_k import MeanAveragePrecision, k_name

__all__ = [
    "MeanAveragePrecision",
    "RadiusCurve",
    "RetrievalAccumulator",
    "RetrievalReport",
    "average_precision",
    "curve_ks",
    "evaluate_retrieval",
    "hamming_distance",
    "k_name",
    "mean_average_precision",
    "mean_average_precisions",
    "precision_at_k",
    "precision_recall_by_radius",
    "precision_within_radius",
    "relevance",
    "tie_aware_average_precision",
    "tie_aware_mean_average_precision",
]
