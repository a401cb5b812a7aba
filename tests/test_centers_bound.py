"""Required minimum distance and the code-size upper bound
(docs/methods.md#required-minimum-distance)."""

import itertools
from fractions import Fraction
from math import comb

import pytest

from hashing.centers import max_code_size_upper_bound, required_min_distance

BOUND_TABLE = {
    10: {16: 6, 32: 13, 48: 21, 64: 28, 128: 58},
    21: {16: 6, 32: 12, 48: 19, 64: 26, 128: 56},
    80: {16: 5, 32: 11, 48: 17, 64: 24, 128: 52},
    100: {16: 4, 32: 10, 48: 17, 64: 24, 128: 52},
    196: {16: 4, 32: 10, 48: 16, 64: 23, 128: 51},
    555: {16: 3, 32: 9, 48: 15, 64: 21, 128: 49},
}


@pytest.mark.parametrize(
    ("num_classes", "bits", "expected"),
    [(c, q, d) for c, row in BOUND_TABLE.items() for q, d in row.items()],
)
def test_spec_table(num_classes: int, bits: int, expected: int) -> None:
    assert required_min_distance(bits, num_classes) == expected


@pytest.mark.parametrize("bits", [1, 2, 5, 16, 33, 64, 128, 200])
@pytest.mark.parametrize("num_classes", [2, 3, 10, 999, 10**6])
def test_definition_with_rationals(bits: int, num_classes: int) -> None:
    """d is the first value whose ball of radius d-1 reaches 2^q / C (checked with Fractions)."""
    d = required_min_distance(bits, num_classes)
    target = Fraction(2**bits, num_classes)
    volume = [sum(comb(bits, j) for j in range(r + 1)) for r in range(bits + 1)]
    assert volume[d - 1] >= target
    assert d == 1 or volume[d - 2] < target


@pytest.mark.parametrize(("bits", "num_classes"), [(0, 10), (16, 1), (16, 0), (True, 10)])
def test_bad_input(bits: int, num_classes: int) -> None:
    with pytest.raises(ValueError, match=r"bits|num_classes"):
        required_min_distance(bits, num_classes)


def _greedy_code_size(bits: int, distance: int) -> int:
    """Size of the lexicographic greedy code: a valid code, so a lower bound on A(n, d)."""
    code: list[tuple[int, ...]] = []
    for word in itertools.product((0, 1), repeat=bits):
        if all(sum(a != b for a, b in zip(word, c, strict=True)) >= distance for c in code):
            code.append(word)
    return len(code)


# Known exact values A(n, d) of the largest binary code (MacWilliams & Sloane tables).
KNOWN_A = {(4, 2): 8, (5, 3): 4, (6, 3): 8, (7, 3): 16, (8, 4): 16, (9, 4): 20, (10, 6): 6}


@pytest.mark.parametrize(("bits", "distance"), sorted(KNOWN_A))
def test_upper_bound_is_valid(bits: int, distance: int) -> None:
    bound = max_code_size_upper_bound(bits, distance)
    assert bound >= KNOWN_A[(bits, distance)]
    assert bound >= _greedy_code_size(bits, distance)


@pytest.mark.parametrize(("bits", "distance", "exact"), [(4, 2, 8), (5, 3, 4), (7, 3, 16)])
def test_upper_bound_tight_cases(bits: int, distance: int, exact: int) -> None:
    """Plotkin (n=4, d=2 and n=5, d=3) and Hamming (perfect [7,4] code) bounds are tight here."""
    assert max_code_size_upper_bound(bits, distance) == exact


def test_upper_bound_distance_above_length() -> None:
    assert max_code_size_upper_bound(8, 9) == 1
