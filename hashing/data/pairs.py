"""Composite many-class data from a 10-class dataset: two items side by side (issue 15).

SHC's claim is for 80-555 fine-grained classes; offline we only have 10-class data. An item of
the composite is an ordered pair of items of an *inner* dataset, concatenated along the last
axis (two images side by side, or two feature vectors one after the other):

* single-label (``multi_label: false``): class = the ordered pair ``(a, b)`` -> ``a * K + b``,
  ``K^2`` classes (100 for MNIST or CIFAR-10). Pairs that share a digit or object
  (``(a, b)`` and ``(a, c)``, or ``(a, b)`` and ``(c, b)``) are the near-but-different classes;
  :attr:`PairsDataModule.related_classes` says which they are.
* multi-label (``multi_label: true``): labels = the set of objects shown, multi-hot over ``K``.

The pairs are drawn per ordered pair, seeded by ``split_seed``: queries from the inner
dataset's ``test`` partition, the database from its ``train`` partition, and the training set
is the first ``train_per_class`` database pairs of every class (so train ⊂ database, as in
the ``cifar10-1`` protocol). A query pair never shares an item with a database or training pair. The
split goes through the base's ``official`` protocol and is saved like every split; the pair
table itself is saved beside it (``<split file>.pairs.npz``) and checked on reload.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hashing.data.base import Pool, RetrievalDataModule
from hashing.data.splits import Protocol
from hashing.runs.atomic import atomic_write
from hashing.runs.errors import UserError

#: transform presets that mirror an item horizontally (and so swap a pair's sides)
MIRRORING = ("crop_flip", "imagenet")


class PairSource:
    """``source[i]`` = inner items ``pairs[i, 0]`` and ``pairs[i, 1]`` joined on the last axis."""

    def __init__(self, inner: Any, pairs: np.ndarray) -> None:
        self.inner = inner
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> torch.Tensor:
        a, b = self.pairs[index]
        return torch.cat([self.inner[int(a)], self.inner[int(b)]], dim=-1)


def draw_pairs(
    labels: np.ndarray, members: np.ndarray, per_class: int, num_inner: int, seed: int
) -> np.ndarray:
    """(K^2 * per_class, 2) inner indices: for every ordered class pair, ``per_class`` pairs.

    Each side is drawn uniformly from ``members`` of its class (independent draws; an item can
    appear in several pairs). Rows are ordered by pair class, then draw.
    """
    rng = np.random.default_rng(seed)
    by_class = [members[labels[members] == k] for k in range(num_inner)]
    empty = [k for k, m in enumerate(by_class) if m.size == 0]
    if empty:
        raise UserError(f"inner classes {empty} have no items to build pairs from")
    rows = []
    for a in range(num_inner):
        for b in range(num_inner):
            rows.append(
                np.stack(
                    [rng.choice(by_class[a], per_class), rng.choice(by_class[b], per_class)], 1
                )
            )
    return np.concatenate(rows).astype(np.int64)


class PairsDataModule(RetrievalDataModule):
    """Ordered pairs of an inner single-label dataset's items (module docstring).

    Args:
        inner: the inner RetrievalDataModule (single-label, with ``train``/``test`` partitions,
            e.g. MNIST or the CIFAR-10 features); only its items and labels are used.
        query_per_class / train_per_class / database_per_class: pairs per ordered class pair.
        multi_label: labels = multi-hot set of inner classes shown instead of the pair class.
        name: dataset name (split files); default ``<inner name>_pairs[_ml]``.
    """

    default_transform = "scale"

    def __init__(
        self,
        inner: RetrievalDataModule,
        query_per_class: int = 10,
        train_per_class: int = 50,
        database_per_class: int = 200,
        multi_label: bool = False,
        name: str | None = None,
        top_k: int | None = None,
        **base_options: Any,
    ) -> None:
        counts = {
            "query_per_class": query_per_class,
            "train_per_class": train_per_class,
            "database_per_class": database_per_class,
        }
        for key, value in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{key}={value!r} is invalid: use a positive integer")
        if train_per_class > database_per_class:
            raise UserError(
                f"train_per_class={train_per_class} exceeds database_per_class="
                f"{database_per_class}: the training pairs are drawn from the database"
            )
        self.multi_label_ = bool(multi_label)
        suffix = "_pairs_ml" if self.multi_label_ else "_pairs"
        super().__init__(name=name or f"{inner.name}{suffix}", **base_options)
        if self.transform in MIRRORING:
            raise UserError(
                f"transform={self.transform!r} is invalid for pairs: it flips an item left-right, "
                "swapping the pair's sides (another class) and, for imagenet, crops a square "
                "out of the wide pair; use scale or crop (e.g. backbone=mlp or cnn)"
            )
        self.inner = inner
        self.counts = counts
        self._proto = Protocol("official", top_k=None if top_k is None else int(top_k))
        self.pairs: np.ndarray | None = None
        self.inner_classes: int | None = None

    def _protocol(self) -> Protocol:
        return self._proto

    def prepare_data(self) -> None:
        """Whatever the inner dataset needs (a download, if it is configured to)."""
        self.inner.prepare_data()

    def split_filename(self) -> str:
        """The base's name plus the pair counts, which shape the pool."""
        c = self.counts
        tag = f"__pairs-q{c['query_per_class']}-t{c['train_per_class']}-d{c['database_per_class']}"
        return super().split_filename().replace(".npz", f"{tag}.npz")

    def _load_pool(self) -> Pool:
        inner = self.inner._load_pool()
        labels = inner.labels.numpy()
        if labels.ndim != 1:
            raise UserError(f"{self.inner.name} is multi-label; pairs need single-label items")
        missing = [g for g in ("train", "test") if g not in inner.groups]
        if missing:
            raise UserError(f"{self.inner.name} lacks its own {missing} partition(s)")
        k = int(inner.num_classes)
        c = self.counts
        seed = self.split_seed
        query = draw_pairs(labels, inner.groups["test"], c["query_per_class"], k, seed)
        database = draw_pairs(labels, inner.groups["train"], c["database_per_class"], k, seed + 1)
        pairs = self._reuse_saved(np.concatenate([query, database]))
        n_query = len(query)
        pair_class = labels[pairs[:, 0]] * k + labels[pairs[:, 1]]
        db_index = np.arange(n_query, len(pairs))
        per = c["database_per_class"]
        train = db_index[(np.arange(len(db_index)) % per) < c["train_per_class"]]
        groups = {"test": np.arange(n_query), "database": db_index, "train": train}
        self.pairs, self.inner_classes = pairs, k
        if self.multi_label_:
            hot = np.zeros((len(pairs), k), np.float32)
            hot[np.arange(len(pairs)), labels[pairs[:, 0]]] = 1
            hot[np.arange(len(pairs)), labels[pairs[:, 1]]] = 1
            return Pool(PairSource(inner.source, pairs), torch.from_numpy(hot), k, groups)
        return Pool(PairSource(inner.source, pairs), torch.from_numpy(pair_class), k * k, groups)

    def _reuse_saved(self, pairs: np.ndarray) -> np.ndarray:
        """Save the pair table beside the split, or check it against the saved one."""
        if self.split_dir is None:
            return pairs
        path = self.split_dir / f"{self.split_filename()}.pairs.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as saved:
                stored = saved["pairs"]
            if not np.array_equal(stored, pairs):
                raise UserError(
                    f"pair file {path} differs from the pairs drawn now (inner data changed?); "
                    "delete it and the split file beside it to redraw"
                )
            return stored
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: np.savez(handle, pairs=pairs))
        return pairs

    @property
    def class_names(self) -> list[str]:
        """``"a+b"`` per pair class (single-label) or the inner class indices (multi-label)."""
        k = self.inner_classes or 10
        if self.multi_label_:
            return [str(a) for a in range(k)]
        return [f"{a}+{b}" for a in range(k) for b in range(k)]

    @property
    def related_classes(self) -> torch.Tensor | None:
        """(C, C) bool: pair classes sharing their first or second item's class (no diagonal).

        None for the multi-label variant (its classes are the inner ones).
        """
        if self.multi_label_:
            return None
        k = self.inner_classes or 10
        a = torch.arange(k * k) // k
        b = torch.arange(k * k) % k
        related = (a[:, None] == a[None, :]) | (b[:, None] == b[None, :])
        related.fill_diagonal_(False)
        return related
