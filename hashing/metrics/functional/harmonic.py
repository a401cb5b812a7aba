"""Harmonic numbers H(n) = sum_{j=1..n} 1/j as a float64 lookup table (for tie-aware AP)."""

from __future__ import annotations

import torch
from torch import Tensor


def harmonic_table(n: int, device: torch.device | str = "cpu") -> Tensor:
    """Float64 tensor h with h[i] = H(i) for i = 0..n (h[0] = 0)."""
    steps = 1.0 / torch.arange(1, n + 1, dtype=torch.float64, device=device)
    return torch.cat([torch.zeros(1, dtype=torch.float64, device=device), torch.cumsum(steps, 0)])
