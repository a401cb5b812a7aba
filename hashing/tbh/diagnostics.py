"""TBH training diagnostics: which term moves the codes, and whether the codes have collapsed.

Two failure modes make TBH's codes useless without any loss going wrong
(docs/methods.md#tbh-collapse):

- the adversarial term outweighs the reconstruction at the binary layer (on small inputs with
  the released ``lambda_adv = 1``), drives every code to one value, and then the reconstruction
  gradient into the codes is *exactly* zero: the code graph ``A_ij = (1 - d_H/M)^gamma`` is all
  ones whatever the codes, and ``d_H`` (a sum of ``|b_i - b_j|``) has zero subgradient at
  ``b_i = b_j``. All codes equal is an absorbing state. :func:`code_gradient_norms` measures the
  size of each term's gradient at ``b`` so the balance is visible in the logs.
- the reconstruction alone can collapse the codes (CIFAR-10 raw pixels, even at
  ``lambda_adv = 0``). :mod:`hashing.callbacks.code_balance` detects the end state either way.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["code_gradient_norms", "gradient_ratio"]


def code_gradient_norms(codes: Tensor, terms: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Frobenius norm of ``d term / d codes`` for each named scalar term (0 if it does not reach).

    ``codes`` is the binary bottleneck's output ``b`` (a non-leaf tensor of the graph the terms
    were computed from); the graph is retained, so the caller can still backpropagate the loss.
    """
    norms = {}
    for name, term in terms.items():
        (grad,) = torch.autograd.grad(term, codes, retain_graph=True, allow_unused=True)
        norms[name] = torch.zeros((), device=codes.device) if grad is None else grad.detach().norm()
    return norms


def gradient_ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator`` of two gradient norms; ``inf`` when only the denominator is 0
    (the absorbing state: the reconstruction no longer reaches the codes), 0 when both are."""
    if float(denominator) == 0.0:
        return torch.tensor(0.0 if float(numerator) == 0.0 else float("inf"))
    return numerator / denominator
