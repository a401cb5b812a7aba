"""How well hash centers carry a class similarity ``S`` (SHC's idea; issue 15).

Three numbers over the class pairs ``i < j``, comparable across center sources (CSQ, MDS,
SHC) for one ``S``:

* ``fit_loss``: ``mean_ij (s_ij - h_i·h_j / q)^2`` (SHC's objective, all ``C^2`` entries);
* ``spearman``: rank correlation of ``(s_ij + s_ji) / 2`` with ``h_i·h_j`` (does a more similar
  class pair get closer centers?);
* ``group_auc`` (when the classes have known groups, e.g. pair classes sharing an object):
  the probability that a related pair's centers are more similar than an unrelated pair's,
  ties counting one half.

Equidistant centers (Hadamard rows) rank nothing: their ``spearman`` is None (undefined), their
``group_auc`` 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata, spearmanr

from hashing.centers.semantic import similarity_fit_loss


def _upper(matrix: np.ndarray) -> np.ndarray:
    """Entries ``i < j`` of a square matrix, row by row."""
    iu = np.triu_indices(matrix.shape[0], k=1)
    return matrix[iu]


def pair_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC of ``scores`` for ``positive`` vs the rest (ties count 1/2)."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def center_quality(
    similarity: torch.Tensor, centers: torch.Tensor, related: torch.Tensor | None = None
) -> dict[str, Any]:
    """``fit_loss``, ``spearman`` (None when S or the centers are constant over pairs) and, with
    ``related`` (a (C, C) bool), ``group_auc``."""
    s = similarity.to(torch.float64).numpy()
    h = centers.to(torch.float64).numpy()
    inner = _upper(h @ h.T)
    target = _upper((s + s.T) / 2)
    constant = np.ptp(inner) == 0 or np.ptp(target) == 0
    out: dict[str, Any] = {
        "fit_loss": similarity_fit_loss(similarity, centers),
        "spearman": None if constant else float(spearmanr(target, inner)[0]),
    }
    if related is not None:
        out["group_auc"] = pair_auc(inner, _upper(related.cpu().numpy().astype(bool)))
    return out
