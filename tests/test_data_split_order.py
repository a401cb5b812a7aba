"""Split order: a seeded permutation by default (ties carry no label information), or the file's.

The retrieval ranking breaks Hamming-distance ties by database position. On a database sorted
by class with codes collapsed onto a few values, the file order fills each tied bucket's top
with one class; a shuffled order makes mAP@k close to the tie-aware (order-free) value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hashing.data.features import FeaturesDataModule
from hashing.data.splits import Protocol, make_split, order_split
from hashing.metrics import evaluate_retrieval

CLASSES, PER_CLASS, DIM = 10, 120, 4


def _sorted_file(tmp_path: Path) -> Path:
    """A features file whose rows are sorted by class (as a class-folder reader writes them)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    path = tmp_path / "sorted.npz"
    np.savez(path, train_x=rng.normal(size=(len(labels), DIM)).astype(np.float32),
             train_y=labels, test_x=np.zeros((0, DIM), np.float32),
             test_y=np.zeros(0, np.int64))  # fmt: skip
    return path


def _datamodule(path: Path, tmp_path: Path, order: str, seed: int = 0) -> FeaturesDataModule:
    dm = FeaturesDataModule(
        path, protocol="cifar10", query_per_class=10, train_per_class=20, split_seed=seed,
        split_order=order, split_dir=tmp_path / "splits",
    )  # fmt: skip
    dm.setup()
    return dm


def test_order_split_permutes_each_split_and_keeps_members() -> None:
    labels = np.repeat(np.arange(4), 30)
    split = make_split(labels, Protocol("disjoint", 3, 6), seed=1, val_fraction=0.2)
    shuffled = order_split(split, "shuffled", seed=1)
    kept = order_split(split, "file", seed=1)
    for key, value in split.items():
        assert np.array_equal(np.sort(shuffled[key]), np.sort(value))
        assert np.array_equal(kept[key], value)
    assert not np.array_equal(shuffled["database"], split["database"])
    assert np.array_equal(order_split(split, "shuffled", 1)["database"], shuffled["database"])
    assert not np.array_equal(order_split(split, "shuffled", 2)["database"], shuffled["database"])
    with pytest.raises(ValueError, match="split order 'sorted' unknown"):
        order_split(split, "sorted", 1)


def test_saved_split_keeps_its_order_and_refuses_another(tmp_path: Path) -> None:
    path = _sorted_file(tmp_path)
    first = _datamodule(path, tmp_path, "shuffled")
    # a per-class protocol on a features file: 10 queries + 20 training items a class
    assert first.describe() == {"query": 100, "train": 200, "database": 900, "val_query": 20,
                                "fit": 180}  # fmt: skip
    again = _datamodule(path, tmp_path, "shuffled")
    assert first.split_path is not None and first.split_path.name.endswith("__shuffled.npz")
    assert np.array_equal(first.split["database"], again.split["database"])
    kept = _datamodule(path, tmp_path, "file")
    assert np.array_equal(np.sort(first.split["database"]), kept.split["database"])
    database_labels = first.pool.labels[first.split["database"]].numpy()
    assert (np.diff(database_labels) != 0).sum() > len(database_labels) // 2  # not class-sorted
    with pytest.raises(ValueError, match="split_order='random' is invalid"):
        FeaturesDataModule(path, split_order="random")


def _collapsed_codes(labels: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Codes at their class's center, 30% of items (seeded) at the next class's center."""
    centers = torch.where(torch.randn(CLASSES, bits, generator=torch.Generator().manual_seed(0))
                          >= 0, 1.0, -1.0)  # fmt: skip
    wrong = torch.rand(len(labels), generator=torch.Generator().manual_seed(1)) < 0.3
    return centers[torch.where(wrong, (labels + 1) % CLASSES, labels)]


@pytest.mark.parametrize("order", ["shuffled", "file"])
def test_collapsed_codes_on_a_class_sorted_database(tmp_path: Path, order: str) -> None:
    dm = _datamodule(_sorted_file(tmp_path), tmp_path, order)
    labels = dm.pool.labels
    codes = _collapsed_codes(labels)
    query, database = dm.split["query"], dm.split["database"]
    report = evaluate_retrieval(
        codes[query], codes[database], labels[query], labels[database],
        top_ks=(100,), tie_aware_ks=(100,),
    )  # fmt: skip
    gap = abs(report.map_at_k[100] - report.tie_aware_map_at_k[100])
    if order == "shuffled":
        assert gap < 0.03, report
    else:  # the file order puts one class first in every tied bucket: far from tie-aware
        assert gap > 0.1, report
