"""Per-query counts of database items and of relevant items at each Hamming distance.

Distances take only bits + 1 values, so these (Q, bits + 1) histograms carry everything that
does not depend on the order inside a distance tie: tie-aware AP, precision/recall by radius.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class BucketCounts(NamedTuple):
    """Histograms over distance 0..bits, one row per query."""

    total: Tensor  # (Q, bits + 1) int64: database items at each distance
    relevant: Tensor  # (Q, bits + 1) int64: relevant database items at each distance


def bucket_counts(distances: Tensor, relevant: Tensor, bits: int) -> BucketCounts:
    """Count items and relevant items per (query, distance) with two bincounts."""
    num_queries = distances.shape[0]
    width = bits + 1
    keys = distances.to(torch.int64)
    keys += torch.arange(num_queries, device=keys.device)[:, None] * width
    keys = keys.flatten()
    size = num_queries * width
    total = torch.bincount(keys, minlength=size).view(num_queries, width)
    rel = torch.bincount(keys[relevant.flatten()], minlength=size).view(num_queries, width)
    return BucketCounts(total, rel)
