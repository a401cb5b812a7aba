"""MDS centers: guaranteed minimum distance, determinism, failure mode, local-search invariant."""

import pytest
import torch

from hashing.centers import (
    CenterGenerationError,
    csq_centers,
    mds_centers,
    required_min_distance,
)
from hashing.centers.mds import improve_center
from tests.helpers.brute_centers import brute_distances


def _min_distance_by_loop(centers: torch.Tensor) -> int:
    rows = centers.tolist()
    return min(
        sum(a != b for a, b in zip(rows[i], rows[j], strict=True))
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
    )


@pytest.mark.parametrize("bits", [16, 32, 64])
@pytest.mark.parametrize("num_classes", [2, 10, 21, 100])
def test_min_distance_guarantee(num_classes: int, bits: int) -> None:
    centers = mds_centers(num_classes, bits, seed=0)
    assert centers.shape == (num_classes, bits)
    assert bool(((centers == 1) | (centers == -1)).all())
    assert _min_distance_by_loop(centers) >= required_min_distance(bits, num_classes)


@pytest.mark.parametrize(("num_classes", "bits"), [(17, 24), (30, 17)])
def test_non_power_of_two_bits(num_classes: int, bits: int) -> None:
    centers = mds_centers(num_classes, bits, seed=1)
    assert _min_distance_by_loop(centers) >= required_min_distance(bits, num_classes)


def test_repairs_csq_start_that_violates_bound() -> None:
    # Two Hadamard rows are 8 apart at 16 bits, but the bound for two classes asks for 9.
    start = csq_centers(2, 16)
    assert _min_distance_by_loop(start) == 8
    assert _min_distance_by_loop(mds_centers(2, 16)) >= 9


def test_deterministic_given_seed() -> None:
    a = mds_centers(40, 16, seed=3)
    assert torch.equal(a, mds_centers(40, 16, seed=3))
    assert not torch.equal(a, mds_centers(40, 16, seed=4))


def test_explicit_init_and_distance() -> None:
    init = torch.ones(6, 20)
    init[torch.arange(6), torch.arange(6)] = -1  # pairwise distance 2
    centers = mds_centers(6, 20, min_distance=9, init=init)
    assert _min_distance_by_loop(centers) >= 9


def test_failure_raises_dedicated_error() -> None:
    # 196 words of length 12 at distance >= 3 exist (A(12,3) = 256) but are hard to find.
    with pytest.raises(CenterGenerationError, match=r"bits=12, num_classes=196") as info:
        mds_centers(196, 12, max_sweeps=2)
    assert isinstance(info.value, ValueError)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_sweeps"):
        mds_centers(10, 16, max_sweeps=0)
    with pytest.raises(ValueError, match="init must have shape"):
        mds_centers(10, 16, init=torch.ones(9, 16))
    with pytest.raises(ValueError, match="bits=3"):
        mds_centers(10, 3)


@pytest.mark.parametrize("seed", range(5))
def test_local_search_never_increases_violation(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    centers = torch.where(torch.rand(12, 10, generator=g) < 0.5, -1.0, 1.0)
    d = 5

    def violation(row: torch.Tensor) -> int:
        return sum(
            max(0, d - int((row != centers[j]).sum())) for j in range(len(centers)) if j != 0
        )

    new_row, flips = improve_center(centers.double().numpy(), 0, d, max_flips=10)
    new_row = torch.from_numpy(new_row).float()
    assert violation(new_row) <= violation(centers[0])
    assert int((new_row != centers[0]).sum()) <= flips <= 10


@pytest.mark.slow
def test_large_scale_1000_classes_128_bits() -> None:
    centers = mds_centers(1000, 128)
    assert _min_distance_by_loop(centers[:200]) >= 48
    dist = (128 - centers @ centers.T) / 2
    dist.fill_diagonal_(128)
    assert int(dist.min()) >= required_min_distance(128, 1000)


@pytest.mark.parametrize(("num_classes", "bits"), [(10, 16), (10, 32), (10, 64), (100, 64)])
def test_start_that_meets_the_bound_is_returned_unchanged(num_classes: int, bits: int) -> None:
    # as the reference: CSQ's Hadamard rows (and their negations) already meet d here
    start = csq_centers(num_classes, bits)
    centers = mds_centers(num_classes, bits)
    assert torch.equal(centers, start)
    distances = brute_distances(centers)
    assert min(distances) >= required_min_distance(bits, num_classes)
    if num_classes <= bits:
        assert min(distances) == max(distances) == bits // 2


def test_refining_a_feasible_start_moves_it_and_keeps_the_bound() -> None:
    start = csq_centers(10, 32)
    refined = mds_centers(10, 32, refine_feasible_start=True)
    assert not torch.equal(refined, start)
    distances = brute_distances(refined)
    assert min(distances) >= 16 and sum(distances) / len(distances) > 16
