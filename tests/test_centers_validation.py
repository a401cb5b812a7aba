"""validate_bits: early, named errors for impossible (bits, num_classes, method)."""

import numpy as np
import pytest

from hashing.centers import csq_centers, validate_bits


@pytest.mark.parametrize("method", ["csq", "mds", "shc"])
@pytest.mark.parametrize(("bits", "num_classes"), [(16, 10), (64, 100), (128, 1000), (48, 21)])
def test_usual_settings_pass(method: str, bits: int, num_classes: int) -> None:
    validate_bits(bits, num_classes, method)


@pytest.mark.parametrize("bits", [0, -4, 2.5, "16", True])
def test_non_positive_or_non_int_bits(bits: object) -> None:
    with pytest.raises(ValueError, match=r"bits=.*positive integer"):
        validate_bits(bits, 10, "csq")  # type: ignore[arg-type]


def test_too_few_bits_for_classes() -> None:
    with pytest.raises(ValueError, match=r"bits=3 .*2\^bits = 8 < num_classes = 10"):
        validate_bits(3, 10, "mds")


def test_odd_bits_for_bernoulli_csq() -> None:
    with pytest.raises(ValueError, match=r"bits=33 .*even.*smallest such value is bits="):
        validate_bits(33, 100, "csq")


def test_distance_bound_unsatisfiable() -> None:
    # d = 2 for (4 bits, 10 classes) but at most 8 words of length 4 are 2 apart.
    with pytest.raises(ValueError, match=r"bits=4 .*d = 2 admits at most 8"):
        validate_bits(4, 10, "shc")


def test_suggested_bits_is_valid() -> None:
    with pytest.raises(ValueError, match=r"smallest such value is bits=(\d+)") as info:
        validate_bits(8, 1000, "csq")
    suggested = int(info.value.args[0].rsplit("bits=", 1)[1])
    validate_bits(suggested, 1000, "csq")
    with pytest.raises(ValueError):
        validate_bits(suggested - 1, 1000, "csq")


def test_small_csq_settings_produce_centers() -> None:
    """Settings the validator accepts at the boundary really yield centers."""
    assert csq_centers(2, 1).tolist() == [[1.0], [-1.0]]
    assert csq_centers(10, 6, seed=0).shape == (10, 6)


@pytest.mark.parametrize(("method", "num_classes"), [("pq", 10), ("csq", 1)])
def test_bad_method_or_classes(method: str, num_classes: int) -> None:
    with pytest.raises(ValueError, match=r"method|num_classes"):
        validate_bits(16, num_classes, method)


def test_numpy_integers_accepted() -> None:
    validate_bits(np.int64(64), np.int64(100), "mds")
    assert csq_centers(10, np.int64(16)).shape == (10, 16)
