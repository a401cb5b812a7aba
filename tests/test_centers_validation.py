"""validate_bits: early, named errors for impossible (bits, num_classes) under a rule."""

import numpy as np
import pytest

from hashing.centers import CSQ_RULE, DISTANCE_BOUND_RULE, BitsRule, csq_centers, validate_bits
from hashing.centers.validation import smallest_valid_bits

RULES = {"csq": CSQ_RULE, "mds": DISTANCE_BOUND_RULE, "shc": DISTANCE_BOUND_RULE}


@pytest.mark.parametrize("method", ["csq", "mds", "shc"])
@pytest.mark.parametrize(("bits", "num_classes"), [(16, 10), (64, 100), (128, 1000), (48, 21)])
def test_usual_settings_pass(method: str, bits: int, num_classes: int) -> None:
    validate_bits(bits, num_classes, RULES[method], method)


@pytest.mark.parametrize("bits", [0, -4, 2.5, "16", True])
def test_non_positive_or_non_int_bits(bits: object) -> None:
    with pytest.raises(ValueError, match=r"bits=.*positive integer"):
        validate_bits(bits, 10, CSQ_RULE, "csq")  # type: ignore[arg-type]


def test_too_few_bits_for_classes() -> None:
    with pytest.raises(ValueError, match=r"bits=3 .*2\^bits = 8 < num_classes = 10"):
        validate_bits(3, 10, DISTANCE_BOUND_RULE, "mds")


def test_odd_bits_for_bernoulli_csq() -> None:
    with pytest.raises(ValueError, match=r"bits=33 .*even.*smallest such value is bits="):
        validate_bits(33, 100, CSQ_RULE, "csq")


def test_distance_bound_unsatisfiable() -> None:
    # d = 2 for (4 bits, 10 classes) but at most 8 words of length 4 are 2 apart.
    with pytest.raises(ValueError, match=r"bits=4 .*d = 2 admits at most 8"):
        validate_bits(4, 10, DISTANCE_BOUND_RULE, "shc")


def test_suggested_bits_is_valid() -> None:
    with pytest.raises(ValueError, match=r"smallest such value is bits=(\d+)") as info:
        validate_bits(8, 1000, CSQ_RULE, "csq")
    suggested = int(info.value.args[0].rsplit("bits=", 1)[1])
    validate_bits(suggested, 1000, CSQ_RULE, "csq")
    with pytest.raises(ValueError):
        validate_bits(suggested - 1, 1000, CSQ_RULE, "csq")


def test_small_csq_settings_produce_centers() -> None:
    """Settings the validator accepts at the boundary really yield centers."""
    assert csq_centers(2, 1).tolist() == [[1.0], [-1.0]]
    assert csq_centers(10, 6, seed=0).shape == (10, 6)


def test_too_few_classes() -> None:
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        validate_bits(16, 1, CSQ_RULE, "csq")


def test_a_new_rule_is_checked_and_named_without_any_list_of_methods() -> None:
    """A construction states its own rule; the message names its method and allowed values."""
    multiple_of_8 = BitsRule(lambda bits, _: None if bits % 8 == 0 else "not whole bytes", "x8")
    validate_bits(24, 10, multiple_of_8, "bytes")
    with pytest.raises(ValueError) as info:
        validate_bits(20, 10, multiple_of_8, "bytes")
    message = str(info.value)
    assert "method 'bytes'" in message and "not whole bytes" in message and "x8" in message
    assert "smallest such value is bits=8" in message
    # the common checks still come first: 2^bits must reach the number of classes
    assert smallest_valid_bits(300, multiple_of_8) == 16


def test_numpy_integers_accepted() -> None:
    validate_bits(np.int64(64), np.int64(100), DISTANCE_BOUND_RULE, "mds")
    assert csq_centers(10, np.int64(16)).shape == (10, 16)
