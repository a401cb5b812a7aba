"""Locality-sensitive hashing by random hyperplanes (Charikar 2002): ``sign(W (x - mean))``."""

from __future__ import annotations

import torch
from torch import Tensor

from hashing.baselines.projections import check_bits, lsh_planes, projection_codes


def lsh_codes(
    reference: Tensor, *features: Tensor, bits: int, seed: int = 0, center: bool = True
) -> list[Tensor]:
    """±1 codes of each of ``features`` under ``bits`` Gaussian random hyperplanes.

    Args:
        reference: (N, D) features whose mean is subtracted first (the training set; with
            ``center=False`` only its width is used). Centring keeps hyperplanes through the
            data's middle: non-negative features (ReLU outputs) would otherwise fall on the same
            side of most planes and share most bits.
        features: the (M, D) sets to encode (e.g. queries and database).
        bits: code length.
        seed: seed of the hyperplanes; the same seed gives the same planes on any machine.

    Returns:
        one (M, bits) float32 tensor of ±1 (0 mapped to +1, as the models' ``sign``) per set.
    """
    check_bits(bits)
    if reference.dim() != 2:
        raise ValueError(f"reference must be (N, D), got shape {tuple(reference.shape)}")
    width = reference.shape[1]
    planes = lsh_planes(width, bits, seed)
    offset = reference.double().mean(0) if center else torch.zeros(width, dtype=torch.float64)
    codes = []
    for part in features:
        if part.dim() != 2 or part.shape[1] != width:
            raise ValueError(f"features must be (M, {width}), got shape {tuple(part.shape)}")
        codes.append(projection_codes(part, offset, planes))
    return codes
