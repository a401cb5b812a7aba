"""SHC end to end on digits (and multi-label features): artifacts, stage cache, early errors.

Every run goes through :func:`hashing.pipeline.train` on tiny settings. The stage cache is
checked from the run folder's ``shc_stages.json`` and by spying on ``pl.Trainer.fit``: a
stage-1 miss trains a ``ClassifierModule`` on a Lightning Trainer, a hit trains nothing.
Similarity, fit loss, distances and the bound are recomputed here by brute-force loops.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hashing import pipeline
from hashing.centers import cache_key, mds_centers
from hashing.methods.shc_centers import SemanticCenters
from tests.helpers.brute_centers import brute_distances, brute_required_distance
from tests.helpers.runs import CONF, compose_run

CLASSIFIER = "method.center_source.classifier"
# 30 train items a class (270 fit), 2 classifier epochs, 3 hashing batches an epoch
TINY = [
    "method=shc",
    "bits=16",
    "seed=0",
    "data.train_per_class=30",
    f"{CLASSIFIER}.max_epochs=2",
    "debug=fast",
]
# stages 1 and 2 only: no hashing training or test, no figures
PREPARE_ONLY = ["train=false", "test=false", "method.center_source.figures=false"]


@contextmanager
def spy_fits() -> Iterator[list[str]]:
    """Record the class name of every model a ``pl.Trainer`` fits while the block runs."""
    calls: list[str] = []
    original = pl.Trainer.fit

    def fit(self: pl.Trainer, model: pl.LightningModule, *args: object, **kwargs: object) -> None:
        calls.append(type(model).__name__)
        return original(self, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pl.Trainer, "fit", fit)
        yield calls


def run(root: Path, name: str, overrides: list[str]) -> tuple[Path, list[str], dict[str, float]]:
    """One pipeline run into ``root/name`` with the shared cache; returns folder, fits, metrics."""
    out = root / name
    cfg = compose_run("train", out, root / "cache", overrides)
    with spy_fits() as fits:
        metrics = pipeline.train(cfg)
    return out, fits, metrics


def stages(out: Path) -> dict[str, str]:
    """Cache outcome per stage recorded in the run folder."""
    record = json.loads((out / "shc_stages.json").read_text())
    return {"stage1": record["stage1"]["cache"], "stage2": record["stage2"]["cache"]}


def brute_similarity(
    logits: torch.Tensor, labels: torch.Tensor, num_classes: int, rule: str = "all"
) -> torch.Tensor:
    """Stage 1 by loops: masked softmax sums, symmetrise, row-normalise, diagonal 1
    (docs/methods.md#shc-stage-1)."""
    sums = [[0.0] * num_classes for _ in range(num_classes)]
    for row, label in zip(logits.tolist(), labels.tolist(), strict=True):
        if isinstance(label, list):
            positives = [c for c in range(num_classes) if label[c] == 1]
            positives = positives[:1] if rule == "first" else positives
        else:
            positives = [int(label)]
        others = [c for c in range(num_classes) if c not in positives]
        if not others:
            continue
        top = max(row[c] for c in others)
        weights = {c: math.exp(row[c] - top) for c in others}
        total = sum(weights.values())
        for p in positives:
            for c in others:
                sums[p][c] += weights[c] / total
    out = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    for i in range(num_classes):
        sym = [(sums[i][j] + sums[j][i]) / 2 for j in range(num_classes)]
        mean = sum(sym) / num_classes
        spread = max(abs(max(sym) - mean), abs(min(sym) - mean))
        for j in range(num_classes):
            out[i, j] = 1.0 if i == j else ((sym[j] - mean) / spread if spread > 0 else 0.0)
    return out


def cached_stage1(out: Path, cache: Path) -> dict[str, torch.Tensor]:
    """The stage-1 cache entry (logits, labels, history) this run used."""
    key = json.loads((out / "shc_stages.json").read_text())["stage1"]["key"]
    return torch.load(cache / "shc" / f"{key}.pt", weights_only=True)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, float]]:
    """A fresh SHC run: both stages computed."""
    root = tmp_path_factory.mktemp("shc")
    return run(root, "first", TINY)


def test_first_run_trains_the_classifier_on_a_lightning_trainer(first) -> None:
    out, fits, metrics = first
    assert stages(out) == {"stage1": "miss", "stage2": "miss"}
    # stage 1's classification run, then the hashing run itself
    assert fits == ["ClassifierModule", "CenterHashing"]
    record = json.loads((out / "shc_stages.json").read_text())
    assert len(record["stage1"]["classifier_train_loss"]) == 2
    assert metrics["test/mAP@ALL"] > 0.1  # 10 balanced classes: random ranking ~0.1


def test_run_folder_keeps_similarity_centers_statistics_and_figures(first) -> None:
    out, _, _ = first
    for name in ("similarity_heatmap.png", "center_distance_vs_similarity.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    similarity = torch.load(out / "similarity.pt", weights_only=True)
    assert similarity.shape == (10, 10)
    with (out / "similarity.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["class", *map(str, range(10))]
    from_csv = torch.tensor([[float(v) for v in row[1:]] for row in rows[1:]], dtype=torch.float64)
    assert torch.equal(from_csv, similarity)

    centers = torch.load(out / "centers.pt", weights_only=True)
    assert centers.shape == (10, 16)
    assert bool(((centers == 1) | (centers == -1)).all())
    stats = json.loads((out / "center_stats.json").read_text())
    distances = brute_distances(centers)
    required = brute_required_distance(16, 10)
    # the bound's table in docs/methods.md#required-minimum-distance
    assert stats["required_min_distance"] == required == 6
    assert min(distances) >= required
    assert stats["min"] == min(distances)
    assert stats["mean"] == pytest.approx(sum(distances) / len(distances))
    mean = sum(distances) / len(distances)
    assert stats["var"] == pytest.approx(sum((d - mean) ** 2 for d in distances) / len(distances))
    gram = centers.double() @ centers.double().T / 16
    fit = sum(
        (float(similarity[i, j]) - float(gram[i, j])) ** 2 for i in range(10) for j in range(10)
    )
    assert stats["fit_loss"] == pytest.approx(fit / 100)
    assert stats["fit_loss"] <= stats["initial_fit_loss"]


def test_similarity_is_stage_one_of_the_cached_logits(first) -> None:
    out, _, _ = first
    stage1 = cached_stage1(out, out.parent / "cache")
    assert stage1["logits"].shape == (270, 10)
    similarity = torch.load(out / "similarity.pt", weights_only=True)
    expected = brute_similarity(stage1["logits"], stage1["labels"], 10)
    torch.testing.assert_close(similarity, expected, rtol=0, atol=1e-9)


def test_identical_inputs_reuse_both_stages_and_reproduce_the_run(first) -> None:
    out, _, metrics = first
    again, fits, metrics_again = run(
        out.parent, "again", [*TINY, "method.center_source.figures=false"]
    )
    assert stages(again) == {"stage1": "hit", "stage2": "hit"}
    assert fits == ["CenterHashing"]  # no classifier training
    assert torch.equal(
        torch.load(again / "centers.pt", weights_only=True),
        torch.load(out / "centers.pt", weights_only=True),
    )
    # stage 1 runs on isolated RNG state: the hashing run is the same whether it ran or not
    assert metrics_again == metrics


@pytest.mark.parametrize(
    ("change", "expected", "classifier_fits"),
    [
        (["bits=32"], {"stage1": "hit", "stage2": "miss"}, []),
        (["data.split_seed=1"], {"stage1": "miss", "stage2": "miss"}, ["ClassifierModule"]),
    ],
    ids=["bits", "split_seed"],
)
def test_a_changed_input_reruns_exactly_the_stages_it_feeds(
    first, change, expected, classifier_fits
) -> None:
    out, _, _ = first
    name = "change-" + "".join(ch if ch.isalnum() else "_" for ch in "-".join(change))
    changed, fits, _ = run(out.parent, name, [*TINY, *change, *PREPARE_ONLY])
    assert stages(changed) == expected
    assert fits == classifier_fits
    centers = torch.load(changed / "centers.pt", weights_only=True)
    bits = centers.shape[1]
    assert min(brute_distances(centers)) >= brute_required_distance(bits, 10)


def stage_keys(base: DictConfig, updates: dict[str, Any]) -> tuple[str, str]:
    """Stage-1 and stage-2 cache keys of ``base`` with ``updates`` applied (nothing trained).

    Updates go through ``OmegaConf.update`` on a copy (faster than composing again); the
    source's interpolations (``${backbone}``, ``${seed}``, ``${data.batch_size}``) still
    resolve against the updated config when it is instantiated.
    """
    cfg = copy.deepcopy(base)
    for key, value in updates.items():
        OmegaConf.update(cfg, key, value, merge=False)
    datamodule = pipeline.build_datamodule(cfg)
    source = instantiate(cfg.method.center_source)
    inputs1 = source.stage1_inputs(datamodule)
    similarity = torch.eye(datamodule.num_classes, dtype=torch.float64)
    return cache_key(inputs1), cache_key(source.stage2_inputs(inputs1, similarity, cfg.bits))


STAGE1_INPUTS: dict[str, dict[str, Any]] = {
    "split_seed": {"data.split_seed": 2},
    "protocol_size": {"data.train_per_class": 40},
    "val_fraction": {"data.val_fraction": 0.2},
    "backbone": {"backbone.hidden_dims": [64]},
    "backbone_kind": {"backbone": OmegaConf.load(CONF / "backbone" / "cnn.yaml")},
    "classifier_epochs": {f"{CLASSIFIER}.max_epochs": 3},
    "classifier_lr": {f"{CLASSIFIER}.optimizer.lr": 0.01},
    "classifier_batch": {"data.batch_size": 32},
    "seed": {"seed": 3},
}
OPTIMISATION = "method.center_source.optimisation"
#: stage 2's settings under method/solver=reference (the MDS start's sweeps, then the solver's)
REFERENCE = {
    "mds_max_sweeps": 50,
    **OmegaConf.to_container(OmegaConf.load(CONF / "method" / "solver" / "reference.yaml")),
}
STAGE2_ONLY_INPUTS: dict[str, dict[str, Any]] = {
    "bits": {"bits": 32},
    "solver": {OPTIMISATION: REFERENCE},
    "kicks": {f"{OPTIMISATION}.kicks": 3},
    "rule": {"method.center_source.multi_label": "first"},
}
NEITHER: dict[str, dict[str, Any]] = {
    "hashing_epochs": {"trainer.max_epochs": 7},
    "hashing_lr": {"method.optimizer.lr": 0.01},
    "lambda_q": {"method.lambda_q": 0.5},
    "figures": {"method.center_source.figures": False},
    # the safety stop is no input of the result (a result it cut short is never stored)
    "max_seconds": {f"{OPTIMISATION}.max_seconds": 5.0},
}


@pytest.fixture(scope="module")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> DictConfig:
    root = tmp_path_factory.mktemp("keys")
    return compose_run("train", root / "run", root / "cache", TINY)


@pytest.fixture(scope="module")
def base_keys(base_config: DictConfig) -> tuple[str, str]:
    return stage_keys(base_config, {})


@pytest.mark.parametrize("change", list(STAGE1_INPUTS.values()), ids=list(STAGE1_INPUTS))
def test_every_stage1_input_changes_both_keys(base_config, base_keys, change) -> None:
    key1, key2 = stage_keys(base_config, change)
    assert key1 != base_keys[0]
    assert key2 != base_keys[1]


@pytest.mark.parametrize("change", list(STAGE2_ONLY_INPUTS.values()), ids=list(STAGE2_ONLY_INPUTS))
def test_stage2_inputs_change_only_the_stage2_key(base_config, base_keys, change) -> None:
    key1, key2 = stage_keys(base_config, change)
    assert key1 == base_keys[0]
    assert key2 != base_keys[1]


@pytest.mark.parametrize(("key", "value"), [("eta", 0.25), ("similarity_axis", "row")])
def test_reference_solver_settings_change_only_the_stage2_key(base_config, key, value) -> None:
    reference = stage_keys(base_config, {OPTIMISATION: REFERENCE})
    key1, key2 = stage_keys(base_config, {OPTIMISATION: {**REFERENCE, key: value}})
    assert key1 == reference[0]
    assert key2 != reference[1]


@pytest.mark.parametrize("change", list(NEITHER.values()), ids=list(NEITHER))
def test_hashing_settings_do_not_touch_the_stage_keys(base_config, base_keys, change) -> None:
    assert stage_keys(base_config, change) == base_keys


def test_stage2_key_holds_the_work_budget_even_when_left_at_its_default(base_config) -> None:
    cfg = copy.deepcopy(base_config)
    OmegaConf.update(cfg, OPTIMISATION, {"solver": "local_search"}, merge=False)
    source = instantiate(cfg.method.center_source)
    inputs = source.stage2_inputs({"stage": "1"}, torch.eye(3), 16)
    assert inputs["optimisation"] == {
        "solver": "local_search",
        "mds_max_sweeps": 50,
        "kicks": 200,
        "kick_flips": None,
    }


def test_hitting_the_safety_stop_is_recorded_and_not_cached(first, caplog) -> None:
    out, _, _ = first
    assert json.loads((out / "center_stats.json").read_text())["stopped_by"] == "kicks"
    # a limit no search can meet: stage 2 stops before its first descent (a work budget no
    # other test uses, so no complete result of this key is cached)
    change = [*TINY, f"{OPTIMISATION}.kicks=7", f"{OPTIMISATION}.max_seconds=1.0e-9"]
    change += PREPARE_ONLY
    for name in ("cut", "cut_again"):
        with caplog.at_level(logging.WARNING, logger="hashing.centers.local_search"):
            cut, _, _ = run(out.parent, name, change)
        assert stages(cut) == {"stage1": "hit", "stage2": "miss"}, "a cut result was cached"
        stats = json.loads((cut / "center_stats.json").read_text())
        assert stats["stopped_by"] == "max_seconds" and stats["equals_start"] is True
        solver_info = json.loads((cut / "shc_stages.json").read_text())["stage2"]["solver_info"]
        assert solver_info["stopped_by"] == "max_seconds"
        assert "safety stop max_seconds" in caplog.text
        caplog.clear()


def test_the_other_solvers_settings_are_ignored_with_a_warning(caplog) -> None:
    backbone = OmegaConf.to_container(OmegaConf.load(CONF / "backbone" / "mlp.yaml"))
    classifier = {"max_epochs": 1, "batch_size": 8, "optimizer": {"_target_": "torch.optim.SGD"}}
    old_config = {"solver": "reference", "eta": 0.25, "kicks": 3, "time_budget": 30.0}
    with caplog.at_level(logging.WARNING, logger="hashing.methods.shc_centers"):
        source = SemanticCenters(backbone, classifier, old_config)
    assert "['kicks', 'time_budget']" in caplog.text
    assert source.optimisation["eta"] == 0.25 and source.optimisation["rho"] == 0.2
    assert "kicks" not in source.optimisation and "time_budget" not in source.optimisation
    with pytest.raises(ValueError, match="unknown SHC optimisation setting"):
        SemanticCenters(backbone, classifier, {"step": 1})


def test_bad_bits_fail_before_any_training(tmp_path: Path) -> None:
    # 2^4 = 16 codes exist for 10 classes, but none at the required distance d = 2
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", [*TINY[:1], "bits=4"])
    with spy_fits() as fits, pytest.raises(ValueError) as info:
        pipeline.train(cfg)
    assert "bits=4 is invalid for method 'shc'" in str(info.value)
    assert "bits=5" in str(info.value)  # the smallest allowed value
    assert fits == []
    assert not (tmp_path / "cache" / "shc").exists()


def write_multilabel_features(path: Path, seed: int = 0) -> None:
    """4 classes, 16-d features = multi-hot labels through a fixed projection, plus noise."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(size=(4, 16))

    def part(size: int) -> tuple[np.ndarray, np.ndarray]:
        labels = (rng.random((size, 4)) < 0.4).astype(np.float32)
        labels[labels.sum(1) == 0, rng.integers(0, 4)] = 1.0
        feats = labels @ projection + 0.3 * rng.normal(size=(size, 16))
        return feats.astype(np.float32), labels

    train_x, train_y = part(200)
    test_x, test_y = part(40)
    np.savez(path, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


def test_multi_label_similarity_masks_every_positive_label(tmp_path: Path) -> None:
    data = tmp_path / "multi.npz"
    write_multilabel_features(data)
    common = [
        "method=shc",
        "data=features",
        f"data.path={data}",
        "data.batch_size=32",
        "bits=8",
        "backbone=mlp",
        f"{CLASSIFIER}.max_epochs=2",
        "debug=fast",
    ]
    out, fits, metrics = run(tmp_path, "all", [*common, "method.center_source.figures=false"])
    assert fits == ["ClassifierModule", "CenterHashing"]
    assert "test/mAP@ALL" in metrics
    stage1 = cached_stage1(out, tmp_path / "cache")
    assert stage1["labels"].ndim == 2 and stage1["labels"].shape[1] == 4
    assert bool((stage1["labels"].sum(1) > 1).any()), "the data should hold multi-label items"
    similarity = torch.load(out / "similarity.pt", weights_only=True)
    expected = brute_similarity(stage1["logits"], stage1["labels"], 4, "all")
    torch.testing.assert_close(similarity, expected, rtol=0, atol=1e-9)
    centers = torch.load(out / "centers.pt", weights_only=True)
    assert min(brute_distances(centers)) >= brute_required_distance(8, 4)

    first_rule = [*common, "method.center_source.multi_label=first", *PREPARE_ONLY]
    first_out, fits, _ = run(tmp_path, "first", first_rule)
    assert stages(first_out) == {"stage1": "hit", "stage2": "miss"}
    assert fits == []
    similarity_first = torch.load(first_out / "similarity.pt", weights_only=True)
    expected_first = brute_similarity(stage1["logits"], stage1["labels"], 4, "first")
    torch.testing.assert_close(similarity_first, expected_first, rtol=0, atol=1e-9)
    assert not torch.allclose(similarity_first, similarity)


def test_stage2_starts_from_mds_and_warns_when_it_cannot_move(first, caplog) -> None:
    out, _, _ = first
    # the reference solver with a flip threshold no gradient entry clears: no update, and the
    # start must win "best fit" (an unchanged epoch is no improvement), so best_epoch is -1
    change = [
        "method/solver=reference",
        f"{OPTIMISATION}.eta=1.0e6",
        *PREPARE_ONLY,
    ]
    with caplog.at_level(logging.WARNING, logger="hashing.methods.shc_centers"):
        stuck, _, _ = run(out.parent, "stuck", [*TINY, *change])
    assert stages(stuck) == {"stage1": "hit", "stage2": "miss"}
    assert "SHC stage 2 accepted no update" in caplog.text
    centers = torch.load(stuck / "centers.pt", weights_only=True)
    assert torch.equal(centers, mds_centers(10, 16, seed=0))
    stats = json.loads((stuck / "center_stats.json").read_text())
    assert stats["best_epoch"] == -1
    assert stats["equals_start"] is True and stats["accepted_updates"] == 0
    assert stats["solver"] == "reference"
    assert stats["fit_loss"] == stats["initial_fit_loss"]
    # the MDS start at 10 classes / 16 bits is Hadamard rows, all 8 apart: nothing is ranked
    assert stats["spearman"] is None and stats["initial_spearman"] is None


def test_default_solver_moves_the_start_and_records_center_quality(first) -> None:
    out, _, _ = first
    stats = json.loads((out / "center_stats.json").read_text())
    assert stats["solver"] == "local_search"
    assert stats["equals_start"] is False and stats["accepted_updates"] > 0
    assert stats["fit_loss"] < stats["initial_fit_loss"]
    similarity = torch.load(out / "similarity.pt", weights_only=True)
    centers = torch.load(out / "centers.pt", weights_only=True)
    # Spearman by hand: Pearson of the ranks of (s_ij + s_ji) / 2 and h_i.h_j over i < j
    iu = torch.triu_indices(10, 10, offset=1)
    target = ((similarity + similarity.T) / 2)[iu[0], iu[1]].numpy()
    inner = (centers.double() @ centers.double().T)[iu[0], iu[1]].numpy()
    from scipy.stats import rankdata

    expected = np.corrcoef(rankdata(target), rankdata(inner))[0, 1]
    assert stats["spearman"] == pytest.approx(expected)
    assert stats["spearman"] > 0.3 and stats["initial_spearman"] is None  # equidistant start
    assert stats["group_auc"] is None  # digits have no known class groups
    asym = float(torch.linalg.norm(similarity - similarity.T) / torch.linalg.norm(similarity))
    assert stats["similarity_asymmetry"] == pytest.approx(asym) and asym > 0.01
