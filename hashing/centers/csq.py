"""CSQ hash centers (docs/methods.md#csq): Sylvester-Hadamard rows, or balanced Bernoulli vectors.

Follows DeepHash-pytorch's CSQ ``get_hash_targets``: Hadamard rows when ``bits`` is a power of
two and ``C <= bits``; rows of ``[H; -H]`` when ``C <= 2 * bits``; otherwise random vectors
with exactly ``bits / 2`` entries of -1, resampled (up to 20 tries) until the minimum pairwise
distance exceeds ``bits / 4`` and the mean is at least ``bits / 2``. Deviation: the reference
silently keeps the last draw after 20 failures; we raise :class:`CenterGenerationError`
(``strict=True``, default) or, with ``strict=False``, warn and return the best draw (largest
minimum distance, then largest mean) -- e.g. 100 classes at 16/32/48 bits always fail the test.
Determinism: the draws come from a ``torch.Generator`` seeded with ``seed``.
"""

import warnings

import torch

from hashing.centers.exceptions import CenterGenerationError
from hashing.centers.statistics import pairwise_hamming
from hashing.centers.validation import CSQ_RULE, is_power_of_two, validate_bits


def hadamard_matrix(bits: int) -> torch.Tensor:
    """Sylvester Hadamard matrix of order ``bits`` (a power of two), float ±1, first row all +1."""
    if not is_power_of_two(bits):
        raise ValueError(f"bits must be a power of two for a Sylvester Hadamard matrix, got {bits}")
    h = torch.ones(1, 1)
    while h.shape[0] < bits:
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    return h


def uses_hadamard(num_classes: int, bits: int) -> bool:
    """Whether CSQ takes Hadamard rows (True) or balanced Bernoulli draws (False)."""
    return is_power_of_two(bits) and num_classes <= 2 * bits


def balanced_bernoulli(num_classes: int, bits: int, generator: torch.Generator) -> torch.Tensor:
    """``num_classes`` random ±1 rows, each with exactly ``bits // 2`` entries equal to -1."""
    ranks = torch.rand(num_classes, bits, generator=generator).argsort(dim=1).argsort(dim=1)
    return torch.where(ranks < bits // 2, -1.0, 1.0)


def _min_and_mean_distance(centers: torch.Tensor) -> tuple[float, float]:
    """Minimum and mean pairwise Hamming distance over pairs ``i < j``."""
    num_classes = centers.shape[0]
    if num_classes < 2:
        return float("inf"), float("inf")
    iu = torch.triu_indices(num_classes, num_classes, offset=1)
    pairs = pairwise_hamming(centers)[iu[0], iu[1]].to(torch.float64)
    return float(pairs.min()), float(pairs.mean())


def bernoulli_accepted(centers: torch.Tensor) -> bool:
    """CSQ's acceptance test: min pairwise distance > bits/4 and mean >= bits/2."""
    bits = centers.shape[1]
    minimum, mean = _min_and_mean_distance(centers)
    return minimum > bits / 4 and mean >= bits / 2


def csq_centers(
    num_classes: int, bits: int, seed: int = 0, max_tries: int = 20, strict: bool = True
) -> torch.Tensor:
    """CSQ centers, shape ``(num_classes, bits)``, float ±1.

    Raises ValueError (via :func:`validate_bits`) for impossible (bits, num_classes) and, when
    ``strict``, :class:`CenterGenerationError` if ``max_tries`` Bernoulli draws all fail CSQ's
    test; with ``strict=False`` it warns and returns the best draw instead.
    """
    validate_bits(bits, num_classes, CSQ_RULE, "csq")
    if uses_hadamard(num_classes, bits):
        h = hadamard_matrix(bits)
        return torch.cat([h, -h], dim=0)[:num_classes].clone()
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    generator = torch.Generator().manual_seed(seed)
    best: torch.Tensor | None = None
    best_score = (-1.0, -1.0)
    for _ in range(max_tries):
        centers = balanced_bernoulli(num_classes, bits, generator)
        score = _min_and_mean_distance(centers)
        if score[0] > bits / 4 and score[1] >= bits / 2:
            return centers
        if score > best_score:
            best, best_score = centers, score
    message = (
        f"CSQ Bernoulli centers: no draw out of {max_tries} (seed={seed}) reached min pairwise "
        f"distance > bits/4 and mean >= bits/2 for bits={bits}, num_classes={num_classes}; "
        "use more bits (a power of two >= num_classes/2 gives Hadamard centers) or MDS centers"
    )
    if strict:
        raise CenterGenerationError(message)
    warnings.warn(f"{message}. Returning the best draw (strict=False).", stacklevel=2)
    assert best is not None
    return best
