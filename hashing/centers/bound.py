"""Required minimum Hamming distance between hash centers (Gilbert-Varshamov style;
docs/methods.md#required-minimum-distance).

MDS and SHC demand every pair of class centers to be at least ``d`` bits apart, where ``d`` is
the smallest value with ``sum_{j<d} binom(q, j) >= 2^q / C``. Exact integer arithmetic is used
(``2^q`` overflows floats' exactness from q = 54 on).
"""

from math import comb
from numbers import Integral


def is_integer(value: object) -> bool:
    """True for Python/NumPy integers, False for bools, floats and everything else."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_positive_int(name: str, value: int, minimum: int) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is an integer (not bool) >= ``minimum``."""
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def hamming_ball_volume(bits: int, radius: int) -> int:
    """Number of words of length ``bits`` within Hamming distance ``radius`` of a fixed word."""
    return sum(comb(bits, j) for j in range(max(radius, -1) + 1))


def required_min_distance(bits: int, num_classes: int) -> int:
    """Smallest ``d`` with ``sum_{j=0}^{d-1} binom(bits, j) >= 2^bits / num_classes``.

    The comparison is done as ``num_classes * sum >= 2^bits`` so it is exact for any size.
    """
    _check_positive_int("bits", bits, 1)
    _check_positive_int("num_classes", num_classes, 2)
    bits, num_classes = int(bits), int(num_classes)
    target = 1 << bits
    total = 0
    for d in range(1, bits + 2):
        total += comb(bits, d - 1)
        if num_classes * total >= target:
            return d
    raise AssertionError("unreachable: the full ball holds 2^bits words")  # pragma: no cover


def max_code_size_upper_bound(bits: int, distance: int) -> int:
    """An upper bound on how many binary words of length ``bits`` can be ``distance`` apart.

    The tighter of the sphere-packing (Hamming) bound and, where it applies, the Plotkin bound.
    Used to reject (bits, num_classes) pairs that no algorithm could satisfy.
    """
    _check_positive_int("bits", bits, 1)
    _check_positive_int("distance", distance, 1)
    bits, distance = int(bits), int(distance)
    if distance > bits:
        return 1
    best = (1 << bits) // hamming_ball_volume(bits, (distance - 1) // 2)
    # Plotkin works with even distance: A(n, d) = A(n + 1, d + 1) for odd d.
    n, d = (bits + 1, distance + 1) if distance % 2 else (bits, distance)
    if 2 * d > n:
        best = min(best, 2 * (d // (2 * d - n)))
    elif 2 * d == n:
        best = min(best, 4 * d)
    return best
