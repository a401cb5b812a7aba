"""Imperfect training labels: a seeded share of them kept, a seeded share replaced (docs/labels.md).

Both act on the ``fit`` split only (the training items left after the validation carve-out), so
validation and test always see every item's clean label. Pure functions plus :class:`Labelling`,
the outcome a DataModule serves its training loader from and a run records in ``labels.json``.

* ``label_fraction`` f: per class, ``max(1, round(f * n_c))`` of the fit items keep their label
  (a seeded draw); the others are unlabelled. Multi-label data has no per-class partition, so
  there it is a seeded draw of ``max(1, round(f * n))`` items.
* ``label_noise`` p: per class, exactly ``round(p * m_c)`` of the class's ``m_c`` labelled items
  (seeded) get another class: ``uniform`` over the other classes, or ``sibling``, the nearest
  other class in the dataset's taxonomy (edges through the lowest common ancestor; ties drawn
  uniformly). Single-label data only.

The draws use their own streams of ``seed`` (the DataModule passes ``data.label_seed``, by
default the split seed), so the kept items do not depend on the noise and neither depends on the
run's seed. f = 1 and p = 0 draw nothing and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hashing.runs.errors import UserError

NOISE_KINDS = ("uniform", "sibling")
#: how a method uses the training labels (``HashingModule.label_use``): ``labelled`` trains on
#: the labelled items only; ``mask`` sees every item, the unlabelled ones marked
#: :data:`UNLABELLED`; ``none`` sees every item and ignores the labels
LABEL_USES = ("labelled", "mask", "none")
#: the label an unlabelled item carries in a ``mask``/``none`` training batch (a multi-label
#: item: a row of it)
UNLABELLED = -1
#: the streams of the label seed: which items keep their label, which get noise, which class
MASK_STREAM, NOISE_STREAM = 1, 2
LABELS_FILE = "labels.json"


def check_label_options(fraction: float, noise: float, kind: str) -> None:
    """Refuse a fraction outside (0, 1], a noise outside [0, 1) and an unknown noise kind."""
    if not 0.0 < float(fraction) <= 1.0:
        raise UserError(
            f"data.label_fraction={fraction} is invalid: give the share of training labels "
            f"kept, in (0, 1] (1 = every label)"
        )
    if not 0.0 <= float(noise) < 1.0:
        raise UserError(
            f"data.label_noise={noise} is invalid: give the share of training labels replaced, "
            f"in [0, 1) (0 = none)"
        )
    if kind not in NOISE_KINDS:
        raise UserError(f"data.label_noise_kind={kind!r} is invalid: use one of {NOISE_KINDS}")


def labelled_rows(labels: Tensor) -> Tensor:
    """(B,) bool: which items of a training batch carry a label (not :data:`UNLABELLED`)."""
    return labels >= 0 if labels.ndim == 1 else labels[:, 0] >= 0


def keep_labels(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: the items that keep their label (module doc), ``labels`` (N,) or (N, C)."""
    labels = np.asarray(labels)
    keep = np.zeros(len(labels), dtype=bool)
    if fraction >= 1.0:
        keep[:] = True
        return keep
    rng = np.random.default_rng([int(seed), MASK_STREAM])
    if labels.ndim != 1:
        take = max(1, round(fraction * len(labels)))
        keep[rng.permutation(len(labels))[:take]] = True
        return keep
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        take = max(1, round(fraction * len(members)))
        keep[rng.permutation(members)[:take]] = True
    return keep


def nearest_classes(distance: np.ndarray, cls: int) -> np.ndarray:
    """The other classes at the smallest taxonomy distance from ``cls`` (sorted)."""
    row = np.asarray(distance[cls], dtype=np.float64).copy()
    row[cls] = np.inf
    return np.flatnonzero(row == row.min())


def replace_labels(
    labels: np.ndarray,
    labelled: np.ndarray,
    noise: float,
    kind: str,
    seed: int,
    num_classes: int,
    distance: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, new classes) of the labels replaced (module doc), positions sorted.

    ``labels`` (N,) class indices, ``labelled`` (N,) bool (only labelled items get noise),
    ``distance`` the (C, C) taxonomy distances ``sibling`` needs.
    """
    labels = np.asarray(labels)
    if noise <= 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if labels.ndim != 1:
        raise UserError(
            "data.label_noise applies to single-label data; this dataset is multi-label "
            "(replacing a set of labels has no one meaning): set data.label_noise=0"
        )
    if num_classes < 2:
        raise UserError("data.label_noise needs at least two classes to swap labels between")
    if kind == "sibling" and distance is None:
        raise UserError(
            "data.label_noise_kind=sibling needs a class taxonomy: set data.hierarchy=<file> "
            "(docs/taxonomy.md), or use data.label_noise_kind=uniform"
        )
    rng = np.random.default_rng([int(seed), NOISE_STREAM])
    positions, targets = [], []
    for cls in np.unique(labels[labelled]):
        members = np.flatnonzero(labelled & (labels == cls))
        chosen = np.sort(rng.permutation(members)[: round(noise * len(members))])
        if kind == "uniform":  # uniform over the C - 1 other classes
            new = rng.integers(0, num_classes - 1, size=len(chosen))
            new = new + (new >= cls)
        else:
            new = rng.choice(nearest_classes(distance, int(cls)), size=len(chosen))
        positions.append(chosen)
        targets.append(new.astype(np.int64))
    if not positions:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    position, target = np.concatenate(positions), np.concatenate(targets)
    order = np.argsort(position, kind="stable")
    return position[order].astype(np.int64), target[order]


@dataclass
class Labelling:
    """The training labels of a fit split: which items keep one and what it is.

    ``items`` are the fit split's pool indices in split order; ``labelled`` (bool) and
    ``labels`` (the training labels: the clean ones with the noise applied) follow that order;
    ``changed`` are positions into it whose label the noise replaced (``clean`` has the old ones).
    """

    fraction: float
    noise: float
    kind: str
    seed: int
    items: np.ndarray
    clean: Tensor
    labels: Tensor
    labelled: np.ndarray
    changed: np.ndarray

    @property
    def labelled_items(self) -> np.ndarray:
        """Pool indices of the labelled items, in split order."""
        return self.items[self.labelled]

    def masked_labels(self) -> Tensor:
        """The training labels with every unlabelled item's set to :data:`UNLABELLED`."""
        masked = self.labels.clone()
        masked[torch.from_numpy(~self.labelled)] = UNLABELLED
        return masked

    def describe(self) -> str | None:
        """One line for the run's summary when the labels are imperfect (None when not)."""
        if self.labelled.all() and not len(self.changed):
            return None
        kept = f"{int(self.labelled.sum())} of {len(self.items)} training labels"
        return f"{kept}, {len(self.changed)} replaced ({self.kind}) · labels.json"

    def record(self, label_use: str, class_names: list[str]) -> dict[str, Any]:
        """What ``labels.json`` holds: the settings, the labelled counts per class and in
        total, the labels the method used, and every replaced label (pool index, old, new)."""
        per_class: dict[str, int] = {}
        if self.clean.ndim == 1:
            counts = np.bincount(
                self.clean.numpy()[self.labelled], minlength=len(class_names)
            ).tolist()
            per_class = dict(zip(class_names, counts, strict=True))
        total = int(self.labelled.sum())
        clean = self.clean.numpy()
        noisy = self.labels.numpy()
        return {
            "label_fraction": self.fraction,
            "label_noise": self.noise,
            "label_noise_kind": self.kind,
            "label_seed": self.seed,
            "label_use": label_use,
            "fit_items": len(self.items),
            "labelled_items": total,
            "labels_used": 0 if label_use == "none" else total,
            "labelled_per_class": per_class,
            "noisy_items": len(self.changed),
            "changed": [
                {"item": int(self.items[p]), "old": int(clean[p]), "new": int(noisy[p])}
                for p in self.changed
            ],
        }


def draw_labelling(
    fit_items: np.ndarray,
    clean: Tensor,
    *,
    fraction: float,
    noise: float,
    kind: str,
    seed: int,
    num_classes: int,
    distance: np.ndarray | None = None,
) -> Labelling:
    """The :class:`Labelling` of the fit items ``fit_items`` whose clean labels are ``clean``."""
    check_label_options(fraction, noise, kind)
    values = clean.numpy()
    labelled = keep_labels(values, fraction, seed)
    changed, new = replace_labels(values, labelled, noise, kind, seed, num_classes, distance)
    labels = clean.clone()
    if len(changed):
        labels[torch.from_numpy(changed)] = torch.from_numpy(new).to(labels.dtype)
    return Labelling(
        float(fraction),
        float(noise),
        str(kind),
        int(seed),
        np.asarray(fit_items, np.int64),
        clean,
        labels,
        labelled,
        changed,
    )
