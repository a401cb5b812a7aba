"""SHC stage 2: semantic centers keep the distance bound and follow a planted similarity."""

import logging

import numpy as np
import pytest
import torch

from hashing.centers import (
    CenterGenerationError,
    class_similarity,
    csq_centers,
    local_search,
    mds_centers,
    pairwise_hamming,
    required_min_distance,
    semantic_centers,
)
from hashing.centers.local_search import _FlipState, local_search_centers, total_fit
from hashing.centers.quality import center_quality, pair_auc
from hashing.centers.semantic import _feasible_step, augmented_gradient, auxiliary_update
from tests.helpers.brute_centers import brute_distances


def _planted(num_classes: int, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarity 0.8 inside a group, -0.6 across, 1 on the diagonal."""
    group = torch.arange(num_classes) % groups
    sim = torch.where(group[:, None] == group[None, :], 0.8, -0.6).to(torch.float64)
    sim.fill_diagonal_(1.0)
    return sim, group


def _within_minus_across(centers: torch.Tensor, group: torch.Tensor) -> float:
    """Mean Hamming distance across groups minus mean distance within groups (loops)."""
    within, across = [], []
    for i in range(len(group)):
        for j in range(i + 1, len(group)):
            dist = int((centers[i] != centers[j]).sum())
            (within if group[i] == group[j] else across).append(dist)
    return sum(across) / len(across) - sum(within) / len(within)


@pytest.mark.parametrize("solver", ["reference", "local_search"])
@pytest.mark.parametrize(
    ("num_classes", "bits", "groups", "epochs"), [(21, 32, 3, 30), (50, 64, 5, 10)]
)
def test_planted_groups_are_closer(
    num_classes: int, bits: int, groups: int, epochs: int, solver: str
) -> None:
    sim, group = _planted(num_classes, groups)
    centers, info = semantic_centers(sim, bits, epochs=epochs, solver=solver, kicks=20)
    assert _within_minus_across(centers, group) >= 2.0
    assert abs(_within_minus_across(mds_centers(num_classes, bits), group)) <= 1.0
    assert abs(_within_minus_across(csq_centers(num_classes, bits), group)) <= 1.0
    assert info["fit_loss"] < info["initial_fit_loss"]
    assert info["statistics"]["min"] >= required_min_distance(bits, num_classes)


def _random_similarity(num_classes: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(20 * num_classes, num_classes, generator=g)
    labels = torch.arange(20 * num_classes) % num_classes
    logits[torch.arange(len(labels)), labels] += 3.0
    return class_similarity(logits, labels, num_classes)


@pytest.mark.parametrize("bits", [16, 32, 64])
@pytest.mark.parametrize("num_classes", [2, 10, 21, 100])
def test_min_distance_guarantee(num_classes: int, bits: int) -> None:
    sim = _random_similarity(num_classes, seed=num_classes + bits)
    centers, info = semantic_centers(sim, bits, epochs=10, solver="reference")
    dist = pairwise_hamming(centers)
    dist.fill_diagonal_(bits)
    d = required_min_distance(bits, num_classes)
    assert int(dist.min()) >= d
    assert info["required_min_distance"] == d
    assert bool(((centers == 1) | (centers == -1)).all())


@pytest.mark.parametrize(("num_classes", "bits"), [(100, 32), (21, 16)])
def test_backtracking_keeps_guarantee_and_fits_no_worse(num_classes: int, bits: int) -> None:
    sim = _random_similarity(num_classes, seed=7)
    centers, info = semantic_centers(sim, bits, solver="reference", epochs=10, backtrack=True)
    dist = pairwise_hamming(centers)
    dist.fill_diagonal_(bits)
    assert int(dist.min()) >= required_min_distance(bits, num_classes)
    assert info["fit_loss"] <= info["initial_fit_loss"]
    assert info["accepted_updates"] > 0


@pytest.mark.parametrize("seed", range(20))
def test_feasible_step_against_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, c, d = 12, 6, 4
    h = np.where(rng.random((q, c)) < 0.5, -1.0, 1.0)
    cand = np.where(rng.random(q) < 0.5, -1.0, 1.0)
    grad = rng.normal(size=q)
    full = _feasible_step(h, 0, cand, grad, d, backtrack=False)
    partial = _feasible_step(h, 0, cand, grad, d, backtrack=True)

    def feasible(col: np.ndarray) -> bool:
        return all(int((col != h[:, j]).sum()) >= d for j in range(1, c))

    changed = not np.array_equal(cand, h[:, 0])
    assert (full is not None) == (changed and feasible(cand))
    if full is not None:
        np.testing.assert_array_equal(full, cand)
        np.testing.assert_array_equal(partial, cand)
    if partial is not None:
        assert feasible(partial)
        flipped = partial != h[:, 0]
        assert flipped.any() and not (flipped & (cand == h[:, 0])).any()


def test_info_fit_loss_matches_loop() -> None:
    sim = _random_similarity(10, seed=0)
    centers, info = semantic_centers(sim, 16, solver="reference")
    rows = centers.tolist()
    total = 0.0
    for i in range(10):
        for j in range(10):
            inner = sum(a * b for a, b in zip(rows[i], rows[j], strict=True))
            total += (float(sim[i, j]) - inner / 16) ** 2
    assert info["fit_loss"] == pytest.approx(total / 100)
    assert info["fit_loss"] == min([info["initial_fit_loss"], *info["fit_history"]])
    assert len(info["fit_history"]) == 30


@pytest.mark.parametrize("solver", ["reference", "local_search"])
def test_deterministic(solver: str) -> None:
    sim = _random_similarity(21, seed=1)
    a, _ = semantic_centers(sim, 32, seed=5, solver=solver, kicks=10)
    b, _ = semantic_centers(sim, 32, seed=5, solver=solver, kicks=10)
    assert torch.equal(a, b)


def test_reference_without_an_accepted_update_returns_its_start_as_best_epoch_minus_one() -> None:
    sim = _random_similarity(10, seed=3)
    start = mds_centers(10, 16)
    centers, info = semantic_centers(sim, 16, solver="reference", eta=1e6, init=start)
    assert torch.equal(centers, start) and info["equals_start"]
    assert info["accepted_updates"] == 0 and info["best_epoch"] == -1
    # every epoch's fit is the start's to the last bit: computed by the same function
    assert info["fit_history"] == [info["initial_fit_loss"]] * 30


def test_info_start_is_the_default_mds_start_or_the_given_one() -> None:
    sim = _random_similarity(10, seed=4)
    _, info = semantic_centers(sim, 16, seed=2, mds_max_sweeps=3, kicks=2)
    d = required_min_distance(16, 10)
    assert torch.equal(info["start"], mds_centers(10, 16, seed=2, max_sweeps=3, min_distance=d))
    given = csq_centers(10, 16, seed=1)
    _, info = semantic_centers(sim, 16, init=given, kicks=2)
    assert info["start"] is given


@pytest.mark.parametrize("bits", [16, 32, 64])
@pytest.mark.parametrize("num_classes", [3, 10, 21, 100])
def test_local_search_never_breaks_the_distance_bound(num_classes: int, bits: int) -> None:
    sim = _random_similarity(num_classes, seed=num_classes * bits)
    centers, info = semantic_centers(sim, bits, solver="local_search", kicks=5, seed=bits)
    d = required_min_distance(bits, num_classes)
    assert min(brute_distances(centers)) >= d
    assert info["statistics"]["min"] >= d
    assert info["fit_loss"] <= info["initial_fit_loss"]
    assert bool(((centers == 1) | (centers == -1)).all())


@pytest.mark.parametrize("seed", range(5))
def test_flip_scores_and_updates_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c, q, d = 7, 12, 4
    s = rng.normal(size=(c, c))
    h = np.where(rng.random((c, q)) < 0.5, -1.0, 1.0)
    state = _FlipState((s + s.T) / 2, h, d)
    for _ in range(15):  # the running products must stay exact along a path of flips
        deltas, allowed = state.deltas(), state.allowed()
        base = total_fit(s, state.h)
        for i in range(c):
            for k in range(q):
                flipped = state.h.copy()
                flipped[i, k] = -flipped[i, k]
                assert deltas[i, k] == pytest.approx(total_fit(s, flipped) - base, abs=1e-9)
                before = (q - state.h @ state.h[i]) / 2
                after = (q - flipped @ flipped[i]) / 2
                closer = [j for j in range(c) if j != i and before[j] == d and after[j] < d]
                assert allowed[i, k] == (not closer)
        i, k = divmod(int(rng.integers(c * q)), q)
        state.flip(i, k)
        np.testing.assert_allclose(state.gram, state.h @ state.h.T)
        distances = (q - state.h @ state.h.T) / 2
        tight_pairs = [sum(distances[i, j] == d for j in range(c) if j != i) for i in range(c)]
        np.testing.assert_array_equal(state.tight_count, tight_pairs)


def test_local_search_beats_the_reference_on_planted_groups_and_ranks_them_first() -> None:
    sim, group = _planted(100, 20)
    related = group[:, None] == group[None, :]
    related.fill_diagonal_(False)
    for bits in (16, 32, 64):
        start = mds_centers(100, bits)
        ours, info = semantic_centers(sim, bits, solver="local_search", init=start, kicks=30)
        theirs, ref = semantic_centers(sim, bits, solver="reference", init=start)
        assert info["fit_loss"] < ref["fit_loss"] < info["initial_fit_loss"] + 1e-12
        quality = center_quality(sim, ours, related)
        assert quality["group_auc"] > 0.95 > center_quality(sim, theirs, related)["group_auc"]
        assert quality["group_auc"] > center_quality(sim, start, related)["group_auc"] + 0.3
        assert quality["spearman"] > 0.25  # a two-valued S caps the rank correlation


class FakeClock:
    """``time.perf_counter`` of a machine where every reading is ``step`` seconds later."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_local_search_result_does_not_depend_on_the_clock(monkeypatch) -> None:
    """Same seed, same centers: with no limit, or a limit a slow or a fast machine never hits."""
    sim, _ = _planted(40, 8)
    start = mds_centers(40, 32).double().numpy()
    reference, info = local_search_centers(sim.numpy(), start, 10, seed=3, kicks=6)
    assert info["stopped_by"] == "kicks" and info["kicks"] == 6
    for step in (0.0, 1.0):  # a reading costs nothing, or a second
        monkeypatch.setattr(local_search.time, "perf_counter", FakeClock(step))
        centers, timed = local_search_centers(
            sim.numpy(), start, 10, seed=3, kicks=6, max_seconds=1e9
        )
        np.testing.assert_array_equal(centers, reference)
        assert timed == info
    _, other_seed = local_search_centers(sim.numpy(), start, 10, seed=4, kicks=6)
    assert other_seed["fit_history"] != info["fit_history"]  # the seed does reach the kicks


def test_local_search_reports_hitting_its_safety_stop(monkeypatch, caplog) -> None:
    sim, _ = _planted(40, 8)
    start = mds_centers(40, 32).double().numpy()
    monkeypatch.setattr(local_search.time, "perf_counter", FakeClock(1.0))
    with caplog.at_level(logging.WARNING, logger="hashing.centers.local_search"):
        centers, info = local_search_centers(sim.numpy(), start, 10, kicks=100, max_seconds=50)
    assert info["stopped_by"] == "max_seconds" and info["kicks"] < 100
    assert "max_seconds=50" in caplog.text and "depend on the machine's speed" in caplog.text
    assert min(brute_distances(torch.from_numpy(centers))) >= 10  # still feasible
    _, whole = local_search_centers(sim.numpy(), start, 10, kicks=2, max_seconds=None)
    assert whole["stopped_by"] == "kicks" and whole["kicks"] == 2


def test_pair_auc_and_spearman_against_loops() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=40).astype(float)  # many ties
    positive = rng.random(40) < 0.3
    wins = [
        1.0 if a > b else 0.5 if a == b else 0.0
        for a in scores[positive]
        for b in scores[~positive]
    ]
    assert pair_auc(scores, positive) == pytest.approx(sum(wins) / len(wins))
    sim = _random_similarity(8, seed=4)
    centers = mds_centers(8, 6, min_distance=2)
    iu = np.triu_indices(8, 1)
    h = centers.double().numpy()
    target = ((sim + sim.T) / 2).numpy()[iu]
    inner = (h @ h.T)[iu]

    def ranks(x: np.ndarray) -> np.ndarray:
        return np.array([(x < v).sum() + ((x == v).sum() + 1) / 2 for v in x])

    expected = np.corrcoef(ranks(target), ranks(inner))[0, 1]
    assert center_quality(sim, centers)["spearman"] == pytest.approx(expected)
    assert center_quality(sim, csq_centers(8, 8))["spearman"] is None  # Hadamard: equidistant


def _augmented_objective(
    h: torch.Tensor,
    m: torch.Tensor,
    s: torch.Tensor,
    lam: torch.Tensor,
    rho: float,
    repulsion: float,
) -> torch.Tensor:
    """The augmented Lagrangian written out directly, for autograd."""
    q = h.shape[0]
    fit = ((s - h.T @ m / q) ** 2).sum()
    gram = h.T @ h
    pairs = gram.sum() - gram.diagonal().sum()
    return fit + (lam * (h - m)).sum() + rho / 2 * ((h - m) ** 2).sum() + repulsion / 2 * pairs


def test_gradient_and_auxiliary_against_autograd() -> None:
    g = torch.Generator().manual_seed(0)
    q, c, rho, rep = 8, 5, 0.2, 0.3
    h = torch.randn(q, c, generator=g, dtype=torch.float64)
    s = torch.randn(c, c, generator=g, dtype=torch.float64)  # asymmetric on purpose
    lam = torch.randn(q, c, generator=g, dtype=torch.float64)
    m = torch.from_numpy(auxiliary_update(h.numpy(), s.numpy(), lam.numpy(), rho))
    m.requires_grad_(True)
    grad_m = torch.autograd.grad(_augmented_objective(h, m, s, lam, rho, rep), m)[0]
    assert float(grad_m.abs().max()) < 1e-9  # M is the minimiser over M
    h.requires_grad_(True)
    m = m.detach()
    grad_h = torch.autograd.grad(_augmented_objective(h, m, s, lam, rho, rep), h)[0]
    args = (h.detach().numpy(), m.numpy(), s.numpy(), lam.numpy(), rho, rep)
    # row i of S is the exact gradient; the reference's column i is the gradient for S^T
    np.testing.assert_allclose(augmented_gradient(*args, "row"), grad_h.numpy(), atol=1e-10)
    grad_t = torch.autograd.grad(_augmented_objective(h, m, s.T, lam, rho, rep), h)[0]
    column = augmented_gradient(*args, "column")
    np.testing.assert_allclose(column, grad_t.numpy(), atol=1e-10)
    assert not np.allclose(column, grad_h.numpy())


def test_violating_init_rejected() -> None:
    sim = _random_similarity(10, seed=2)
    with pytest.raises(CenterGenerationError, match="minimum distance"):
        semantic_centers(sim, 16, init=torch.ones(10, 16))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="square"):
        semantic_centers(torch.zeros(3, 4), 16)
    with pytest.raises(ValueError, match="eta"):
        semantic_centers(_random_similarity(3, 0), 16, eta=0.0)
    with pytest.raises(ValueError, match="bits=4"):
        semantic_centers(_random_similarity(10, 0), 4)
    with pytest.raises(ValueError, match="solver='adam'"):
        semantic_centers(_random_similarity(3, 0), 16, solver="adam")
    with pytest.raises(ValueError, match="similarity_axis='diagonal'"):
        semantic_centers(_random_similarity(3, 0), 16, similarity_axis="diagonal")
    with pytest.raises(ValueError, match="max_seconds"):
        semantic_centers(_random_similarity(3, 0), 16, max_seconds=0)


@pytest.mark.slow
def test_large_scale_1000_classes_128_bits() -> None:
    sim, _ = _planted(1000, 50)
    centers, info = semantic_centers(sim, 128)
    assert centers.shape == (1000, 128)
    assert info["statistics"]["min"] >= required_min_distance(128, 1000)
    assert info["fit_loss"] <= info["initial_fit_loss"]
