"""The training DataLoader: an order set by (seed, epoch), resumed mid-epoch on the exact batch.

:meth:`hashing.data.base.RetrievalDataModule.train_dataloader` builds it from the run's seed
(``data.shuffle_seed`` where given); docs/resume.md describes the order for users.

Why: Lightning 2.6 restores the fit loop's batch counters from a mid-epoch checkpoint, but unless
the train loader is *stateful* it iterates that loader again from its first batch (and warns that
the results are unreliable), and a loader shuffled by a generator that lives in the DataModule
starts the permutation sequence over. Two changes make an interrupted-and-resumed run see exactly
the batches of the uninterrupted one:

1. The epoch's order is a function of (seed, epoch) only: :class:`EpochShuffleSampler` draws
   ``randperm`` from a generator seeded by ``SeedSequence([seed, epoch])``; Lightning calls
   ``set_epoch`` before each epoch's first batch. (Under DDP Lightning swaps in its
   ``DistributedSampler``, also a function of (seed, epoch).)
2. The loader implements ``state_dict`` / ``load_state_dict``, which Lightning 2.6 saves with the
   fit loop and restores before it creates the resumed epoch's iterator: the state is (epoch,
   batches handed out in it); after a load, the next iterator of that epoch skips that many index
   batches (the sampler only; no item is loaded for the skipped batches).

Random augmentations in worker processes (``num_workers > 0``) are seeded per worker by
PyTorch, so their draws after a resume differ; with ``num_workers=0`` they use the global RNG,
whose state :class:`hashing.callbacks.rng_state.RNGState` carries through the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed mixed from (seed, epoch) (numpy's SeedSequence, not ``seed + epoch``)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0] >> 1)


class EpochShuffleSampler(RandomSampler):
    """A permutation per epoch that depends only on (seed, epoch).

    Subclasses RandomSampler so that Lightning (and anyone else) sees a shuffled loader.
    """

    def __init__(self, data_source: Sized, seed: int) -> None:
        super().__init__(data_source)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation the next iteration yields."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class SkippableIndexSampler:
    """Wraps the loader's index sampler; the next iteration of epoch ``e`` skips ``n`` batches.

    The decision is taken lazily, at the first index drawn, because Lightning creates an epoch's
    iterator before it calls ``set_epoch`` for that epoch.
    """

    def __init__(self, base: Any, epoch_of: Callable[[], int]) -> None:
        self.base = base
        self.epoch_of = epoch_of
        self.pending: tuple[int, int] | None = None

    def __len__(self) -> int:
        # the whole epoch: Lightning counts the skipped batches as already fetched
        return len(self.base)

    def __iter__(self) -> Iterator[Any]:
        pending, self.pending = self.pending, None
        skip = pending[1] if pending is not None and pending[0] == self.epoch_of() else 0
        yield from islice(iter(self.base), skip, None)


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position in the epoch is saved in, and restored from, checkpoints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._skippable = SkippableIndexSampler(super()._index_sampler, self.current_epoch)
        self._epoch = 0
        self._yielded = 0

    def current_epoch(self) -> int:
        """The epoch the sampler was last set to (0 before the first ``set_epoch``)."""
        return int(getattr(self.sampler, "epoch", 0))

    @property
    def _index_sampler(self) -> Any:
        return self._skippable

    def __iter__(self) -> Iterator[Any]:
        skipped_epoch_batches = self._skippable.pending
        iterator = super().__iter__()
        self._epoch, self._yielded = self.current_epoch(), 0
        return self._count(iterator, skipped_epoch_batches)

    def _count(self, iterator: Iterator[Any], pending: tuple[int, int] | None) -> Iterator[Any]:
        for index, batch in enumerate(iterator):
            if index == 0:
                # the epoch is known now (set_epoch ran); count the batches skipped for it
                self._epoch = self.current_epoch()
                if pending is not None and pending[0] == self._epoch:
                    self._yielded = pending[1]
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """(epoch, batches handed out in it): where a resumed run continues."""
        return {"epoch": self._epoch, "batches": self._yielded}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Make the next iterator of the saved epoch start after the batches already used."""
        epoch, batches = int(state_dict["epoch"]), int(state_dict["batches"])
        self._skippable.pending = (epoch, batches)
        self._epoch, self._yielded = epoch, batches
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if callable(set_epoch):
            # worker processes draw indices as soon as the iterator exists, which Lightning
            # creates before its own set_epoch call of the resumed epoch
            set_epoch(epoch)
