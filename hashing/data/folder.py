"""A user's own images in class sub-folders (torchvision ImageFolder layout).

Two layouts (``layout: auto`` picks by what exists):
  ``tree``  ``root/<class>/<image>``: one pool, split by a per-class protocol.
  ``split`` ``root/train/<class>/...`` and ``root/test/<class>/...``: the pool is train + test
            (train first), so per-class protocols draw from all of it (protocol ``cifar10`` on the
            CIFAR-10 folder copy: 60,000 images) and ``official`` uses the two trees as given.
Class indices follow the sorted class-folder names of the train tree (or the single tree).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashing.data.base import Pool, RetrievalDataModule, build_protocol
from hashing.data.images import IMAGE_EXTENSIONS, ImageFileSource, image_source
from hashing.data.splits import Protocol, check_class_sizes
from hashing.runs.errors import MissingFileError, UserError

LAYOUTS = ("auto", "tree", "split")


def _image_files(folder: str, extensions: tuple[str, ...]) -> list[str]:
    """Image files under ``folder`` (recursively), as strings (60,000 Path objects are slow)."""
    found: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                found += _image_files(entry.path, extensions)
            elif entry.name.lower().endswith(extensions):
                found.append(entry.path)
    return found


def scan_class_tree(
    root: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS
) -> dict[str, list[str]]:
    """Sorted class name -> sorted image paths under ``root/<class>/`` (recursively).

    An empty class folder (no file with an image extension) is an error, not a silent class
    with no items: it would break per-class protocols in confusing ways later.
    """
    if not root.is_dir():
        raise MissingFileError(f"image folder {root} does not exist")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise UserError(f"{root} has no class sub-folders; expected {root}/<class>/<image>")
    tree: dict[str, list[str]] = {}
    for name in classes:
        files = sorted(_image_files(str(root / name), extensions))
        if not files:
            raise UserError(
                f"class folder {root / name} is empty (no {', '.join(extensions)} files)"
            )
        tree[name] = files
    return tree


class FolderDataModule(RetrievalDataModule):
    """Images in class folders; decoded once into memory (``in_memory``) or read per item."""

    default_transform = "crop_flip"

    def __init__(
        self,
        root: str | Path,
        name: str | None = None,
        layout: str = "auto",
        protocol: str = "cifar10",
        query_per_class: int = 100,
        train_per_class: int = 500,
        top_k: int | None = None,
        image_size: int | None = 32,
        in_memory: bool = True,
        grayscale: bool = False,
        cache_dir: str | Path | None = None,
        decode_workers: int | None = None,
        **base_options: Any,
    ) -> None:
        self.root = Path(root)
        super().__init__(
            name=name or self.root.name or "folder",
            **base_options,
        )
        if layout not in LAYOUTS:
            raise UserError(f"layout {layout!r} unknown; expected one of {LAYOUTS}")
        if image_size is not None and int(image_size) < 1:
            raise UserError(f"image_size must be a positive integer or null, got {image_size}")
        self.layout = layout
        self.image_size = None if image_size is None else int(image_size)
        self.in_memory = bool(in_memory)
        self.mode = "L" if grayscale else "RGB"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.decode_workers = decode_workers
        self._proto = build_protocol(protocol, self.name, query_per_class, train_per_class, top_k)
        self.classes: list[str] = []
        self._paths: list[str] = []
        self._prepared: tuple[list[str], torch.Tensor | ImageFileSource] | None = None

    def _protocol(self) -> Protocol:
        return self._proto

    def _resolved_layout(self) -> str:
        if not self.root.is_dir():
            raise MissingFileError(
                f"folder dataset root {self.root} does not exist; expected {self.root}/<class>/"
                f"<image> or {self.root}/train/<class>/... and {self.root}/test/<class>/..."
            )
        if self.layout != "auto":
            return self.layout
        has_split = (self.root / "train").is_dir() and (self.root / "test").is_dir()
        return "split" if has_split else "tree"

    def _scan(self) -> tuple[list[str], list[int], list[str], dict[str, np.ndarray]]:
        """(paths, labels, class names, groups) of the whole pool, in pool order."""
        layout = self._resolved_layout()
        if layout == "split":
            train = scan_class_tree(self.root / "train")
            test = scan_class_tree(self.root / "test")
            unknown = sorted(set(test) - set(train))
            if unknown:
                raise UserError(
                    f"{self.root / 'test'} has classes missing from {self.root / 'train'}: "
                    f"{unknown[:5]}"
                )
            classes = sorted(train)
            trees = {"train": train, "test": test}
        else:
            if self._proto.shape == "official":
                raise UserError(
                    f"protocol 'official' needs {self.root}/train and {self.root}/test trees; "
                    f"{self.root} is a single class tree (use a per-class protocol)"
                )
            tree = scan_class_tree(self.root)
            classes = sorted(tree)
            trees = {"all": tree}
        self._check_classes(trees)
        index = {name: i for i, name in enumerate(classes)}
        paths: list[str] = []
        labels: list[int] = []
        groups: dict[str, np.ndarray] = {}
        for part, part_tree in trees.items():
            start = len(paths)
            for name, files in part_tree.items():
                paths += files
                labels += [index[name]] * len(files)
            if layout == "split":
                groups[part] = np.arange(start, len(paths))
        return paths, labels, classes, groups

    def _check_classes(self, trees: dict[str, dict[str, list[str]]]) -> None:
        """At least two classes, each with the items the per-class protocol draws, named."""
        sizes: dict[str, int] = {}
        for tree in trees.values():
            for name, files in tree.items():
                sizes[name] = sizes.get(name, 0) + len(files)
        if len(sizes) < 2:
            raise UserError(
                f"data.root={str(self.root)!r} holds {len(sizes)} class folder "
                f"({', '.join(sizes)}): retrieval by class needs at least 2, one sub-folder "
                "of images per class"
            )
        if not self.pool_only:  # encoding every image draws nothing per class
            check_class_sizes(sizes, self._proto.per_class_counts, where=f" under {self.root}")

    def prepare_data(self) -> None:
        """Decode the images into the cache once (Lightning runs this on one process only,
        so DDP ranks then load the .npy instead of each decoding); kept for this process."""
        if self.in_memory and self.cache_dir is not None:
            paths = self._scan()[0]
            self._prepared = (
                paths,
                image_source(
                    paths, True, self.image_size, self.cache_dir, self.mode, self.decode_workers
                ),
            )

    def relative_paths(self) -> list[str]:
        """Every pool item's path relative to ``root``, in pool order (after setup)."""
        return [os.path.relpath(p, self.root) for p in self._paths]

    def _load_pool(self) -> Pool:
        paths, labels, classes, groups = self._scan()
        if self._prepared is not None and self._prepared[0] == paths:
            source = self._prepared[1]
        else:
            source = image_source(
                paths, self.in_memory, self.image_size, self.cache_dir, self.mode,
                self.decode_workers,
            )  # fmt: skip
        self._prepared = None
        self.classes = classes
        self._paths = paths
        return Pool(source, torch.tensor(labels, dtype=torch.long), len(classes), groups)
