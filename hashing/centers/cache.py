"""Content-addressed on-disk cache for stage outputs (SHC stages 1 and 2, MDS centers, ...).

docs/methods.md#shc-cache: SHC's similarity matrix and centers are pure functions of (dataset split,
backbone, bits, seed, settings), so an ablation over bits or methods should not retrain the
classifier. An entry's key is the SHA-256 of the canonical JSON of a dict of *all* inputs that
determine the value (keys sorted, no whitespace, ``1`` and ``1.0`` distinct, NaN rejected); the
caller is responsible for putting everything relevant in the dict (include a ``stage`` name and a
version string when the computation changes).

Layout: ``<root>/<key>.pt`` (or ``.npz``) holds the value, ``<root>/<key>.json`` the inputs,
pretty-printed for inspection. Both are written to a temporary file in the same folder and moved
into place with :func:`os.replace` (atomic on POSIX), the value last, so an entry is either
complete or absent: an exception in ``compute`` or while saving leaves nothing behind.

Values: a NumPy array or a ``dict[str, numpy array]`` is stored as ``.npz``; anything else
(tensors, dicts/lists of tensors and plain numbers/strings) with ``torch.save`` and read back
with ``torch.load(weights_only=True)``, so a cache folder cannot run arbitrary pickled code.
"""

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from hashing.digests import cache_key, canonical_json
from hashing.runs.atomic import atomic_write

T = TypeVar("T")

_NPZ_SINGLE = "__value__"


def _is_npz_value(value: object) -> bool:
    """Whether ``value`` is stored as ``.npz`` (an array or a str-keyed dict of arrays)."""
    if isinstance(value, np.ndarray):
        return True
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items())
    )


class StageCache:
    """A folder of computed values addressed by the hash of their inputs.

    ``get_or_compute(inputs, compute)`` returns the cached value or runs ``compute()`` and
    stores its result; ``last_hit`` says which happened on the latest call. With
    ``enabled=False`` nothing is read or written (every call computes, ``last_hit`` is False).
    """

    def __init__(self, root: str | os.PathLike[str], enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.last_hit: bool | None = None

    def value_path(self, key_inputs: Mapping[str, Any]) -> Path | None:
        """Path of the stored value for ``key_inputs``, or None when there is no entry."""
        key = cache_key(key_inputs)
        for suffix in (".pt", ".npz"):
            path = self.root / f"{key}{suffix}"
            if path.is_file():
                return path
        return None

    def inputs_path(self, key_inputs: Mapping[str, Any]) -> Path:
        """Path of the JSON file holding the inputs of the entry (present once it is stored)."""
        return self.root / f"{cache_key(key_inputs)}.json"

    def contains(self, key_inputs: Mapping[str, Any]) -> bool:
        """Whether a complete entry for ``key_inputs`` exists."""
        return self.enabled and self.value_path(key_inputs) is not None

    def load(self, key_inputs: Mapping[str, Any]) -> Any:
        """The stored value for ``key_inputs``; KeyError when absent."""
        path = self.value_path(key_inputs) if self.enabled else None
        if path is None:
            raise KeyError(f"no cache entry for {canonical_json(key_inputs)} under {self.root}")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            return arrays[_NPZ_SINGLE] if list(arrays) == [_NPZ_SINGLE] else arrays
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, key_inputs: Mapping[str, Any], value: Any) -> Path:
        """Store ``value`` for ``key_inputs`` atomically; returns the value's path."""
        key = cache_key(key_inputs)
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            json.loads(canonical_json(key_inputs)), indent=2, sort_keys=True, ensure_ascii=True
        )
        inputs_path = self.root / f"{key}.json"
        atomic_write(inputs_path, lambda f: f.write(text.encode("ascii")))
        try:
            if _is_npz_value(value):
                arrays = {_NPZ_SINGLE: value} if isinstance(value, np.ndarray) else dict(value)
                path = self.root / f"{key}.npz"
                atomic_write(path, lambda f: np.savez(f, **arrays))
            else:
                path = self.root / f"{key}.pt"
                atomic_write(path, lambda f: torch.save(value, f))
        except BaseException:
            if self.value_path(key_inputs) is None:
                inputs_path.unlink(missing_ok=True)
            raise
        return path

    def get_or_compute(
        self,
        key_inputs: Mapping[str, Any],
        compute: Callable[[], T],
        keep: Callable[[T], bool] | None = None,
    ) -> T:
        """Cached value for ``key_inputs`` if present, else ``compute()`` stored and returned;
        a computed value that ``keep`` rejects (e.g. a search cut short by a time limit, which
        its inputs do not determine) is returned without being stored."""
        cache_key(key_inputs)  # validate inputs before doing any work
        if self.contains(key_inputs):
            self.last_hit = True
            return self.load(key_inputs)
        self.last_hit = False
        value = compute()
        if self.enabled and (keep is None or keep(value)):
            self.save(key_inputs, value)
        return value
