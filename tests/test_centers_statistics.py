"""Pairwise Hamming statistics against a brute-force loop."""

import pytest
import torch

from hashing.centers import center_statistics, pairwise_hamming


def _random_codes(num: int, bits: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(num, bits, generator=g) < 0.5, -1.0, 1.0)


@pytest.mark.parametrize(("num", "bits"), [(2, 3), (7, 16), (30, 64)])
def test_statistics_match_loop(num: int, bits: int) -> None:
    codes = _random_codes(num, bits, seed=num)
    dists = []
    for i in range(num):
        for j in range(i + 1, num):
            pairs = zip(codes[i].tolist(), codes[j].tolist(), strict=True)
            dists.append(sum(int(a != b) for a, b in pairs))
    mean = sum(dists) / len(dists)
    stats = center_statistics(codes)
    assert stats["num_pairs"] == len(dists)
    assert stats["min"] == min(dists)
    assert stats["max"] == max(dists)
    assert stats["mean"] == pytest.approx(mean)
    assert stats["var"] == pytest.approx(sum((d - mean) ** 2 for d in dists) / len(dists))
    assert (stats["num_classes"], stats["bits"]) == (num, bits)


def test_pairwise_hamming_int8_input_and_symmetry() -> None:
    codes = _random_codes(5, 9, seed=1)
    dist = pairwise_hamming(codes.to(torch.int8))
    assert dist.dtype == torch.int64
    assert torch.equal(dist, dist.T)
    assert torch.equal(dist.diagonal(), torch.zeros(5, dtype=torch.int64))
    assert int(dist[0, 1]) == int((codes[0] != codes[1]).sum())


def test_rejects_non_binary() -> None:
    with pytest.raises(ValueError, match="-1 and \\+1"):
        center_statistics(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="2-D"):
        center_statistics(torch.ones(4))
