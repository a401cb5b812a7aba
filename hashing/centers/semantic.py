"""SHC stage 2: semantic hash centers (SPEC §3).

Solves ``min_H sum_ij (s_ij - h_i·h_j / q)^2`` subject to ``d_H(h_i, h_j) >= d`` for all
``i != j``, starting from the MDS centers, with the reference's alternating scheme. In column
form (``H`` is ``q x C``, column ``i`` = center of class ``i``), per epoch:

* ``M = (2/q^2 H H^T + rho I)^-1 (2/q H S + Lambda + rho H)`` (closed form of the real
  auxiliary variable of the augmented Lagrangian
  ``||S - H^T M / q||^2 + <Lambda, H - M> + rho/2 ||H - M||^2``);
* ``inner_passes`` passes over the centers in order; center ``i`` takes the step
  ``h_i <- sign(h_i - g_i / eta)`` with ``g_i`` the gradient of that objective plus the
  repulsion ``mu r sum_{i!=j} h_i·h_j``:
  ``g_i = 2/q^2 M M^T h_i - 2/q M s_i + Lambda_i + rho (h_i - m_i) + 2 mu r sum_{j!=i} h_j``
  (``s_i`` = row ``i`` of ``S``; the reference uses column ``i``, equal for symmetric ``S``),
  accepted only if its distances to all other centers stay ``>= d`` (so the minimum distance
  never drops below ``d``: the start satisfies it and only centers ``i``'s own pairs change);
* ``Lambda += rho (H - M)``;
* the ``H`` with the lowest fit loss ``mean_ij (s_ij - h_i·h_j / q)^2`` is kept.

Deviations from the SHC code, each for a stated reason:

* The repulsion gradient ``2 mu sum_{j!=i} h_j`` is multiplied by ``r = repulsion_scale``
  (default ``1e-4``): the reference divides that sum by 10000, which is what makes the
  repulsion "small"; with ``r = 1`` it would outweigh the fit term by two orders of magnitude.
* The reference's extra constraint terms (multipliers ``alpha``, which an indexing slip keeps
  at ~0, penalty ``beta = 1e-6``, slack ``K``; also divided by 10000) move a gradient entry by
  at most ``4 q C beta / 10^4`` (5e-5 at C = 1000, q = 128) against a flip threshold of
  ``eta = 0.5``; they are left out, and the constraint is enforced exactly by the acceptance
  test instead.
* The start (MDS) centers compete for "lowest fit" too, so the result never fits worse than its
  start (the reference only compares epochs).
* ``sign(0) := +1`` (project convention); the reference's ``torch.sign`` would produce 0.

Option (off by default, not in the reference): ``backtrack=True`` retries a rejected step on
the strongest half, quarter, ... of its bit flips; at scale most full steps are rejected.
"""

from typing import Any

import numpy as np
import torch

from hashing.centers.bound import required_min_distance
from hashing.centers.exceptions import CenterGenerationError
from hashing.centers.mds import mds_centers
from hashing.centers.statistics import center_statistics
from hashing.centers.validation import validate_bits


def similarity_fit_loss(similarity: torch.Tensor, centers: torch.Tensor) -> float:
    """``mean_ij (s_ij - h_i·h_j / q)^2`` over all ``C^2`` entries (diagonal included)."""
    h = centers.to(torch.float64)
    gram = h @ h.T / h.shape[1]
    return float(((similarity.to(torch.float64) - gram) ** 2).mean())


def _check_similarity(similarity: torch.Tensor) -> None:
    """Raise ValueError unless ``similarity`` is a finite square matrix."""
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be square (C, C), got {tuple(similarity.shape)}")
    if not bool(torch.isfinite(similarity).all()):
        raise ValueError("similarity must be finite")


def _sign(x: np.ndarray) -> np.ndarray:
    """Elementwise sign with ``sign(0) = +1``."""
    return np.where(x >= 0, 1.0, -1.0)


def _feasible_step(
    h: np.ndarray, i: int, cand: np.ndarray, grad: np.ndarray, d: int, backtrack: bool
) -> np.ndarray | None:
    """The new column ``i`` to accept, or None when the step is rejected (or changes nothing).

    The full step ``cand`` is accepted when all its distances to the other columns are ``>= d``.
    With ``backtrack`` a rejected step is retried on the strongest half of its flips (largest
    ``h_ik * g_ik``), then a quarter, ... down to one bit; the first feasible one is taken.
    """
    current = h[:, i]
    flips = np.flatnonzero(cand != current)
    if flips.size == 0:
        return None
    q = h.shape[0]
    inner = current @ h
    order = flips[np.argsort(-(current[flips] * grad[flips]), kind="stable")]
    size = order.size
    while size >= 1:
        chosen = order[:size]
        dist = (q - (inner - 2 * current[chosen] @ h[chosen, :])) / 2
        dist[i] = q
        if dist.min() >= d:
            step = current.copy()
            step[chosen] = -step[chosen]
            return step
        if not backtrack:
            return None
        size //= 2
    return None


def auxiliary_update(h: np.ndarray, s: np.ndarray, lam: np.ndarray, rho: float) -> np.ndarray:
    """Closed-form ``M = (2/q^2 H H^T + rho I)^-1 (2/q H S + Lambda + rho H)`` (q x C)."""
    q = h.shape[0]
    lhs = 2 / q**2 * h @ h.T + rho * np.eye(q)
    return np.linalg.solve(lhs, 2 / q * h @ s + lam + rho * h)


def augmented_gradient(
    h: np.ndarray,
    m: np.ndarray,
    s: np.ndarray,
    lam: np.ndarray,
    rho: float,
    repulsion: float,
) -> np.ndarray:
    """Gradient w.r.t. every column ``h_i`` of the augmented objective (q x C).

    Objective: ``||S - H^T M / q||^2 + <Lambda, H - M> + rho/2 ||H - M||^2
    + repulsion/2 * sum_{i != j} h_i·h_j``; column ``i`` of the result is
    ``2/q^2 M M^T h_i - 2/q M s_i + Lambda_i + rho (h_i - m_i) + repulsion sum_{j!=i} h_j``,
    with ``s_i`` row ``i`` of ``S`` as a column (the reference takes column ``i``: the same for
    a symmetric ``S``; stage 1's row normalisation makes ``S`` slightly asymmetric).
    """
    q = h.shape[0]
    others = h.sum(axis=1, keepdims=True) - h
    return 2 / q**2 * (m @ (m.T @ h)) - 2 / q * m @ s.T + lam + rho * (h - m) + repulsion * others


def semantic_centers(
    similarity: torch.Tensor,
    bits: int,
    seed: int = 0,
    *,
    init: torch.Tensor | None = None,
    min_distance: int | None = None,
    rho: float = 0.2,
    mu: float = 0.625,
    eta: float = 0.5,
    lambda_init: float = 0.1,
    epochs: int = 30,
    inner_passes: int = 3,
    repulsion_scale: float = 1e-4,
    backtrack: bool = False,
    mds_max_sweeps: int = 50,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """SHC centers ``(C, bits)`` float ±1 for class similarity ``S`` (C x C), and an info dict.

    ``init`` defaults to :func:`mds_centers` (``seed``, ``mds_max_sweeps``); ``min_distance``
    to :func:`required_min_distance`. The info dict holds ``fit_loss``, ``initial_fit_loss``,
    ``required_min_distance``, ``statistics`` (min/mean/var/max of pairwise distances),
    ``best_epoch`` (-1: the start was best), ``accepted_updates`` and ``fit_history`` (one
    value per epoch). ``backtrack=True`` (off by default, not in the reference) retries a
    rejected step on the strongest half, quarter, ... of its bit flips. Raises ValueError on
    bad input and :class:`CenterGenerationError` if the start violates the distance bound.
    """
    _check_similarity(similarity)
    num_classes = similarity.shape[0]
    validate_bits(bits, num_classes, "shc")
    for name, value in (("rho", rho), ("eta", eta)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    if epochs < 0 or inner_passes < 1:
        raise ValueError(f"need epochs >= 0 and inner_passes >= 1, got {epochs}, {inner_passes}")
    d = required_min_distance(bits, num_classes) if min_distance is None else min_distance
    if init is None:
        start = mds_centers(num_classes, bits, seed=seed, max_sweeps=mds_max_sweeps, min_distance=d)
    else:
        if tuple(init.shape) != (num_classes, bits):
            raise ValueError(
                f"init must have shape (C, bits) = {(num_classes, bits)}, got {tuple(init.shape)}"
            )
        start = init
    start_stats = center_statistics(start)
    if start_stats["min"] < d:
        raise CenterGenerationError(
            f"SHC start centers have minimum distance {start_stats['min']:.0f} < d = {d} "
            f"(bits={bits}, num_classes={num_classes})"
        )

    q = float(bits)
    s = similarity.to(torch.float64).numpy()
    h = start.to(torch.float64).numpy().T.copy()  # q x C, column i = center i
    lam = np.full_like(h, lambda_init)
    repulsion = 2.0 * mu * repulsion_scale
    initial_fit = similarity_fit_loss(similarity, start)
    best_h, best_fit, best_epoch = h.copy(), initial_fit, -1
    history: list[float] = []
    accepted = 0
    for epoch in range(epochs):
        m = auxiliary_update(h, s, lam, rho)
        for _ in range(inner_passes):
            # All terms but the repulsion depend on h_i alone, unchanged until its own turn.
            base = augmented_gradient(h, m, s, lam, rho, repulsion=0.0)
            col_sum = h.sum(axis=1)
            for i in range(num_classes):
                grad = base[:, i] + repulsion * (col_sum - h[:, i])
                step = _feasible_step(h, i, _sign(h[:, i] - grad / eta), grad, d, backtrack)
                if step is not None:
                    col_sum += step - h[:, i]
                    h[:, i] = step
                    accepted += 1
        lam += rho * (h - m)
        fit = float(((s - h.T @ h / q) ** 2).mean())
        history.append(fit)
        if fit < best_fit:
            best_h, best_fit, best_epoch = h.copy(), fit, epoch
    centers = torch.from_numpy(best_h.T.copy()).to(torch.float32)
    stats = center_statistics(centers)
    if stats["min"] < d:  # unreachable by construction; never return violating centers
        raise CenterGenerationError(f"SHC produced minimum distance {stats['min']} < d = {d}")
    info = {
        "fit_loss": best_fit,
        "initial_fit_loss": initial_fit,
        "required_min_distance": d,
        "statistics": stats,
        "best_epoch": best_epoch,
        "accepted_updates": accepted,
        "fit_history": history,
    }
    return centers, info
