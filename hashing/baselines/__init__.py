"""Reference rows that need no learning: the floors (LSH, PCA-sign, ITQ) and the ceiling.

A benchmark of hashing methods shows these beside the learned rows, so a reader sees what
learning bought: :func:`lsh_codes` (random hyperplanes, the data-independent floor at the same
code length), :func:`fit_projection` (LSH, PCA-sign and ITQ fitted on the training features;
also the training-free methods ``method=lsh|pcah|itq``) and :func:`float_average_precision` (exact
Euclidean k-NN on the features the codes were learned from, scored with the same AP@k kernel as
the codes).
"""

from hashing.baselines.float_ranking import float_average_precision
from hashing.baselines.lsh import lsh_codes
from hashing.baselines.projections import (
    PROJECTIONS,
    fit_projection,
    itq_rotation,
    projection_codes,
)

__all__ = [
    "PROJECTIONS",
    "fit_projection",
    "float_average_precision",
    "itq_rotation",
    "lsh_codes",
    "projection_codes",
]
