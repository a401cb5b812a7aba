"""Training-free linear hash functions ``sign((x - mean) @ W)``: LSH, PCA-sign and ITQ.

Each is fitted on a reference set (the training split's features) in float64 and returns the
pair ``(mean, W)``; codes are the signs of the centred projection (0 maps to +1, as the models'
``sign``). See ``docs/benchmarks.md`` for where they stand beside the learned methods.

* ``lsh``: Gaussian random hyperplanes (Charikar 2002), ``W ~ N(0, 1)``, seeded.
* ``pcah``: PCA-sign, ``W`` = the top ``bits`` principal directions of the reference set.
* ``itq``: iterative quantisation (Gong & Lazebnik 2011): PCA to ``bits`` dimensions, then an
  orthogonal rotation ``R`` that alternately fixes ``B = sign(V R)`` and solves the orthogonal
  Procrustes problem ``min_R ||B - V R||_F`` (``R = S Ŝᵀ`` from the SVD ``Vᵀ B = S Ω Ŝᵀ``),
  starting from a seeded random rotation; ``W = W_pca R``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: the training-free projections and their method names
PROJECTIONS = ("lsh", "pcah", "itq")


def check_bits(bits: object) -> int:
    """``bits`` as an int, or ValueError naming it."""
    if not isinstance(bits, int) or isinstance(bits, bool) or bits < 1:
        raise ValueError(f"bits={bits!r} is invalid: use a positive integer")
    return bits


def lsh_planes(width: int, bits: int, seed: int) -> Tensor:
    """(width, bits) float64 Gaussian hyperplanes; the same seed gives the same planes anywhere."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn(width, check_bits(bits), generator=generator, dtype=torch.float64)


def pca_directions(centred: Tensor, bits: int) -> Tensor:
    """(D, bits) top principal directions of the centred rows (by decreasing variance).

    Each direction's sign is fixed so its largest-magnitude entry is positive (the convention
    of scikit-learn's ``svd_flip`` on the components), so PCA-sign codes do not depend on the
    SVD routine's arbitrary signs.
    """
    if bits > min(centred.shape):
        raise ValueError(
            f"bits={bits} exceeds what PCA of {centred.shape[0]} x {centred.shape[1]} features "
            f"gives ({min(centred.shape)} directions): use bits <= {min(centred.shape)}"
        )
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    components = vh[:bits]
    largest = components.abs().argmax(dim=1)
    signs = torch.sign(components[torch.arange(bits), largest])
    return (components * signs[:, None]).T.contiguous()


def random_rotation(bits: int, seed: int) -> Tensor:
    """A seeded (bits, bits) random orthogonal matrix (QR of a Gaussian, signs fixed)."""
    generator = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(bits, bits, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))[None, :]


def sign_of(values: Tensor) -> Tensor:
    """±1 of ``values`` with 0 mapped to +1, in the input's dtype."""
    return torch.where(values >= 0, 1.0, -1.0).to(values.dtype)


@dataclass(frozen=True)
class ITQResult:
    """The fitted rotation and the quantisation loss ``||sign(V R) - V R||_F^2`` of the start
    and after each iteration (non-increasing: each half-step minimises it)."""

    rotation: Tensor
    losses: list[float]


def quantisation_loss(projected: Tensor, rotation: Tensor) -> float:
    """``||sign(V R) - V R||_F^2``."""
    rotated = projected @ rotation
    return float(((sign_of(rotated) - rotated) ** 2).sum())


def itq_rotation(projected: Tensor, iterations: int = 50, seed: int = 0) -> ITQResult:
    """ITQ's rotation of the (N, bits) PCA projection ``V``: ``iterations`` alternations of
    ``B = sign(V R)`` and ``R = argmin_{R orthogonal} ||B - V R||_F`` from a seeded rotation."""
    if iterations < 0:
        raise ValueError(f"iterations={iterations} is invalid: use 0 or more")
    projected = projected.double()
    rotation = random_rotation(projected.shape[1], seed)
    losses = [quantisation_loss(projected, rotation)]
    for _ in range(iterations):
        codes = sign_of(projected @ rotation)
        left, _, right_h = torch.linalg.svd(projected.T @ codes)
        rotation = left @ right_h
        losses.append(quantisation_loss(projected, rotation))
    return ITQResult(rotation, losses)


def fit_projection(
    kind: str, reference: Tensor, bits: int, seed: int = 0, iterations: int = 50
) -> tuple[Tensor, Tensor]:
    """``(mean, W)`` in float64 of the ``kind`` projection fitted on (N, D) ``reference``.

    Codes are ``sign((x - mean) @ W)``. ``seed`` draws LSH's planes and ITQ's start rotation
    (PCA-sign uses none); ``iterations`` is ITQ's number of rotation updates.
    """
    if kind not in PROJECTIONS:
        raise ValueError(f"projection {kind!r} unknown; expected one of {PROJECTIONS}")
    check_bits(bits)
    if reference.dim() != 2 or reference.shape[0] == 0:
        raise ValueError(f"reference must be a non-empty (N, D), got {tuple(reference.shape)}")
    reference = reference.double()
    mean = reference.mean(0)
    if kind == "lsh":
        return mean, lsh_planes(reference.shape[1], bits, seed)
    centred = reference - mean
    directions = pca_directions(centred, bits)
    if kind == "pcah":
        return mean, directions
    result = itq_rotation(centred @ directions, iterations, seed)
    return mean, directions @ result.rotation


def projection_codes(features: Tensor, mean: Tensor, weights: Tensor) -> Tensor:
    """(M, bits) float32 ±1 codes ``sign((features - mean) @ W)`` computed in float64."""
    return sign_of((features.double() - mean) @ weights).float()
