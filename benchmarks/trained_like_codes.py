"""Synthetic 64-bit codes drawn like a trained model's: clustered, not uniform.

A trained hashing model maps the items of one class to codes near one center; what separates
two items of a class is a few flipped bits. Each item here takes its class's random center and
flips each bit independently with probability ``noise`` (rounded to a multiple of 1/256, so the
flips come from one random byte per bit: fast enough for 100M codes).
"""

from __future__ import annotations

import numpy as np

BITS = 64
#: codes drawn per block (bounds the temporary per-bit arrays to about 100 MB)
BLOCK = 1_000_000


def clustered_codes(n: int, classes: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed (n, 8) uint8 codes around ``classes`` random centers with bit flips, and labels."""
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be a probability in [0, 1], got {noise}")
    rng = np.random.default_rng(seed)
    centers = np.packbits(rng.random((classes, BITS)) < 0.5, axis=1)
    labels = rng.integers(0, classes, n, dtype=np.int32)
    threshold = round(noise * 256)
    packed = np.empty((n, BITS // 8), np.uint8)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        flips = rng.integers(0, 256, (stop - start, BITS), dtype=np.uint8) < threshold
        packed[start:stop] = centers[labels[start:stop]] ^ np.packbits(flips, axis=1)
    return packed, labels
