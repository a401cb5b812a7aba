"""Image sources for export and search: one image, a folder, or a list file -> paths (+labels).

Kept small and separate so it can give way to the data package's readers: a folder whose
images all sit in class sub-folders (``root/<class>/<image>``) gets class-index labels in sorted
folder-name order; any other folder is read recursively without labels. A list file holds one
image a line, ``path [0 1 0 ...]`` (SPEC §2's multi-hot format), paths relative to ``root``
(default: the list file's folder).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class ImageList:
    """Image paths (absolute) with optional labels (class indices (N,) or multi-hot (N, C))."""

    paths: list[str]
    labels: np.ndarray | None = None
    classes: list[str] | None = None


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an image by its extension."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    root: str | os.PathLike[str] | None = None,
) -> ImageList:
    """Resolve a source (image file, folder, list file, or a sequence of image files)."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            return _folder(path)
        if not path.is_file():
            raise ValueError(
                f"image source {path} does not exist (expected an image, folder or list file)"
            )
        if is_image_file(path):
            return ImageList([str(path.resolve())])
        return _list_file(path, Path(root) if root is not None else path.parent)
    paths = [Path(p) for p in source]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"{len(missing)} image files do not exist, e.g. {missing[:3]}")
    return ImageList([str(p.resolve()) for p in paths])


def _folder(folder: Path) -> ImageList:
    top = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise ValueError(f"folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    class_dirs = [p for p in top if p.is_dir()]
    if class_dirs and not any(p.is_file() and is_image_file(p) for p in top):
        classes = [p.name for p in class_dirs]
        paths, labels = [], []
        for label, class_dir in enumerate(class_dirs):
            members = sorted(p for p in class_dir.rglob("*") if p.is_file() and is_image_file(p))
            paths += [str(p.resolve()) for p in members]
            labels += [label] * len(members)
        return ImageList(paths, np.asarray(labels, dtype=np.int64), classes)
    return ImageList([str(p.resolve()) for p in files])


def _list_file(path: Path, root: Path) -> ImageList:
    paths: list[str] = []
    rows: list[list[int]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            rows.append([int(value) for value in fields[1:]])
        except ValueError as err:
            raise ValueError(
                f"{path}:{number}: expected 'path [0 1 0 ...]' (labels as integers), got {line!r}"
            ) from err
        paths.append(str((root / fields[0]).resolve()))
    if not paths:
        raise ValueError(f"list file {path} names no images")
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"{path}: lines have different numbers of labels {sorted(widths)}")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(paths)} images listed in {path} do not exist under {root}, "
            f"e.g. {missing[:3]}; set the root folder the paths are relative to"
        )
    labels = np.asarray(rows, dtype=np.uint8) if widths != {0} else None
    return ImageList(paths, labels)


def read_image(path: str | os.PathLike[str], mode: str) -> torch.Tensor:
    """One image file as a uint8 tensor (C, H, W) in PIL ``mode`` ("L" or "RGB")."""
    try:
        with Image.open(path) as image:
            array = np.array(image.convert(mode), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))
