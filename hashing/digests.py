"""Content digests: what a cache, a split file or an index records to recognise its inputs.

One place for the hashes the project stores: a file's bytes (:func:`file_sha256`), arrays
(:func:`tensor_digest`, :func:`arrays_digest`, :func:`labels_digest`), a module's weights
(:func:`state_dict_digest`) and a JSON-like key (:func:`canonical_json`, :func:`cache_key`).
Each digest is written into files that outlive a run (caches, split files, index manifests), so
an algorithm here changes only together with those files. Imports nothing heavier than torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tensor_digest(*tensors: Tensor | np.ndarray) -> str:
    """SHA-256 over the dtypes, shapes and bytes of the given arrays (CPU, contiguous)."""
    return arrays_digest(tensors)


def arrays_digest(arrays: Iterable[Tensor | np.ndarray]) -> str:
    """:func:`tensor_digest` of a stream of arrays, read one at a time (a lazy dataset)."""
    digest = hashlib.sha256()
    for item in arrays:
        array = item.detach().cpu().numpy() if isinstance(item, Tensor) else np.asarray(item)
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array.reshape(-1).view(np.uint8)))
    return digest.hexdigest()


def labels_digest(labels: torch.Tensor) -> str:
    """SHA-1 of a label tensor's values, to tell whether a saved split fits this dataset."""
    array = np.ascontiguousarray(labels.cpu().numpy())
    return hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()


def state_dict_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the model's state dict (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous().flatten()
        digest.update(f"{name}|{value.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _json_default(obj: object) -> object:
    """Convert the few non-JSON types that commonly appear in inputs; reject the rest."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(
        f"cache key inputs must be JSON-like (dict/list/str/int/float/bool/None/Path); "
        f"got {type(obj).__name__}: {obj!r}"
    )


def _check_string_keys(obj: object) -> None:
    """Reject non-string dict keys (JSON would silently turn ``1`` into ``"1"``)."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise ValueError(f"cache key inputs need string dict keys, got {key!r}")
            _check_string_keys(value)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _check_string_keys(item)


def canonical_json(key_inputs: Mapping[str, Any]) -> str:
    """Canonical JSON text of ``key_inputs``: sorted keys, no whitespace, NaN/inf rejected."""
    if not isinstance(key_inputs, Mapping):
        raise ValueError(f"key_inputs must be a dict, got {type(key_inputs).__name__}")
    _check_string_keys(key_inputs)
    try:
        return json.dumps(
            key_inputs,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
            default=_json_default,
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot build a cache key from {key_inputs!r}: {err}") from err


def cache_key(key_inputs: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(key_inputs).encode("ascii")).hexdigest()
