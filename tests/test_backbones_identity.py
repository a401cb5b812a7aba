"""Identity backbone: the flattened input is the feature vector."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from hashing.backbones.identity import Identity
from hashing.backbones.mlp import MLP

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_identity_flattens_and_counts_the_input_values() -> None:
    net = Identity((3, 4, 5))
    x = torch.randn(2, 3, 4, 5)
    assert net.out_features == 60
    assert torch.equal(net(x), x.reshape(2, 60))
    assert not list(net.parameters())


def test_identity_computes_what_mlp_without_hidden_layers_did() -> None:
    """The presets moved from backbone=mlp hidden_dims=[] to backbone=identity."""
    x = torch.randn(4, 1280)
    assert torch.equal(Identity((1280,))(x), MLP((1280,), hidden_dims=[])(x))
    assert Identity((1280,)).out_features == MLP((1280,), hidden_dims=[]).out_features


def test_identity_config_instantiates_without_a_transform() -> None:
    cfg = OmegaConf.load(CONF / "backbone" / "identity.yaml")
    net = hydra.utils.instantiate(cfg, input_shape=(1280,))
    assert isinstance(net, Identity) and net.transform is None and net.out_features == 1280


def test_identity_rejects_empty_or_non_positive_shapes() -> None:
    with pytest.raises(ValueError, match="input_shape"):
        Identity(())
    with pytest.raises(ValueError, match="input_shape"):
        Identity((3, 0))
