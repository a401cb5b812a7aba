"""The resumable train loader: per-(seed, epoch) order and exact mid-epoch continuation."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from hashing.data.resumable import EpochShuffleSampler, ResumableDataLoader

ITEMS = 50
BATCH = 8  # 7 batches, the last one of 2 items


def make(seed: int = 3) -> DataLoader:
    dataset = TensorDataset(torch.arange(ITEMS))
    return ResumableDataLoader(
        dataset, batch_size=BATCH, sampler=EpochShuffleSampler(dataset, seed)
    )


def epoch(loader: DataLoader, number: int) -> list[list[int]]:
    loader.sampler.set_epoch(number)
    return [batch.tolist() for (batch,) in loader]


def test_order_is_a_permutation_that_depends_on_seed_and_epoch_only() -> None:
    loader = make()
    assert isinstance(loader, ResumableDataLoader)
    assert isinstance(loader.sampler, EpochShuffleSampler)
    first, second = epoch(loader, 0), epoch(loader, 1)
    for batches in (first, second):
        assert sorted(i for batch in batches for i in batch) == list(range(ITEMS))
        assert [len(b) for b in batches] == [BATCH] * 6 + [2]
    assert first != second
    assert epoch(make(), 1) == second  # a new loader (a new process) gives the same epoch 1
    assert epoch(make(seed=4), 1) != second
    assert len(loader) == 7


def test_loaded_state_skips_the_batches_already_used_in_that_epoch() -> None:
    loader = make()
    full = epoch(loader, 2)
    loader.sampler.set_epoch(2)
    iterator = iter(loader)
    used = [next(iterator)[0].tolist() for _ in range(3)]
    assert used == full[:3]
    state = loader.state_dict()
    assert state == {"epoch": 2, "batches": 3}

    resumed = make()
    resumed.load_state_dict(state)
    assert resumed.sampler.epoch == 2
    rest = [batch.tolist() for (batch,) in resumed]
    assert rest == full[3:]
    assert resumed.state_dict() == {"epoch": 2, "batches": len(full)}
    # the skip applies once: the next epoch is whole
    assert epoch(resumed, 3) == epoch(make(), 3)


def test_a_state_of_another_epoch_skips_nothing() -> None:
    resumed = make()
    resumed.load_state_dict({"epoch": 1, "batches": 5})
    assert epoch(resumed, 2) == epoch(make(), 2)
