"""What a search (or an add) is given, said explicitly: image files, ±1 codes, packed codes,
indexed item ids, or model input tensors.

The CLI (``hashing.search``) and the service (``hashing.serve``) build a :class:`Query` from
what the user named, and :meth:`hashing.index.HashIndex.packed_codes` turns any query into
packed codes in one dispatch on its kind. Only :func:`as_query`, the convenience behind
``HashIndex.search(array)``, infers a kind from an array's dtype and shape.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from torch import Tensor

from hashing.index.image_files import ImageList, list_images
from hashing.index.packing import as_sign_array, check_packed, packed_width
from hashing.runs.errors import UserError

QueryKind = Literal["images", "codes", "packed", "ids", "inputs"]
ImageSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass(frozen=True)
class Query:
    """One batch of queries of one kind; build it with the class methods.

    ``value`` is an :class:`ImageList` (images), int8 ±1 (N, bits) (codes), uint8
    (N, ceil(bits / 8)) (packed), int64 (N,) (ids) or a tensor (N, *input shape) (inputs).
    """

    kind: QueryKind
    value: Any

    @classmethod
    def images(cls, source: ImageSource, root: str | os.PathLike[str] | None = None) -> Query:
        """Image files: one image, a folder, a list file or a sequence of image paths."""
        return cls("images", list_images(source, root=root))

    @classmethod
    def codes(cls, codes: Tensor | np.ndarray | Sequence[Sequence[int]]) -> Query:
        """±1 codes (N, bits)."""
        array = codes if isinstance(codes, Tensor) else np.asarray(codes)
        return cls("codes", as_sign_array(array))

    @classmethod
    def packed(cls, packed: np.ndarray) -> Query:
        """Bit-packed codes (N, ceil(bits / 8)) uint8 (:mod:`hashing.index.packing`)."""
        if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 2:
            raise ValueError("packed codes must be a 2-d uint8 numpy array")
        return cls("packed", packed)

    @classmethod
    def hex(cls, codes: Sequence[str], bits: int) -> Query:
        """Packed codes written as hex strings, ``ceil(bits / 8)`` bytes each."""
        width = packed_width(bits)
        rows = []
        for text in codes:
            try:
                row = bytes.fromhex(str(text))
            except ValueError as err:
                raise UserError(f"code {text!r} is not a hex string: {err}") from err
            if len(row) != width:
                raise UserError(
                    f"hex code {text!r} has {len(row)} bytes; {bits}-bit codes take {width} "
                    f"({2 * width} hex digits)"
                )
            rows.append(np.frombuffer(row, np.uint8))
        packed = np.stack(rows) if rows else np.zeros((0, width), np.uint8)
        check_packed(packed, bits)
        return cls("packed", packed)

    @classmethod
    def ids(cls, ids: Sequence[int] | np.ndarray) -> Query:
        """Indexed items, searched with their stored codes."""
        array = np.asarray(ids)
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise UserError(f"item ids must be a list of integers, got {ids!r}")
        return cls("ids", array.astype(np.int64))

    @classmethod
    def inputs(cls, inputs: Tensor) -> Query:
        """Model inputs (N, *input shape), encoded by the index's model."""
        if not isinstance(inputs, Tensor):
            raise ValueError(f"model inputs must be a tensor, got {type(inputs).__name__}")
        return cls("inputs", inputs)

    def __len__(self) -> int:
        return len(self.value.paths) if self.kind == "images" else len(self.value)


def as_query(items: Query | ImageSource | Tensor | np.ndarray, bits: int) -> Query:
    """``items`` as a :class:`Query`, inferring the kind of a bare value: paths are images, a
    uint8 array is packed codes, an array or tensor of ±1 of width ``bits`` is codes, any other
    tensor is model inputs."""
    if isinstance(items, Query):
        return items
    if isinstance(items, ImageList):
        return Query("images", items)
    if isinstance(items, str | os.PathLike) or (
        isinstance(items, Sequence)
        and len(items) > 0
        and all(isinstance(item, str | os.PathLike) for item in items)
    ):
        return Query.images(items)  # type: ignore[arg-type]
    if isinstance(items, np.ndarray) and items.dtype == np.uint8:
        return Query.packed(items)
    if isinstance(items, Tensor | np.ndarray):
        array = items.detach().cpu().numpy() if isinstance(items, Tensor) else items
        if array.ndim == 2 and array.shape[1] == bits and np.isin(array, (-1, 1)).all():
            return Query.codes(array)
        if isinstance(items, Tensor):
            return Query.inputs(items)
        raise ValueError(
            f"array of shape {array.shape} is neither ±1 codes (N, {bits}) nor packed "
            f"uint8 codes (N, {packed_width(bits)}); pass model inputs as a tensor"
        )
    raise ValueError(
        f"cannot search or add {type(items).__name__}: give image paths, a folder, a list "
        f"file, codes, or a tensor of model inputs"
    )
