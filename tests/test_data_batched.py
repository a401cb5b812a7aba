"""In-memory splits are fetched a batch at a time: the same batches as item by item."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from hashing.data.base import BatchedSplit
from hashing.data.digits import DigitsDataModule


def _dm(tmp_path: Path, **kwargs: object) -> DigitsDataModule:
    dm = DigitsDataModule(
        split_dir=tmp_path / "splits", batch_size=50, eval_batch_size=64, **kwargs
    )  # type: ignore[arg-type]
    dm.prepare_data()
    dm.setup("fit")
    return dm


def item_by_item(loader: DataLoader) -> DataLoader:
    """The loader's batches fetched the plain way: ``dataset[i]`` per item, default collation."""
    dataset = loader.dataset.split if isinstance(loader.dataset, BatchedSplit) else loader.dataset
    return DataLoader(dataset, batch_sampler=loader.batch_sampler)


def assert_same_batches(loader: DataLoader) -> None:
    torch.manual_seed(0)
    batched = list(loader)
    torch.manual_seed(0)
    plain = list(item_by_item(loader))
    assert len(batched) == len(plain) > 1
    for ours, theirs in zip(batched, plain, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b)


def test_tensor_splits_load_whole_batches_equal_to_item_by_item(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    train = dm.train_dataloader()
    assert isinstance(train.dataset, BatchedSplit)
    # one __getitems__ call a batch, no __getitem__ per item
    calls: list[int] = []
    getitem = type(train.dataset.split).__getitem__
    type(train.dataset.split).__getitem__ = lambda self, i: calls.append(i) or getitem(self, i)  # type: ignore[method-assign]
    try:
        list(train)
    finally:
        type(train.dataset.split).__getitem__ = getitem  # type: ignore[method-assign]
    assert calls == []
    assert_same_batches(train)
    for loader in (*dm.val_dataloader(), *dm.test_dataloader()):
        assert isinstance(loader.dataset, BatchedSplit)
        assert_same_batches(loader)


def test_random_augmentation_stays_item_by_item(tmp_path: Path) -> None:
    dm = _dm(tmp_path, transform="crop")
    train = dm.train_dataloader()
    assert not isinstance(train.dataset, BatchedSplit)
    assert isinstance(dm.test_dataloader()[0].dataset, BatchedSplit)  # eval: no augmentation


@pytest.mark.parametrize("batches", [0, 3])
def test_resumed_epoch_continues_on_the_same_batches(tmp_path: Path, batches: int) -> None:
    first = _dm(tmp_path, seed=4)
    loader = first.train_dataloader()
    loader.sampler.set_epoch(2)
    iterator = iter(loader)
    seen = [next(iterator) for _ in range(batches)]
    state = loader.state_dict()
    rest = list(iterator)
    again = _dm(tmp_path, seed=4)
    resumed = again.train_dataloader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)
    got = list(resumed)
    assert len(seen) + len(got) == len(loader)
    for ours, theirs in zip(got, rest, strict=True):
        assert torch.equal(ours[2], theirs[2]) and torch.equal(ours[0], theirs[0])
