"""scikit-learn's digits (1,797 real 8x8 grey images, shipped with scikit-learn: no download).

The project's default dataset, so everything runs on a machine without any data. Its
protocol is shaped like the ``cifar10-1`` protocol, scaled to ~180 images a class: 20 queries per
class, the database is everything else, 80 training images per class drawn from the database.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits

from hashing.data.base import Pool, RetrievalDataModule, build_protocol
from hashing.data.splits import Protocol


class DigitsDataModule(RetrievalDataModule):
    """Digits as (1, 8, 8) float images in [0, 1], labels 0..9, protocol k = ALL."""

    default_transform = "scale"

    def __init__(
        self,
        protocol: str = "digits-1",
        query_per_class: int = 20,
        train_per_class: int = 80,
        **base_options: Any,
    ) -> None:
        super().__init__(
            name="digits",
            **base_options,
        )
        self._proto = build_protocol(
            protocol,
            "digits",
            query_per_class,
            train_per_class,
            allowed=("disjoint", "from_database"),
        )

    def _protocol(self) -> Protocol:
        return self._proto

    def _load_pool(self) -> Pool:
        bunch = load_digits()
        images = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)
        labels = torch.from_numpy(bunch.target.astype(np.int64))
        return Pool(source=images, labels=labels, num_classes=10)
