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
    return hamming_from_operand(query_codes, hamming_matmul_operand(database_codes))


def hamming_matmul_operand(database_codes: Tensor) -> Tensor:
    """(bits, N) float32 matrix -codes/2, so that ``bits/2 + q @ it`` is the Hamming distance."""
    return (as_matmul_codes(database_codes) * -0.5).T.contiguous()


def hamming_from_operand(query_codes: Tensor, operand: Tensor) -> Tensor:
    """Hamming distances (Q, N) of queries to the database behind ``hamming_matmul_operand``.

    One addmm gives ``bits/2 - q·b/2`` exactly (halves of small integers are exact in float32).
    """
    bits = query_codes.shape[1]
    half = torch.tensor(bits / 2, dtype=torch.float32, device=operand.device)
    return torch.addmm(half, as_matmul_codes(query_codes), operand).to(distance_dtype(bits))
