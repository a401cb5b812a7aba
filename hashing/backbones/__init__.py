"""Backbones: nn.Modules with ``out_features``, built by Hydra with ``input_shape=``."""

from hashing.backbones.mlp import MLP

__all__ = ["MLP"]
