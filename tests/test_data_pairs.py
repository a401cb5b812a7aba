"""The composite pair datasets: labels, related classes, splits and their reuse (issue 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from hashing.data.base import Pool, RetrievalDataModule
from hashing.data.pairs import PairsDataModule
from hashing.data.splits import Protocol
from tests.helpers.runs import compose_run

INNER_CLASSES = 3


class _Tiny(RetrievalDataModule):
    """3 classes; item ``i`` is the vector ``[i, i]``; train 0..29, test 30..44."""

    def __init__(self) -> None:
        super().__init__(name="tiny")

    def _protocol(self) -> Protocol:
        return Protocol("official")

    def _load_pool(self) -> Pool:
        x = torch.arange(45, dtype=torch.float32)[:, None].repeat(1, 2)
        labels = torch.arange(45) % INNER_CLASSES
        return Pool(x, labels, INNER_CLASSES, {"train": np.arange(30), "test": np.arange(30, 45)})


def _pairs(tmp_path: Path, **options: object) -> PairsDataModule:
    settings = {"query_per_class": 2, "train_per_class": 3, "database_per_class": 4}
    settings.update(options)
    dm = PairsDataModule(_Tiny(), split_dir=tmp_path, **settings)
    dm.setup()
    return dm


def _inner_items(dm: PairsDataModule, key: str) -> tuple[np.ndarray, torch.Tensor]:
    """(n, 2) inner indices read back from the items themselves, and the labels."""
    data = dm.dataset(key)
    items = torch.stack([data[i][0] for i in range(len(data))])
    return items[:, [0, 2]].long().numpy(), data.labels


def test_pair_labels_sides_and_split_sizes(tmp_path: Path) -> None:
    dm = _pairs(tmp_path)
    assert dm.num_classes == 9 and not dm.multi_label and dm.input_shape == (4,)
    expected_sizes = {"query": 18, "database": 36, "train": 27}
    assert {k: len(dm.split[k]) for k in expected_sizes} == expected_sizes
    for key, allowed in (("query", range(30, 45)), ("database", range(30)), ("train", range(30))):
        inner, labels = _inner_items(dm, key)
        assert set(inner.ravel()) <= set(allowed)  # queries never share an item with training
        first, second = inner[:, 0] % INNER_CLASSES, inner[:, 1] % INNER_CLASSES
        assert labels.tolist() == (first * INNER_CLASSES + second).tolist()
        per_class = {"query": 2, "database": 4, "train": 3}[key]
        assert torch.bincount(labels, minlength=9).tolist() == [per_class] * 9
    split = dm.split
    assert set(split["train"]) <= set(split["database"])
    assert sorted([*split["val_query"], *split["fit"]]) == sorted(split["train"])
    assert dm.class_names[5] == "1+2"


def test_related_classes_share_an_object() -> None:
    related = PairsDataModule(_Tiny(), multi_label=False)
    related.inner_classes = INNER_CLASSES
    matrix = related.related_classes
    for i in range(9):
        for j in range(9):
            share = i != j and (i // 3 == j // 3 or i % 3 == j % 3)
            assert bool(matrix[i, j]) == share


def test_multi_label_variant_shows_the_set_of_objects(tmp_path: Path) -> None:
    dm = _pairs(tmp_path, multi_label=True)
    assert dm.multi_label and dm.num_classes == INNER_CLASSES and dm.related_classes is None
    inner, labels = _inner_items(dm, "database")
    for (a, b), hot in zip(inner, labels, strict=True):
        assert set(np.flatnonzero(hot.numpy())) == {a % 3, b % 3}


def test_split_and_pairs_are_saved_seeded_and_checked(tmp_path: Path) -> None:
    first = _pairs(tmp_path)
    again = _pairs(tmp_path)
    assert all(np.array_equal(first.split[k], again.split[k]) for k in first.split)
    assert np.array_equal(first.pairs, again.pairs)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 2 and saved[1] == saved[0] + ".pairs.npz"
    other = PairsDataModule(_Tiny(), split_seed=1, split_dir=tmp_path / "other")
    other.setup()
    assert not np.array_equal(other.pairs, first.pairs)
    # a pair table that does not match what the seed draws is refused, never used
    np.savez(tmp_path / saved[1], pairs=first.pairs[::-1].copy())
    with pytest.raises(ValueError, match="differs from the pairs drawn now"):
        _pairs(tmp_path)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="train_per_class=5 exceeds database_per_class=4"):
        PairsDataModule(_Tiny(), train_per_class=5, database_per_class=4)
    with pytest.raises(ValueError, match="query_per_class=0"):
        PairsDataModule(_Tiny(), query_per_class=0)
    with pytest.raises(ValueError, match="transform='crop_flip' is invalid for pairs"):
        PairsDataModule(_Tiny(), transform="crop_flip")


def test_mnist_pairs_config_on_real_digits(shared_data: Path, tmp_path: Path) -> None:
    cfg = compose_run(
        "train", tmp_path / "run", tmp_path / "cache",
        ["data=mnist_pairs", f"paths.shared_data_dir={shared_data}"],
    )  # fmt: skip
    dm = instantiate(cfg.data)
    dm.setup()
    assert dm.num_classes == 100 and dm.input_shape == (1, 28, 56)
    assert dm.describe()["query"] == 1000 and dm.describe()["database"] == 20000
    x, y, _ = dm.dataset("query")[0]
    assert x.shape == (1, 28, 56) and 0 <= int(y) < 100


@pytest.mark.slow
@pytest.mark.parametrize("method", ["csq", "mds", "shc", "tbh"])
def test_every_method_runs_the_multi_label_composite(
    method: str, shared_data: Path, tmp_path: Path
) -> None:
    from hashing import pipeline

    overrides = [
        "data=cifar10_pairs",
        "data.multi_label=true",
        f"paths.shared_data_dir={shared_data}",
        "backbone=mlp",
        f"method={method}",
        "bits=16",
        "debug=fast",
    ]
    if method == "shc":
        overrides += ["method.center_source.classifier.max_epochs=1"]
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", overrides)
    metrics = pipeline.train(cfg)
    assert 0.0 < metrics["test/mAP@ALL"] <= 1.0
    if method == "shc":
        stats = (tmp_path / "run" / "center_stats.json").read_text()
        assert '"multi_label_rule": "all"' in stats
