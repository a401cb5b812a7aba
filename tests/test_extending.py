"""A new method is one module and one config (docs/extending.md): a toy center method and a toy
pairwise method, defined here and configured in a folder of their own on Hydra's search path,
train end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor

from hashing import pipeline
from hashing.baselines import lsh_codes
from hashing.centers import BitsRule
from hashing.methods.base import HashingModule
from hashing.methods.center_sources import RuleCheckedSource, save_centers
from hashing.metrics import mean_average_precision
from hashing.runs.errors import UserError
from tests.helpers.runs import compose_run

# --- the module: what docs/extending.md has a new center method write --------------------------


def whole_bytes_problem(bits: int, num_classes: int) -> str | None:
    """The toy's own rule of which ``bits`` it serves (whole bytes, to show a rule)."""
    return None if bits % 8 == 0 else f"{bits} bits are not whole bytes"


def random_centers(num_classes: int, bits: int, seed: int) -> Tensor:
    """Row y: ``bits`` fair coin flips as ±1, seeded."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (num_classes, bits), generator=generator).float() * 2 - 1


class RandomCenters(RuleCheckedSource):
    """Toy centers: seeded coin flips (about bits/2 apart, like CSQ's Bernoulli draws)."""

    method = "coin"
    bits_rule = BitsRule(whole_bytes_problem, "a multiple of 8")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(
        self, num_classes: int, bits: int, datamodule: pl.LightningDataModule, output_dir: Path
    ) -> Tensor:
        centers = random_centers(num_classes, bits, self.seed)
        save_centers(centers, output_dir, {"method": self.method})
        return centers


# --- a pairwise method: its own loss on the codes of each batch's pairs --------------------------


class PairwiseLikelihood(HashingModule):
    """Toy pairwise method (DPSH's likelihood): pairs sharing a label pull their codes together.

    ``theta_ij = u_i . u_j / 2``; the loss is the mean over the batch's pairs of
    ``log(1 + exp(theta_ij)) - s_ij theta_ij`` plus the quantisation term.
    """

    def __init__(self, lambda_q: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lambda_q = lambda_q

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, _ = batch
        u = self(x)
        labels = y.float() if self.multi_label else F.one_hot(y, self.num_classes).float()
        similar = (labels @ labels.T > 0).float()
        theta = u @ u.T / 2
        likelihood = (F.softplus(theta) - similar * theta).mean()
        loss = likelihood + self.lambda_q * ((u.abs() - 1) ** 2).mean()
        self.accumulate_training_values({"loss": loss}, y.shape[0])
        return loss


# --- the configs: conf/method/<name>.yaml in the user's own config folder -----------------------

CONFIGS = {
    "coin": """\
defaults:
  - base/center_hashing@_here_
  - _self_

name: coin
center_source:
  _target_: tests.test_extending.RandomCenters
  seed: ${seed}
""",
    "pairwise": """\
_target_: tests.test_extending.PairwiseLikelihood
name: pairwise
lambda_q: 0.1
optimizer:
  _target_: torch.optim.Adam
  _partial_: true
  lr: 1.0e-3
""",
}


def compose_with_toy_method(tmp_path: Path, method: str, overrides: list[str]):
    """Compose ``method=<method>`` from a config folder added to Hydra's search path."""
    folder = tmp_path / "my_conf"
    (folder / "method").mkdir(parents=True, exist_ok=True)
    for name, text in CONFIGS.items():
        (folder / "method" / f"{name}.yaml").write_text(text)
    return compose_run(
        "train",
        tmp_path / "run",
        tmp_path / "cache",
        [f"method={method}", f"hydra.searchpath=[file://{folder}]", *overrides],
    )


def lsh_map(cfg, bits: int) -> float:
    """mAP@ALL of LSH codes of the pixels, on the run's own split (the untrained baseline)."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")

    def arrays(split: str) -> tuple[Tensor, Tensor]:
        items = list(datamodule.dataset(split))
        features = torch.stack([x.flatten() for x, _, _ in items])
        return features, torch.stack([y for _, y, _ in items])

    train, _ = arrays("train")
    (query, query_y), (database, database_y) = arrays("query"), arrays("database")
    query_codes, database_codes = lsh_codes(train, query, database, bits=bits, seed=0)
    return mean_average_precision(query_codes, database_codes, query_y, database_y)


def test_a_center_method_from_one_module_and_one_config_trains_end_to_end(tmp_path) -> None:
    cfg = compose_with_toy_method(tmp_path, "coin", ["bits=32", "trainer.max_epochs=8", "seed=2"])
    assert cfg.method.name == "coin" and cfg.method.lambda_q == 1e-4  # the shared base
    metrics = pipeline.train(cfg)
    out = tmp_path / "run"
    # the run trained against the toy's centers, written where every center method writes them
    centers = torch.load(out / "centers.pt", weights_only=True)
    assert torch.equal(centers, random_centers(10, 32, seed=2))
    assert json.loads((out / "center_stats.json").read_text())["method"] == "coin"
    stored = json.loads((out / "metrics.json").read_text())
    assert stored == pytest.approx(metrics)
    # well above the untrained baseline: LSH of the same pixels, same split and length
    baseline = lsh_map(cfg, 32)
    assert stored["test/mAP@ALL"] > baseline + 0.1, (stored["test/mAP@ALL"], baseline)


def test_the_toy_methods_own_bits_rule_fails_early_naming_it(tmp_path) -> None:
    cfg = compose_with_toy_method(tmp_path, "coin", ["bits=12"])
    datamodule = pipeline.build_datamodule(cfg)
    with pytest.raises(UserError, match=r"bits=12 .*method 'coin'.*not whole bytes"):
        pipeline.build_model(cfg, datamodule)


def test_a_pairwise_method_from_one_module_and_one_config_trains_end_to_end(tmp_path) -> None:
    cfg = compose_with_toy_method(tmp_path, "pairwise", ["bits=32", "trainer.max_epochs=8"])
    metrics = pipeline.train(cfg)
    out = tmp_path / "run"
    assert not (out / "centers.pt").exists()  # no preparation stage: nothing but the loss
    stored = json.loads((out / "metrics.json").read_text())
    assert stored == pytest.approx(metrics)
    baseline = lsh_map(cfg, 32)
    assert stored["test/mAP@ALL"] > baseline + 0.1, (stored["test/mAP@ALL"], baseline)
