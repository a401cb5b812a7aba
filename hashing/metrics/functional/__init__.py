"""Functional retrieval metrics over ±1 codes (torchmetrics style: pure functions)."""

from hashing.metrics.functional.curves import curve_ks
from hashing.metrics.functional.hamming import hamming_distance
from hashing.metrics.functional.map_at_k import (
    average_precision,
    mean_average_precision,
    mean_average_precisions,
)
from hashing.metrics.functional.precision_at_k import precision_at_k
from hashing.metrics.functional.radius import (
    RadiusCurve,
    precision_recall_by_radius,
    precision_within_radius,
)
from hashing.metrics.functional.relevance import relevance
from hashing.metrics.functional.report import RetrievalReport, evaluate_retrieval
from hashing.metrics.functional.tie_aware import (
    tie_aware_average_precision,
    tie_aware_mean_average_precision,
)

__all__ = [
    "RadiusCurve",
    "RetrievalReport",
    "average_precision",
    "curve_ks",
    "evaluate_retrieval",
    "hamming_distance",
    "mean_average_precision",
    "mean_average_precisions",
    "precision_at_k",
    "precision_recall_by_radius",
    "precision_within_radius",
    "relevance",
    "tie_aware_average_precision",
    "tie_aware_mean_average_precision",
]
