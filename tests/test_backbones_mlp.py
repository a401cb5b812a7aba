"""MLP backbone: flattening, out_features, and the Hydra config."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from hashing.backbones.mlp import MLP

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_mlp_shapes_and_flatten() -> None:
    net = MLP((1, 8, 8), hidden_dims=(32, 16), dropout=0.1, batch_norm=True)
    assert net.out_features == 16
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 16)
    first = net.net[1]
    assert isinstance(first, torch.nn.Linear) and first.in_features == 64


def test_mlp_without_hidden_is_flatten() -> None:
    net = MLP((4, 3), hidden_dims=())
    x = torch.randn(2, 4, 3)
    assert net.out_features == 12 and torch.equal(net(x), x.reshape(2, 12))


def test_mlp_matches_manual_computation() -> None:
    net = MLP((3,), hidden_dims=(2,))
    x = torch.randn(4, 3)
    lin = net.net[1]
    assert torch.allclose(net(x), torch.relu(x @ lin.weight.T + lin.bias))


def test_mlp_bad_values() -> None:
    with pytest.raises(ValueError, match="activation"):
        MLP((3,), activation="swish2")
    with pytest.raises(ValueError, match="dropout"):
        MLP((3,), dropout=1.0)


def test_mlp_config_instantiates() -> None:
    cfg = OmegaConf.load(CONF / "backbone" / "mlp.yaml")
    assert "input_shape" not in cfg
    net = hydra.utils.instantiate(cfg, input_shape=(1, 8, 8))
    assert isinstance(net, MLP) and net(torch.zeros(2, 1, 8, 8)).shape == (2, net.out_features)
