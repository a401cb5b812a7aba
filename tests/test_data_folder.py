"""FolderDataModule and the decoded-image cache on tiny generated class trees (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hashing.data.images as images
from hashing.data.folder import FolderDataModule


def _write_tree(root: Path, per_class: dict[str, int], size: int = 8, seed: int = 0) -> dict:
    """PNG images (lossless, so decoded pixels are exact) with random content."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for name, count in per_class.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            array = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            path = root / name / f"{i:03d}.png"
            Image.fromarray(array).save(path)
            pixels[str(path)] = array
    return pixels


def _dm(root: Path, tmp_path: Path, **kwargs: object) -> FolderDataModule:
    options: dict = {
        "query_per_class": 2,
        "train_per_class": 3,
        "image_size": 8,
        "cache_dir": tmp_path / "cache",
        "split_dir": tmp_path / "splits",
        "decode_workers": 1,
        "batch_size": 4,
    }
    options.update(kwargs)
    dm = FolderDataModule(root, **options)
    dm.setup()
    return dm


def test_single_tree_protocol(tmp_path: Path) -> None:
    pixels = _write_tree(tmp_path / "tree", {"cat": 8, "dog": 9, "emu": 7})
    dm = _dm(tmp_path / "tree", tmp_path)
    assert dm.classes == ["cat", "dog", "emu"] and dm.num_classes == 3
    assert dm.input_shape == (3, 8, 8) and dm.name == "tree"
    split = dm.split
    labels = dm._pool.labels.numpy()
    for cls in range(3):
        assert (labels[split["query"]] == cls).sum() == 2
        assert (labels[split["train"]] == cls).sum() == 3
    assert len(split["database"]) == 24 - 6 - 9
    assert not set(split["train"].tolist()) & set(split["database"].tolist())
    # The decoded pixels are the PNG pixels of the item's file.
    x, y, idx = dm.dataset("query")[1]
    pool_index = int(split["query"][1])
    path = sorted(pixels)[pool_index]
    assert torch.equal(x, torch.from_numpy(pixels[path]).permute(2, 0, 1).float() / 255)
    assert int(y) == ["cat", "dog", "emu"].index(Path(path).parent.name) and idx == 1


def test_train_test_layout_pools_both(tmp_path: Path) -> None:
    _write_tree(tmp_path / "d" / "train", {"a": 6, "b": 6}, seed=1)
    _write_tree(tmp_path / "d" / "test", {"a": 2, "b": 3}, seed=2)
    dm = _dm(tmp_path / "d", tmp_path)
    assert len(dm._pool.labels) == 17
    assert dm.describe()["database"] == 17 - 4 - 6
    official = _dm(tmp_path / "d", tmp_path, protocol="cifar10-2")
    assert official.describe()["query"] == 5
    assert np.array_equal(np.sort(official.split["query"]), np.arange(12, 17))
    assert np.array_equal(np.sort(official.split["database"]), np.arange(12))


def test_official_needs_train_and_test(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree", {"a": 6, "b": 6})
    with pytest.raises(ValueError, match=r"needs .*train and .*test"):
        _dm(tmp_path / "tree", tmp_path, protocol="cifar10-2")


def test_decoded_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_tree(tmp_path / "tree", {"a": 6, "b": 6})
    first = _dm(tmp_path / "tree", tmp_path)
    cached = list((tmp_path / "cache").glob("images-*.npy"))
    assert len(cached) == 1

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(images, "decode_images", no_decode)
    second = _dm(tmp_path / "tree", tmp_path, split_dir=tmp_path / "splits2")
    assert torch.equal(first._pool.source, second._pool.source)
    # A changed file list is another key: it must decode again.
    _write_tree(tmp_path / "tree", {"c": 6}, seed=3)
    with pytest.raises(AssertionError, match="decoded again"):
        _dm(tmp_path / "tree", tmp_path, split_dir=tmp_path / "splits3")


def test_resize_and_grayscale(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree", {"a": 6, "b": 6}, size=12)
    dm = _dm(tmp_path / "tree", tmp_path, image_size=6, grayscale=True)
    assert dm.input_shape == (1, 6, 6)
    assert dm._pool.source.dtype == torch.uint8


def test_lazy_reading_matches_in_memory(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree", {"a": 6, "b": 6})
    eager = _dm(tmp_path / "tree", tmp_path)
    lazy = _dm(tmp_path / "tree", tmp_path, in_memory=False, split_dir=tmp_path / "s2")
    for i in (0, 5, 11):
        assert torch.equal(eager._pool.source[i], lazy._pool.source[i])


def test_mixed_sizes_without_image_size_fail(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree", {"a": 6}, size=8)
    _write_tree(tmp_path / "tree", {"b": 6}, size=10)
    with pytest.raises(ValueError, match="differ in size"):
        _dm(tmp_path / "tree", tmp_path, image_size=None)
    assert not any((tmp_path / "cache").glob("*")), "no half-written cache may stay"
    assert not any((tmp_path / "splits").glob("*"))


def test_empty_class_folder_fails_early(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree", {"a": 6, "b": 6})
    (tmp_path / "tree" / "zebra").mkdir()
    (tmp_path / "tree" / "zebra" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"class folder .*zebra is empty"):
        _dm(tmp_path / "tree", tmp_path)
    assert not (tmp_path / "splits").exists() and not (tmp_path / "cache").exists()


def test_missing_root_and_bad_values(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        _dm(tmp_path / "nowhere", tmp_path)
    with pytest.raises(ValueError, match="layout"):
        FolderDataModule(tmp_path, layout="flat")
    with pytest.raises(ValueError, match="protocol 'cifar10-3'"):
        FolderDataModule(tmp_path, protocol="cifar10-3")


def test_interrupted_decode_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_tree(tmp_path / "tree", {"a": 6, "b": 6})

    def broken_save(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        _dm(tmp_path / "tree", tmp_path)
    assert list((tmp_path / "cache").iterdir()) == []


def test_prepare_data_decodes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_tree(tmp_path / "tree", {"a": 6, "b": 6})
    calls = []
    real = images.decode_images

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(images, "decode_images", counting)
    dm = FolderDataModule(tmp_path / "tree", query_per_class=2, train_per_class=3,
                          cache_dir=tmp_path / "cache", decode_workers=1)  # fmt: skip
    dm.prepare_data()
    assert len(calls) == 1 and len(list((tmp_path / "cache").glob("*.npy"))) == 1
    dm.setup()
    assert len(calls) == 1 and dm._pool.source.shape == (12, 3, 32, 32)
