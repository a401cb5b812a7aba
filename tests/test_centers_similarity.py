"""SHC stage 1: class similarity, against hand-computed numbers and a per-sample loop."""

import math

import pytest
import torch

from hashing.centers import class_similarity
from hashing.centers.similarity import masked_softmax_sums, normalise_similarity


def test_hand_computed_example() -> None:
    # Sample of class 0, logits (0, 0, ln 3): mask 0 -> softmax(0, ln 3) = (1/4, 3/4).
    # Sample of class 1, logits (ln 2, 9, 0): mask 1 -> softmax(ln 2, 0) = (2/3, 1/3).
    # Sample of class 2, logits (0, 0, 7):   mask 2 -> (1/2, 1/2).
    logits = torch.tensor([[0.0, 0.0, math.log(3)], [math.log(2), 9.0, 0.0], [0.0, 0.0, 7.0]])
    labels = torch.tensor([0, 1, 2])
    # Raw rows: (0, 1/4, 3/4), (2/3, 0, 1/3), (1/2, 1/2, 0).
    # Symmetric: s01 = (1/4 + 2/3)/2 = 11/24, s02 = (3/4 + 1/2)/2 = 5/8, s12 = (1/3 + 1/2)/2 = 5/12.
    # Row 0 = (0, 11/24, 15/24): mean 13/36, max-mean 19/72, |min-mean| 26/72 -> denominator 26/72;
    #   normalised (-1, 7/26, 19/26).
    # Row 1 = (11/24, 0, 10/24): mean 7/24, max-mean 4/24, |min-mean| 7/24 -> (4/7, -1, 3/7).
    # Row 2 = (15/24, 10/24, 0): mean 25/72, max-mean 20/72, |min-mean| 25/72 -> (4/5, 1/5, -1).
    expected = torch.tensor(
        [[1.0, 7 / 26, 19 / 26], [4 / 7, 1.0, 3 / 7], [4 / 5, 1 / 5, 1.0]], dtype=torch.float64
    )
    sim = class_similarity(logits, labels, 3)
    torch.testing.assert_close(sim, expected)


def _loop_similarity(logits: torch.Tensor, positives: list[list[int]], num_classes: int) -> list:
    """Independent reference: per-sample Python loop with math.exp."""
    raw = [[0.0] * num_classes for _ in range(num_classes)]
    for row, pos in zip(logits.tolist(), positives, strict=True):
        others = [k for k in range(num_classes) if k not in pos]
        if not others:
            continue
        top = max(row[k] for k in others)
        z = sum(math.exp(row[k] - top) for k in others)
        for y in pos:
            for k in others:
                raw[y][k] += math.exp(row[k] - top) / z
    sym = [[(raw[i][j] + raw[j][i]) / 2 for j in range(num_classes)] for i in range(num_classes)]
    out = []
    for i, r in enumerate(sym):
        mean = sum(r) / num_classes
        den = max(abs(max(r) - mean), abs(min(r) - mean))
        out.append([1.0 if j == i else (v - mean) / den for j, v in enumerate(r)])
    return out


def test_single_label_matches_loop() -> None:
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(200, 7, generator=g)
    labels = torch.randint(0, 7, (200,), generator=g)
    expected = torch.tensor(_loop_similarity(logits, [[y] for y in labels.tolist()], 7))
    sim = class_similarity(logits, labels, 7)
    torch.testing.assert_close(sim, expected.to(torch.float64))
    assert float(sim.abs().max()) <= 1.0 + 1e-12


def test_multi_label_all_positives_masked() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(150, 6, generator=g)
    hot = (torch.rand(150, 6, generator=g) < 0.3).long()
    hot[0] = 1  # every label positive: contributes nothing
    hot[1] = 0  # no label: contributes nothing
    positives = [[k for k in range(6) if v[k]] for v in hot.tolist()]
    expected = torch.tensor(_loop_similarity(logits, positives, 6), dtype=torch.float64)
    torch.testing.assert_close(class_similarity(logits, hot, 6), expected)


def test_multi_label_first_rule_and_one_hot_equivalence() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(80, 5, generator=g)
    labels = torch.randint(0, 5, (80,), generator=g)
    one_hot = torch.nn.functional.one_hot(labels, 5)
    reference = class_similarity(logits, labels, 5)
    torch.testing.assert_close(class_similarity(logits, one_hot, 5), reference)
    torch.testing.assert_close(class_similarity(logits, one_hot, 5, multi_label="first"), reference)
    hot = one_hot.clone()
    hot[:, 4] = 1  # add label 4 everywhere; "first" keeps the original (smaller) label
    first = [[min(k for k in range(5) if v[k])] for v in hot.tolist()]
    expected = torch.tensor(_loop_similarity(logits, first, 5), dtype=torch.float64)
    torch.testing.assert_close(class_similarity(logits, hot, 5, multi_label="first"), expected)


def test_batches_add_up() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(90, 4, generator=g)
    labels = torch.randint(0, 4, (90,), generator=g)
    sums = sum(
        masked_softmax_sums(logits[i : i + 32], labels[i : i + 32], 4) for i in range(0, 90, 32)
    )
    torch.testing.assert_close(normalise_similarity(sums), class_similarity(logits, labels, 4))


def test_constant_row_becomes_zero() -> None:
    sums = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    sums[0] = 0.0
    sums[:, 0] = 0.0
    sim = normalise_similarity(sums)
    assert sim[0].tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (torch.zeros(4, 3), torch.tensor([0, 1, 2, 3]), "labels must lie"),
        (torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), "logits must be"),
        (torch.zeros(4, 3), torch.zeros(4, 2), "multi-hot"),
        (torch.zeros(4, 3), torch.full((4, 3), 0.5), "only 0 and 1"),
        (torch.zeros(4, 3), torch.tensor([0.0, 1.0, 2.0, 0.0]), "integers"),
        (torch.zeros(2, 3), torch.ones(2, 3), "all zero"),
    ],
)
def test_bad_input(logits: torch.Tensor, labels: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        class_similarity(logits, labels, 3)
