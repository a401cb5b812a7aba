"""ImageListDataModule on generated list files: parsing, label kinds, and bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashing.data.imagelist import ImageListDataModule, parse_list_file


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((10, 12, 3), value, np.uint8)).save(path)


def _lists(root: Path, multi: bool = True, prefix: str = "") -> dict[str, list[str]]:
    """train (6), test (3), database (= train + 4 more) with 3-class label vectors."""
    rows = (
        [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1], [1, 0, 0]]
        if multi
        else [[1, 0, 0], [0, 1, 0], [0, 0, 1]] * 3
    )
    lines: dict[str, list[str]] = {"train": [], "test": [], "database": []}
    names = [f"img/{i:02d}.png" for i in range(13)]
    for i, name in enumerate(names):
        _image(root / name, i * 10)
    layout = {"train": range(6), "test": range(6, 9), "database": [*range(6), *range(9, 13)]}
    for part, members in layout.items():
        for i in members:
            row = rows[i % len(rows)]
            lines[part].append(f"{prefix}{names[i]} {' '.join(map(str, row))}")
        (root / f"{part}.txt").write_text("\n".join(lines[part]) + "\n")
    return lines


def _dm(root: Path, tmp_path: Path, **kwargs: object) -> ImageListDataModule:
    options: dict = {"split_dir": tmp_path / "splits", "transform": "scale", **kwargs}
    dm = ImageListDataModule(root, **options)
    dm.setup()
    return dm


def test_multilabel_lists(tmp_path: Path) -> None:
    root = tmp_path / "nus"
    lines = _lists(root)
    dm = _dm(root, tmp_path, top_k=5, split_order="file")  # the lists' own order, checked below
    assert dm.multi_label and dm.num_classes == 3 and dm.protocol_k == 5 and dm.name == "nus"
    assert dm.describe()["query"] == 3 and dm.describe()["train"] == 6
    assert dm.describe()["database"] == 10
    assert len(dm._pool.labels) == 13  # training images listed again in database.txt: one item
    assert set(dm.split["train"].tolist()) <= set(dm.split["database"].tolist())
    x, y, _ = next(iter(dm.test_dataloader()[0]))
    assert x.shape == (3, 3, 10, 12) and y.dtype == torch.float32
    for row, line in zip(y.tolist(), lines["test"], strict=True):
        assert row == [float(v) for v in line.split()[1:]]
    # Item pixels come from the listed file (image i was filled with value 10 * i).
    assert torch.allclose(x[0], torch.full((3, 10, 12), 60 / 255))


def test_one_hot_lists_become_class_indices(tmp_path: Path) -> None:
    root = tmp_path / "in100"
    _lists(root, multi=False)
    dm = _dm(root, tmp_path)
    assert not dm.multi_label and dm.train_labels().dtype == torch.long
    forced = _dm(root, tmp_path, multi_label=True, split_dir=tmp_path / "s2")
    assert forced.multi_label


def test_strip_prefix_and_image_root(tmp_path: Path) -> None:
    root = tmp_path / "lists"
    _lists(root, prefix="/dataset/imagenet/")
    with pytest.raises(FileNotFoundError, match="13 of 13 image files"):
        _dm(root, tmp_path)
    dm = _dm(root, tmp_path, strip_prefix="/dataset/imagenet/")
    assert len(dm._pool.labels) == 13


def test_inconsistent_label_length_names_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    _lists(root)
    text = (root / "test.txt").read_text().splitlines()
    text[1] += " 1"
    (root / "test.txt").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"test\.txt:2: label vector has 4 entries, expected 3"):
        _dm(root, tmp_path)
    assert not (tmp_path / "splits").exists()


def test_missing_images_are_counted(tmp_path: Path) -> None:
    root = tmp_path / "gone"
    _lists(root)
    for i in (2, 7, 11):
        (root / f"img/{i:02d}.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"3 of 13 image files .*\n.*02\.png"):
        _dm(root, tmp_path)
    assert not (tmp_path / "splits").exists()


def test_queries_in_train_list_rejected(tmp_path: Path) -> None:
    root = tmp_path / "leak"
    lines = _lists(root)
    (root / "test.txt").write_text("\n".join([*lines["test"], lines["train"][0]]) + "\n")
    with pytest.raises(ValueError, match=r"1 images are in both train\.txt and test\.txt"):
        _dm(root, tmp_path)


def test_parse_errors(tmp_path: Path) -> None:
    bad = tmp_path / "l.txt"
    bad.write_text("a.jpg 0 1\nb.jpg 0 2\n")
    with pytest.raises(ValueError, match=r"l\.txt:2: labels must be 0/1"):
        parse_list_file(bad)
    bad.write_text("a.jpg\n")
    with pytest.raises(ValueError, match=r"l\.txt:1: no label vector"):
        parse_list_file(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_list_file(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match=r"must hold train\.txt"):
        _dm(tmp_path / "nothing", tmp_path)


def test_in_memory_needs_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        ImageListDataModule(tmp_path, in_memory=True)
    root = tmp_path / "mem"
    _lists(root)
    dm = _dm(root, tmp_path, in_memory=True, image_size=4, cache_dir=tmp_path / "c")
    assert dm.input_shape == (3, 4, 4) and dm._pool.source.shape == (13, 3, 4, 4)
