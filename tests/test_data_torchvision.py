"""MNIST / CIFAR-10 / CIFAR-100 DataModules: protocols, pixel layout, and offline errors."""

from __future__ import annotations

import pickle
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets

from hashing.data.torchvision_datasets import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    MNISTDataModule,
)
from hashing.runs.errors import UserError


def _fake_cifar(root: Path, per_batch: int, classes: int, hundred: bool = False) -> np.ndarray:
    """A tiny CIFAR pickle tree in torchvision's layout; returns all images (N, 32, 32, 3)."""
    rng = np.random.default_rng(0)
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    names = (
        ["train", "test"] if hundred else [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    )
    label_key = "fine_labels" if hundred else "labels"
    everything = []
    for name in names:
        count = per_batch * (5 if hundred and name == "train" else 1)
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = [i % classes for i in range(count)]
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": data, label_key: labels}, handle)
        everything.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    meta_name, meta_key = (
        ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    )
    with open(folder / meta_name, "wb") as handle:
        pickle.dump({meta_key: [f"c{i}" for i in range(classes)]}, handle)
    return np.concatenate(everything)


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake files cannot match torchvision's MD5 sums; skip that check only."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)


def test_cifar10_protocols_on_fake_pickles(tmp_path: Path, no_md5: None) -> None:
    images = _fake_cifar(tmp_path, per_batch=20, classes=10)  # 100 train + 20 test
    dm = CIFAR10DataModule(tmp_path, query_per_class=2, train_per_class=5)
    dm.setup()
    assert dm.name == "cifar10" and dm.num_classes == 10 and dm.protocol_k is None
    assert dm.describe() == {"query": 20, "train": 50, "database": 50, "val_query": 10, "fit": 40}
    pool = dm._pool.source
    assert pool.shape == (120, 3, 32, 32) and pool.dtype == torch.uint8
    assert torch.equal(pool.permute(0, 2, 3, 1), torch.from_numpy(images))
    official = CIFAR10DataModule(tmp_path, protocol="cifar10-2")
    official.setup()
    assert np.array_equal(np.sort(official.split["query"]), np.arange(100, 120))
    assert np.array_equal(np.sort(official.split["database"]), np.arange(100))
    from_db = CIFAR10DataModule(
        tmp_path, protocol="cifar10-1", query_per_class=2, train_per_class=5
    )
    from_db.setup()
    assert from_db.describe()["database"] == 100
    assert set(from_db.split["train"].tolist()) <= set(from_db.split["database"].tolist())


def test_cifar100_defaults_scaled(tmp_path: Path, no_md5: None) -> None:
    _fake_cifar(tmp_path, per_batch=100, classes=100, hundred=True)  # 6 a class
    dm = CIFAR100DataModule(tmp_path, query_per_class=1, train_per_class=2)
    dm.setup()
    assert dm.num_classes == 100 and dm.describe()["query"] == 100
    default = CIFAR100DataModule(tmp_path)
    assert (default.protocol.query_per_class, default.protocol.train_per_class) == (10, 50)


def test_missing_root_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"root .*absent does not exist.*download: true"):
        CIFAR10DataModule(tmp_path / "absent").setup()
    with pytest.raises(FileNotFoundError, match=r"download is false.*cifar-10-batches-py"):
        CIFAR10DataModule(tmp_path).setup()
    with pytest.raises(ValueError, match="protocol 'mnist-7'"):
        MNISTDataModule(tmp_path, protocol="mnist-7")


@pytest.mark.parametrize("module", [CIFAR10DataModule, MNISTDataModule])
def test_an_offline_download_says_where_to_put_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: type
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    data = module(tmp_path / "data", download=True)
    with pytest.raises(UserError) as raised:
        data.prepare_data()
    message = str(raised.value)
    host = "www.cs.toronto.edu" if module is CIFAR10DataModule else "ossci-datasets.s3"
    assert "could not reach" in message and host in message
    assert "name resolution" in message and "urlopen" not in message
    assert f"data.root={tmp_path / 'data'}" in message and module.layout_hint in message
    assert "data.download=false" in message


def test_mnist_shared_copy(shared_data: Path, tmp_path: Path) -> None:
    dm = MNISTDataModule(shared_data / "mnist", split_dir=tmp_path)
    dm.setup()
    assert dm.input_shape == (1, 28, 28) and dm.num_classes == 10
    assert dm.describe() == {
        "query": 1000, "train": 5000, "database": 64000, "val_query": 500, "fit": 4500
    }  # fmt: skip
    labels = dm._pool.labels
    assert torch.bincount(labels[dm.split["query"]]).tolist() == [100] * 10
    raw = datasets.MNIST(str(shared_data / "mnist"), train=False)
    assert torch.equal(dm._pool.source[60000:, 0], raw.data)
    x, _, _ = dm.dataset("query")[0]
    assert x.dtype == torch.float32 and float(x.max()) <= 1.0
    official = MNISTDataModule(shared_data / "mnist", protocol="mnist-2")
    official.setup()
    assert official.describe()["query"] == 10000 and official.describe()["database"] == 60000
