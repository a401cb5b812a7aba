"""Bit packing of ±1 codes: round trip, zero padding, Hamming distances by popcount."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashing.index.packing import (
    check_packed,
    hamming_packed,
    pack_codes,
    packed_width,
    unpack_codes,
)


def random_codes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    return rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, bits))


@pytest.mark.parametrize("bits", [1, 7, 8, 12, 16, 63, 64, 100])
def test_round_trip_and_zero_padding(bits: int) -> None:
    codes = random_codes(np.random.default_rng(bits), 50, bits)
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (50, (bits + 7) // 8)
    assert packed_width(bits) == packed.shape[1]
    np.testing.assert_array_equal(unpack_codes(packed, bits), codes)
    # bit j of a code sits at byte j // 8, bit 7 - j % 8 (most significant first); padding 0
    for row in range(3):
        for j in range(8 * packed.shape[1]):
            bit = (packed[row, j // 8] >> (7 - j % 8)) & 1
            assert bit == (1 if j < bits and codes[row, j] == 1 else 0)


def test_tensor_codes_of_any_dtype_pack_alike() -> None:
    codes = random_codes(np.random.default_rng(0), 20, 24)
    expected = pack_codes(codes)
    for dtype in (torch.float32, torch.int8, torch.int64):
        np.testing.assert_array_equal(pack_codes(torch.from_numpy(codes).to(dtype)), expected)


@pytest.mark.parametrize("bits", [5, 12, 64])
def test_hamming_by_popcount_matches_counting_differences(bits: int) -> None:
    rng = np.random.default_rng(1)
    query, database = random_codes(rng, 9, bits), random_codes(rng, 40, bits)
    distances = hamming_packed(pack_codes(query), pack_codes(database))
    for i in range(len(query)):
        for j in range(len(database)):
            assert distances[i, j] == sum(
                int(a != b) for a, b in zip(query[i], database[j], strict=True)
            )


def test_rejects_codes_that_are_not_plus_minus_one() -> None:
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        pack_codes(np.array([[1, 0, -1]]))
    with pytest.raises(ValueError, match="2-d"):
        pack_codes(np.array([1, -1, 1]))


def test_check_packed_rejects_wrong_width_dtype_and_padding() -> None:
    packed = pack_codes(random_codes(np.random.default_rng(2), 4, 12))
    check_packed(packed, 12)
    with pytest.raises(ValueError, match="16-bit codes need 2"):
        check_packed(packed[:, :1], 16)
    with pytest.raises(ValueError, match="uint8"):
        check_packed(packed.astype(np.int16), 12)
    dirty = packed.copy()
    dirty[0, 1] |= 1  # a padding bit of a 12-bit code
    with pytest.raises(ValueError, match="padding bits"):
        check_packed(dirty, 12)
    with pytest.raises(ValueError, match="positive integer"):
        packed_width(0)
