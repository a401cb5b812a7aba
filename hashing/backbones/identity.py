"""Identity backbone: the flattened input is the feature vector (for precomputed features)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class Identity(nn.Module):
    """Flatten, nothing else: ``out_features`` is the number of input values.

    ``transform`` is the data transform preset the data config reads (none for features).
    """

    def __init__(self, input_shape: Sequence[int], transform: str | None = None) -> None:
        super().__init__()
        if not input_shape or any(int(d) < 1 for d in input_shape):
            raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)}")
        self.input_shape = tuple(int(d) for d in input_shape)
        self.transform = transform
        self.out_features = math.prod(self.input_shape)
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *input_shape) -> (B, out_features)."""
        return self.flatten(x)
