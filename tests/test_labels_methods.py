"""What each method does with partial and noisy labels (docs/labels.md), through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hashing import pipeline
from hashing.data.labels import LABELS_FILE, UNLABELLED
from hashing.methods import shc_centers
from hashing.runs.errors import USAGE_EXIT_CODE
from tests.helpers.runs import compose_run, run_entry_point

PARTIAL = ["data.label_fraction=0.1", "data.label_noise=0.4", "data.label_seed=2"]
# 10% of the 72 fit items of each digit
LABELLED = 70


def build(tmp_path: Path, overrides: list[str]) -> tuple:
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", ["bits=16", *overrides])
    datamodule, model, _trainer = pipeline.build_run(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / LABELS_FILE).read_text())
    return datamodule, model, record


@pytest.mark.parametrize(
    ("method", "use", "size", "used"),
    [
        ("csq", "labelled", LABELLED, LABELLED),
        ("mds", "labelled", LABELLED, LABELLED),
        ("tbh_supervised", "mask", 720, LABELLED),
        ("tbh", "none", 720, 0),
        ("itq", "none", 720, 0),
    ],
)
def test_each_method_is_served_what_it_uses(
    tmp_path: Path, method: str, use: str, size: int, used: int
) -> None:
    datamodule, model, record = build(tmp_path, [f"method={method}", *PARTIAL])
    assert model.label_use == datamodule.label_use == record["label_use"] == use
    loader = datamodule.train_dataloader()
    labels = torch.cat([batch[1] for batch in loader])
    assert len(loader.dataset) == len(labels) == size
    assert int((labels != UNLABELLED).sum()) == LABELLED
    assert record["labelled_items"] == LABELLED and record["labels_used"] == used
    assert record["noisy_items"] == 10 * round(0.4 * 7)
    # the training labels carry the noise; the evaluation loaders keep the clean ones
    noisy = {change["item"]: change["new"] for change in record["changed"]}
    served = datamodule.training_dataset(use)
    for item, label in zip(served.indices.tolist(), served.labels.tolist(), strict=True):
        if item in noisy:
            assert label == noisy[item]
    query, database = datamodule.val_dataloader()
    pool = datamodule.pool.labels
    for loader, key in ((query, "val_query"), (database, "fit")):
        served_labels = torch.cat([batch[1] for batch in loader])
        assert torch.equal(served_labels, pool[torch.as_tensor(datamodule.split[key])])


def test_shc_stage_one_trains_on_the_labelled_items_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    class Seen(Exception):
        pass

    def spy(module: object, train_set: object, predict_set: object, **options: object) -> None:
        seen.update(train=train_set, predict=predict_set)
        raise Seen

    monkeypatch.setattr(shc_centers, "fit_classifier", spy)
    overrides = ["method=shc", "method.center_source.cache=false", *PARTIAL]
    datamodule, model, record = build(tmp_path, overrides)
    with pytest.raises(Seen):
        model.prepare(datamodule, tmp_path / "run")
    train_set, predict_set = seen["train"], seen["predict"]
    labelled = datamodule.labelling.labelled_items
    for dataset in (train_set, predict_set):
        assert sorted(dataset.indices.tolist()) == sorted(labelled.tolist())
        assert torch.equal(dataset.labels, datamodule.train_labels())
    changed = {change["item"]: change["new"] for change in record["changed"]}
    for item, label in zip(train_set.indices.tolist(), train_set.labels.tolist(), strict=True):
        assert label == changed.get(item, int(datamodule.pool.labels[item]))
    assert len(train_set) == LABELLED


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_supervised_tbh_classifies_the_labelled_rows_only(tmp_path: Path, reduction: str) -> None:
    overrides = [
        "method=tbh_supervised",
        f"method.reconstruction_reduction={reduction}",
        *PARTIAL,
    ]
    datamodule, model, _ = build(tmp_path, overrides)
    x, y, _ = next(iter(datamodule.train_dataloader()))
    labelled = y != UNLABELLED
    assert 0 < int(labelled.sum()) < len(y)
    torch.manual_seed(0)
    output, step = model.step_losses(x, y)
    logits = output.class_logits.detach()
    per_item = F.cross_entropy(logits[labelled], y[labelled], reduction="none")
    expected = per_item.sum() if reduction == "sum" else per_item.mean()
    torch.testing.assert_close(step.classification.detach(), expected)
    # the relative weight was measured on the labelled rows: per-sample means of both terms
    recon = 0.5 * ((output.x_hat - model.features(x)) ** 2).sum(1).mean()
    torch.testing.assert_close(
        torch.tensor(model._measured_scale), recon.detach() / per_item.mean(), rtol=1e-4, atol=0
    )
    # an unlabelled row's logits get no gradient from the classification term
    logits_grad = torch.autograd.grad(step.classification, output.class_logits)[0]
    assert (logits_grad[~labelled] == 0).all() and (logits_grad[labelled] != 0).any()


def test_supervised_tbh_batch_without_labels_has_no_classification_term(tmp_path: Path) -> None:
    datamodule, model, _ = build(tmp_path, ["method=tbh_supervised", *PARTIAL])
    x, y, _ = next(iter(datamodule.train_dataloader()))
    unlabelled = torch.full_like(y, UNLABELLED)
    _, step = model.step_losses(x, unlabelled)
    assert float(step.classification) == 0.0 and torch.isfinite(step.actor)
    assert model._measured_scale is None, "nothing to measure the scale on"
    _output, step = model.step_losses(x, y)
    assert model._measured_scale is not None and float(step.classification) > 0


def last_weights(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["state_dict"]


@pytest.mark.parametrize("method", ["csq", "tbh_supervised"])
def test_defaults_train_exactly_as_the_fit_split_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A run with the options at their defaults equals one whose train loader serves the fit
    split as before the options existed (the same batches, weights and metrics)."""
    tiny = [f"method={method}", "bits=16", "seed=1", "debug=fast"]
    explicit = [
        "data.label_fraction=1.0",
        "data.label_noise=0.0",
        "data.label_noise_kind=uniform",
        "data.label_seed=5",
    ]
    runs = {}
    for name, overrides, patch in (
        ("defaults", tiny, False),
        ("explicit", [*tiny, *explicit], False),
        ("before", tiny, True),
    ):
        with monkeypatch.context() as context:
            if patch:  # the fit split with its clean labels, as the train loader served it
                context.setattr(
                    "hashing.data.base.RetrievalDataModule.training_dataset",
                    lambda self, view=None, train=True: self.dataset("fit", train=train),
                )
            out = tmp_path / name
            cfg = compose_run("train", out, tmp_path / f"cache-{name}", overrides)
            runs[name] = (pipeline.train(cfg), last_weights(out))
    metrics, weights = runs["before"]
    for name in ("defaults", "explicit"):
        assert runs[name][0] == metrics
        assert weights.keys() == runs[name][1].keys()
        for key, value in weights.items():
            assert torch.equal(value, runs[name][1][key]), (name, key)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.label_fraction=0", "data.label_fraction=0"),
        ("data.label_noise=1.5", "data.label_noise=1.5"),
        ("data.label_noise_kind=nearest", "data.label_noise_kind='nearest'"),
        ("data.label_noise=0.2 data.label_noise_kind=sibling", "data.hierarchy"),
    ],
)
def test_bad_settings_exit_2_naming_the_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    override: str,
    named: str,
) -> None:
    args = [*override.split(), f"hydra.run.dir={tmp_path}", f"paths.cache_dir={tmp_path}"]
    assert run_entry_point("hashing.train", args, monkeypatch) == USAGE_EXIT_CODE
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not (tmp_path / LABELS_FILE).exists()


def test_noise_and_partial_labels_are_recorded_in_the_run(tmp_path: Path) -> None:
    _, _, record = build(tmp_path, ["method=csq", *PARTIAL])
    assert record["label_fraction"] == 0.1 and record["label_noise"] == 0.4
    assert record["label_seed"] == 2 and record["label_noise_kind"] == "uniform"
    assert sum(record["labelled_per_class"].values()) == LABELLED
    items = [change["item"] for change in record["changed"]]
    assert len(set(items)) == len(items) == record["noisy_items"]
    assert np.all(np.diff(items) != 0)
