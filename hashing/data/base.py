"""RetrievalDataModule: the protocol-driven base every dataset builds on (CONTRACT "DataModule").

A subclass supplies a *pool* (every item of the dataset, with labels and, where the dataset
has them, its own train/test partitions) and a :class:`Protocol`; the base draws the split per
class with a seed, saves it as ``.npz`` in ``split_dir`` (reused on the next run, validated
against the pool) and serves loaders yielding ``(x, y, idx)``, ``idx`` being the item's index
within its split.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from hashing.data.labels import LABEL_USES, Labelling, check_label_options, draw_labelling
from hashing.data.resumable import EpochShuffleSampler, ResumableDataLoader
from hashing.data.splits import (
    NAMED_PROTOCOLS,
    ORDERS,
    SHAPES,
    SPLIT_KEYS,
    Protocol,
    make_split,
    order_split,
    spec_aliases,
)
from hashing.data.transforms import Transform, build_transform, to_unit_float
from hashing.digests import labels_digest
from hashing.runs.atomic import atomic_path, atomic_write
from hashing.runs.errors import UserError
from hashing.taxonomy import ClassRelations, read_taxonomy


class ItemSource(TypingProtocol):
    """Anything indexable that returns one item's tensor (a tensor itself qualifies)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> torch.Tensor: ...


@dataclass
class Pool:
    """Every item of a dataset: ``source[i]`` is item i, ``labels[i]`` its label.

    ``labels`` is (N,) long for single-label data or (N, C) float32 multi-hot;
    ``groups`` maps a dataset's own partitions (``train``, ``test``, ``database``) to index
    arrays into the pool, for the ``official`` protocol.
    """

    source: ItemSource
    labels: torch.Tensor
    num_classes: int
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.source) != len(self.labels):
            raise ValueError(
                f"pool has {len(self.source)} items but {len(self.labels)} labels; they must match"
            )


class SplitDataset(Dataset):
    """The items ``indices`` of a pool, transformed; yields ``(x, y, position in split)``."""

    def __init__(
        self,
        source: ItemSource,
        labels: torch.Tensor,
        indices: np.ndarray,
        transform: Transform,
    ) -> None:
        self.source = source
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.labels = labels[self.indices]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        x = self.transform(self.source[int(self.indices[position])])
        return x, self.labels[position], position


class BatchedSplit(Dataset):
    """A :class:`SplitDataset` whose loader fetches a batch by one tensor index.

    For in-memory items (a tensor pool) under a transform that treats a batch as it treats
    each item (:data:`BATCHABLE_TRANSFORMS`), ``__getitems__`` indexes the pool once and
    transforms the batch: the same ``(x, y, idx)`` batch as per-item ``__getitem__`` and
    collation, value for value, without a Python call per item (a per-step cost that matters
    when the step itself is a linear layer on cached features). The loader's sampler is
    unchanged, so the batches and a mid-epoch resume are too. Items stay reachable one by one.
    """

    def __init__(self, split: SplitDataset) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.split[position]

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(positions, dtype=torch.long)
        split = self.split
        return split.transform(split.source[split.indices[rows]]), split.labels[rows], rows


def keep_batch(batch: Any) -> Any:
    """The collate function of a :class:`BatchedSplit` loader: the batch is built already."""
    return batch


#: transforms that map a batch exactly as they map each of its items (no per-item randomness)
BATCHABLE_TRANSFORMS: tuple[Transform, ...] = (to_unit_float,)


def is_batchable(source: ItemSource, transform: Transform) -> bool:
    """True when ``transform(source[rows])`` equals the stacked per-item transforms: the
    items are one in-memory tensor and the transform is in :data:`BATCHABLE_TRANSFORMS`."""
    return isinstance(source, torch.Tensor) and transform in BATCHABLE_TRANSFORMS


def batched(dataset: Dataset) -> Dataset:
    """``dataset`` as a :class:`BatchedSplit` where its items can be fetched a batch at a time."""
    if isinstance(dataset, SplitDataset) and is_batchable(dataset.source, dataset.transform):
        return BatchedSplit(dataset)
    return dataset


class RetrievalDataModule(pl.LightningDataModule, ABC):
    """Base DataModule: seeded, cached per-class protocol splits and (x, y, idx) loaders.

    Subclasses implement :meth:`_load_pool` and :meth:`_protocol`; :meth:`prepare_data` may
    download. ``transform`` is a preset name (see :mod:`hashing.data.transforms`); ``None``
    picks the subclass's ``default_transform``. Subclasses take only their own arguments and
    forward the rest (``**base_options``: split seed, validation fraction, batch sizes, workers,
    split folder, transform, loader options, split order) to this constructor.

    ``seed`` is the run's seed (the pipeline passes ``cfg.seed``): it sets the training order,
    epoch by epoch (:attr:`order_seed`, :mod:`hashing.data.resumable`), so runs of different
    seeds see different batches and a resumed run continues on its batches. ``shuffle_seed``,
    where given, sets the order instead (the same batches under every seed).

    ``split_order`` is ``shuffled`` (default: every split array is a seeded permutation, so the
    ranking's tie-break by database position carries no label information) or ``file`` (the
    pool's own order, e.g. to reproduce a published database list).

    ``hierarchy`` names a class taxonomy file (docs/taxonomy.md) whose nodes include every
    class name (:attr:`class_names`); the evaluation then reports how far in it a miss lies.

    ``label_fraction``, ``label_noise`` and ``label_noise_kind`` make the training labels
    imperfect (docs/labels.md, :mod:`hashing.data.labels`): drawn once per split from
    ``label_seed`` (None: the split seed) on the fit split only. The training loader serves the
    view :attr:`label_use` names (set by the pipeline from the method's ``label_use``); every
    other split keeps its clean labels.
    """

    default_transform: str = "scale"

    def __init__(
        self,
        *,
        name: str,
        split_seed: int = 0,
        val_fraction: float = 0.1,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        split_dir: str | Path | None = None,
        transform: str | None = None,
        pin_memory: bool | None = None,
        seed: int = 0,
        shuffle_seed: int | None = None,
        drop_last: bool = False,
        split_order: str = "shuffled",
        hierarchy: str | Path | None = None,
        label_fraction: float = 1.0,
        label_noise: float = 0.0,
        label_noise_kind: str = "uniform",
        label_seed: int | None = None,
    ) -> None:
        super().__init__()
        check_label_options(label_fraction, label_noise, label_noise_kind)
        if split_order not in ORDERS:
            raise UserError(f"split_order={split_order!r} is invalid; expected one of {ORDERS}")
        if not 0.0 < float(val_fraction) < 1.0:
            raise UserError(f"val_fraction must be in (0, 1), got {val_fraction}")
        for key, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if int(value) < 1:
                raise UserError(f"{key} must be >= 1, got {value}")
        if int(num_workers) < 0:
            raise UserError(f"num_workers must be >= 0, got {num_workers}")
        self._name = str(name)
        self.split_seed = int(split_seed)
        self.val_fraction = float(val_fraction)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.num_workers = int(num_workers)
        self.split_dir = Path(split_dir) if split_dir is not None else None
        self.transform = transform if transform is not None else self.default_transform
        build_transform(self.transform, train=False)  # validate the name now, not at fit time
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.seed = int(seed)
        self.shuffle_seed = None if shuffle_seed is None else int(shuffle_seed)
        self.drop_last = bool(drop_last)
        self.split_order = str(split_order)
        self.hierarchy = None if hierarchy in (None, "") else Path(hierarchy)
        if self.hierarchy is not None and not self.hierarchy.is_file():
            raise UserError(
                f"data.hierarchy={self.hierarchy} does not exist; give a taxonomy file "
                f"(docs/taxonomy.md) or leave it null"
            )
        if label_noise_kind == "sibling" and float(label_noise) > 0 and self.hierarchy is None:
            raise UserError(
                "data.label_noise_kind=sibling swaps a label for the nearest class in the "
                "dataset's taxonomy: set data.hierarchy=<taxonomy file> (docs/taxonomy.md), or "
                "use data.label_noise_kind=uniform"
            )
        self.label_fraction = float(label_fraction)
        self.label_noise = float(label_noise)
        self.label_noise_kind = str(label_noise_kind)
        self.label_seed = self.split_seed if label_seed is None else int(label_seed)
        #: the view of the training labels the train loader serves (:data:`LABEL_USES`)
        self.label_use = "labelled"
        self._labelling: Labelling | None = None
        self._relations: ClassRelations | None = None
        self._pool: Pool | None = None
        #: True while :meth:`load_pool` reads the pool for encoding (no split is drawn from it)
        self.pool_only = False
        self._split: dict[str, np.ndarray] | None = None
        self._split_path: Path | None = None
        self._datasets: dict[tuple[str, bool], SplitDataset] = {}
        self._input_shape: tuple[int, ...] | None = None

    # --- what a subclass provides -------------------------------------------------------
    @abstractmethod
    def _load_pool(self) -> Pool:
        """Read (never download) every item of the dataset."""

    @abstractmethod
    def _protocol(self) -> Protocol:
        """The protocol this instance was configured with."""

    # --- contract properties ------------------------------------------------------------
    @property
    def order_seed(self) -> int:
        """The seed of the training order: ``shuffle_seed`` where given, else the run's seed."""
        return self.seed if self.shuffle_seed is None else self.shuffle_seed

    @property
    def name(self) -> str:
        """Dataset name (used in split file names and logs)."""
        return self._name

    @property
    def protocol(self) -> Protocol:
        """The resolved protocol."""
        return self._protocol()

    @property
    def protocol_k(self) -> int | None:
        """The dataset's protocol top-k for mAP (None = ALL)."""
        return self._protocol().top_k

    @property
    def num_classes(self) -> int:
        """Number of classes (length of a multi-hot label vector)."""
        return self._require_pool().num_classes

    @property
    def multi_label(self) -> bool:
        """True when labels are multi-hot (N, C) rather than class indices (N,)."""
        return self._require_pool().labels.ndim == 2

    @property
    def class_names(self) -> list[str]:
        """Each class index's name: the dataset's own (``classes``, e.g. folder names or a
        features file's ``classes`` array) when it has one per class, else ``"0"``, ``"1"``..."""
        names = [str(name) for name in getattr(self, "classes", None) or []]
        if len(names) == self.num_classes:
            return names
        return [str(index) for index in range(self.num_classes)]

    @property
    def class_relations(self) -> ClassRelations | None:
        """The classes placed in the ``hierarchy`` taxonomy (None without one; after setup).

        A class name absent from the file is a UserError naming it."""
        if self.hierarchy is None:
            return None
        if self._relations is None:
            if self.multi_label:
                raise UserError(
                    f"data.hierarchy is set but {self.name} is multi-label; the taxonomy "
                    f"metrics compare one class per item"
                )
            self._relations = ClassRelations(read_taxonomy(self.hierarchy), self.class_names)
        return self._relations

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one transformed input item (what the backbone receives, batch dim aside)."""
        if self._input_shape is None:
            pool = self._require_pool()
            item = build_transform(self.transform, train=False)(pool.source[0])
            self._input_shape = tuple(item.shape)
        return self._input_shape

    @property
    def pool(self) -> Pool:
        """Every item of the dataset, in the pool's own order (after setup)."""
        return self._require_pool()

    @property
    def split(self) -> dict[str, np.ndarray]:
        """The split's index arrays into the pool (query, train, database, val_query, fit)."""
        if self._split is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before using the split")
        return self._split

    @property
    def split_path(self) -> Path | None:
        """Where the split file lives (None when split_dir is None: nothing is saved)."""
        return self._split_path

    def _require_pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before reading properties")
        return self._pool

    # --- setup and split cache ------------------------------------------------------------
    def load_pool(self) -> Pool:
        """Every item (after :meth:`prepare_data`), without drawing a split: what encoding every
        item needs (features), so the per-class counts a split draws are not checked.
        :meth:`setup` is not needed."""
        if self._pool is None:
            self.pool_only = True
            try:
                self.prepare_data()
                self._pool = self._load_pool()
            finally:
                self.pool_only = False
        return self._pool

    def split_filename(self) -> str:
        """File name of this (dataset, protocol, seed, val fraction, order)'s split."""
        return (
            f"{self.name}__{self._protocol().key}__seed{self.split_seed}"
            f"__val{self.val_fraction:g}__{self.split_order}.npz"
        )

    def setup(self, stage: str | None = None) -> None:
        """Load the pool and draw or reload the split; later calls do nothing."""
        if self._split is not None:
            return
        pool = self._load_pool()
        protocol = self._protocol()
        digest = labels_digest(pool.labels)
        path = self.split_dir / self.split_filename() if self.split_dir is not None else None
        split = self._read_split(path, len(pool.labels), digest) if path is not None else None
        if split is None:
            labels = pool.labels.numpy()
            split = make_split(
                labels, protocol, self.split_seed, self.val_fraction, groups=pool.groups
            )
            split = order_split(split, self.split_order, self.split_seed)
            self._check_split(split, len(pool.labels))
            if path is not None:
                self._write_split(path, split, len(pool.labels), digest)
        self._check_split(split, len(pool.labels))
        self._pool, self._split, self._split_path = pool, split, path
        self._datasets = {}
        self._labelling = None
        self._labelling = self.labelling  # drawn now: a bad setting fails before training

    @property
    def labelling(self) -> Labelling:
        """The fit split's training labels: which items keep one, which were replaced."""
        if self._labelling is None:
            relations = self.class_relations if self.label_noise_kind == "sibling" else None
            fit = self.split["fit"]
            self._labelling = draw_labelling(
                fit,
                self._require_pool().labels[torch.as_tensor(fit, dtype=torch.long)],
                fraction=self.label_fraction,
                noise=self.label_noise,
                kind=self.label_noise_kind,
                seed=self.label_seed,
                num_classes=self.num_classes,
                distance=None if relations is None else relations.distance,
            )
        return self._labelling

    def use_labels(self, label_use: str) -> None:
        """Serve the training loader the view ``label_use`` (:data:`LABEL_USES`) of the labels."""
        if label_use not in LABEL_USES:
            raise ValueError(f"label_use={label_use!r} unknown; expected one of {LABEL_USES}")
        self.label_use = label_use

    def label_record(self) -> dict[str, Any]:
        """``labels.json`` of a run (:meth:`Labelling.record` under :attr:`label_use`)."""
        return self.labelling.record(self.label_use, self.class_names)

    @staticmethod
    def _check_split(split: Mapping[str, np.ndarray], size: int) -> None:
        """Refuse a split whose training items include query items or that indexes past N."""
        for key in SPLIT_KEYS:
            arr = split[key]
            if len(arr) and (arr.min() < 0 or arr.max() >= size):
                raise UserError(f"split {key!r} has indices outside 0..{size - 1}")
        if np.intersect1d(split["train"], split["query"]).size:
            raise UserError("split is invalid: training items include query items")
        if np.intersect1d(split["fit"], split["val_query"]).size:
            raise UserError("split is invalid: validation queries are in the fit split")

    def _read_split(self, path: Path, size: int, digest: str) -> dict[str, np.ndarray] | None:
        """The saved split at ``path`` if it exists; raise if it belongs to other data."""
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                stored = {key: saved[key] for key in saved.files}
        except (OSError, ValueError) as err:
            raise UserError(f"split file {path} is unreadable ({err}); delete it") from err
        missing = [k for k in (*SPLIT_KEYS, "pool_size", "labels_sha1") if k not in stored]
        if missing:
            raise UserError(f"split file {path} lacks {missing}; delete it to redraw")
        if int(stored["pool_size"]) != size or str(stored["labels_sha1"]) != digest:
            raise UserError(
                f"split file {path} was drawn for a dataset of {int(stored['pool_size'])} items "
                f"with other labels; this '{self.name}' has {size} items. Split files are named "
                f"by data.name: give this data its own (data.name=<name>), point data.split_dir "
                f"elsewhere, or delete the file if its data is gone (a split is never silently "
                f"redrawn: a reloaded model could see its query items in training)"
            )
        return {key: stored[key].astype(np.int64) for key in SPLIT_KEYS}

    def _write_split(
        self, path: Path, split: Mapping[str, np.ndarray], size: int, digest: str
    ) -> None:
        arrays: dict[str, Any] = {key: np.asarray(split[key], np.int64) for key in SPLIT_KEYS}
        arrays["pool_size"] = np.int64(size)
        arrays["labels_sha1"] = np.str_(digest)
        arrays["protocol"] = np.str_(self._protocol().key)
        arrays["seed"] = np.int64(self.split_seed)
        arrays["order"] = np.str_(self.split_order)  # metadata: the file name holds it too
        atomic_write(path, lambda handle: np.savez(handle, **arrays))

    def export_splits(self, directory: str | Path) -> Path:
        """Save this run's split into ``directory`` (the run folder); returns the file."""
        split = self.split
        pool = self._require_pool()
        target = Path(directory) / self.split_filename()
        if self._split_path is not None and self._split_path.exists():
            with atomic_path(target) as tmp:
                shutil.copyfile(self._split_path, tmp)
        else:
            self._write_split(target, split, len(pool.labels), labels_digest(pool.labels))
        return target

    # --- datasets and loaders ---------------------------------------------------------------
    def dataset(self, key: str, train: bool = False) -> SplitDataset:
        """Split ``key`` (query/train/database/val_query/fit) with train or eval transforms."""
        if key not in SPLIT_KEYS:
            raise UserError(f"split {key!r} unknown; expected one of {SPLIT_KEYS}")
        if (key, train) not in self._datasets:
            pool = self._require_pool()
            transform = build_transform(self.transform, train=train)
            self._datasets[key, train] = SplitDataset(
                pool.source, pool.labels, self.split[key], transform
            )
        return self._datasets[key, train]

    def training_dataset(self, view: str | None = None, train: bool = True) -> SplitDataset:
        """The fit split with its training labels, in the view ``view`` (default
        :attr:`label_use`): ``labelled`` holds the labelled items only; ``mask`` and ``none``
        hold every item, an unlabelled one with the label ``UNLABELLED``. Labels are the noisy
        ones where ``label_noise`` replaced some; with every label kept and no noise, the
        ``fit`` split exactly."""
        view = self.label_use if view is None else view
        if view not in LABEL_USES:
            raise ValueError(f"label view {view!r} unknown; expected one of {LABEL_USES}")
        view = "labelled" if view == "labelled" else "mask"
        if (f"training:{view}", train) not in self._datasets:
            pool = self._require_pool()
            labelling = self.labelling
            if view == "labelled":
                rows, labels = labelling.labelled, labelling.labels
            else:
                rows, labels = np.ones(len(labelling.items), bool), labelling.masked_labels()
            # SplitDataset indexes pool-wide labels: place the training ones at their items
            pool_labels = pool.labels.clone()
            pool_labels[torch.as_tensor(labelling.items, dtype=torch.long)] = labels
            self._datasets[f"training:{view}", train] = SplitDataset(
                pool.source,
                pool_labels,
                labelling.items[rows],
                build_transform(self.transform, train=train),
            )
        return self._datasets[f"training:{view}", train]

    def train_labels(self) -> torch.Tensor:
        """Training labels of the labelled fit items (noisy where noise replaced them), in the
        order of :meth:`training_dataset` ``("labelled")``."""
        return self.training_dataset("labelled", train=False).labels

    def _loader_options(self, dataset: Dataset) -> dict[str, Any]:
        """DataLoader options shared by every loader of this DataModule."""
        return {
            "collate_fn": keep_batch if isinstance(dataset, BatchedSplit) else None,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.num_workers > 0,
        }

    def _loader(self, dataset: Dataset, batch_size: int) -> DataLoader:
        """An evaluation loader: the split in its order."""
        dataset = batched(dataset)
        return DataLoader(dataset, batch_size=batch_size, **self._loader_options(dataset))

    def train_dataloader(self) -> DataLoader:
        """Batches of the fit split (train minus validation queries; its training labels in
        the view :attr:`label_use`) in the order of epoch e: a permutation drawn from
        ``epoch_seed(order_seed, e)``, resumable mid-epoch."""
        dataset = batched(self.training_dataset(train=True))
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(dataset, self.order_seed),
            drop_last=self.drop_last,
            # its own generator: creating an iterator draws the workers' base seed from it,
            # which must not consume the global RNG (carried through checkpoints by RNGState)
            generator=torch.Generator().manual_seed(self.order_seed),
            **self._loader_options(dataset),
        )

    def val_dataloader(self) -> list[DataLoader]:
        """[validation queries, validation database (= the fit split)]."""
        return [
            self._loader(self.dataset("val_query"), self.eval_batch_size),
            self._loader(self.dataset("fit"), self.eval_batch_size),
        ]

    def test_dataloader(self) -> list[DataLoader]:
        """[protocol queries, protocol database]."""
        return [
            self._loader(self.dataset("query"), self.eval_batch_size),
            self._loader(self.dataset("database"), self.eval_batch_size),
        ]

    def predict_dataloader(self) -> list[DataLoader]:
        """Same as the test loaders (encode queries and database)."""
        return self.test_dataloader()

    def describe(self) -> dict[str, Any]:
        """Sizes of every split, for logs."""
        return {key: len(self.split[key]) for key in SPLIT_KEYS}


def resolve_shape(protocol: str, aliases: Mapping[str, str], allowed: Sequence[str]) -> str:
    """Map a user-facing protocol name (e.g. ``cifar10-1``) to a split shape in ``allowed``."""
    shape = aliases.get(protocol, protocol)
    if shape not in allowed:
        names = sorted({name for name, s in aliases.items() if s in allowed} | set(allowed))
        raise UserError(f"protocol {protocol!r} is not available here; expected one of {names}")
    return shape


def build_protocol(
    protocol: str,
    dataset: str,
    query_per_class: int,
    train_per_class: int,
    top_k: int | None = None,
    allowed: Sequence[str] = SHAPES,
) -> Protocol:
    """The :class:`Protocol` a user's protocol name picks for ``dataset``.

    ``protocol`` is resolved through :func:`spec_aliases` of ``dataset`` (``cifar10-1``,
    ``mnist-2``, ...) to a shape in ``allowed``; the per-class counts apply to the per-class
    shapes and are ignored by ``official`` (the dataset's own partitions).
    """
    shape = resolve_shape(protocol, spec_aliases(dataset), allowed)
    if top_k is None and protocol in NAMED_PROTOCOLS:
        top_k = NAMED_PROTOCOLS[protocol][1]
    top_k = None if top_k is None else int(top_k)
    if shape == "official":
        return Protocol(shape, top_k=top_k)
    return Protocol(shape, int(query_per_class), int(train_per_class), top_k)
