"""Where the centers of center-based hashing come from: one class per method's rule.

A source validates (classes, bits) at construction time of the module, so a bad ``bits`` fails
before any data is read, and is called once before training to build the centers. Each source
writes the centers and their distance statistics into the run folder.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor

from hashing.centers import center_statistics, csq_centers, required_min_distance, validate_bits
from hashing.pipeline_io import write_json_atomic


def save_centers(centers: Tensor, output_dir: Path, extra: dict[str, float] | None = None) -> None:
    """Write ``centers.pt`` and ``center_stats.json`` (min/mean/var distance, required d)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.save(centers.clone(), output_dir / "centers.pt")
    num_classes, bits = centers.shape
    stats = dict(center_statistics(centers))
    if num_classes >= 2:
        stats["required_min_distance"] = required_min_distance(bits, num_classes)
    stats.update(extra or {})
    write_json_atomic(output_dir / "center_stats.json", stats)


class CSQCenters:
    """CSQ: Hadamard rows when they suffice, else balanced Bernoulli draws (SPEC §3)."""

    method = "csq"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def validate(self, num_classes: int, bits: int) -> None:
        """Raise ValueError naming ``bits`` when CSQ cannot serve (classes, bits)."""
        validate_bits(bits, num_classes, self.method)

    def __call__(
        self, num_classes: int, bits: int, datamodule: pl.LightningDataModule, output_dir: Path
    ) -> Tensor:
        """The CSQ centers (they do not depend on the data)."""
        centers = csq_centers(num_classes, bits, seed=self.seed)
        save_centers(centers, output_dir)
        return centers
