"""A small CNN for 32x32-ish images that trains on a laptop CPU in minutes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hashing.runs.errors import UserError


class SmallCNN(nn.Module):
    """[conv3x3 -> BN -> ReLU] x ``convs_per_block`` -> maxpool, per block; global average
    pool; optional Linear -> ReLU -> Dropout head. Any input size >= 1 pixel works (pooling
    stops halving once a side is 1)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int] = (32, 64, 128),
        convs_per_block: int = 1,
        hidden_dim: int | None = 256,
        dropout: float = 0.0,
        channels_last: bool = True,
        transform: str | None = None,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise UserError(
                f"SmallCNN needs image input (C, H, W), got input_shape {tuple(input_shape)}; "
                f"use the mlp backbone for feature vectors"
            )
        if not channels or convs_per_block < 1:
            raise UserError("channels must be non-empty and convs_per_block >= 1")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {dropout}")
        self.input_shape = tuple(int(d) for d in input_shape)
        self.transform = transform
        in_ch, size = self.input_shape[0], min(self.input_shape[1:])
        layers: list[nn.Module] = []
        for out_ch in channels:
            for _ in range(convs_per_block):
                layers += [
                    nn.Conv2d(in_ch, int(out_ch), 3, padding=1, bias=False),
                    nn.BatchNorm2d(int(out_ch)),
                    nn.ReLU(inplace=True),
                ]
                in_ch = int(out_ch)
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden_dim:
            layers += [nn.Linear(in_ch, int(hidden_dim)), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_ch = int(hidden_dim)
        self.net = nn.Sequential(*layers)
        self.out_features = in_ch
        # NHWC convolutions ran about 1.5x faster on this 2-core CPU (fwd + bwd, batch 64).
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, out_features)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)
