"""Code-driven adjacency and GCN propagation against brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch

from hashing.tbh.graph import (
    GraphConvolution,
    code_adjacency,
    hamming_distance_01,
    normalize_adjacency,
)


def _random_codes(n: int, bits: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, bits, generator=gen) < 0.5).float()


def _brute_adjacency(codes: torch.Tensor, gamma: float) -> torch.Tensor:
    rows = codes.tolist()
    n, bits = len(rows), len(rows[0])
    out = torch.empty(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            distance = sum(1 for k in range(bits) if rows[i][k] != rows[j][k])
            out[i, j] = (1.0 - distance / bits) ** gamma
    return out


@pytest.mark.parametrize("gamma", [1.0, 1.4, 0.5])
def test_adjacency_matches_double_loop(gamma: float) -> None:
    codes = _random_codes(9, 12, seed=0)
    codes[3] = 1.0 - codes[5]  # a pair at distance M: weight exactly 0 (clamped to ~0 if gamma<1)
    adjacency = code_adjacency(codes, gamma=gamma)
    assert adjacency.shape == (9, 9) and adjacency.dtype == torch.float32
    torch.testing.assert_close(adjacency.double(), _brute_adjacency(codes, gamma))
    assert torch.all(adjacency.diagonal() == 1.0)
    torch.testing.assert_close(adjacency, adjacency.T)


def test_hamming_distance_counts_differing_bits_between_sets() -> None:
    a, b = _random_codes(5, 7, seed=1), _random_codes(4, 7, seed=2)
    distance = hamming_distance_01(a, b)
    for i in range(5):
        for j in range(4):
            assert distance[i, j].item() == sum(int(a[i, k] != b[j, k]) for k in range(7))


def test_adjacency_gradient_matches_finite_differences_and_self_loops_are_constant() -> None:
    gen = torch.Generator().manual_seed(3)
    relaxed = (0.1 + 0.8 * torch.rand(5, 6, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda c: code_adjacency(c, 1.4), (relaxed,))
    codes = _random_codes(6, 8, seed=4).requires_grad_()
    code_adjacency(codes).diagonal().sum().backward()
    assert torch.all(codes.grad == 0)


def test_adjacency_stays_exact_under_bf16_autocast() -> None:
    codes = _random_codes(20, 600, seed=5)  # distances near 300: odd ones are not bfloat16
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        adjacency = code_adjacency(codes, gamma=1.0)
    assert adjacency.dtype == torch.float32
    torch.testing.assert_close(adjacency.double(), _brute_adjacency(codes, 1.0))


def test_normalized_gcn_matches_loops() -> None:
    torch.manual_seed(6)
    codes = _random_codes(7, 10, seed=7)
    z = torch.rand(7, 4)
    layer = GraphConvolution(4, 3)
    with torch.no_grad():
        layer.linear.bias.uniform_(-0.5, 0.5)  # nonzero beta so its placement is tested
    out = layer(z, code_adjacency(codes, gamma=1.4))

    a = _brute_adjacency(codes, 1.4)
    w = layer.linear.weight.detach().double()  # (out, in)
    beta = layer.linear.bias.detach().double()
    degree = [sum(a[i, j].item() for j in range(7)) for i in range(7)]
    expected = torch.empty(7, 3, dtype=torch.float64)
    for i in range(7):
        for c in range(3):
            total = 0.0
            for j in range(7):
                zw = sum(z[j, k].item() * w[c, k].item() for k in range(4)) + beta[c].item()
                total += a[i, j].item() / math.sqrt(degree[i] * degree[j]) * zw
            expected[i, c] = 1.0 / (1.0 + math.exp(-total))
    torch.testing.assert_close(out.double(), expected, atol=1e-6, rtol=1e-5)


def test_graph_convolution_init_is_glorot_uniform_with_zero_bias() -> None:
    torch.manual_seed(8)
    layer = GraphConvolution(300, 200)
    bound = math.sqrt(6.0 / (300 + 200))
    assert layer.linear.weight.abs().max().item() <= bound
    assert layer.linear.weight.abs().max().item() > 0.95 * bound
    assert torch.all(layer.linear.bias == 0)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\{0,1\} codes"):
        code_adjacency(torch.tensor([[1.0, -1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="gamma must be > 0"):
        code_adjacency(_random_codes(3, 4, seed=0), gamma=0.0)
    with pytest.raises(ValueError, match="2-D"):
        code_adjacency(torch.zeros(4))
    with pytest.raises(ValueError, match="non-positive degree"):
        normalize_adjacency(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="N = adjacency"):
        GraphConvolution(2, 2)(torch.rand(3, 2), torch.eye(4))
