"""Integration on ../shared/data's CIFAR-10 folder copy (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hashing.data.folder import FolderDataModule


def _check_cifar10_protocol(dm: FolderDataModule) -> None:
    labels = dm._pool.labels
    assert len(labels) == 60000 and dm.num_classes == 10
    split = dm.split
    assert torch.bincount(labels[split["query"]]).tolist() == [100] * 10
    assert torch.bincount(labels[split["train"]]).tolist() == [500] * 10
    assert len(split["database"]) == 54000
    everything = np.concatenate([split["query"], split["train"], split["database"]])
    assert np.array_equal(np.sort(everything), np.arange(60000))


def test_cifar10_folder_protocol_lazy(shared_data: Path, tmp_path: Path) -> None:
    dm = FolderDataModule(shared_data / "cifar10", in_memory=False, split_dir=tmp_path)
    dm.setup()
    _check_cifar10_protocol(dm)
    assert dm.classes[0] == "airplane" and dm.input_shape == (3, 32, 32)
    x, y, _ = dm.dataset("query")[0]
    assert x.shape == (3, 32, 32) and 0 <= int(y) < 10
    official = FolderDataModule(
        shared_data / "cifar10", in_memory=False, protocol="cifar10-2", split_dir=tmp_path
    )
    official.setup()
    assert official.describe()["query"] == 10000 and official.describe()["database"] == 50000


@pytest.mark.slow
def test_cifar10_folder_decoded_matches_lazy(shared_data: Path, tmp_path: Path) -> None:
    kwargs = {"split_dir": tmp_path / "splits", "cache_dir": tmp_path / "cache"}
    eager = FolderDataModule(shared_data / "cifar10", **kwargs)
    eager.setup()
    _check_cifar10_protocol(eager)
    lazy = FolderDataModule(shared_data / "cifar10", in_memory=False, **kwargs)
    lazy.setup()
    for i in (0, 31337, 59999):
        assert torch.equal(eager._pool.source[i], lazy._pool.source[i])
    warm = FolderDataModule(shared_data / "cifar10", **kwargs)
    warm.setup()
    assert torch.equal(warm._pool.source, eager._pool.source)
