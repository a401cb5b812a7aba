"""Tiny-ImageNet-200's official layout and download path, on a generated miniature."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashing.data.tinyimagenet import TinyImageNetDataModule
from hashing.runs.errors import UserError

WNIDS = ["n02099601", "n01443537", "n04067472"]  # unsorted on purpose
TRAIN, VAL = 5, 3


def colour(label: int, item: int) -> tuple[int, int, int]:
    """A flat colour that encodes (class, item), so pool order can be read back."""
    return (40 * label + 20, 30 * item + 10, 200)


def make_release(parent: Path) -> Path:
    """tiny-imagenet-200/ with TRAIN training and VAL validation 8x8 JPEGs a class."""
    folder = parent / "tiny-imagenet-200"
    ordered = sorted(WNIDS)
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    words = [f"{w}\tlemma of {w}, other" for w in WNIDS] + ["n00000001\tunused"]
    (folder / "words.txt").write_text("\n".join(words) + "\n")
    for wnid in WNIDS:
        label = ordered.index(wnid)
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for item in range(TRAIN):
            Image.new("RGB", (8, 8), colour(label, item)).save(images / f"{wnid}_{item}.JPEG")
    lines = []
    # validation files interleave the classes, numbered past 9 to test numeric order
    for number in range(VAL * len(WNIDS)):
        label = number % len(WNIDS)
        name = f"val_{number * 7}.JPEG"
        item = number // len(WNIDS)
        Image.new("RGB", (8, 8), colour(label, item)).save(folder / "val" / "images" / name)
        lines.append(f"{name}\t{ordered[label]}\t0\t0\t8\t8")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


def module(root: Path, **options) -> TinyImageNetDataModule:
    return TinyImageNetDataModule(root, train_per_class=2, split_dir=None, **options)


def test_reads_the_official_layout_in_the_features_file_order(tmp_path: Path) -> None:
    make_release(tmp_path)
    data = module(tmp_path)
    data.setup()
    assert data.class_names == sorted(WNIDS)
    assert data.class_words[0] == "lemma of n01443537, other"
    labels = data.pool.labels.tolist()
    assert labels == [0] * TRAIN + [1] * TRAIN + [2] * TRAIN + [0] * VAL + [1] * VAL + [2] * VAL
    # JPEG keeps a flat colour within a few levels: read (class, item) back from the pixels
    expected = [(y, i) for y in range(3) for i in range(TRAIN)]
    expected += [(y, i) for y in range(3) for i in range(VAL)]
    for position, (label, item) in enumerate(expected):
        mean = data.pool.source[position].float().mean(dim=(1, 2))
        assert (mean - torch.tensor(colour(label, item))).abs().max() <= 3, position
    split = data.split
    assert sorted(split["query"]) == list(range(15, 24))
    assert sorted(split["database"]) == list(range(15))
    assert np.isin(split["train"], split["database"]).all()
    assert np.bincount(data.pool.labels[split["train"]].numpy()).tolist() == [2, 2, 2]
    assert data.protocol_k == 1000
    assert tuple(data.input_shape) == (3, 8, 8)


def test_download_fetches_and_unpacks_the_zip(tmp_path: Path) -> None:
    folder = make_release(tmp_path / "source")
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, path.relative_to(folder.parent))
    root = tmp_path / "data"
    data = module(root, download=True, url=archive.as_uri())
    data.prepare_data()
    assert (root / "tiny-imagenet-200" / "wnids.txt").is_file()
    data.setup()
    assert len(data.pool.labels) == 3 * (TRAIN + VAL)
    archive.unlink()  # a second prepare finds the release and fetches nothing
    module(root, download=True, url=archive.as_uri()).prepare_data()


def test_missing_parts_are_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="download=true"):
        module(tmp_path).setup()
    folder = make_release(tmp_path)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t8\t8\n")
    with pytest.raises(UserError, match=r"line 1 .* names no class"):
        module(tmp_path).setup()


def test_hierarchy_and_tensors(tmp_path: Path) -> None:
    make_release(tmp_path)
    tree = tmp_path / "tree.txt"
    tree.write_text("entity/animal/n01443537\nentity/animal/n02099601\nentity/thing/n04067472\n")
    data = module(tmp_path, hierarchy=tree)
    data.setup()
    assert data.class_relations.distance.tolist() == [[0, 2, 4], [2, 0, 4], [4, 4, 0]]
    x, y, _ = next(iter(data.test_dataloader()[0]))
    assert x.dtype == torch.float32 and set(y.tolist()) <= {0, 1, 2}
