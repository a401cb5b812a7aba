"""SHC stage 2, ``solver="local_search"``: exact single-bit descent on the SHC objective.

Minimises ``F(H) = sum_ij (s_ij - h_i·h_j / q)^2`` (the reference's ``loss1`` times ``C^2``)
over ±1 centers ``H`` (C x q, row ``i`` = center ``i``) subject to ``d_H(h_i, h_j) >= d``.

Flipping bit ``k`` of center ``i`` changes ``h_i·h_j`` by ``-2 h_ik h_jk`` for every ``j != i``
and nothing else, so its change of ``F`` has the closed form

    ``delta_ik = 8/q h_ik (R H)_ik + 8 (C - 1) / q^2``,  ``R = S_sym - H H^T / q``, diag 0,

with ``S_sym = (S + S^T) / 2`` (``H H^T`` is symmetric, so the antisymmetric part of ``S`` adds
a constant to ``F``). The flip moves distance ``d_ij`` by ``+h_ik h_jk``; it is *allowed* only
if no pair already at distance ``d`` comes closer, i.e. no ``j`` with ``d_ij = d`` and
``h_jk != h_ik``. Starting from feasible centers (MDS), ``min d_ij >= d`` therefore holds after
every move, by construction.

Descent takes the allowed flip with the most negative ``delta`` until none improves. Then an
iterated local search: a *kick* applies ``kick_flips`` random allowed flips (seeded) to the best
centers so far, descent runs again, and the result replaces the best if it fits better. The
search stops after ``kicks`` rounds: its result depends on the start, ``S``, the seed and the
settings, never on the machine's speed. ``max_seconds`` is a safety stop only: when it ends the
search first, a warning is logged and the info dict says so (``stopped_by``), because that
result does depend on the clock. ``R H`` and ``T H`` (``T`` = the pairs at distance ``d``) are
updated in ``O(C q)`` per flip, so a step never needs a ``C x C x q`` product.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_IMPROVE_TOL = 1e-9


class _FlipState:
    """Centers with the running products that score every single-bit flip at once."""

    def __init__(self, s_sym: np.ndarray, h: np.ndarray, d: int) -> None:
        self.s = s_sym
        self.h = h.copy()
        self.q = h.shape[1]
        self.d = d
        self.gram = self.h @ self.h.T
        self.resid = self.s - self.gram / self.q
        np.fill_diagonal(self.resid, 0.0)
        tight = (self.q - self.gram) / 2 == d
        np.fill_diagonal(tight, False)
        self.tight_f = tight.astype(np.float64)
        # per center: how many pairs it is in at distance d (row sums of tight_f, kept in flip)
        self.tight_count = self.tight_f.sum(axis=1)
        self.rh = self.resid @ self.h
        self.th = self.tight_f @ self.h

    def deltas(self) -> np.ndarray:
        """(C, q) change of ``F`` for flipping each bit."""
        c = self.h.shape[0]
        return 8.0 / self.q * self.h * self.rh + 8.0 * (c - 1) / self.q**2

    def allowed(self) -> np.ndarray:
        """(C, q) bool: the flip keeps every pair at distance ``d`` from coming closer."""
        closer = (self.tight_count[:, None] - self.h * self.th) / 2
        return closer < 0.5

    def flip(self, i: int, k: int) -> None:
        """Flip bit ``k`` of center ``i``; update gram, residual, tight pairs, their counts and
        products, all in ``O(C q)``."""
        old = self.h[i, k]
        change = -2.0 * old * self.h[:, k]  # new gram_ij - old gram_ij, j != i
        change[i] = 0.0
        resid_old = self.resid[:, i].copy()
        tight_old = self.tight_f[:, i].copy()
        self.gram[i, :] += change
        self.gram[:, i] += change
        self.resid[i, :] -= change / self.q
        self.resid[:, i] -= change / self.q
        tight_new = ((self.q - self.gram[:, i]) / 2 == self.d).astype(np.float64)
        tight_new[i] = 0.0
        self.tight_f[i, :] = tight_new
        self.tight_f[:, i] = tight_new
        self.tight_count += tight_new - tight_old
        self.tight_count[i] = tight_new.sum()
        self.h[i, k] = -old
        row = self.h[i]
        # (R H)_j = sum_l R_jl h_l: column i of R and entry (i, k) of H changed
        self.rh += np.outer(-change / self.q, row)
        self.rh[:, k] += resid_old * (-2.0 * old)
        self.th += np.outer(tight_new - tight_old, row)
        self.th[:, k] += tight_old * (-2.0 * old)
        self.rh[i] = self.resid[i] @ self.h
        self.th[i] = self.tight_f[i] @ self.h

    def descend(self, deadline: float) -> tuple[int, bool]:
        """Best-improvement descent until no allowed flip lowers ``F``: (flips made, whether it
        finished; False when the ``deadline`` cut it short)."""
        steps = 0
        while time.perf_counter() < deadline:
            delta = np.where(self.allowed(), self.deltas(), np.inf)
            flat = int(np.argmin(delta))
            if not delta.flat[flat] < -_IMPROVE_TOL:
                return steps, True
            self.flip(*divmod(flat, self.q))
            steps += 1
        return steps, False

    def kick(self, flips: int, rng: np.random.Generator) -> None:
        """Apply ``flips`` random allowed flips, one at a time (each re-checked)."""
        for _ in range(flips):
            options = np.flatnonzero(self.allowed())
            if options.size == 0:
                return
            self.flip(*divmod(int(rng.choice(options)), self.q))


def total_fit(s: np.ndarray, h: np.ndarray) -> float:
    """``sum_ij (s_ij - h_i·h_j / q)^2`` for rows ``h`` (the objective, not its mean); the one
    implementation of the fit, which :mod:`hashing.centers.semantic` divides by ``C^2``."""
    return float(((s - h @ h.T / h.shape[1]) ** 2).sum())


def local_search_centers(
    similarity: np.ndarray,
    start: np.ndarray,
    min_distance: int,
    seed: int = 0,
    kicks: int = 200,
    kick_flips: int | None = None,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Best centers (C, q) float64 ±1 found from the feasible ``start``, and an info dict.

    ``kick_flips`` defaults to ``max(2, C // 4)``; ``max_seconds`` (None: none) is the safety
    stop. Info: ``accepted_updates`` (descent flips, including those of rounds that were
    discarded), ``kicks`` (rounds run), ``improving_kicks``, ``best_round`` (-1: nothing beat
    the start, 0: the first descent, r: kick r), ``fit_history`` (mean fit loss after each
    round's descent) and ``stopped_by`` (``kicks``: the work budget was spent; ``max_seconds``:
    the safety stop ended it early, and the result depends on the machine's speed).
    """
    c = start.shape[0]
    flips = max(2, c // 4) if kick_flips is None else int(kick_flips)
    s_sym = (similarity + similarity.T) / 2
    deadline = time.perf_counter() + (np.inf if max_seconds is None else float(max_seconds))
    rng = np.random.default_rng(seed)
    state = _FlipState(s_sym, start, min_distance)
    best_h, best_fit, best_round = start.copy(), total_fit(similarity, start), -1
    accepted = improving = rounds = 0
    history: list[float] = []
    stopped_by = "kicks"
    for round_ in range(kicks + 1):
        if time.perf_counter() >= deadline:
            stopped_by = "max_seconds"
            break
        if round_ > 0:
            state.kick(flips, rng)
            rounds += 1
        steps, finished = state.descend(deadline)
        accepted += steps
        if not finished:
            stopped_by = "max_seconds"
        fit = total_fit(similarity, state.h)
        history.append(fit / c**2)
        if fit < best_fit - _IMPROVE_TOL:
            best_h, best_fit, best_round = state.h.copy(), fit, round_
            improving += round_ > 0
        elif round_ > 0:
            state = _FlipState(s_sym, best_h, min_distance)
        if stopped_by == "max_seconds":
            break
    if stopped_by == "max_seconds":
        log.warning(
            "SHC local search hit its safety stop max_seconds=%s after %d of %d kicks: these "
            "centers depend on the machine's speed; raise max_seconds or lower kicks",
            max_seconds,
            rounds,
            kicks,
        )
    info = {
        "accepted_updates": accepted,
        "kicks": rounds,
        "improving_kicks": improving,
        "best_round": best_round,
        "fit_history": history,
        "stopped_by": stopped_by,
        "kick_flips": flips,
    }
    return best_h, info
