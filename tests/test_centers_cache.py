"""Content-addressed stage cache: reuse, invalidation, atomicity."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hashing.centers.cache import StageCache, cache_key, canonical_json

INPUTS = {
    "stage": "shc_similarity",
    "dataset": "cifar100",
    "split_seed": 0,
    "backbone": {"name": "resnet34", "pretrained": True, "size": 224},
    "classifier": {"epochs": 100, "lr": 1e-4, "optimizer": "rmsprop"},
    "bits": 64,
}


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def test_key_is_sha256_of_sorted_compact_json() -> None:
    text = json.dumps(INPUTS, sort_keys=True, separators=(",", ":"))
    assert canonical_json(INPUTS) == text
    assert cache_key(INPUTS) == hashlib.sha256(text.encode()).hexdigest()
    reordered = dict(reversed(list(INPUTS.items())))
    assert cache_key(reordered) == cache_key(INPUTS)


def test_reused_when_inputs_match(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    value = {"similarity": torch.eye(3), "info": {"fit": 0.25, "history": [1.0, 0.5]}}
    compute = Counter(value)
    first = cache.get_or_compute(INPUTS, compute)
    assert cache.last_hit is False
    second = StageCache(tmp_path).get_or_compute(dict(INPUTS), compute)
    assert compute.calls == 1
    assert torch.equal(second["similarity"], value["similarity"])
    assert second["info"] == value["info"]
    assert first is value
    stored = json.loads(cache.inputs_path(INPUTS).read_text())
    assert stored == INPUTS


@pytest.mark.parametrize(
    "change",
    [
        {"dataset": "cifar10"},
        {"split_seed": 1},
        {"bits": 32},
        {"bits": 64.0},
        {"backbone": {"name": "resnet34", "pretrained": False, "size": 224}},
        {"classifier": {"epochs": 100, "lr": 1e-3, "optimizer": "rmsprop"}},
        {"extra": None},
    ],
)
def test_not_reused_when_any_input_differs(tmp_path: Path, change: dict) -> None:
    cache = StageCache(tmp_path)
    cache.get_or_compute(INPUTS, Counter(torch.zeros(2)))
    compute = Counter(torch.ones(2))
    result = cache.get_or_compute({**INPUTS, **change}, compute)
    assert cache.last_hit is False
    assert compute.calls == 1
    assert torch.equal(result, torch.ones(2))
    assert torch.equal(cache.load(INPUTS), torch.zeros(2))


def test_exception_in_compute_leaves_nothing(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)

    def boom() -> torch.Tensor:
        raise RuntimeError("classifier diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        cache.get_or_compute(INPUTS, boom)
    assert not cache.contains(INPUTS)
    assert list(tmp_path.iterdir()) == []
    assert torch.equal(cache.get_or_compute(INPUTS, Counter(torch.ones(1))), torch.ones(1))


def test_unsaveable_value_leaves_nothing(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - pickling a lambda fails with varying types
        cache.save(INPUTS, {"fn": lambda: 0})
    assert list(tmp_path.iterdir()) == []


def test_npz_values_round_trip(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    arrays = {"centers": np.ones((3, 4), dtype=np.int8), "sim": np.eye(3)}
    path = cache.save(INPUTS, arrays)
    assert path.suffix == ".npz"
    loaded = cache.load(INPUTS)
    assert set(loaded) == {"centers", "sim"}
    np.testing.assert_array_equal(loaded["centers"], arrays["centers"])
    single = {**INPUTS, "stage": "single"}
    cache.save(single, np.arange(5))
    np.testing.assert_array_equal(cache.load(single), np.arange(5))


def test_disabled_cache_always_computes(tmp_path: Path) -> None:
    cache = StageCache(tmp_path / "off", enabled=False)
    compute = Counter(1)
    cache.get_or_compute(INPUTS, compute)
    cache.get_or_compute(INPUTS, compute)
    assert compute.calls == 2
    assert not (tmp_path / "off").exists()


@pytest.mark.parametrize(
    "bad", [{"x": float("nan")}, {"x": object()}, {1: "non-str key"}, ["not", "a", "dict"]]
)
def test_bad_key_inputs(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="key"):
        StageCache(tmp_path).get_or_compute(bad, Counter(0))  # type: ignore[arg-type]


def test_path_and_numpy_scalars_in_inputs() -> None:
    assert canonical_json({"p": Path("/a/b"), "n": np.int64(3)}) == '{"n":3,"p":"/a/b"}'
