"""Stop a manual-optimisation step before it applies a NaN/inf loss or gradient.

A non-finite update would poison the weights and every later checkpoint; stopping before the
optimisers step keeps the weights, and the last saved checkpoint, the last good ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


class NonFiniteLossError(FloatingPointError):
    """A training step produced a NaN/inf loss or gradient; nothing was updated."""


def all_finite(tensors: list[Tensor]) -> bool:
    """Whether every entry of every tensor is finite, in one read pass and one device sync.

    A tensor's float32 sum is NaN or inf if any entry is, so finite sums prove finiteness
    (``isfinite(t).all()`` per tensor costs about 20x more: it writes a bool tensor of the same
    size, about 10 ms a step for TBH on 4096-d features). A non-finite sum can also come from
    finite entries that overflow it, so ``False`` is only a "maybe": confirm with ``isfinite``.
    """
    if not tensors:
        return True
    sums = torch.stack([t.sum(dtype=torch.float32) for t in tensors])
    return bool(torch.isfinite(sums).all())


def check_finite_update(
    losses: Mapping[str, Tensor], params: list[nn.Parameter], where: str, method: str
) -> None:
    """Raise :class:`NonFiniteLossError` if a loss or a parameter's gradient is NaN/inf.

    ``where`` says when it happened (global step, epoch, batch), ``method`` whose step it was.
    One device sync when all is finite; the exact per-tensor check runs only when the fast one
    says "maybe".
    """
    grads = [p.grad for p in params if p.grad is not None]
    if all_finite([*losses.values(), *grads]):
        return
    flags = torch.stack([torch.isfinite(t).all() for t in (*losses.values(), *grads)])
    if bool(flags.all()):  # finite entries whose float32 sum overflowed
        return
    what = "loss" if not bool(flags[: len(losses)].all()) else "gradient"
    values = ", ".join(f"{name}={value.item():.4g}" for name, value in losses.items())
    raise NonFiniteLossError(
        f"{method}: non-finite {what} at {where}: {values}. The run stops before this update, "
        "so the weights and the last saved checkpoint are the last good ones. Check the inputs "
        "for NaN/inf, or lower the learning rate."
    )
