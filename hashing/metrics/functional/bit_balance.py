"""Bit balance of a set of ±1 codes: the per-bit fraction of +1, dead bits, total collapse.

A bit that is +1 (or -1) for every item carries nothing, and codes that are all one code rank a
database by its order alone. Each function reads only the per-bit fractions, so counts summed
over DDP ranks give exact answers.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: a bit is dead when at most this fraction of the items differs from the rest
DEAD_FRACTION = 0.01


def bit_balance(codes: Tensor) -> Tensor:
    """Per-bit fraction of +1 entries of ±1 codes ``(N, bits)``, float64."""
    return (codes > 0).sum(dim=0).to(torch.float64) / codes.shape[0]


def dead_bits(balance: Tensor) -> int:
    """Bits whose fraction of +1 lies within ``DEAD_FRACTION`` of 0 or 1."""
    return int(((balance < DEAD_FRACTION) | (balance > 1 - DEAD_FRACTION)).sum())


def codes_all_equal(balance: Tensor) -> bool:
    """Whether every code is the same: each bit constant, i.e. each fraction exactly 0 or 1."""
    return bool(((balance == 0) | (balance == 1)).all())
