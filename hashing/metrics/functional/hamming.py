"""Hamming distance between ±1 codes, computed exactly with one matmul."""

from __future__ import annotations

import torch
from torch import Tensor


def distance_dtype(bits: int) -> torch.dtype:
    """Smallest integer dtype holding distances 0..bits (uint8 keeps the radix sort one pass)."""
    if bits <= 255:
        return torch.uint8
    if bits <= 32767:
        return torch.int16
    return torch.int32


def as_matmul_codes(codes: Tensor) -> Tensor:
    """±1 codes as a float tensor for the distance matmul.

    float32 sums of ±1 products are exact up to 2**24 bits; float64 on CPU is never needed.
    """
    return codes.to(torch.float32)


def hamming_distance(query_codes: Tensor, database_codes: Tensor) -> Tensor:
    """Hamming distances (Q, N) between ±1 codes: ``d = (bits - a·b) / 2``, exact, integer dtype."""
    bits = query_codes.shape[1]
    inner = as_matmul_codes(query_codes) @ as_matmul_codes(database_codes).T
    return hamming_from_inner(inner, bits)


def hamming_from_inner(inner: Tensor, bits: int) -> Tensor:
    """Convert inner products of ±1 codes to Hamming distances in the smallest integer dtype."""
    inner.neg_().add_(bits).mul_(0.5)
    return inner.to(distance_dtype(bits))
