"""TBH's code-driven graph and the GCN layer that propagates the continuous bottleneck over it.

The adjacency is rebuilt every batch from the current binary codes (docs/methods.md#tbh-parts):
``A_ij = (1 - d_H(b_i, b_j) / M) ** gamma`` with self-loops (``A_ii = 1``), and the GCN computes
``z' = sigmoid(D^-1/2 A D^-1/2 (z W + beta))`` with ``D = diag(A 1)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GraphConvolution", "code_adjacency", "hamming_distance_01", "normalize_adjacency"]


def _check_unit_codes(codes: Tensor, name: str) -> None:
    """Raise unless ``codes`` is a 2-D tensor with values in [0, 1] ({0,1} codes or relaxations)."""
    if codes.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, bits), got shape {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < 0 or codes.max() > 1):
        raise ValueError(
            f"{name} must hold {{0,1}} codes (values in [0, 1]); got values in "
            f"[{codes.min().item()}, {codes.max().item()}] (±1 codes? map them with (c + 1) / 2)"
        )


def hamming_distance_01(codes: Tensor, other: Tensor | None = None) -> Tensor:
    """Pairwise Hamming distances between rows of {0,1} codes, by two matmuls.

    ``d_ij = sum_k b_ik (1 - c_jk) + (1 - b_ik) c_jk``, written as in the released code,
    ``|b (c - 1)^T + (b - 1) c^T|``: the absolute value gives identical codes (self-loops
    included) a zero gradient, which is the released code's backward behaviour.
    """
    other = codes if other is None else other
    _check_unit_codes(codes, "codes")
    _check_unit_codes(other, "other")
    if codes.shape[1] != other.shape[1]:
        raise ValueError(
            f"codes have {codes.shape[1]} bits but other has {other.shape[1]}; they must match"
        )
    return (codes @ (other - 1).T + (codes - 1) @ other.T).abs()


def code_adjacency(codes: Tensor, gamma: float = 1.4) -> Tensor:
    """Adjacency ``(1 - d_H / M) ** gamma`` of a batch of {0,1} codes, shape (N, N).

    gamma is 1.4 in the released code and 1 in the paper. Computed in float32 (float64 if the
    codes are) with autocast off, so that the integer distances stay exact under mixed precision.
    Gradients flow back into the codes (and through the straight-through neuron into the
    encoder), as in the released code.
    """
    if not gamma > 0:
        raise ValueError(
            f"gamma must be > 0 (1.4 in the released code, 1 in the paper), got {gamma}"
        )
    if codes.dim() != 2 or codes.shape[1] == 0:
        raise ValueError(f"codes must be 2-D (N, bits) with bits >= 1, got {tuple(codes.shape)}")
    bits = codes.shape[1]
    with torch.autocast(device_type=codes.device.type, enabled=False):
        codes = codes.to(torch.promote_types(codes.dtype, torch.float32))
        similarity = 1.0 - hamming_distance_01(codes) / bits
        if gamma < 1:
            # (x ** gamma)' is infinite at x = 0 for gamma < 1; a floor of `tiny` keeps it finite
            # and changes the value by at most tiny ** gamma.
            similarity = similarity.clamp_min(torch.finfo(similarity.dtype).tiny)
        return similarity.pow(gamma)


def normalize_adjacency(adjacency: Tensor) -> Tensor:
    """Symmetric normalisation ``D^-1/2 A D^-1/2`` with ``D = diag(A 1)`` (row sums).

    Every degree must be positive; code adjacencies always are (self-loops give ``A_ii = 1``), so
    unlike the released code no 1e-8 margin is added.
    """
    if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be square (N, N), got shape {tuple(adjacency.shape)}")
    degree = adjacency.sum(dim=1)
    if adjacency.numel() and not bool((degree > 0).all()):
        raise ValueError(
            "adjacency has rows with non-positive degree (sum); every node needs a self-loop or "
            "a positive edge for D^-1/2 A D^-1/2 to exist"
        )
    inv_sqrt = degree.rsqrt()
    return inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]


class GraphConvolution(nn.Module):
    """One GCN layer: ``sigmoid(D^-1/2 A D^-1/2 (z W + beta))`` over a given adjacency."""

    def __init__(self, in_features: int, out_features: int) -> None:
        """``W`` (in_features -> out_features), ``beta`` (out_features,): Glorot-uniform, zero."""
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features and out_features must be >= 1, got {in_features}, {out_features}"
            )
        self.linear = nn.Linear(in_features, out_features)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, values: Tensor, adjacency: Tensor) -> Tensor:
        """Propagate node features ``values`` (N, in_features) over ``adjacency`` (N, N)."""
        if values.dim() != 2 or values.shape[0] != adjacency.shape[0]:
            raise ValueError(
                f"values must be (N, in_features) with N = adjacency's {adjacency.shape[0]} rows, "
                f"got shape {tuple(values.shape)}"
            )
        transformed = self.linear(values)
        laplacian = normalize_adjacency(adjacency).to(transformed.dtype)
        return torch.sigmoid(laplacian @ transformed)
