"""SHC stage 1: class-similarity matrix from a trained classifier's logits
(docs/methods.md#shc-stage-1).

For each training sample of class ``y``: set logit ``y`` to ``-inf``, softmax, add the result to
row ``y`` of ``S``; then symmetrise, normalise each row to ``[-1, 1]`` around its mean and set
the diagonal to 1. The diagonal of the raw sums is 0 by construction (a class's own logit is
masked), so the row mean runs over all ``C`` entries including that 0, as in the reference.

Multi-label samples (our choice; the method defines single-label only): a sample with positive set
``P`` masks *all* of ``P`` and adds the resulting softmax to every row in ``P``, so no positive
label counts as "confusable" with another of the same sample. ``multi_label="first"`` instead
follows the SHC code, which keeps only the first positive label (``argmax`` of the multi-hot
vector) and masks just that one. For one-hot labels both equal the single-label rule. A sample
whose labels are all positive has no other class to spread over and contributes nothing.

The work is split so it can run over a data loader: :func:`masked_softmax_sums` per batch
(sum the results), :func:`normalise_similarity` once at the end; :func:`class_similarity` does
both for logits that fit in memory.
"""

from typing import Literal

import torch

MultiLabelRule = Literal["all", "first"]


def _label_matrix(
    labels: torch.Tensor, num_samples: int, num_classes: int, multi_label: MultiLabelRule
) -> torch.Tensor:
    """(N, C) {0, 1} float64 matrix of the labels whose rows receive each sample."""
    if labels.ndim == 1:
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"class-index labels must be integers, got dtype {labels.dtype}")
        if labels.shape[0] != num_samples:
            raise ValueError(f"labels has {labels.shape[0]} rows, logits {num_samples}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(f"labels must lie in [0, num_classes={num_classes})")
        return torch.nn.functional.one_hot(labels.long(), num_classes).to(torch.float64)
    if labels.ndim != 2 or tuple(labels.shape) != (num_samples, num_classes):
        raise ValueError(
            f"labels must be (N,) class indices or (N, C) = {(num_samples, num_classes)} "
            f"multi-hot, got shape {tuple(labels.shape)}"
        )
    hot = labels.to(torch.float64)
    if not bool(((hot == 0) | (hot == 1)).all()):
        raise ValueError("multi-hot labels must contain only 0 and 1")
    if multi_label == "first":
        first = torch.nn.functional.one_hot(hot.argmax(dim=1), num_classes).to(torch.float64)
        return first * hot.amax(dim=1, keepdim=True)
    if multi_label != "all":
        raise ValueError(f"multi_label must be 'all' or 'first', got {multi_label!r}")
    return hot


def masked_softmax_sums(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    multi_label: MultiLabelRule = "all",
) -> torch.Tensor:
    """Raw (C, C) float64 sums: row ``y`` += softmax(logits with the sample's labels masked).

    Additive over samples, so per-batch results can simply be summed.
    """
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(
            f"logits must be (N, num_classes={num_classes}), got shape {tuple(logits.shape)}"
        )
    receive = _label_matrix(labels, logits.shape[0], num_classes, multi_label)
    masked = logits.to(torch.float64).masked_fill(receive.bool(), -torch.inf)
    has_other = ~torch.isinf(masked).all(dim=1, keepdim=True)
    probs = torch.where(has_other, torch.softmax(masked, dim=1), 0.0)
    return receive.T @ probs


def normalise_similarity(sums: torch.Tensor) -> torch.Tensor:
    """Symmetrise, row-normalise to ``(S_i - mean) / max(|max - mean|, |min - mean|)``, diag 1.

    A constant row (zero denominator) becomes all zeros before the diagonal is set.
    """
    if sums.ndim != 2 or sums.shape[0] != sums.shape[1]:
        raise ValueError(f"sums must be a square (C, C) matrix, got shape {tuple(sums.shape)}")
    if not bool(sums.abs().sum() > 0):
        raise ValueError("similarity sums are all zero: no sample had a class to spread over")
    sym = (sums + sums.T).to(torch.float64) / 2
    mean = sym.mean(dim=1, keepdim=True)
    spread = torch.maximum(
        (sym.amax(dim=1, keepdim=True) - mean).abs(), (sym.amin(dim=1, keepdim=True) - mean).abs()
    )
    safe = torch.where(spread > 0, spread, 1.0)
    out = torch.where(spread > 0, (sym - mean) / safe, 0.0)
    out.fill_diagonal_(1.0)
    return out


def class_similarity(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    multi_label: MultiLabelRule = "all",
) -> torch.Tensor:
    """(C, C) float64 class-similarity matrix ``S`` (SHC stage 1), entries in [-1, 1]."""
    return normalise_similarity(masked_softmax_sums(logits, labels, num_classes, multi_label))


def taxonomy_similarity(wu_palmer: torch.Tensor) -> torch.Tensor:
    """(C, C) ``S`` from a class taxonomy instead of a classifier: the Wu-Palmer similarities of
    the class pairs take the place of stage 1's confusion sums (the diagonal zeroed, as a
    masked class's own entry is) and get the same normalisation."""
    if wu_palmer.ndim != 2 or wu_palmer.shape[0] != wu_palmer.shape[1]:
        raise ValueError(f"wu_palmer must be (C, C), got shape {tuple(wu_palmer.shape)}")
    sums = wu_palmer.to(torch.float64).clone()
    sums.fill_diagonal_(0.0)
    return normalise_similarity(sums)
