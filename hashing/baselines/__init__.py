"""Reference rows that need no learning: the floor (LSH) and the ceiling (float features).

A benchmark of hashing methods shows these beside the learned rows, so a reader sees what
learning bought: :func:`lsh_codes` (random hyperplanes, the data-independent floor at the same
code length) and :func:`float_average_precision` (exact Euclidean k-NN on the features the
codes were learned from, scored with the same AP@k kernel as the codes).
"""

from hashing.baselines.float_ranking import float_average_precision
from hashing.baselines.lsh import lsh_codes

__all__ = ["float_average_precision", "lsh_codes"]
