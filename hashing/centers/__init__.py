"""Hash-center generation for center-based deep hashing (CSQ, MDS, SHC;
docs/methods.md#center-methods).

Pure functions on tensors: no Lightning, no data loading. Centers are float ±1 tensors of shape
``(num_classes, bits)``, row ``y`` being the target code of class ``y``. Figures live in
:mod:`hashing.centers.figures` (not imported here, to keep matplotlib out of the import path).
"""

from hashing.centers.bound import max_code_size_upper_bound, required_min_distance
from hashing.centers.cache import StageCache, cache_key
from hashing.centers.csq import csq_centers, hadamard_matrix
from hashing.centers.exceptions import CenterGenerationError
from hashing.centers.mds import mds_centers
from hashing.centers.semantic import semantic_centers, similarity_fit_loss
from hashing.centers.similarity import class_similarity, masked_softmax_sums, normalise_similarity
from hashing.centers.statistics import center_statistics, pairwise_hamming
from hashing.centers.validation import (
    CSQ_RULE,
    DISTANCE_BOUND_RULE,
    BitsRule,
    validate_bits,
)

__all__ = [
    "CSQ_RULE",
    "DISTANCE_BOUND_RULE",
    "BitsRule",
    "CenterGenerationError",
    "StageCache",
    "cache_key",
    "center_statistics",
    "class_similarity",
    "csq_centers",
    "hadamard_matrix",
    "masked_softmax_sums",
    "max_code_size_upper_bound",
    "mds_centers",
    "normalise_similarity",
    "pairwise_hamming",
    "required_min_distance",
    "semantic_centers",
    "similarity_fit_loss",
    "validate_bits",
]
