"""MLP backbone: flattens any input shape (images or feature vectors) into hidden layers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from hashing.runs.errors import UserError

#: larger flattened inputs (3x224x224 = 150,528) make a first layer of tens of millions of
#: weights that learns little from raw pixels: refused with a suggestion instead
MAX_INPUT_FEATURES = 16384

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MLP(nn.Module):
    """Flatten -> [Linear -> (BatchNorm) -> activation -> (Dropout)] per hidden layer.

    ``out_features`` is the last hidden width (the input size when ``hidden_dims`` is empty,
    i.e. the backbone is just a flatten: useful on precomputed features). Inputs of more than
    ``max_input_features`` values (None: no limit) are refused, naming the image backbones.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_dims: Sequence[int] = (256,),
        dropout: float = 0.0,
        activation: str = "relu",
        batch_norm: bool = False,
        transform: str | None = None,
        max_input_features: int | None = MAX_INPUT_FEATURES,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UserError(
                f"activation {activation!r} unknown; expected one of {list(ACTIVATIONS)}"
            )
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {dropout}")
        if not input_shape or any(int(d) < 1 for d in input_shape):
            raise UserError(f"input_shape must be positive sizes, got {tuple(input_shape)}")
        self.input_shape = tuple(int(d) for d in input_shape)
        self.transform = transform
        width = math.prod(self.input_shape)
        if max_input_features is not None and width > int(max_input_features) and hidden_dims:
            weights = width * int(hidden_dims[0])
            raise UserError(
                f"backbone=mlp on inputs of shape {self.input_shape} flattens {width:,} values "
                f"into a first layer of {weights / 1e6:.1f} M weights: use an image backbone "
                "(backbone=resnet18 or backbone=alexnet for 224 px images, backbone=cnn for "
                "32 px ones), smaller inputs, or raise backbone.max_input_features (now "
                f"{max_input_features})"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        for hidden in hidden_dims:
            layers.append(nn.Linear(width, int(hidden)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(hidden)))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(hidden)
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *input_shape) -> (B, out_features)."""
        return self.net(x)
