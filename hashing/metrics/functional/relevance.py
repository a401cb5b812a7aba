"""Relevance of database items to queries: they share at least one positive label."""

from __future__ import annotations

import torch
from torch import Tensor


def relevance(query_labels: Tensor, database_labels: Tensor) -> Tensor:
    """Boolean (Q, N) relevance for class indices (equal class) or multi-hot (y_q·y_db > 0).

    Callers pass one chunk of queries at a time, so the (Q, N) matrix stays bounded.
    """
    if query_labels.ndim == 1:
        return query_labels[:, None] == database_labels[None, :]
    shared = query_labels.to(torch.float32) @ database_labels.to(torch.float32).T
    return shared > 0
