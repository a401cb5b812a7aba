"""Backbones: nn.Modules with ``out_features``, built by Hydra with ``input_shape=``."""

from hashing.backbones.cnn import SmallCNN
from hashing.backbones.identity import Identity
from hashing.backbones.mlp import MLP
from hashing.backbones.torchvision_models import TorchvisionBackbone, require_cached_weights

__all__ = ["MLP", "Identity", "SmallCNN", "TorchvisionBackbone", "require_cached_weights"]
