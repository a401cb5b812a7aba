"""Stable ranking by Hamming distance (torch backend): ascending distance, ties by index."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def stable_order(distances: Tensor) -> Tensor:
    """Per-row permutation (Q, N) int64 sorting ``distances`` ascending, ties by column index.

    On CUDA torch's stable sort (a radix sort there); on CPU numpy's stable sort, a one-pass
    radix sort for 8/16-bit keys, several times faster than torch's CPU sort.
    """
    if distances.device.type == "cpu":
        return torch.from_numpy(np.argsort(distances.numpy(), axis=1, kind="stable"))
    return torch.argsort(distances, dim=1, stable=True)


def relevant_positions(distances: Tensor, relevant: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Positions of the relevant items in each row's stable ranking.

    Returns (row, position, relevant_rank), flat, row-major, positions and ranks 1-based:
    the relevant_rank-th relevant item of ``row`` sits at ``position`` of the ranking.
    """
    order = stable_order(distances).to(relevant.device)
    ranked_relevant = torch.gather(relevant, 1, order)
    rows, cols = ranked_relevant.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=relevant.shape[0])
    row_start = torch.cumsum(counts, 0) - counts
    relevant_rank = torch.arange(1, rows.numel() + 1, device=rows.device) - row_start[rows]
    return rows, cols + 1, relevant_rank
