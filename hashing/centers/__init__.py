"""Hash-center generation for center-based deep hashing (CSQ, MDS, SHC; SPEC §3).

Pure functions on tensors: no Lightning, no data loading. Centers are float ±1 tensors of shape
``(num_classes, bits)``, row ``y`` being the target code of class ``y``.
"""

from hashing.centers.bound import max_code_size_upper_bound, required_min_distance
from hashing.centers.csq import csq_centers, hadamard_matrix
from hashing.centers.exceptions import CenterGenerationError
from hashing.centers.mds import mds_centers
from hashing.centers.semantic import semantic_centers, similarity_fit_loss
from hashing.centers.similarity import class_similarity
from hashing.centers.statistics import center_statistics, pairwise_hamming
from hashing.centers.validation import validate_bits

__all__ = [
    "CenterGenerationError",
    "center_statistics",
    "class_similarity",
    "csq_centers",
    "hadamard_matrix",
    "max_code_size_upper_bound",
    "mds_centers",
    "pairwise_hamming",
    "required_min_distance",
    "semantic_centers",
    "similarity_fit_loss",
    "validate_bits",
]
