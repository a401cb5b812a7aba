"""Brute-force references for center tests: the distance bound and pairwise distances."""

from __future__ import annotations

import math

import torch


def brute_required_distance(bits: int, num_classes: int) -> int:
    """Smallest d with sum_{j<d} binom(q, j) >= 2^q / C, by counting up
    (docs/methods.md#required-minimum-distance)."""
    d, total = 0, 0
    while total * num_classes < 2**bits:
        total += math.comb(bits, d)
        d += 1
    return d


def brute_distances(centers: torch.Tensor) -> list[int]:
    """Hamming distance of every pair i < j, bit by bit."""
    rows = centers.tolist()
    return [
        sum(a != b for a, b in zip(rows[i], rows[j], strict=True))
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
    ]
