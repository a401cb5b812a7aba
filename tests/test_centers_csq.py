"""CSQ centers: Hadamard structure, balanced Bernoulli draws, determinism, errors."""

import itertools

import pytest
import torch

from hashing.centers import CenterGenerationError, csq_centers, hadamard_matrix


@pytest.mark.parametrize("bits", [1, 2, 4, 16, 64])
def test_hadamard_orthogonal(bits: int) -> None:
    h = hadamard_matrix(bits)
    assert h.shape == (bits, bits)
    assert torch.equal(h @ h.T, bits * torch.eye(bits))


def test_hadamard_matches_recursive_definition() -> None:
    """Entry (i, j) of Sylvester's H is (-1)^popcount(i & j)."""
    bits = 32
    expected = torch.tensor(
        [[(-1.0) ** bin(i & j).count("1") for j in range(bits)] for i in range(bits)]
    )
    assert torch.equal(hadamard_matrix(bits), expected)


@pytest.mark.parametrize(("num_classes", "bits"), [(10, 16), (16, 16), (2, 64)])
def test_hadamard_rows_when_classes_fit(num_classes: int, bits: int) -> None:
    centers = csq_centers(num_classes, bits)
    assert torch.equal(centers, hadamard_matrix(bits)[:num_classes])
    gram = centers @ centers.T
    assert torch.equal(gram, bits * torch.eye(num_classes))


def test_hadamard_and_negation_rows() -> None:
    num_classes, bits = 24, 16
    centers = csq_centers(num_classes, bits)
    h = hadamard_matrix(bits)
    assert torch.equal(centers[:16], h)
    assert torch.equal(centers[16:], -h[:8])
    for i, j in itertools.combinations(range(num_classes), 2):
        dist = int((centers[i] != centers[j]).sum())
        assert dist == (bits if j == i + bits else bits // 2)


@pytest.mark.parametrize(("num_classes", "bits"), [(10, 48), (200, 64), (1000, 128), (10, 12)])
def test_bernoulli_balanced_and_accepted(num_classes: int, bits: int) -> None:
    centers = csq_centers(num_classes, bits, seed=3)
    assert centers.shape == (num_classes, bits)
    assert torch.equal((centers == -1).sum(dim=1), torch.full((num_classes,), bits // 2))
    dist = (bits - centers @ centers.T) / 2
    pairs = dist[torch.triu_indices(num_classes, num_classes, offset=1).unbind()]
    assert pairs.min() > bits / 4
    assert pairs.mean() >= bits / 2


def test_bernoulli_deterministic_by_seed() -> None:
    a = csq_centers(200, 64, seed=7)
    assert torch.equal(a, csq_centers(200, 64, seed=7))
    assert not torch.equal(a, csq_centers(200, 64, seed=8))


def test_failure_raises_naming_bits_and_classes() -> None:
    with pytest.raises(CenterGenerationError, match=r"bits=16, num_classes=100"):
        csq_centers(100, 16)


def test_non_strict_returns_best_draw_with_warning() -> None:
    with pytest.warns(UserWarning, match="best draw"):
        centers = csq_centers(100, 16, strict=False)
    assert centers.shape == (100, 16)
    assert torch.equal(centers.sum(dim=1), torch.zeros(100))


def test_invalid_bits_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"bits=7 .*even"):
        csq_centers(100, 7)
