"""SHC stage 1's classifier: losses, the Lightning run, RNG isolation, settings validation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from hashing.backbones.mlp import MLP
from hashing.methods.classifier import (
    ClassifierModule,
    classification_loss,
    fit_classifier,
    isolated_rng,
)
from hashing.methods.shc_centers import SemanticCenters

BACKBONE = {"_target_": "hashing.backbones.mlp.MLP", "hidden_dims": [8]}
CLASSIFIER = {
    "max_epochs": 1,
    "batch_size": 8,
    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
}


def test_single_label_loss_is_softmax_cross_entropy_on_logits() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    labels = torch.tensor([0, 1])
    expected = 0.0
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        expected -= row[y] - math.log(sum(math.exp(v) for v in row))
    loss = classification_loss(logits, labels, multi_label=False)
    assert float(loss) == pytest.approx(expected / 2, rel=1e-6)
    # not the reference's double softmax: CE of softmax outputs is a different number
    double = nn.functional.cross_entropy(logits.softmax(dim=1), labels)
    assert float(double) != pytest.approx(float(loss), rel=1e-3)


def test_multi_label_loss_is_binary_cross_entropy_on_logits() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, -2.0, 3.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    total = 0.0
    for row, hot in zip(logits.tolist(), labels.tolist(), strict=True):
        for z, t in zip(row, hot, strict=True):
            p = 1 / (1 + math.exp(-z))
            total -= t * math.log(p) + (1 - t) * math.log(1 - p)
    loss = classification_loss(logits, labels, multi_label=True)
    assert float(loss) == pytest.approx(total / 6, rel=1e-6)


def blobs(per_class: int = 40, seed: int = 0) -> TensorDataset:
    """Three well-separated 4-d Gaussian blobs as (x, y, idx) items."""
    generator = torch.Generator().manual_seed(seed)
    means = torch.tensor([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]])
    y = torch.arange(3).repeat_interleave(per_class)
    x = means[y] + torch.randn(len(y), 4, generator=generator)
    return TensorDataset(x, y, torch.arange(len(y)))


def test_fit_classifier_learns_and_returns_logits_in_dataset_order() -> None:
    data = blobs()
    torch.manual_seed(0)
    module = ClassifierModule(
        MLP((4,), hidden_dims=[16]),
        num_classes=3,
        optimizer=lambda params: torch.optim.Adam(params, lr=0.05),
    )
    logits = fit_classifier(
        module, data, data, max_epochs=3, batch_size=16, eval_batch_size=50, seed=0
    )
    x, y, _ = data.tensors
    assert logits.shape == (120, 3)
    assert len(module.history["loss"]) == 3
    assert module.history["loss"][-1] < module.history["loss"][0]
    assert float((logits.argmax(1) == y).float().mean()) > 0.9
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(logits, module(x))


def test_isolated_rng_restores_every_generator_and_the_deterministic_flag() -> None:
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    before = torch.are_deterministic_algorithms_enabled()
    with isolated_rng(11):
        inside = torch.rand(3)
        torch.use_deterministic_algorithms(not before)
        random.random()
        np.random.rand()
    assert torch.are_deterministic_algorithms_enabled() == before
    after = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(after[0], expected[0]) and after[1:] == expected[1:]
    with isolated_rng(11):
        assert torch.equal(torch.rand(3), inside)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"classifier": {**CLASSIFIER, "epochs": 3}}, "unknown SHC classifier setting"),
        ({"classifier": {**CLASSIFIER, "max_epochs": 0}}, "classifier.max_epochs=0"),
        ({"classifier": {**CLASSIFIER, "batch_size": 2.5}}, "classifier.batch_size=2.5"),
        ({"classifier": {**CLASSIFIER, "optimizer": None}}, "classifier.optimizer=None"),
        (
            {"classifier": {**CLASSIFIER, "trainer": {"logger": True}}},
            "classifier.trainer may not set ['logger']",
        ),
        ({"optimisation": {"step": 1}}, "unknown SHC optimisation setting"),
        ({"multi_label": "any"}, "multi_label='any'"),
        ({"backbone": {"hidden_dims": [8]}}, "backbone must be a config with a _target_"),
    ],
)
def test_bad_settings_fail_at_construction_naming_the_key(kwargs: dict, fragment: str) -> None:
    arguments = {"backbone": BACKBONE, "classifier": CLASSIFIER, **kwargs}
    with pytest.raises(ValueError) as info:
        SemanticCenters(**arguments)
    assert fragment in str(info.value)
