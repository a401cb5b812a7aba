"""Where the centers of center-based hashing come from: one class per method's rule.

A source validates (classes, bits) at construction time of the module, so a bad ``bits`` fails
before any data is read, and is called once before training to build the centers. Each source
writes the centers and their distance statistics into the run folder.

* :class:`CSQCenters`: Hadamard rows or balanced Bernoulli draws (data-independent).
* :class:`MDSCenters`: CSQ centers pushed apart until every pair is ``>= d`` (data-independent).
* :class:`~hashing.methods.shc_centers.SemanticCenters`: SHC, whose two stages live in
  :mod:`hashing.methods.shc_centers`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

from hashing.centers import (
    CSQ_RULE,
    DISTANCE_BOUND_RULE,
    BitsRule,
    center_statistics,
    csq_centers,
    mds_centers,
    required_min_distance,
    validate_bits,
)
from hashing.centers.csq import bernoulli_accepted, uses_hadamard
from hashing.centers.quality import center_quality
from hashing.runs.atomic import atomic_write, write_json_atomic
from hashing.runs.errors import UserError

log = logging.getLogger(__name__)


def is_rank_zero() -> bool:
    """Whether this process writes run-folder files (under DDP every rank builds the centers;
    rank 0 first, the others then hit the stage cache, and only rank 0 records it)."""
    return rank_zero_only.rank == 0


def taxonomy_spearman(centers: Tensor, datamodule: Any) -> float | None:
    """Rank correlation of ``h_i·h_j`` with the Wu-Palmer similarity of the class pairs in the
    datamodule's taxonomy (None without one, or for equidistant centers)."""
    relations = getattr(datamodule, "class_relations", None)
    if relations is None:
        return None
    return center_quality(torch.from_numpy(relations.wu_palmer), centers)["spearman"]


def save_centers(
    centers: Tensor,
    output_dir: Path,
    extra: dict[str, Any] | None = None,
    datamodule: Any = None,
) -> None:
    """Write ``centers.pt`` and ``center_stats.json`` (min/mean/var distance, required d and,
    when the datamodule has a class taxonomy, ``taxonomy_spearman``).

    Only on global rank 0 (the files are the run's, not the process's).
    """
    if not is_rank_zero():
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(output_dir / "centers.pt", lambda handle: torch.save(centers.clone(), handle))
    num_classes, bits = centers.shape
    stats: dict[str, Any] = dict(center_statistics(centers))
    if num_classes >= 2:
        stats["required_min_distance"] = required_min_distance(bits, num_classes)
    if getattr(datamodule, "class_relations", None) is not None:
        stats["taxonomy_spearman"] = taxonomy_spearman(centers, datamodule)
    stats.update(extra or {})
    write_json_atomic(output_dir / "center_stats.json", stats)


class RuleCheckedSource:
    """A center source whose (classes, bits) check is a :class:`~hashing.centers.BitsRule`.

    A subclass sets ``method`` (its name in messages and ``center_stats.json``) and
    ``bits_rule``, and implements ``__call__`` (see :class:`~hashing.methods.center_hashing.
    CenterSource`).
    """

    method: str
    bits_rule: BitsRule

    def validate(self, num_classes: int, bits: int) -> None:
        """Raise ValueError naming ``bits`` when the rule rules (classes, bits) out."""
        validate_bits(bits, num_classes, self.bits_rule, self.method)


class CSQCenters(RuleCheckedSource):
    """CSQ: Hadamard rows when they suffice, else balanced Bernoulli draws (docs/methods.md#csq).

    Args:
        seed: seed of the Bernoulli draws.
        strict: when all 20 Bernoulli draws fail CSQ's test (min distance > bits/4 and mean
            >= bits/2), raise (True) or warn and keep the best draw (False, DeepHash-pytorch's
            behaviour, which keeps the last draw). ``center_stats.json`` records the outcome
            in ``csq_test_passed``.
    """

    method = "csq"
    bits_rule = CSQ_RULE

    def __init__(self, seed: int = 0, strict: bool = False) -> None:
        self.seed = seed
        self.strict = bool(strict)

    def __call__(
        self, num_classes: int, bits: int, datamodule: pl.LightningDataModule, output_dir: Path
    ) -> Tensor:
        """The CSQ centers (they do not depend on the data)."""
        centers = csq_centers(num_classes, bits, seed=self.seed, strict=self.strict)
        hadamard = uses_hadamard(num_classes, bits)
        passed = hadamard or bernoulli_accepted(centers)
        if not passed:
            log.warning(
                "CSQ centers for bits=%d, num_classes=%d fail CSQ's distance test "
                "(strict=false keeps the best draw; see center_stats.json)",
                bits,
                num_classes,
            )
        extra = {
            "method": self.method,
            "construction": "hadamard" if hadamard else "bernoulli",
            "csq_test_passed": bool(passed),
        }
        save_centers(centers, output_dir, extra, datamodule)
        return centers


class MDSCenters(RuleCheckedSource):
    """MDS: CSQ centers moved apart until every pairwise distance is ``>= d`` (docs/methods.md#mds).

    Args:
        seed: seed of the CSQ start and of the perturbations.
        max_sweeps: sweeps over all centers before giving up with CenterGenerationError.
        refine_feasible_start: also sweep a CSQ start that already meets ``d`` (not the
            reference, which keeps it; see :func:`hashing.centers.mds_centers`).
    """

    method = "mds"
    bits_rule = DISTANCE_BOUND_RULE

    def __init__(
        self, seed: int = 0, max_sweeps: int = 50, refine_feasible_start: bool = False
    ) -> None:
        if int(max_sweeps) < 1:
            raise UserError(f"max_sweeps must be >= 1, got {max_sweeps}")
        self.seed = seed
        self.max_sweeps = int(max_sweeps)
        self.refine_feasible_start = bool(refine_feasible_start)

    def __call__(
        self, num_classes: int, bits: int, datamodule: pl.LightningDataModule, output_dir: Path
    ) -> Tensor:
        """The MDS centers (they do not depend on the data)."""
        centers = mds_centers(
            num_classes,
            bits,
            seed=self.seed,
            max_sweeps=self.max_sweeps,
            refine_feasible_start=self.refine_feasible_start,
        )
        save_centers(
            centers,
            output_dir,
            {"method": self.method, "refine_feasible_start": self.refine_feasible_start},
            datamodule,
        )
        return centers
