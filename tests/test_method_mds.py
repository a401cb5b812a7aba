"""MDS end to end on digits, and the data-independent sources of the center ablation.

MDS runs through :func:`hashing.pipeline.train`; the stored centers are checked against the
distance bound by brute-force loops. CSQ's ``strict`` flag (the ablation's baseline at code
lengths where no Bernoulli draw passes CSQ's test) is checked on the source directly.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from hashing import pipeline
from hashing.centers import CenterGenerationError, mds_centers
from hashing.methods.center_sources import CSQCenters, MDSCenters
from tests.helpers.brute_centers import brute_distances, brute_required_distance
from tests.helpers.runs import compose_run

TINY = ["method=mds", "seed=0", "data.train_per_class=30", "debug=fast"]


@pytest.fixture(scope="module")
def mds_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    # 24 bits is not a power of two: CSQ would draw Bernoulli centers, which MDS must repair
    root = tmp_path_factory.mktemp("mds")
    cfg = compose_run("train", root / "run", root / "cache", [*TINY, "bits=24"])
    return root / "run", pipeline.train(cfg)


def test_mds_run_stores_centers_that_meet_the_bound(mds_run) -> None:
    out, metrics = mds_run
    assert metrics["test/mAP@ALL"] > 0.1  # 10 balanced classes: random ranking ~0.1
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    centers = torch.load(out / "centers.pt", weights_only=True)
    assert centers.shape == (10, 24)
    assert bool(((centers == 1) | (centers == -1)).all())
    distances = brute_distances(centers)
    required = brute_required_distance(24, 10)
    stats = json.loads((out / "center_stats.json").read_text())
    assert stats["method"] == "mds"
    assert stats["required_min_distance"] == required
    assert min(distances) >= required
    assert stats["min"] == min(distances)
    assert stats["mean"] == pytest.approx(sum(distances) / len(distances))
    # the run's centers are MDS's for the run's seed, and what the model trained against
    assert torch.equal(centers, mds_centers(10, 24, seed=0))
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert torch.equal(checkpoint["state_dict"]["centers"], centers)


def test_mds_bad_bits_fail_before_training(tmp_path: Path, monkeypatch) -> None:
    fits: list[str] = []
    monkeypatch.setattr(pl.Trainer, "fit", lambda self, model, **kw: fits.append("fit"))
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", [*TINY, "bits=4"])
    with pytest.raises(ValueError, match="bits=4 is invalid for method 'mds'"):
        pipeline.train(cfg)
    assert fits == []


def test_mds_source_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="max_sweeps must be >= 1, got 0"):
        MDSCenters(max_sweeps=0)


def test_csq_config_keeps_deephash_behaviour(tmp_path: Path) -> None:
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", ["method=csq"])
    assert cfg.method.center_source.strict is False


def test_csq_records_a_failed_bernoulli_test_instead_of_failing(tmp_path: Path) -> None:
    # 100 classes at 16 bits: no balanced draw keeps every pair more than 4 bits apart
    source = CSQCenters(seed=0, strict=False)
    with pytest.warns(UserWarning, match="Returning the best draw"):
        centers = source(100, 16, None, tmp_path)
    stats = json.loads((tmp_path / "center_stats.json").read_text())
    distances = brute_distances(centers)
    passed = min(distances) > 16 / 4 and sum(distances) / len(distances) >= 16 / 2
    assert passed is False
    assert stats["csq_test_passed"] is False
    assert stats["construction"] == "bernoulli"
    assert torch.equal(torch.load(tmp_path / "centers.pt", weights_only=True), centers)
    with pytest.raises(CenterGenerationError, match="bits=16, num_classes=100"):
        CSQCenters(seed=0, strict=True)(100, 16, None, tmp_path / "strict")


def test_csq_hadamard_centers_pass_without_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        centers = CSQCenters(seed=0)(10, 16, None, tmp_path)
    stats = json.loads((tmp_path / "center_stats.json").read_text())
    assert stats["construction"] == "hadamard"
    assert stats["csq_test_passed"] is True
    assert set(brute_distances(centers)) == {8}  # distinct Hadamard rows differ in q/2 bits


def test_only_global_rank_zero_writes_the_run_folder(tmp_path: Path, monkeypatch) -> None:
    # under DDP every rank builds the centers; the run folder must record rank 0's run only
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    centers = CSQCenters(seed=0)(10, 16, None, tmp_path / "rank1")
    assert centers.shape == (10, 16)
    assert not (tmp_path / "rank1").exists()
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    CSQCenters(seed=0)(10, 16, None, tmp_path / "rank0")
    assert (tmp_path / "rank0" / "centers.pt").is_file()
