"""The P@k curve's grid of k: log-spaced for the head of the ranking, linear for the tail."""

from __future__ import annotations

import numpy as np


def curve_ks(num_database: int, points: int = 60) -> list[int]:
    """Sorted unique k in 1..num_database, half log-spaced, half evenly spaced (ends included)."""
    if num_database < 1:
        raise ValueError(f"num_database must be a positive int, got {num_database}")
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    half = max(2, points // 2)
    log_part = np.geomspace(1, num_database, half)
    linear_part = np.linspace(1, num_database, half)
    ks = np.unique(np.rint(np.concatenate([log_part, linear_part])).astype(np.int64))
    return [int(k) for k in ks if 1 <= k <= num_database]
