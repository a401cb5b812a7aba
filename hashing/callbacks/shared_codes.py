"""One gathering of a val/test epoch's codes, shared by every callback that reads them.

The evaluation and the retrieval grid both need the query and database codes of a test run;
each keeping its own :class:`RetrievalAccumulator` held the database codes twice and gathered
them across ranks twice. Here the callbacks of one trainer share a :class:`SharedCodes` per
stage: the first callback to join an epoch feeds it, every member reads the same gathered
splits (one DDP gather, computed on first read), and the codes are dropped once every member
has released them at the end of the epoch.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from hashing.metrics.accumulator import ROLES, RetrievalAccumulator

_STORES: weakref.WeakKeyDictionary[pl.Trainer, dict[str, SharedCodes]] = weakref.WeakKeyDictionary()


class SharedCodes:
    """The codes of one epoch of one stage: fed by one callback, read by all its members."""

    def __init__(self, device: torch.device) -> None:
        self.accumulator = RetrievalAccumulator().to(device)
        self.members: list[object] = []
        self.released: set[int] = set()
        self._splits: dict[str, Tensor] | None = None

    @property
    def feeder(self) -> object | None:
        """The member whose batch hooks feed the codes (the first to join)."""
        return self.members[0] if self.members else None

    def update(self, member: object, outputs: Mapping[str, Any], dataloader_idx: int) -> None:
        """Add a step's ``{"codes", "labels", "index"}`` under its role, once per batch: only
        the feeder's calls count, so several members may all forward their hooks."""
        if member is not self.feeder:
            return
        self.accumulator.update(
            outputs["codes"], outputs["labels"], outputs["index"], role=ROLES[dataloader_idx]
        )

    def gathered(self) -> dict[str, Tensor]:
        """``{role}_codes`` / ``_labels`` / ``_index`` over all ranks, de-duplicated, sorted by
        index; gathered on the first call (a collective: every rank must call it)."""
        if self._splits is None:
            self._splits = self.accumulator.compute()
        return self._splits

    def release(self, member: object) -> None:
        """``member`` is done with this epoch's codes; the last one frees them."""
        self.released.add(id(member))
        if all(id(other) in self.released for other in self.members):
            self.accumulator.reset()
            self._splits = None


def join(trainer: pl.Trainer, stage: str, member: object, device: torch.device) -> SharedCodes:
    """The shared codes of ``stage``'s epoch now starting, with ``member`` joined to them.

    A member joining again means a new epoch: it starts a fresh store, which the other members
    then join in their own epoch-start hooks.
    """
    stores = _STORES.setdefault(trainer, {})
    store = stores.get(stage)
    if store is None or any(member is other for other in store.members):
        store = stores[stage] = SharedCodes(device)
    store.members.append(member)
    return store
