"""Input checks shared by the retrieval metrics: fail early with a message naming the bad value."""

from __future__ import annotations

import torch
from torch import Tensor


def check_codes(codes: Tensor, name: str) -> None:
    """Raise ValueError unless ``codes`` is a 2-D tensor of ±1 entries."""
    if not isinstance(codes, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of ±1 codes, got {type(codes).__name__}")
    if codes.ndim != 2:
        raise ValueError(f"{name} must have shape (N, bits), got shape {tuple(codes.shape)}")
    if codes.shape[1] == 0:
        raise ValueError(f"{name} must have at least one bit, got shape {tuple(codes.shape)}")
    if codes.dtype == torch.bool or codes.is_complex():
        raise ValueError(f"{name} must hold ±1 as a real number type, got dtype {codes.dtype}")
    bad = codes.abs() != 1
    if bool(bad.any()):
        value = codes[bad][0].item()
        raise ValueError(
            f"{name} must contain only -1 and +1 (sign(0) := +1), found the value {value}"
        )


def check_labels(labels: Tensor, num_items: int, name: str) -> None:
    """Raise ValueError unless ``labels`` are class indices (N,) or multi-hot {0,1} (N, C)."""
    if not isinstance(labels, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be class indices (N,) or multi-hot (N, C), got shape "
            f"{tuple(labels.shape)}"
        )
    if labels.shape[0] != num_items:
        raise ValueError(
            f"{name} has {labels.shape[0]} rows but the matching codes have {num_items}"
        )
    if labels.ndim == 1 and (labels.is_floating_point() or labels.dtype == torch.bool):
        raise ValueError(f"{name} as class indices must be an integer tensor, got {labels.dtype}")
    if labels.ndim == 2:
        bad = (labels != 0) & (labels != 1)
        if bool(bad.any()):
            raise ValueError(
                f"{name} as multi-hot labels must contain only 0 and 1, "
                f"found {labels[bad][0].item()}"
            )


def check_retrieval_inputs(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
) -> None:
    """Check one query set against one database: ±1 codes of equal length, matching label kinds."""
    check_codes(query_codes, "query_codes")
    check_codes(database_codes, "database_codes")
    if query_codes.shape[1] != database_codes.shape[1]:
        raise ValueError(
            f"query_codes have {query_codes.shape[1]} bits but database_codes have "
            f"{database_codes.shape[1]}; both must have the same number of bits"
        )
    if database_codes.shape[0] == 0:
        raise ValueError("database_codes is empty; the database needs at least one item")
    check_retrieval_labels(
        query_labels, database_labels, query_codes.shape[0], database_codes.shape[0]
    )
    if query_codes.device != database_codes.device:
        raise ValueError(
            f"query_codes are on {query_codes.device} but database_codes on "
            f"{database_codes.device}; put both on one device"
        )


def check_retrieval_labels(
    query_labels: Tensor, database_labels: Tensor, num_queries: int, num_database: int
) -> None:
    """Check the labels of one query set and one database: one per item, of the same kind."""
    check_labels(query_labels, num_queries, "query_labels")
    check_labels(database_labels, num_database, "database_labels")
    if query_labels.ndim != database_labels.ndim:
        raise ValueError(
            f"query_labels have shape {tuple(query_labels.shape)} but database_labels have "
            f"{tuple(database_labels.shape)}; both must be class indices or both multi-hot"
        )
    if query_labels.ndim == 2 and query_labels.shape[1] != database_labels.shape[1]:
        raise ValueError(
            f"query_labels have {query_labels.shape[1]} classes but database_labels have "
            f"{database_labels.shape[1]}"
        )


def check_top_k(top_k: int | None, name: str = "top_k") -> None:
    """Raise ValueError unless ``top_k`` is None (= ALL) or a positive int."""
    if top_k is None:
        return
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"{name} must be a positive int or None (= ALL), got {top_k!r}")
