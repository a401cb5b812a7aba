"""Early checks that a (bits, num_classes, method) triple can yield hash centers.

The training pipeline calls :func:`validate_bits` before any training so a bad ``bits`` fails in
seconds with a message naming the key and the allowed values. The checks are necessary
conditions (provable impossibility); generation itself may still raise
:class:`~hashing.centers.exceptions.CenterGenerationError` when its search budget runs out.
"""

from math import comb

from hashing.centers.bound import is_integer, max_code_size_upper_bound, required_min_distance

METHODS = ("csq", "mds", "shc")


def is_power_of_two(value: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return value > 0 and value & (value - 1) == 0


def bits_problem(bits: int, num_classes: int, method: str) -> str | None:
    """Why ``bits`` cannot work for ``num_classes`` under ``method``, or None when it may."""
    if not is_integer(bits) or bits < 1:
        return "bits must be a positive integer"
    bits, num_classes = int(bits), int(num_classes)
    if bits < 63 and (1 << bits) < num_classes:
        return (
            f"2^bits = {1 << bits} < num_classes = {num_classes}: classes cannot get distinct codes"
        )
    if method == "csq":
        if is_power_of_two(bits) and num_classes <= 2 * bits:
            return None
        if bits % 2:
            return (
                "CSQ uses balanced Bernoulli centers here (bits not a power of two or "
                "num_classes > 2*bits), which need a positive even number of bits"
            )
        if comb(bits, bits // 2) < num_classes:
            return f"only binom(bits, bits/2) = {comb(bits, bits // 2)} balanced codes exist"
        return None
    d = required_min_distance(bits, num_classes)
    limit = max_code_size_upper_bound(bits, d)
    if limit < num_classes:
        return (
            f"the required minimum distance d = {d} admits at most {limit} codes of length "
            f"{bits} (Hamming/Plotkin bound)"
        )
    return None


def smallest_valid_bits(num_classes: int, method: str, limit: int = 4096) -> int | None:
    """The smallest ``bits`` passing :func:`bits_problem`, or None below ``limit``."""
    for bits in range(1, limit + 1):
        if bits_problem(bits, num_classes, method) is None:
            return bits
    return None


def validate_bits(bits: int, num_classes: int, method: str) -> None:
    """Raise ValueError naming ``bits`` and the allowed values unless centers can exist.

    ``method`` is one of ``csq``, ``mds``, ``shc``. ``num_classes`` must be an integer >= 2.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not is_integer(num_classes) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    problem = bits_problem(bits, num_classes, method)
    if problem is None:
        return
    smallest = smallest_valid_bits(num_classes, method)
    allowed = {
        "csq": (
            "a power of two >= num_classes/2 (Hadamard), or an even integer with enough "
            "balanced codes"
        ),
        "mds": "an integer large enough for the distance bound",
        "shc": "an integer large enough for the distance bound",
    }[method]
    hint = f"; the smallest such value is bits={smallest}" if smallest is not None else ""
    raise ValueError(
        f"bits={bits!r} is invalid for method {method!r} with num_classes={num_classes}: "
        f"{problem}. Allowed: {allowed}{hint}"
    )
