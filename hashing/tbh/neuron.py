"""Stochastic binary neuron of TBH: a {0,1} threshold of sigmoid logits with a surrogate gradient.

Forward: ``p = sigmoid(l)``, ``b = 1[p > eps]``. Backward (docs/methods.md#tbh-parts, the released
code's ``binary_activation``): ``dL/dl = p (1 - p) (dL/db + dL/dp)``. The neuron returns both ``b``
and ``p`` so that a loss may use either; whatever reaches ``p`` is added to what reaches ``b``
before the sigmoid's derivative is applied, which is exactly the formula above (and for ``p`` alone
it is the true sigmoid gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

__all__ = ["StochasticBinaryNeuron", "binary_neuron", "sample_threshold"]


class StochasticBinaryNeuron(torch.autograd.Function):
    """``(logits, eps) -> (b, p)``: ``p = sigmoid(logits)``, ``b = 1[p > eps]``.

    ``eps`` is a noise sample, not a parameter: it receives no gradient. (The released TF code
    returns ``dL/db`` for it, which nothing there consumes.) Ties ``p == eps`` give ``b = 0``; the
    TF code's ``(sign(p - eps) + 1) / 2`` gives 0.5 there, a measure-zero difference.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, logits: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Threshold ``sigmoid(logits)`` at ``eps``; save ``p`` for the backward pass."""
        prob = torch.sigmoid(logits)
        code = (prob > eps).to(logits.dtype)
        ctx.save_for_backward(prob)
        return code, prob

    @staticmethod
    def backward(ctx: FunctionCtx, grad_code: Tensor, grad_prob: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        """``dL/dl = p (1 - p) (dL/db + dL/dp)``; an unused output arrives as a zero gradient."""
        (prob,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return prob * (1.0 - prob) * (grad_code + grad_prob), None


def sample_threshold(
    logits: Tensor, stochastic: bool, generator: torch.Generator | None = None
) -> Tensor:
    """Thresholds shaped like ``logits``: U(0,1) samples when ``stochastic``, else all 0.5."""
    if stochastic:
        return torch.rand(
            logits.shape, generator=generator, device=logits.device, dtype=logits.dtype
        )
    return torch.full_like(logits, 0.5)


def binary_neuron(logits: Tensor, eps: Tensor | float = 0.5) -> tuple[Tensor, Tensor]:
    """Apply :class:`StochasticBinaryNeuron`; ``eps``: a float or a tensor broadcastable to logits.

    Returns ``(b, p)``: codes in {0,1} (dtype of ``logits``) and their probabilities.
    """
    if not isinstance(eps, Tensor):
        eps_value = float(eps)
        if not 0.0 <= eps_value <= 1.0:
            raise ValueError(f"eps must lie in [0, 1] (a threshold on a probability), got {eps}")
        eps = torch.full_like(logits, eps_value)
    else:
        try:
            shape = torch.broadcast_shapes(eps.shape, logits.shape)
        except RuntimeError as err:
            raise ValueError(
                f"eps of shape {tuple(eps.shape)} does not broadcast to logits of shape "
                f"{tuple(logits.shape)}"
            ) from err
        if shape != logits.shape:
            raise ValueError(
                f"eps of shape {tuple(eps.shape)} would enlarge logits of shape "
                f"{tuple(logits.shape)} to {tuple(shape)}; eps must broadcast to logits' shape"
            )
        eps = eps.detach().to(device=logits.device, dtype=logits.dtype).expand_as(logits)
    code, prob = StochasticBinaryNeuron.apply(logits, eps)
    return code, prob
