"""Image sources for export and search: one image, a folder, or a list file -> paths (+labels).

The reading itself is the data package's (:mod:`hashing.data.images`, :mod:`hashing.data.folder`,
:mod:`hashing.data.imagelist`), so an exported file is decoded exactly as the DataModules decode
it. A folder holding only sub-folders is a class tree (``root/<class>/<image>``: class-index
labels in sorted folder-name order); any other folder is read recursively without labels. A
list file holds one image a line, either ``path`` alone or ``path 0 1 0 ...`` (the multi-hot format
of docs/data.md#own-data), paths relative to ``root`` (default: the list file's folder).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hashing.data.folder import scan_class_tree
from hashing.data.imagelist import parse_list_file
from hashing.data.images import IMAGE_EXTENSIONS, check_files_exist
from hashing.data.images import read_image as decode_image
from hashing.runs.errors import UserError


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
            raise UserError(
                f"image source {path} does not exist (expected an image, folder or list file)"
            )
        if is_image_file(path):
            return ImageList([str(path.resolve())])
        return _list_file(path, Path(root) if root is not None else path.parent)
    paths = [Path(p) for p in source]
    check_files_exist(paths, "the query list")
    return ImageList([str(p.resolve()) for p in paths])


def _folder(folder: Path) -> ImageList:
    top = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if top and all(p.is_dir() for p in top):
        tree = scan_class_tree(folder)
        classes = sorted(tree)
        paths = [str(Path(p).resolve()) for name in classes for p in tree[name]]
        labels = [label for label, name in enumerate(classes) for _ in tree[name]]
        return ImageList(paths, np.asarray(labels, dtype=np.int64), classes)
    files = sorted(str(p.resolve()) for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise UserError(f"folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return ImageList(files)


def _list_file(path: Path, root: Path) -> ImageList:
    not_a_list = f"{path} is neither an image ({', '.join(IMAGE_EXTENSIONS)}) nor a list of images"
    advice = "give an image, a folder of images or a text file with one image path a line"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise UserError(f"{not_a_list} (it is not text): {advice}") from error
    fields = [parts for parts in (line.split() for line in lines) if parts]
    labels: np.ndarray | None = None
    for number, parts in enumerate(fields, start=1):
        if not is_image_file(parts[0]):
            raise UserError(
                f"{not_a_list}: its line {number} starts with {parts[0]!r}, not an image file "
                f"name; {advice}"
            )
    if all(len(parts) == 1 for parts in fields):
        names = [parts[0] for parts in fields]
    else:
        names, labels = parse_list_file(path)
    if not names:
        raise UserError(f"list file {path} names no images")
    paths = [(root / name).resolve() for name in names]
    check_files_exist(paths, f"{path} (relative to {root}; set the root folder if elsewhere)")
    return ImageList([str(p) for p in paths], labels)


def read_image(path: str | os.PathLike[str], mode: str, image_size: int | None) -> torch.Tensor:
    """One image file as a uint8 tensor (C, H, W) in ``mode`` ("L"/"RGB"), optionally resized
    to a square ``image_size`` (as the DataModules decode it)."""
    try:
        return torch.from_numpy(decode_image(path, image_size, mode))
    except OSError as err:
        raise UserError(f"cannot read image {path}: {err}") from err
