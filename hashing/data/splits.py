"""Seeded per-class split drawing for retrieval protocols (pure functions, no I/O).

A protocol partitions a *pool* of items (indices ``0..N-1``) into query, train and database
sets (docs/metrics.md#protocols). Model selection needs a validation split, which is carved per
class from the training split: ``val_query`` are held-out training items and ``fit`` (the rest of
the training split) is both what the model trains on and the validation database, so a validation
query is never seen in training.

Every split's *order* is then a seeded permutation (:func:`order_split`): the evaluation breaks
Hamming-distance ties by database position, so a database sorted by class (a folder read class
by class, a features file written that way) would hand the top of every tied bucket to whichever
class comes first. ``order="file"`` keeps the pool's own order, for reproducing a published list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashing.runs.errors import UserError

SHAPES = ("disjoint", "from_database", "official", "official_subset")
SPLIT_KEYS = ("query", "train", "database", "val_query", "fit")
ORDERS = ("shuffled", "file")
PER_CLASS_KEYS = ("query_per_class", "train_per_class")
#: named protocols of one dataset: name -> (shape, its top k)
NAMED_PROTOCOLS = {"tinyimagenet200": ("official_subset", 1000)}


@dataclass(frozen=True)
class Protocol:
    """How a pool becomes query/train/database (docs/metrics.md#protocols).

    ``disjoint`` (protocol ``cifar10``): per class, ``query_per_class`` queries, then
    ``train_per_class`` training items, the database is everything else (train ∩ database = ∅).
    ``from_database`` (protocol ``cifar10-1``): queries per class, database = everything else, the
    training items are drawn per class from the database.
    ``official`` (protocol ``cifar10-2`` and the list-file datasets): the dataset's own partitions,
    query = ``test``, train = ``train``, database = ``database`` if given else ``train``.
    ``official_subset`` (``tinyimagenet200``): queries and database as ``official``, the
    training items ``train_per_class`` a class drawn from the database.
    """

    shape: str
    query_per_class: int | None = None
    train_per_class: int | None = None
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise UserError(f"protocol shape {self.shape!r} unknown; expected one of {SHAPES}")
        if self.shape != "official":
            needed = ("train_per_class",) if self.shape == "official_subset" else PER_CLASS_KEYS
            for key in needed:
                value = getattr(self, key)
                if value is None or int(value) < 1:
                    raise UserError(f"{key} must be a positive integer for {self.shape!r}")

    @property
    def key(self) -> str:
        """Short file-name-safe description, part of the split file's name."""
        if self.shape == "official":
            return "official"
        if self.shape == "official_subset":
            return f"{self.shape}-t{self.train_per_class}"
        return f"{self.shape}-q{self.query_per_class}-t{self.train_per_class}"

    @property
    def per_class_counts(self) -> dict[str, int]:
        """The items drawn from every class, by the config key that sets them (none for
        ``official``): both per-class shapes take ``query + train`` items of each class."""
        if self.shape == "official":
            return {}
        if self.shape == "official_subset":
            return {"data.train_per_class": int(self.train_per_class)}  # type: ignore[arg-type]
        return {
            "data.query_per_class": int(self.query_per_class),  # type: ignore[arg-type]
            "data.train_per_class": int(self.train_per_class),  # type: ignore[arg-type]
        }


def check_class_sizes(sizes: Mapping[Any, int], counts: Mapping[str, int], where: str = "") -> None:
    """Refuse classes with fewer items than the per-class draws ``counts`` (name -> count) take.

    ``sizes`` maps each class (index or name) to its item count; the message lists the short
    classes (up to five), names the counts and the largest sum they may have, ``where`` says
    where the items live (e.g. `` under <root>``).
    """
    need = sum(counts.values())
    small = {name: size for name, size in sizes.items() if size < need}
    if not small:
        return
    listed = ", ".join(f"class {name!r} has {size} items" for name, size in list(small.items())[:5])
    terms = " + ".join(f"{key}={count}" for key, count in counts.items())
    raise UserError(
        f"{len(small)} of {len(sizes)} classes{where} have fewer than the {need} items drawn "
        f"per class ({terms}): {listed}; lower {' and '.join(counts)} so that they sum to at "
        f"most {min(small.values())}, or add items"
    )


def _class_members(labels: np.ndarray, candidates: np.ndarray) -> dict[int, np.ndarray]:
    """Candidate indices grouped by class (single-label), classes in ascending order."""
    cand_labels = labels[candidates]
    return {int(c): candidates[cand_labels == c] for c in np.unique(cand_labels)}


def draw_per_class(
    labels: np.ndarray,
    counts: Sequence[int],
    seed: int,
    candidates: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Draw ``len(counts)`` disjoint per-class samples from ``candidates`` (default: all).

    Part ``p`` gets ``counts[p]`` items of every class present among the candidates. The draw
    is a seeded permutation per class, so it depends on nothing but (labels, counts, seed,
    candidates). Returns sorted index arrays.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise UserError(f"per-class drawing needs class indices (N,), got shape {labels.shape}")
    if candidates is None:
        candidates = np.arange(len(labels))
    candidates = np.asarray(candidates, dtype=np.int64)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in counts]
    members_of = _class_members(labels, candidates)
    check_class_sizes(
        {cls: len(members) for cls, members in members_of.items()},
        {f"counts[{p}]": int(count) for p, count in enumerate(counts)},
    )
    for members in members_of.values():
        order = rng.permutation(members)
        start = 0
        for p, count in enumerate(counts):
            parts[p].append(order[start : start + count])
            start += count
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def carve_fraction(
    labels: np.ndarray, indices: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (carved, rest), carving ``fraction`` of each class (at least 1).

    Single-label: per class, ``max(1, round(fraction * n_c))`` items. Multi-label data has no
    per-class partition (an item belongs to several classes), so there the carve is a seeded
    uniform draw of ``max(1, round(fraction * n))`` items.
    """
    if not 0.0 < fraction < 1.0:
        raise UserError(f"val_fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    indices = np.asarray(indices, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if labels.ndim == 1:
        carved = []
        for _, members in _class_members(labels, indices).items():
            take = max(1, round(fraction * len(members)))
            carved.append(rng.permutation(members)[:take])
        carved_arr = np.sort(np.concatenate(carved))
    else:
        take = max(1, round(fraction * len(indices)))
        carved_arr = np.sort(rng.permutation(indices)[:take])
    rest = np.setdiff1d(indices, carved_arr, assume_unique=True)
    return carved_arr, rest


def make_split(
    labels: np.ndarray,
    protocol: Protocol,
    seed: int,
    val_fraction: float,
    groups: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """All split index arrays of one protocol: query, train, database, val_query, fit.

    ``groups`` holds a dataset's own partitions (``train``, ``test``, optionally ``database``)
    for the ``official`` shape. ``fit`` = train minus val_query (what the model trains on).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if labels.ndim == 1:  # both per-class shapes take query + train items of every class
        classes, sizes = np.unique(labels, return_counts=True)
        sizes_of = dict(zip(classes.tolist(), sizes.tolist(), strict=True))
        check_class_sizes(sizes_of, protocol.per_class_counts)
    if protocol.shape in ("official", "official_subset"):
        groups = dict(groups or {})
        missing = [g for g in ("train", "test") if g not in groups]
        if missing:
            raise UserError(
                f"the 'official' protocol needs the dataset's own train/test partitions; "
                f"this dataset has {sorted(groups)} (missing {missing})"
            )
        query = np.asarray(groups["test"], dtype=np.int64)
        train = np.asarray(groups["train"], dtype=np.int64)
        database = np.asarray(groups.get("database", train), dtype=np.int64)
        if protocol.shape == "official_subset":
            (train,) = draw_per_class(labels, [protocol.train_per_class], seed + 1, database)
    elif protocol.shape == "disjoint":
        query, train = draw_per_class(
            labels, [protocol.query_per_class, protocol.train_per_class], seed
        )
        database = np.setdiff1d(np.arange(n), np.concatenate([query, train]))
    else:
        (query,) = draw_per_class(labels, [protocol.query_per_class], seed)
        database = np.setdiff1d(np.arange(n), query)
        # A second stream keeps the train draw independent of how many queries were drawn.
        (train,) = draw_per_class(labels, [protocol.train_per_class], seed + 1, database)
    val_query, fit = carve_fraction(labels, train, val_fraction, seed + 2)
    return {
        "query": query,
        "train": train,
        "database": database,
        "val_query": val_query,
        "fit": fit,
    }


def order_split(split: Mapping[str, np.ndarray], order: str, seed: int) -> dict[str, np.ndarray]:
    """Each split array in a seeded random order (``shuffled``) or as given (``file``).

    The permutation has its own stream (``seed + 3``), so the members of every split are the
    same under both orders and only positions (the tie-break of the ranking) differ.
    """
    if order not in ORDERS:
        raise UserError(f"split order {order!r} unknown; expected one of {ORDERS}")
    if order == "file":
        return {key: np.asarray(value, np.int64) for key, value in split.items()}
    rng = np.random.default_rng(seed + 3)
    return {key: rng.permutation(np.asarray(split[key], np.int64)) for key in SPLIT_KEYS}


def spec_aliases(dataset: str) -> dict[str, str]:
    """User-facing protocol names -> shapes: ``cifar10``/``cifar10-1``/``cifar10-2``
    (docs/metrics.md#protocols) and the same pattern on the dataset's own name (``mnist``,
    ``mnist-1``, ``mnist-2``)."""
    aliases = {}
    for base in ("cifar10", dataset):
        aliases.update({base: "disjoint", f"{base}-1": "from_database", f"{base}-2": "official"})
    aliases.update({name: shape for name, (shape, _) in NAMED_PROTOCOLS.items()})
    return aliases
