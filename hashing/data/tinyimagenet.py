"""Tiny-ImageNet-200 in its official release layout, downloaded with ``download: true``.

The release (``tiny-imagenet-200.zip``, :data:`URL`) unpacks to::

    tiny-imagenet-200/wnids.txt                     the 200 class ids (WordNet noun synsets)
    tiny-imagenet-200/words.txt                     <wnid>\\t<lemmas> for all of ImageNet
    tiny-imagenet-200/train/<wnid>/images/*.JPEG    500 a class, 64x64
    tiny-imagenet-200/val/images/*.JPEG             10,000, labelled by
    tiny-imagenet-200/val/val_annotations.txt       <file>\\t<wnid>\\t<box>
    tiny-imagenet-200/test/images/*.JPEG            unlabelled (not read)

``root`` is that folder or the one holding it. Class ``i`` is the ``i``-th id of the sorted
``wnids.txt`` (so class names are WordNet ids, as in a taxonomy made by
``python -m hashing.taxonomy wordnet``). The pool is the training images (sorted by class id,
then file name) followed by the validation images (by class, then file name): the order of the
shared features file ``tinyimagenet200_efficientnet_lite0_128.npz``.

Protocol ``tinyimagenet200``: queries = the validation images (50 a class), database = the
training images, training set = ``train_per_class`` (100) a class drawn from the database,
mAP@1000 (docs/taxonomy.md).
"""

from __future__ import annotations

import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashing.data.base import Pool, RetrievalDataModule, build_protocol
from hashing.data.images import check_files_exist, image_source
from hashing.data.splits import Protocol
from hashing.runs.atomic import atomic_path
from hashing.runs.errors import UserError

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
FOLDER = "tiny-imagenet-200"


def release_folder(root: Path) -> Path:
    """``root`` itself when it holds ``wnids.txt``, else ``root/tiny-imagenet-200``."""
    return root if (root / "wnids.txt").is_file() else root / FOLDER


def download_release(root: Path, url: str = URL) -> Path:
    """Fetch the release zip from ``url`` into ``root`` and unpack it (once); returns the
    release folder. The zip is written whole or not at all, then extracted next to it."""
    folder = release_folder(root)
    if (folder / "wnids.txt").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"{FOLDER}.zip"
    if not archive.is_file():
        with (
            atomic_path(archive) as tmp,
            urllib.request.urlopen(url) as response,
            open(tmp, "wb") as handle,
        ):
            shutil.copyfileobj(response, handle, length=1 << 20)
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        if not any(name.rstrip("/").endswith(f"{FOLDER}/wnids.txt") for name in names):
            raise UserError(f"{archive} (from {url}) holds no {FOLDER}/wnids.txt")
        staging = root / f".{FOLDER}.extracting"
        shutil.rmtree(staging, ignore_errors=True)
        bundle.extractall(staging)
    (staging / FOLDER).replace(root / FOLDER)
    shutil.rmtree(staging, ignore_errors=True)
    return root / FOLDER


def read_words(path: Path) -> dict[str, str]:
    """``words.txt``: wnid -> its lemmas (first one kept when several lines name it)."""
    words: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            wnid, _, lemmas = line.partition("\t")
            words.setdefault(wnid.strip(), lemmas.strip())
    return words


class TinyImageNetDataModule(RetrievalDataModule):
    """Tiny-ImageNet-200 (200 classes, 64x64 JPEG) in the official layout; see the module doc.

    Args:
        root: the release folder or its parent (where ``download`` unpacks it).
        download: fetch :data:`URL` in :meth:`prepare_data` when the layout is absent.
        url: where the zip comes from (a mirror, or ``file://`` for a local copy).
        image_size: resize to this square (None keeps 64x64).
        in_memory: decode all 110,000 images once (cached in ``cache_dir``) or read per item.
    """

    default_transform = "crop_flip"

    def __init__(
        self,
        root: str | Path,
        download: bool = False,
        url: str = URL,
        protocol: str = "tinyimagenet200",
        query_per_class: int = 50,
        train_per_class: int = 100,
        top_k: int | None = None,
        image_size: int | None = None,
        in_memory: bool = False,
        cache_dir: str | Path | None = None,
        name: str = "tinyimagenet200",
        **base_options: Any,
    ) -> None:
        super().__init__(name=name, **base_options)
        self.root = Path(root)
        self.download = bool(download)
        self.url = str(url)
        self.image_size = None if image_size is None else int(image_size)
        self.in_memory = bool(in_memory)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._proto = build_protocol(protocol, self.name, query_per_class, train_per_class, top_k)
        self.classes: list[str] = []
        #: each class's lemmas from words.txt ("" where it has none)
        self.class_words: list[str] = []

    def _protocol(self) -> Protocol:
        return self._proto

    def prepare_data(self) -> None:
        """Download and unpack the release when ``download`` is true and it is not there."""
        if self.download:
            download_release(self.root, self.url)

    def _scan(self) -> tuple[list[Path], list[int], dict[str, np.ndarray]]:
        """(paths, labels, groups) in pool order; a missing part of the layout is named."""
        folder = release_folder(self.root)
        wnids_file = folder / "wnids.txt"
        if not wnids_file.is_file():
            hint = "" if self.download else " or set data.download=true"
            raise UserError(
                f"data.root={self.root} holds no Tiny-ImageNet release ({wnids_file} is "
                f"missing): unpack {URL} there{hint}"
            )
        self.classes = sorted(
            line.strip() for line in wnids_file.read_text().splitlines() if line.strip()
        )
        index = {wnid: i for i, wnid in enumerate(self.classes)}
        words = read_words(folder / "words.txt")
        self.class_words = [words.get(wnid, "") for wnid in self.classes]
        paths: list[Path] = []
        labels: list[int] = []
        for wnid in self.classes:
            files = sorted((folder / "train" / wnid / "images").glob("*.JPEG"))
            if not files:
                raise UserError(f"{folder / 'train' / wnid / 'images'} holds no .JPEG images")
            paths += files
            labels += [index[wnid]] * len(files)
        num_train = len(paths)
        annotations = folder / "val" / "val_annotations.txt"
        if not annotations.is_file():
            raise UserError(f"{annotations} is missing: the validation labels come from it")
        val: list[tuple[int, str]] = []
        for number, line in enumerate(annotations.read_text().splitlines(), start=1):
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise UserError(
                    f"{annotations} line {number} ({line[:60]!r}) names no class of wnids.txt"
                )
            val.append((index[parts[1]], parts[0]))
        for label, file in sorted(val, key=lambda item: (item[0], image_number(item[1]))):
            paths.append(folder / "val" / "images" / file)
            labels.append(label)
        check_files_exist(paths[num_train:], str(annotations))
        groups = {"train": np.arange(num_train), "test": np.arange(num_train, len(paths))}
        return paths, labels, groups

    def _load_pool(self) -> Pool:
        paths, labels, groups = self._scan()
        source = image_source(paths, self.in_memory, self.image_size, self.cache_dir)
        return Pool(source, torch.tensor(labels, dtype=torch.long), len(self.classes), groups)


def image_number(file: str) -> tuple[int, str]:
    """``val_123.JPEG`` -> (123, name): validation images in numeric order."""
    stem = Path(file).stem
    digits = stem.rsplit("_", 1)[-1]
    return (int(digits) if digits.isdigit() else -1, file)
