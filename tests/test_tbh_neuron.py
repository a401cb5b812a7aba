"""Stochastic binary neuron: forward threshold and the surrogate gradient
(docs/methods.md#tbh-parts)."""

from __future__ import annotations

import math

import pytest
import torch

from hashing.tbh.neuron import StochasticBinaryNeuron, binary_neuron, sample_threshold


def _sigmoid_by_hand(logits: torch.Tensor) -> torch.Tensor:
    """Elementwise logistic function written out, independent of torch.sigmoid."""
    out = torch.empty_like(logits)
    for index, value in enumerate(logits.flatten().tolist()):
        out.view(-1)[index] = 1.0 / (1.0 + math.exp(-value))
    return out


def test_forward_thresholds_probability_at_eps() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    eps = torch.rand(6, 5, generator=gen, dtype=torch.float64)
    code, prob = binary_neuron(logits, eps)
    expected_prob = _sigmoid_by_hand(logits)
    torch.testing.assert_close(prob, expected_prob)
    for i in range(6):
        for j in range(5):
            assert code[i, j].item() == (1.0 if expected_prob[i, j] > eps[i, j] else 0.0)


def test_fixed_threshold_is_sign_of_logits() -> None:
    logits = torch.tensor([[-2.0, -0.1, 0.1, 3.0]])
    code, _ = binary_neuron(logits)
    assert code.tolist() == [[0.0, 0.0, 1.0, 1.0]]


@pytest.mark.parametrize(("use_code", "use_prob"), [(True, True), (True, False), (False, True)])
def test_gradient_matches_formula(use_code: bool, use_prob: bool) -> None:
    """dL/dl = p(1-p)(dL/db + dL/dp) for explicit upstream gradients on b and on p."""
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    eps = torch.rand(7, 4, generator=gen, dtype=torch.float64)
    grad_b = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    grad_p = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    code, prob = binary_neuron(logits, eps)
    loss = torch.zeros((), dtype=torch.float64)
    if use_code:
        loss = loss + (code * grad_b).sum()
    if use_prob:
        loss = loss + (prob * grad_p).sum()
    loss.backward()

    p = _sigmoid_by_hand(logits.detach())
    upstream = (grad_b if use_code else 0.0) + (grad_p if use_prob else 0.0)
    expected = torch.empty_like(p)
    for i in range(7):
        for j in range(4):
            u = upstream[i, j] if isinstance(upstream, torch.Tensor) else upstream
            expected[i, j] = p[i, j] * (1.0 - p[i, j]) * u
    torch.testing.assert_close(logits.grad, expected)


def test_gradient_through_prob_is_true_sigmoid_derivative() -> None:
    """Finite differences on p: the p-branch of the surrogate is the exact derivative."""
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    eps = torch.full((3, 5), 0.5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda lg: StochasticBinaryNeuron.apply(lg, eps)[1], (logits,))


def test_eps_gets_no_gradient() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    eps = torch.rand(4, 3, requires_grad=True)
    code, _ = StochasticBinaryNeuron.apply(logits, eps)
    code.sum().backward()
    assert eps.grad is None
    assert logits.grad is not None


def test_stochastic_threshold_makes_b_a_bernoulli_of_p() -> None:
    """With eps ~ U(0,1), E[b] = p; with eps = 0.5, b is deterministic."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.tensor([-2.0, -0.5, 0.0, 0.7, 2.5]).expand(20000, 5).contiguous()
    eps = sample_threshold(logits, stochastic=True, generator=gen)
    assert eps.min().item() >= 0.0 and eps.max().item() < 1.0
    code, prob = binary_neuron(logits, eps)
    torch.testing.assert_close(code.mean(0), prob[0], atol=0.015, rtol=0.0)
    fixed = sample_threshold(logits, stochastic=False)
    assert torch.all(fixed == 0.5)


def test_bad_eps_is_rejected() -> None:
    logits = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="eps must lie in"):
        binary_neuron(logits, 1.5)
    with pytest.raises(ValueError, match="does not broadcast"):
        binary_neuron(logits, torch.rand(4, 2))
    with pytest.raises(ValueError, match="would enlarge"):
        binary_neuron(logits, torch.rand(2, 4, 3))
