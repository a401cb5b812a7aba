"""Datasets given as list files (thuml/HashNet, DeepHash-pytorch format; docs/data.md#own-data).

Under ``root``: ``train.txt``, ``test.txt`` (the queries) and ``database.txt``, one image a
line: ``relative/path.jpg 0 1 0 1 ...`` (a multi-hot label vector). Paths are joined to
``image_root`` (default ``root``) after removing ``strip_prefix`` (DeepHash-pytorch's lists
for ImageNet carry an absolute ``/dataset/imagenet/`` prefix). An image listed in several files
(the training images are usually in the database too) is one pool item. The split is the
files' own (the ``official`` shape); only the validation split is drawn (seeded) from train.

Labels: multi-hot float32 (N, C); when every row has exactly one positive (ImageNet-100) they
become class indices (N,) long, unless ``multi_label: true`` forces multi-hot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashing.data.base import Pool, RetrievalDataModule
from hashing.data.images import check_files_exist, image_source
from hashing.data.splits import Protocol
from hashing.runs.errors import MissingFileError, UserError

LIST_FILES = {"train": "train.txt", "test": "test.txt", "database": "database.txt"}


def parse_list_file(path: Path, width: int | None = None) -> tuple[list[str], np.ndarray]:
    """Paths and (N, C) uint8 label rows of one list file; errors name the file and line."""
    if not path.is_file():
        raise MissingFileError(f"list file {path} does not exist")
    names: list[str] = []
    rows: list[list[int]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise UserError(f"list file {path} is not UTF-8 text ({error.reason})") from error
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise UserError(f"{path}:{number}: no label vector after {parts[0]!r}")
        try:
            row = [int(v) for v in parts[1:]]
        except ValueError as err:
            raise UserError(f"{path}:{number}: labels must be 0/1 integers ({err})") from err
        if width is None:
            width = len(row)
        if len(row) != width:
            raise UserError(
                f"{path}:{number}: label vector has {len(row)} entries, expected {width} "
                f"(the length of the first label vector read)"
            )
        if any(v not in (0, 1) for v in row):
            raise UserError(f"{path}:{number}: labels must be 0/1, got {parts[1:]}")
        names.append(parts[0])
        rows.append(row)
    if not names:
        raise UserError(f"list file {path} has no entries")
    return names, np.asarray(rows, dtype=np.uint8)


class ImageListDataModule(RetrievalDataModule):
    """train/test/database list files; images read per item (or decoded into memory)."""

    default_transform = "imagenet"

    def __init__(
        self,
        root: str | Path,
        name: str | None = None,
        top_k: int | None = None,
        image_root: str | Path | None = None,
        strip_prefix: str | None = None,
        list_files: dict[str, str] | None = None,
        multi_label: bool | None = None,
        check_files: bool = True,
        image_size: int | None = None,
        in_memory: bool = False,
        cache_dir: str | Path | None = None,
        decode_workers: int | None = None,
        **base_options: Any,
    ) -> None:
        self.root = Path(root)
        super().__init__(
            name=name or self.root.name or "imagelist",
            **base_options,
        )
        if top_k is not None and int(top_k) < 1:
            raise UserError(f"top_k must be a positive integer or null (ALL), got {top_k}")
        if in_memory and image_size is None:
            raise UserError("in_memory: true needs image_size (images are decoded to one size)")
        files = {**LIST_FILES, **(list_files or {})}
        unknown = sorted(set(files) - set(LIST_FILES))
        if unknown:
            raise UserError(f"list_files keys {unknown} unknown; expected {sorted(LIST_FILES)}")
        self.list_files = files
        self.image_root = Path(image_root) if image_root is not None else self.root
        self.strip_prefix = strip_prefix
        self.force_multi_label = multi_label
        self.check_files = bool(check_files)
        self.image_size = None if image_size is None else int(image_size)
        self.in_memory = bool(in_memory)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.decode_workers = decode_workers
        self._proto = Protocol("official", top_k=None if top_k is None else int(top_k))

    def _protocol(self) -> Protocol:
        return self._proto

    def _resolve(self, name: str) -> Path:
        if self.strip_prefix and name.startswith(self.strip_prefix):
            name = name[len(self.strip_prefix) :]
        return self.image_root / name.lstrip("/") if not Path(name).is_absolute() else Path(name)

    def _load_pool(self) -> Pool:
        if not self.root.is_dir():
            raise MissingFileError(
                f"{self.name} root {self.root} does not exist; it must hold "
                f"{', '.join(self.list_files.values())}"
            )
        index: dict[str, int] = {}
        rows: list[np.ndarray] = []
        groups: dict[str, np.ndarray] = {}
        width: int | None = None
        for part, filename in self.list_files.items():
            list_path = self.root / filename
            names, labels = parse_list_file(list_path, width)
            width = labels.shape[1]
            positions = []
            for number, (name, row) in enumerate(zip(names, labels, strict=True), start=1):
                if name not in index:
                    index[name] = len(rows)
                    rows.append(row)
                elif not np.array_equal(rows[index[name]], row):
                    raise UserError(
                        f"{list_path}:{number}: {name} is listed with a different label vector "
                        f"in another list file"
                    )
                positions.append(index[name])
            groups[part] = np.asarray(positions, dtype=np.int64)
        shared = np.intersect1d(groups["train"], groups["test"])
        if shared.size:
            names_by_index = list(index)
            raise UserError(
                f"{shared.size} images are in both {self.list_files['train']} and "
                f"{self.list_files['test']} (e.g. {names_by_index[shared[0]]}); queries must "
                f"never be trained on"
            )
        paths = [self._resolve(name) for name in index]
        if self.check_files:
            check_files_exist(paths, f"the list files in {self.root}")
        matrix = torch.from_numpy(np.stack(rows))
        single = bool((matrix.sum(1) == 1).all()) and self.force_multi_label is not True
        if self.force_multi_label is False and not single:
            raise UserError(f"multi_label: false but some {self.name} items have 0 or 2+ labels")
        labels_t = matrix.argmax(1).long() if single else matrix.float()
        source = image_source(
            paths, self.in_memory, self.image_size, self.cache_dir, "RGB", self.decode_workers
        )
        return Pool(source, labels_t, int(matrix.shape[1]), groups)
