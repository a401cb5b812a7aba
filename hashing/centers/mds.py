"""MDS hash centers: CSQ centers pushed apart until every pair is >= d bits apart
(docs/methods.md#mds).

Wang et al. (2023) start from the CSQ centers and, for each center in turn, minimise its inner
product with the mean of the other centers subject to all pairwise distances being >= d,
solving each binary subproblem with lp-box ADMM and sweeping up to 50 times.

Our solver (a deviation in method, not in the guarantee): the per-center subproblem is solved by
a vectorised greedy bit-flip local search with a lexicographic score:

1. ``violation`` = sum over other centers ``j`` of ``max(0, d - d_H(h_i, h_j))`` (an integer),
   which must never increase;
2. then ``mean + min - var`` of the center's distances to the others, to be increased. Its mean
   term is the method's objective (``h_i · mean_{j!=i} h_j = q - 2 * mean distance``); ``min - var``
   is the acceptance score of the reference code, which keeps equidistant starts (Hadamard rows)
   as they are instead of trading the minimum for a slightly larger mean.

Each step scores all ``bits`` single-bit flips at once from running sums (one matrix-vector
product over the ``(C-1, bits)`` agreement table) and takes the best. A flip of center ``i``
only changes the pairs ``(i, j)``, so the total violation over all pairs changes exactly as the
center's own violation does: it never increases, and once it is zero every later move keeps it
zero. Sweeps stop once the minimum distance reaches ``d``. A start that already meets ``d``
is returned unchanged, as the reference does: its lp-box step keeps a center unless the new
one scores better, which for equidistant Hadamard rows (CSQ's start whenever ``C <= 2q``) it
never does, so e.g. 10 classes at 32 bits keep min = mean = q/2 (our greedy search would move
them to min/mean 16/17.33, trading the rows' equidistance for a larger mean). A sweep that
fails to lower the violation perturbs one center of each violating pair with a few random flips
(seeded) to leave the local minimum. The result is checked at the
end: centers violating the bound are never returned;
:class:`CenterGenerationError` is raised instead.
"""

import warnings

import numpy as np
import torch

from hashing.centers.bound import required_min_distance
from hashing.centers.csq import balanced_bernoulli, csq_centers
from hashing.centers.exceptions import CenterGenerationError
from hashing.centers.statistics import center_statistics, pairwise_hamming
from hashing.centers.validation import DISTANCE_BOUND_RULE, validate_bits

_SCORE_TOL = 1e-6


def initial_centers(num_classes: int, bits: int, seed: int) -> torch.Tensor:
    """CSQ centers when CSQ can produce them, else the best of CSQ's Bernoulli draws.

    MDS only needs a starting point: a CSQ draw that fails CSQ's own acceptance test (e.g. 100
    classes at 32 bits) is still a good start, and odd ``bits`` get near-balanced rows.
    """
    if bits % 2 and not (bits == 1 and num_classes <= 2):
        generator = torch.Generator().manual_seed(seed)
        return balanced_bernoulli(num_classes, bits, generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return csq_centers(num_classes, bits, seed=seed, strict=False)


class _CenterSearch:
    """State of the local search on one center: its distances and agreement with the others.

    ``agree[j, k] = +1`` when bit ``k`` of the center equals bit ``k`` of other center ``j``, so
    flipping bit ``k`` moves distance ``j`` by ``agree[j, k]``. Scores for all ``bits`` single
    flips come from running sums (one matrix-vector product per step) instead of materialising
    the ``(C-1, bits)`` distance table: sum and sum of squares give mean and variance, and the
    minimum and the violation only depend on the few rows whose distance is near them.
    NumPy, not torch: these small per-step operations run single-threaded there, and torch's
    two-thread kernels were 3-5x slower on a loaded 2-core machine.
    """

    def __init__(self, code: np.ndarray, others: np.ndarray, min_distance: int) -> None:
        self.code = code.astype(np.float64)
        self.agree = others * self.code
        self.dist = (others.shape[1] - self.agree.sum(axis=1)) / 2
        self.d = min_distance
        self.n = others.shape[0]

    def current(self) -> tuple[float, float]:
        """(violation, mean + min - var) of the center as it is."""
        dist = self.dist
        mean = float(dist.mean())
        var = float((dist * dist).mean()) - mean * mean
        violation = float(np.clip(self.d - dist, 0, None).sum())
        return violation, mean + float(dist.min()) - var

    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """(violation, mean + min - var) after flipping each single bit, shape (bits,) each."""
        dist, agree, n = self.dist, self.agree, self.n
        total = dist.sum() + agree.sum(axis=0)
        total_sq = (dist * dist).sum() + 2 * (dist @ agree) + n
        mean = total / n
        var = total_sq / n - mean * mean
        low = dist < self.d
        violation = (self.d - dist[low]).sum() - agree[low].sum(axis=0)
        violation = violation + (agree[dist == self.d] < 0).sum(axis=0)
        dmin = dist.min()
        drop_at_min = (agree[dist == dmin] < 0).any(axis=0)
        drop_above_min = (agree[dist == dmin + 1] < 0).any(axis=0)
        new_min = np.where(drop_at_min, dmin - 1, np.where(drop_above_min, dmin, dmin + 1))
        return violation, mean + new_min - var

    def flip(self, bit: int) -> None:
        """Flip one bit of the center and update distances and agreements."""
        self.dist += self.agree[:, bit]
        self.agree[:, bit] = -self.agree[:, bit]
        self.code[bit] = -self.code[bit]


def improve_center(
    centers: np.ndarray, index: int, min_distance: int, max_flips: int
) -> tuple[np.ndarray, int]:
    """Greedy single-bit local search on row ``index`` of float64 ±1 ``centers`` (others fixed).

    Returns the new row and the number of flips made. Never increases the row's violation.
    """
    others = np.delete(centers, index, axis=0)
    search = _CenterSearch(centers[index], others, min_distance)
    violation, score = search.current()
    flips = 0
    while flips < max_flips:
        cand_violation, cand_score = search.candidates()
        best_violation = float(cand_violation.min())
        if best_violation > violation:
            break
        masked = np.where(cand_violation == best_violation, cand_score, -np.inf)
        bit = int(masked.argmax())
        if best_violation == violation and float(masked[bit]) <= score + _SCORE_TOL:
            break
        search.flip(bit)
        violation, score = best_violation, float(masked[bit])
        flips += 1
    return search.code, flips


def total_violation(centers: torch.Tensor, min_distance: int) -> int:
    """Sum over pairs ``i < j`` of ``max(0, d - d_H(h_i, h_j))``."""
    dist = pairwise_hamming(centers)
    iu = torch.triu_indices(centers.shape[0], centers.shape[0], offset=1)
    return int((min_distance - dist[iu[0], iu[1]]).clamp(min=0).sum())


def _perturb(
    centers: torch.Tensor, min_distance: int, flips: int, generator: torch.Generator
) -> torch.Tensor:
    """Flip ``flips`` random bits of one center of every violating pair (seeded)."""
    dist = pairwise_hamming(centers)
    dist.fill_diagonal_(centers.shape[1] + 1)
    rows, cols = torch.nonzero(dist < min_distance, as_tuple=True)
    pick_row = torch.rand(rows.shape[0], generator=generator) < 0.5
    victims = torch.unique(torch.where(pick_row, rows, cols))
    out = centers.clone()
    for row in victims.tolist():
        bits = torch.randperm(centers.shape[1], generator=generator)[:flips]
        out[row, bits] = -out[row, bits]
    return out


def mds_centers(
    num_classes: int,
    bits: int,
    seed: int = 0,
    max_sweeps: int = 50,
    min_distance: int | None = None,
    init: torch.Tensor | None = None,
    refine_feasible_start: bool = False,
) -> torch.Tensor:
    """MDS centers, shape ``(num_classes, bits)``, float ±1, all pairs >= ``min_distance`` apart.

    ``min_distance`` defaults to :func:`required_min_distance`; ``init`` (default: CSQ centers)
    is the starting point, returned as it is when it already meets the bound (the reference's
    behaviour) unless ``refine_feasible_start``, which sweeps it at least once. Deterministic
    given the arguments. Raises ValueError for impossible settings and
    :class:`CenterGenerationError` when ``max_sweeps`` sweeps do not reach the bound.
    """
    validate_bits(bits, num_classes, DISTANCE_BOUND_RULE, "mds")
    if max_sweeps < 1:
        raise ValueError(f"max_sweeps must be >= 1, got {max_sweeps}")
    d = required_min_distance(bits, num_classes) if min_distance is None else min_distance
    if not 0 <= d <= bits:
        raise ValueError(f"min_distance must be in [0, bits={bits}], got {d}")
    if init is None:
        centers = initial_centers(num_classes, bits, seed)
    else:
        if tuple(init.shape) != (num_classes, bits):
            raise ValueError(
                f"init must have shape (num_classes, bits) = {(num_classes, bits)}, "
                f"got {tuple(init.shape)}"
            )
        center_statistics(init)  # validates ±1 entries
        centers = init.to(torch.float32).clone()
    generator = torch.Generator().manual_seed(seed + 1)
    violation = total_violation(centers, d)
    if violation == 0 and not refine_feasible_start:
        return centers
    for _ in range(max_sweeps):
        rows = centers.numpy().astype(np.float64)
        for index in range(num_classes):
            rows[index], _ = improve_center(rows, index, d, max_flips=bits)
        centers = torch.from_numpy(rows).to(torch.float32)
        new_violation = total_violation(centers, d)
        if new_violation == 0:
            return centers
        if new_violation >= violation:
            centers = _perturb(centers, d, flips=max(1, bits // 16), generator=generator)
            new_violation = total_violation(centers, d)
        violation = new_violation
    stats = center_statistics(centers)
    raise CenterGenerationError(
        f"MDS centers: after {max_sweeps} sweeps the minimum pairwise distance is "
        f"{stats['min']:.0f} < required d = {d} for bits={bits}, num_classes={num_classes} "
        f"(seed={seed}); use more bits, raise max_sweeps, or try another seed"
    )
