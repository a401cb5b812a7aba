"""Image sources of export and search: class trees, plain folders, list files, single images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashing.index import encoder
from hashing.index.encoder import InputSpec
from hashing.index.image_files import list_images


def write_png(path: Path, value: int, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, np.uint8), mode="L").save(path)
    return path


def test_class_tree_gives_sorted_class_labels(tmp_path: Path) -> None:
    for name, count in (("zebra", 2), ("ant", 3)):
        for i in range(count):
            write_png(tmp_path / "tree" / name / f"{i}.png", 10 * i)
    images = list_images(tmp_path / "tree")
    assert images.classes == ["ant", "zebra"]
    assert images.labels.tolist() == [0, 0, 0, 1, 1]
    assert [Path(p).parent.name for p in images.paths] == ["ant"] * 3 + ["zebra"] * 2
    assert all(Path(p).is_absolute() for p in images.paths)


def test_plain_folder_is_read_recursively_without_labels(tmp_path: Path) -> None:
    write_png(tmp_path / "mixed" / "b.png", 1)
    write_png(tmp_path / "mixed" / "sub" / "a.png", 2)
    (tmp_path / "mixed" / "notes.txt").write_text("not an image")
    images = list_images(tmp_path / "mixed")
    assert images.labels is None
    assert [Path(p).name for p in images.paths] == ["b.png", "a.png"]  # sorted full paths
    with pytest.raises(ValueError, match="holds no images"):
        list_images((tmp_path / "empty").mkdir() or tmp_path / "empty")


def test_list_files_with_and_without_labels(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / "imgs" / f"{i}.png", i)
    (tmp_path / "plain.txt").write_text("imgs/2.png\nimgs/0.png\n\n")
    plain = list_images(tmp_path / "plain.txt")
    assert [Path(p).name for p in plain.paths] == ["2.png", "0.png"] and plain.labels is None
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "labelled.txt").write_text("imgs/0.png 0 1 1\nimgs/1.png 1 0 0\n")
    labelled = list_images(tmp_path / "lists" / "labelled.txt", root=tmp_path)
    np.testing.assert_array_equal(labelled.labels, [[0, 1, 1], [1, 0, 0]])
    with pytest.raises(FileNotFoundError, match="2 of 2 image files"):
        list_images(tmp_path / "lists" / "labelled.txt", root=tmp_path / "imgs")
    (tmp_path / "ragged.txt").write_text("imgs/0.png 0 1\nimgs/1.png 1 0 0\n")
    with pytest.raises(ValueError, match=r"ragged\.txt:2"):
        list_images(tmp_path / "ragged.txt")
    with pytest.raises(ValueError, match="does not exist"):
        list_images(tmp_path / "absent.txt")


def test_input_spec_resizes_and_transforms_like_the_dataset(tmp_path: Path) -> None:
    big = write_png(tmp_path / "big.png", 255, size=32)
    x = InputSpec((1, 8, 8), "scale", None, "L").prepare(big)
    assert x.shape == (1, 8, 8) and x.dtype.is_floating_point and float(x.max()) == 1.0
    rgb = InputSpec((3, 16, 16), "scale", 16, "RGB").prepare(big)
    assert rgb.shape == (3, 16, 16)
    with pytest.raises(ValueError, match="not images"):
        InputSpec((4096,), "scale", None, None).prepare(big)
    with pytest.raises(ValueError, match="the model takes"):
        InputSpec((1, 8, 8), "scale", 16, "L").prepare(big)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        InputSpec((1, 8, 8), "scale", None, "L").prepare(tmp_path / "broken.png")


def test_channel_check_opens_no_file_once_it_has_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoder, "_warned", set())
    opened: list[str] = []
    real_open = encoder.Image.open

    def counting_open(path: object, *args: object, **kwargs: object) -> Image.Image:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(encoder.Image, "open", counting_open)
    gray = [write_png(tmp_path / f"{i}.png", 10 * i) for i in range(3)]
    spec = InputSpec((3, 8, 8), "scale", None, "RGB")
    encoder.check_channels(gray[0], spec.mode)
    assert opened == [str(gray[0])] and "channels" in encoder._warned
    for path in gray[1:]:
        assert tuple(spec.prepare(path).shape) == (3, 8, 8)
    assert opened == [str(gray[0])]
