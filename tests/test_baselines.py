"""The reference rows: LSH codes and Euclidean k-NN scored with the codes' AP kernel."""

from __future__ import annotations

import math

import pytest
import torch

from hashing.baselines import float_average_precision, lsh_codes
from hashing.metrics import average_precision


def test_lsh_codes_are_seeded_signs_of_centred_projections() -> None:
    torch.manual_seed(0)
    train, query = torch.rand(50, 6), torch.rand(7, 6)
    (a,) = lsh_codes(train, query, bits=16, seed=3)
    (b,) = lsh_codes(train, query, bits=16, seed=3)
    (c,) = lsh_codes(train, query, bits=16, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {-1.0, 1.0} and a.shape == (7, 16)
    planes = torch.randn(6, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = torch.where((query.double() - train.double().mean(0)) @ planes >= 0, 1.0, -1.0)
    assert torch.equal(a, expected.float())


def test_lsh_hamming_distance_tracks_the_angle() -> None:
    # Charikar: P(bit differs) = angle / pi, so with many bits d_H / q ~ angle / pi
    torch.manual_seed(1)
    x = torch.randn(2, 32)
    (codes,) = lsh_codes(torch.zeros(1, 32), x, bits=4096, seed=0)
    angle = math.acos(torch.nn.functional.cosine_similarity(x[:1], x[1:]).item())
    fraction = (codes[0] != codes[1]).float().mean().item()
    assert fraction == pytest.approx(angle / math.pi, abs=0.03)


def test_lsh_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="bits=0"):
        lsh_codes(torch.zeros(3, 4), torch.zeros(2, 4), bits=0)
    with pytest.raises(ValueError, match=r"\(M, 4\)"):
        lsh_codes(torch.zeros(3, 4), torch.zeros(2, 5), bits=8)


def test_float_ranking_of_sign_vectors_equals_the_hamming_metric() -> None:
    # for ±1 vectors ||a - b||^2 = 4 d_H(a, b): the float ranking must reproduce the codes' AP,
    # ties by database index included
    torch.manual_seed(2)
    query = torch.where(torch.rand(30, 8) > 0.5, 1.0, -1.0)
    database = torch.where(torch.rand(200, 8) > 0.5, 1.0, -1.0)
    query_labels, database_labels = torch.randint(0, 4, (30,)), torch.randint(0, 4, (200,))
    ks = (5, 50, None)
    expected = average_precision(query, database, query_labels, database_labels, ks)
    got = float_average_precision(query, database, query_labels, database_labels, ks, 7)
    assert torch.allclose(got, expected, atol=1e-12)


def test_float_ranking_brute_force() -> None:
    torch.manual_seed(3)
    query, database = torch.randn(5, 3), torch.randn(40, 3)
    query_labels, database_labels = torch.randint(0, 3, (5,)), torch.randint(0, 3, (40,))
    got = float_average_precision(query, database, query_labels, database_labels, (10,))
    for i in range(5):
        order = torch.cdist(query[i : i + 1].double(), database.double())[0].argsort(stable=True)
        rel = (database_labels[order] == query_labels[i])[:10].double()
        hits = rel.cumsum(0)
        positions = torch.arange(1, 11, dtype=torch.float64)
        ap = (rel * hits / positions).sum() / rel.sum() if rel.sum() else 0.0
        assert got[i, 0].item() == pytest.approx(float(ap), abs=1e-12)


def test_float_ranking_rejects_bad_input() -> None:
    query, database = torch.randn(4, 3), torch.randn(10, 3)
    query_labels, database_labels = torch.randint(0, 3, (4,)), torch.randint(0, 3, (10,))
    with pytest.raises(ValueError, match="database_labels has 9 rows"):
        float_average_precision(query, database, query_labels, database_labels[:9])
    with pytest.raises(ValueError, match="both must be class indices or both multi-hot"):
        multi_hot = torch.nn.functional.one_hot(database_labels, 3)
        float_average_precision(query, database, query_labels, multi_hot)
    with pytest.raises(ValueError, match="database features are empty"):
        float_average_precision(query, database[:0], query_labels, database_labels[:0])
    with pytest.raises(ValueError, match=r"query features must have shape \(N, D\)"):
        float_average_precision(query[0], database, query_labels[:1], database_labels)
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        float_average_precision(query, database, query_labels, database_labels, chunk_size=0)
