"""A torchmetrics Metric that gathers query and database codes, labels and item indices.

Under DDP each rank sees part of each split and DistributedSampler pads with repeated items;
the states are concatenated across ranks (``dist_reduce_fx="cat"``) and ``split`` then keeps one
row per item index, sorted by index, so the database order (the tie-break) is the split's own.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from hashing.metrics.functional.validation import check_codes, check_labels

Role = Literal["query", "database"]
ROLES: tuple[str, ...] = ("query", "database")


def unique_by_index(index: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
    """Rows sorted by ``index`` with repeated indices dropped (the first row of each is kept)."""
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    keep = torch.ones_like(sorted_index, dtype=torch.bool)
    keep[1:] = sorted_index[1:] != sorted_index[:-1]
    rows = order[keep]
    return (index[rows], *(v[rows] for v in values))


class RetrievalAccumulator(Metric):
    """Accumulates (codes, labels, index) per role; subclasses turn them into metric values."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        for role in ROLES:
            self.add_state(f"{role}_codes", default=[], dist_reduce_fx="cat")
            self.add_state(f"{role}_labels", default=[], dist_reduce_fx="cat")
            self.add_state(f"{role}_index", default=[], dist_reduce_fx="cat")

    def update(self, codes: Tensor, labels: Tensor, index: Tensor, role: Role = "query") -> None:
        """Add one batch of ±1 codes (B, bits), labels (B,) or (B, C), item indices (B,)."""
        if role not in ROLES:
            raise ValueError(f"role must be 'query' or 'database', got {role!r}")
        check_codes(codes, "codes")
        check_labels(labels, codes.shape[0], "labels")
        if index.ndim != 1 or index.shape[0] != codes.shape[0]:
            raise ValueError(
                f"index must have shape ({codes.shape[0]},) to match codes, "
                f"got {tuple(index.shape)}"
            )
        if index.is_floating_point() or index.dtype == torch.bool:
            raise ValueError(f"index must be an integer tensor of item indices, got {index.dtype}")
        getattr(self, f"{role}_codes").append(codes.detach().to(torch.int8))
        getattr(self, f"{role}_labels").append(labels.detach())
        getattr(self, f"{role}_index").append(index.detach().to(torch.long))

    def split(self, role: Role) -> tuple[Tensor, Tensor, Tensor]:
        """(codes, labels, index) of one role: de-duplicated by index, sorted by index."""
        codes = getattr(self, f"{role}_codes")
        if isinstance(codes, list) and not codes:
            raise ValueError(
                f"no {role} batches were given to update(); feed both roles before compute()"
            )
        index, labels, codes = unique_by_index(
            dim_zero_cat(getattr(self, f"{role}_index")),
            dim_zero_cat(getattr(self, f"{role}_labels")),
            dim_zero_cat(codes),
        )
        return codes, labels, index

    def compute(self) -> dict[str, Tensor]:
        """The gathered splits: ``{role}_codes`` (int8), ``{role}_labels``, ``{role}_index``."""
        out: dict[str, Tensor] = {}
        for role in ROLES:
            codes, labels, index = self.split(role)  # type: ignore[arg-type]
            out.update({f"{role}_codes": codes, f"{role}_labels": labels, f"{role}_index": index})
        return out
