"""SHC stage 2: semantic hash centers (docs/methods.md#shc-stage-2).

Solves ``min_H sum_ij (s_ij - h_i·h_j / q)^2`` subject to ``d_H(h_i, h_j) >= d`` for all
``i != j``, starting from the MDS centers, with one of two solvers:

* ``solver="local_search"`` (our default; not the paper's): exact descent over single-bit
  flips with iterated-local-search kicks, see :mod:`hashing.centers.local_search`;
* ``solver="reference"`` (the paper's and the SHC code's): the alternating scheme below.

The reference's flip rule ``h_ik <- sign(h_ik - g_ik / eta)`` flips a bit only when
``h_ik g_ik > eta``; the gradient shrinks like ``4/q``, and with the reference's ``eta = 0.5``
no entry clears it at 32/64 bits for 10 classes or at 64 bits for 100, so it returns its start
unchanged (the authors' code does too, fed the same S and start), while a smaller ``eta`` flips
many bits at once and the distance bound rejects almost every step.

Reference solver, in column form (``H`` is ``q x C``, column ``i`` = center of class ``i``),
per epoch:

* ``M = (2/q^2 H H^T + rho I)^-1 (2/q H S + Lambda + rho H)`` (closed form of the real
  auxiliary variable of the augmented Lagrangian
  ``||S - H^T M / q||^2 + <Lambda, H - M> + rho/2 ||H - M||^2``);
* ``inner_passes`` passes over the centers in order; center ``i`` takes the step
  ``h_i <- sign(h_i - g_i / eta)`` with ``g_i`` the gradient of that objective plus the
  repulsion ``mu r sum_{i!=j} h_i·h_j``:
  ``g_i = 2/q^2 M M^T h_i - 2/q M s_i + Lambda_i + rho (h_i - m_i) + 2 mu r sum_{j!=i} h_j``
  (``s_i`` = column ``i`` of ``S`` as in the reference, or row ``i`` - the exact gradient - with
  ``similarity_axis="row"``; they differ: stage 1 symmetrises the raw sums and *then* normalises
  each row by its own mean and spread, so ``S`` is far from symmetric),
  accepted only if its distances to all other centers stay ``>= d`` (so the minimum distance
  never drops below ``d``: the start satisfies it and only centers ``i``'s own pairs change);
* ``Lambda += rho (H - M)``;
* the ``H`` with the lowest fit loss ``mean_ij (s_ij - h_i·h_j / q)^2`` is kept; an epoch
  counts only if it fits strictly better than the best so far (start included), so with no
  accepted update ``best_epoch`` is -1 and the start is returned. The start's fit is computed
  by the same function as the epochs' (two summation orders differ in the last bit and used to
  make an unchanged epoch 0 "better" than its own start).

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
from hashing.centers.local_search import local_search_centers, total_fit
from hashing.centers.mds import mds_centers
from hashing.centers.statistics import center_statistics
from hashing.centers.validation import DISTANCE_BOUND_RULE, validate_bits

SOLVERS = ("local_search", "reference")
#: each solver's own settings (keyword arguments of :func:`semantic_centers`); ``solver`` and
#: ``mds_max_sweeps`` (the start) belong to both
SOLVER_SETTINGS = {
    "local_search": ("kicks", "kick_flips", "max_seconds"),
    "reference": (
        "similarity_axis", "rho", "mu", "eta", "lambda_init", "epochs", "inner_passes",
        "repulsion_scale", "backtrack",
    ),
}  # fmt: skip
SIMILARITY_AXES = ("column", "row")


def _fit(s: np.ndarray, h: np.ndarray) -> float:
    """``mean_ij (s_ij - h_i·h_j / q)^2`` for columns ``h`` (q x C): the local search's objective
    (one implementation) over its ``C^2`` entries; a sum over C^2 is what ``mean`` divides."""
    return total_fit(s, h.T) / h.shape[1] ** 2


def similarity_fit_loss(similarity: torch.Tensor, centers: torch.Tensor) -> float:
    """``mean_ij (s_ij - h_i·h_j / q)^2`` over all ``C^2`` entries (diagonal included)."""
    s = similarity.to(torch.float64).numpy()
    return _fit(s, centers.to(torch.float64).numpy().T)


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
    similarity_axis: str = "column",
) -> np.ndarray:
    """Gradient w.r.t. every column ``h_i`` of the augmented objective (q x C).

    Objective: ``||S - H^T M / q||^2 + <Lambda, H - M> + rho/2 ||H - M||^2
    + repulsion/2 * sum_{i != j} h_i·h_j``; column ``i`` of the result is
    ``2/q^2 M M^T h_i - 2/q M s_i + Lambda_i + rho (h_i - m_i) + repulsion sum_{j!=i} h_j``,
    with ``s_i`` column ``i`` of ``S`` (the reference's ``S[:, i]``) or, with
    ``similarity_axis="row"``, row ``i`` (the exact gradient: ``h_i`` enters the fit term only
    through row ``i`` of ``H^T M``). Stage 1 normalises each row of the symmetrised sums on
    its own, so the two differ (see :func:`asymmetry`).
    """
    q = h.shape[0]
    others = h.sum(axis=1, keepdims=True) - h
    s_cols = s if similarity_axis == "column" else s.T
    return (
        2 / q**2 * (m @ (m.T @ h)) - 2 / q * m @ s_cols + lam + rho * (h - m) + repulsion * others
    )


def asymmetry(similarity: torch.Tensor) -> float:
    """``||S - S^T||_F / ||S||_F`` (0 for a symmetric ``S``)."""
    s = similarity.to(torch.float64)
    return float(torch.linalg.norm(s - s.T) / torch.linalg.norm(s))


def semantic_centers(
    similarity: torch.Tensor,
    bits: int,
    seed: int = 0,
    *,
    solver: str = "local_search",
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
    similarity_axis: str = "column",
    kicks: int = 200,
    kick_flips: int | None = None,
    max_seconds: float | None = None,
    mds_max_sweeps: int = 50,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """SHC centers ``(C, bits)`` float ±1 for class similarity ``S`` (C x C), and an info dict.

    ``solver`` is ``local_search`` (settings ``kicks``, ``kick_flips``, seeded by ``seed``, and
    the safety stop ``max_seconds``) or ``reference`` (settings ``rho`` ... ``similarity_axis``).
    ``init`` defaults to :func:`mds_centers` (``seed``, ``mds_max_sweeps``); ``min_distance`` to
    :func:`required_min_distance`. The info dict holds ``solver``, ``fit_loss``,
    ``initial_fit_loss``, ``required_min_distance``, ``start`` (the start centers, given or
    built), ``statistics`` (min/mean/var/max of pairwise distances), ``best_epoch`` (the
    reference's epoch or the local search's round whose centers were kept; -1: nothing fitted
    better than the start, which is returned), ``accepted_updates``, ``equals_start`` and
    ``fit_history``; the local search adds its own counters (see :func:`local_search_centers`).
    Raises ValueError on bad input and :class:`CenterGenerationError` if the start violates the
    distance bound.
    """
    _check_similarity(similarity)
    num_classes = similarity.shape[0]
    validate_bits(bits, num_classes, DISTANCE_BOUND_RULE, "shc")
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is invalid: use one of {list(SOLVERS)}")
    if similarity_axis not in SIMILARITY_AXES:
        raise ValueError(
            f"similarity_axis={similarity_axis!r} is invalid: use one of {list(SIMILARITY_AXES)}"
        )
    for name, value in (("rho", rho), ("eta", eta)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    if epochs < 0 or inner_passes < 1:
        raise ValueError(f"need epochs >= 0 and inner_passes >= 1, got {epochs}, {inner_passes}")
    if kicks < 0 or (kick_flips is not None and kick_flips < 1):
        raise ValueError(f"need kicks >= 0 and kick_flips >= 1, got {kicks}, {kick_flips}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0 seconds or null, got {max_seconds}")
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

    s = similarity.to(torch.float64).numpy()
    h0 = start.to(torch.float64).numpy().T.copy()  # q x C, column i = center i
    extra: dict[str, Any] = {}
    if solver == "local_search":
        rows, extra = local_search_centers(
            s, h0.T.copy(), d, seed=seed, kicks=kicks, kick_flips=kick_flips,
            max_seconds=max_seconds,
        )  # fmt: skip
        best_h = rows.T
        accepted, history = extra.pop("accepted_updates"), extra.pop("fit_history")
        best_epoch = extra["best_round"]
    else:
        best_h, best_epoch, accepted, history = _reference_solver(
            s, h0, d, rho, mu, eta, lambda_init, epochs, inner_passes, repulsion_scale,
            backtrack, similarity_axis,
        )  # fmt: skip
    centers = torch.from_numpy(best_h.T.copy()).to(torch.float32)
    stats = center_statistics(centers)
    if stats["min"] < d:  # unreachable by construction; never return violating centers
        raise CenterGenerationError(f"SHC produced minimum distance {stats['min']} < d = {d}")
    info = {
        "solver": solver,
        "fit_loss": _fit(s, best_h),
        "initial_fit_loss": _fit(s, h0),
        "required_min_distance": d,
        "start": start,
        "statistics": stats,
        "best_epoch": best_epoch,
        "accepted_updates": accepted,
        "equals_start": bool(torch.equal(centers, start.to(torch.float32))),
        "fit_history": history,
        **extra,
    }
    return centers, info


def _reference_solver(
    s: np.ndarray,
    h: np.ndarray,
    d: int,
    rho: float,
    mu: float,
    eta: float,
    lambda_init: float,
    epochs: int,
    inner_passes: int,
    repulsion_scale: float,
    backtrack: bool,
    similarity_axis: str,
) -> tuple[np.ndarray, int, int, list[float]]:
    """The reference's epochs from columns ``h`` (q x C): (best H, best epoch, accepted, fits)."""
    h = h.copy()
    num_classes = h.shape[1]
    lam = np.full_like(h, lambda_init)
    repulsion = 2.0 * mu * repulsion_scale
    best_h, best_fit, best_epoch = h.copy(), _fit(s, h), -1
    history: list[float] = []
    accepted = 0
    for epoch in range(epochs):
        m = auxiliary_update(h, s, lam, rho)
        for _ in range(inner_passes):
            # All terms but the repulsion depend on h_i alone, unchanged until its own turn.
            base = augmented_gradient(h, m, s, lam, rho, 0.0, similarity_axis)
            col_sum = h.sum(axis=1)
            for i in range(num_classes):
                grad = base[:, i] + repulsion * (col_sum - h[:, i])
                step = _feasible_step(h, i, _sign(h[:, i] - grad / eta), grad, d, backtrack)
                if step is not None:
                    col_sum += step - h[:, i]
                    h[:, i] = step
                    accepted += 1
        lam += rho * (h - m)
        fit = _fit(s, h)
        history.append(fit)
        if fit < best_fit:
            best_h, best_fit, best_epoch = h.copy(), fit, epoch
    return best_h, best_epoch, accepted, history
