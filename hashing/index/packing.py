"""±1 codes <-> bit-packed bytes (8 bits a byte), the storage and faiss format of an index.

A code bit is 1 for +1 and 0 for -1, packed most significant bit first (``numpy.packbits``'
default order). A code of ``bits`` not divisible by 8 is padded with zero bits up to the next
byte: queries and database items get the same padding, so the padded bits never add to a
Hamming distance, and distances stay exact. faiss binary indexes then see ``8 * bytes`` bits.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

#: number of set bits of every byte value, for popcount by table lookup
POPCOUNT_TABLE = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


def packed_width(bits: int) -> int:
    """Bytes per packed code: ``ceil(bits / 8)``."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or bits <= 0:
        raise ValueError(f"bits must be a positive integer, got {bits!r}")
    return (int(bits) + 7) // 8


def as_sign_array(codes: Tensor | np.ndarray) -> np.ndarray:
    """±1 codes (any numeric dtype, tensor or array) as a (N, bits) int8 array; checks values."""
    array = codes.detach().cpu().numpy() if isinstance(codes, Tensor) else np.asarray(codes)
    if array.ndim != 2:
        raise ValueError(f"codes must be a 2-d (N, bits) array, got shape {array.shape}")
    if array.size and not np.isin(array, (-1, 1)).all():
        bad = array[~np.isin(array, (-1, 1))][:5]
        raise ValueError(f"codes must hold only -1 and +1 (sign(0) := +1), found e.g. {bad}")
    return array.astype(np.int8, copy=False)


def pack_codes(codes: Tensor | np.ndarray) -> np.ndarray:
    """Pack ±1 codes (N, bits) into uint8 (N, ceil(bits / 8)); +1 -> bit 1, padding bits 0."""
    signs = as_sign_array(codes)
    return np.packbits(signs > 0, axis=1)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: uint8 (N, ceil(bits / 8)) -> int8 ±1 codes (N, bits)."""
    check_packed(packed, bits)
    unpacked = np.unpackbits(packed, axis=1, count=bits)
    return unpacked.astype(np.int8) * 2 - 1


def check_packed(packed: np.ndarray, bits: int) -> None:
    """Raise ValueError unless ``packed`` is uint8 (N, ceil(bits/8)) with zero padding bits."""
    width = packed_width(bits)
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 2:
        raise ValueError(
            f"packed codes must be a 2-d uint8 numpy array, got "
            f"{type(packed).__name__} {getattr(packed, 'dtype', '')} {getattr(packed, 'shape', '')}"
        )
    if packed.shape[1] != width:
        raise ValueError(
            f"packed codes have {packed.shape[1]} bytes a code; {bits}-bit codes need {width}"
        )
    spare = 8 * width - bits
    if spare and len(packed) and (packed[:, -1] & np.uint8((1 << spare) - 1)).any():
        raise ValueError(
            f"packed {bits}-bit codes have non-zero padding bits in their last byte; "
            f"pack them with pack_codes"
        )


def hamming_packed(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Hamming distances (Q, N) int32 between packed codes, by XOR and a popcount table."""
    distances = np.empty((len(query), len(database)), dtype=np.int32)
    for row, code in enumerate(query):
        distances[row] = POPCOUNT_TABLE[np.bitwise_xor(database, code)].sum(axis=1)
    return distances
