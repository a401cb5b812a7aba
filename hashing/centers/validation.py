"""Early checks that a (bits, num_classes) pair can yield hash centers under a construction.

The training pipeline builds the method (and so calls its center source's ``validate``) before
any training, so a bad ``bits`` fails in seconds with a message naming the key and the allowed
values. Each construction states what it needs as a :class:`BitsRule`: CSQ's Hadamard /
balanced-Bernoulli rule and the distance bound (MDS, SHC) are defined here; a new center method
reuses one or defines its own next to its construction (docs/extending.md), so no list of
methods lives here. The checks are necessary conditions (provable impossibility); generation
itself may still raise :class:`~hashing.centers.exceptions.CenterGenerationError` when its
search budget runs out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import comb

from hashing.centers.bound import is_integer, max_code_size_upper_bound, required_min_distance
from hashing.runs.errors import UserError


@dataclass(frozen=True)
class BitsRule:
    """What a center construction needs of ``bits``.

    Args:
        problem: ``(bits, num_classes) -> why it cannot work``, or None when it may; called
            only for positive integer ``bits`` with ``2^bits >= num_classes``.
        allowed: the allowed values in words, for the error message.
    """

    problem: Callable[[int, int], str | None]
    allowed: str


def is_power_of_two(value: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return value > 0 and value & (value - 1) == 0


def csq_problem(bits: int, num_classes: int) -> str | None:
    """CSQ: Hadamard rows (bits a power of two >= C/2) or balanced Bernoulli codes."""
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


def distance_bound_problem(bits: int, num_classes: int) -> str | None:
    """Every pair of centers at least ``d = required_min_distance`` apart (MDS, SHC)."""
    d = required_min_distance(bits, num_classes)
    limit = max_code_size_upper_bound(bits, d)
    if limit < num_classes:
        return (
            f"the required minimum distance d = {d} admits at most {limit} codes of length "
            f"{bits} (Hamming/Plotkin bound)"
        )
    return None


CSQ_RULE = BitsRule(
    csq_problem,
    "a power of two >= num_classes/2 (Hadamard), or an even integer with enough balanced codes",
)
DISTANCE_BOUND_RULE = BitsRule(
    distance_bound_problem, "an integer large enough for the distance bound"
)


def bits_problem(bits: int, num_classes: int, rule: BitsRule) -> str | None:
    """Why ``bits`` cannot work for ``num_classes`` under ``rule``, or None when it may."""
    if not is_integer(bits) or bits < 1:
        return "bits must be a positive integer"
    bits, num_classes = int(bits), int(num_classes)
    if bits < 63 and (1 << bits) < num_classes:
        return (
            f"2^bits = {1 << bits} < num_classes = {num_classes}: classes cannot get distinct codes"
        )
    return rule.problem(bits, num_classes)


def smallest_valid_bits(num_classes: int, rule: BitsRule, limit: int = 4096) -> int | None:
    """The smallest ``bits`` passing :func:`bits_problem`, or None below ``limit``."""
    for bits in range(1, limit + 1):
        if bits_problem(bits, num_classes, rule) is None:
            return bits
    return None


def validate_bits(bits: int, num_classes: int, rule: BitsRule, method: str) -> None:
    """Raise ValueError naming ``bits``, ``method`` and the allowed values unless centers can
    exist under ``rule``. ``num_classes`` must be an integer >= 2."""
    if not is_integer(num_classes) or num_classes < 2:
        raise UserError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    problem = bits_problem(bits, num_classes, rule)
    if problem is None:
        return
    smallest = smallest_valid_bits(num_classes, rule)
    hint = f"; the smallest such value is bits={smallest}" if smallest is not None else ""
    raise UserError(
        f"bits={bits!r} is invalid for method {method!r} with num_classes={num_classes}: "
        f"{problem}. Allowed: {rule.allowed}{hint}"
    )
