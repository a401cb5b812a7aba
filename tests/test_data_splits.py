"""Split drawing: sizes per class, disjointness, seed determinism, cache reuse, val carving."""

from __future__ import annotations

import numpy as np
import pytest

from hashing.data.splits import Protocol, carve_fraction, draw_per_class, make_split
from hashing.runs.errors import UserError


def _labels(per_class: list[int], seed: int = 0) -> np.ndarray:
    """Shuffled class labels with the given number of items per class."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    return np.random.default_rng(seed).permutation(labels)


def _count(labels: np.ndarray, idx: np.ndarray) -> dict[int, int]:
    counts: dict[int, int] = {}
    for i in idx:
        counts[int(labels[i])] = counts.get(int(labels[i]), 0) + 1
    return counts


def test_draw_per_class_sizes_and_disjoint() -> None:
    labels = _labels([30, 25, 40])
    a, b = draw_per_class(labels, [5, 7], seed=3)
    assert _count(labels, a) == {0: 5, 1: 5, 2: 5}
    assert _count(labels, b) == {0: 7, 1: 7, 2: 7}
    assert not set(a.tolist()) & set(b.tolist())


def test_draw_per_class_determinism_and_seed_dependence() -> None:
    labels = _labels([50, 50])
    first = draw_per_class(labels, [10], seed=1)[0]
    again = draw_per_class(labels, [10], seed=1)[0]
    other = draw_per_class(labels, [10], seed=2)[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_draw_per_class_respects_candidates() -> None:
    labels = _labels([20, 20])
    candidates = np.arange(0, 40, 2)
    (drawn,) = draw_per_class(labels, [3], seed=0, candidates=candidates)
    assert set(drawn.tolist()) <= set(candidates.tolist())


def test_draw_per_class_too_few_items_names_class() -> None:
    labels = _labels([10, 3])
    with pytest.raises(ValueError, match="class 1 has 3 items"):
        draw_per_class(labels, [2, 2], seed=0)


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_carve_fraction_per_class_at_least_one(fraction: float) -> None:
    labels = _labels([40, 5, 12])
    indices = np.arange(len(labels))
    carved, rest = carve_fraction(labels, indices, fraction, seed=0)
    counts = _count(labels, carved)
    for cls, n in enumerate([40, 5, 12]):
        assert counts[cls] == max(1, round(fraction * n))
    assert np.array_equal(np.sort(np.concatenate([carved, rest])), indices)


def test_carve_fraction_multilabel_uniform() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((50, 4)) < 0.4).astype(np.float32)
    carved, rest = carve_fraction(labels, np.arange(50), 0.2, seed=0)
    assert len(carved) == 10 and len(rest) == 40
    assert not set(carved.tolist()) & set(rest.tolist())


def _check_protocol(labels: np.ndarray, split: dict[str, np.ndarray]) -> None:
    """Invariants every protocol keeps."""
    assert not set(split["train"].tolist()) & set(split["query"].tolist())
    assert not set(split["database"].tolist()) & set(split["query"].tolist())
    assert set(split["val_query"].tolist()) | set(split["fit"].tolist()) == set(
        split["train"].tolist()
    )
    assert not set(split["val_query"].tolist()) & set(split["fit"].tolist())


def test_disjoint_protocol_like_cifar10() -> None:
    labels = _labels([60] * 4)
    split = make_split(labels, Protocol("disjoint", 5, 20), seed=0, val_fraction=0.1)
    _check_protocol(labels, split)
    assert _count(labels, split["query"]) == dict.fromkeys(range(4), 5)
    assert _count(labels, split["train"]) == dict.fromkeys(range(4), 20)
    assert _count(labels, split["val_query"]) == dict.fromkeys(range(4), 2)
    assert len(split["database"]) == 240 - 20 - 80
    assert not set(split["train"].tolist()) & set(split["database"].tolist())
    union = np.concatenate([split["query"], split["train"], split["database"]])
    assert np.array_equal(np.sort(union), np.arange(240))


def test_from_database_protocol_like_cifar10_1() -> None:
    labels = _labels([60] * 4)
    split = make_split(labels, Protocol("from_database", 5, 20), seed=0, val_fraction=0.1)
    _check_protocol(labels, split)
    assert len(split["database"]) == 240 - 20
    assert set(split["train"].tolist()) <= set(split["database"].tolist())
    assert _count(labels, split["train"]) == dict.fromkeys(range(4), 20)


def test_official_protocol_uses_groups() -> None:
    labels = _labels([10] * 3)
    groups = {"train": np.arange(20), "test": np.arange(20, 30)}
    split = make_split(labels, Protocol("official"), seed=0, val_fraction=0.1, groups=groups)
    assert np.array_equal(split["query"], np.arange(20, 30))
    assert np.array_equal(split["database"], split["train"])
    with pytest.raises(ValueError, match="missing"):
        make_split(labels, Protocol("official"), seed=0, val_fraction=0.1, groups={})


def test_protocol_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="shape"):
        Protocol("random")
    with pytest.raises(ValueError, match="query_per_class"):
        Protocol("disjoint", 0, 5)


@pytest.mark.parametrize("shape", ["disjoint", "from_database"])
def test_make_split_names_every_short_class_and_the_config_keys(shape: str) -> None:
    labels = _labels([10, 3, 4])
    with pytest.raises(UserError) as short:
        make_split(labels, Protocol(shape, 2, 3), seed=0, val_fraction=0.1)
    message = str(short.value)
    assert "2 of 3 classes" in message
    assert "class 1 has 3 items" in message and "class 2 has 4 items" in message
    assert "class 0" not in message
    assert "data.query_per_class=2 + data.train_per_class=3" in message
    assert "sum to at most 3" in message
