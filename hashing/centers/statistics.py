"""Pairwise Hamming-distance statistics of a set of hash centers."""

import torch


def _check_centers(centers: torch.Tensor) -> None:
    """Raise ValueError unless ``centers`` is a 2-D ±1 tensor."""
    if centers.ndim != 2:
        shape = tuple(centers.shape)
        raise ValueError(f"centers must be 2-D (num_classes, bits), got shape {shape}")
    if not bool(((centers == 1) | (centers == -1)).all()):
        raise ValueError("centers must contain only -1 and +1 entries")


def pairwise_hamming(centers: torch.Tensor) -> torch.Tensor:
    """(C, C) int64 Hamming distances ``(q - h_i·h_j) / 2`` between ±1 rows (exact)."""
    _check_centers(centers)
    h = centers.to(torch.float64)
    return ((centers.shape[1] - h @ h.T) / 2).round().to(torch.int64)


def center_statistics(centers: torch.Tensor) -> dict[str, float]:
    """Min / mean / variance (population) / max of pairwise distances over pairs ``i < j``.

    Also reports ``num_classes``, ``bits`` and ``num_pairs``. With fewer than two centers the
    distance entries are NaN (there are no pairs).
    """
    _check_centers(centers)
    num_classes, bits = centers.shape
    iu = torch.triu_indices(num_classes, num_classes, offset=1)
    pairs = pairwise_hamming(centers)[iu[0], iu[1]].to(torch.float64)
    nan = float("nan")
    return {
        "num_classes": num_classes,
        "bits": bits,
        "num_pairs": int(pairs.numel()),
        "min": float(pairs.min()) if pairs.numel() else nan,
        "mean": float(pairs.mean()) if pairs.numel() else nan,
        "var": float(pairs.var(unbiased=False)) if pairs.numel() else nan,
        "max": float(pairs.max()) if pairs.numel() else nan,
    }
