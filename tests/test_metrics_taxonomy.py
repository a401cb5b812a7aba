"""Taxonomy metrics (tax_dist, miss_tax_dist, ndcg_wup) against a brute-force computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashing.metrics.functional.ranking import stable_order
from hashing.metrics.functional.taxonomy import stable_top_k, taxonomy_metrics, taxonomy_scores
from hashing.taxonomy import Taxonomy

TREE = Taxonomy.from_paths(
    [
        ["root", "animal", "dog"],
        ["root", "animal", "cat"],
        ["root", "animal", "bird", "owl"],
        ["root", "thing", "car"],
        ["root", "thing", "tool", "saw"],
    ]
)
CLASSES = ["dog", "cat", "owl", "car", "saw"]


def brute_force(q, db, ql, dl, dist, wup, k):
    """Per-query (mean hops, mean hops of misses or None, NDCG) by sorting Python lists."""
    out = []
    n = len(db)
    keep = min(k, n)
    for i, code in enumerate(q):
        ham = [int(sum(a != b for a, b in zip(code, other, strict=True))) for other in db]
        order = sorted(range(n), key=lambda j: (ham[j], j))[:keep]
        hops = [dist[ql[i]][dl[j]] for j in order]
        misses = [dist[ql[i]][dl[j]] for j in order if dl[j] != ql[i]]
        dcg = sum(wup[ql[i]][dl[j]] / math.log2(r + 2) for r, j in enumerate(order))
        best = sorted((wup[ql[i]][dl[j]] for j in range(n)), reverse=True)[:keep]
        idcg = sum(g / math.log2(r + 2) for r, g in enumerate(best))
        out.append((sum(hops) / keep, sum(misses) / len(misses) if misses else None, dcg / idcg))
    return out


def random_case(seed: int, bits: int, nq: int, ndb: int):
    rng = np.random.default_rng(seed)
    q = torch.from_numpy(rng.choice([-1.0, 1.0], size=(nq, bits))).float()
    db = torch.from_numpy(rng.choice([-1.0, 1.0], size=(ndb, bits))).float()
    ql = torch.from_numpy(rng.integers(0, 5, nq))
    dl = torch.from_numpy(rng.integers(0, 5, ndb))
    return q, db, ql, dl


def test_tree_relations_by_hand() -> None:
    dist, wup = TREE.relations(CLASSES)
    assert dist[0, 1] == 2  # dog-animal-cat
    assert dist[0, 2] == 3  # dog-animal-bird-owl
    assert dist[0, 4] == 5  # dog-animal-root-thing-tool-saw
    assert wup[0, 1] == pytest.approx(2 * 2 / (3 + 3))
    assert wup[2, 4] == pytest.approx(2 * 1 / (4 + 4))
    assert (np.diag(dist) == 0).all() and (np.diag(wup) == 1).all()


@pytest.mark.parametrize(("seed", "bits", "k"), [(0, 4, 5), (1, 3, 7), (2, 8, 100), (3, 2, 1)])
def test_matches_brute_force_with_ties(seed: int, bits: int, k: int) -> None:
    """Few bits and many items: most Hamming distances tie, so the tie order matters."""
    q, db, ql, dl = random_case(seed, bits, 9, 23)
    dist, wup = TREE.relations(CLASSES)
    got = taxonomy_scores(
        q, db, ql, dl, torch.from_numpy(dist), torch.from_numpy(wup), k, chunk_size=4
    )
    want = brute_force(q.tolist(), db.tolist(), ql.tolist(), dl.tolist(), dist, wup, k)
    for row, (hops, miss, ndcg) in zip(got.tolist(), want, strict=True):
        assert row[0] == pytest.approx(hops)
        assert (math.isnan(row[1]) and miss is None) or row[1] == pytest.approx(miss)
        assert row[2] == pytest.approx(ndcg)


def test_top_k_is_the_stable_order_of_map() -> None:
    q, db, _, _ = random_case(4, 3, 6, 40)
    distances = ((3 - q @ db.T) / 2).to(torch.uint8)
    order = stable_order(distances)
    (rows, top), *rest = list(stable_top_k(q, db, 15))
    assert not rest and rows == slice(0, 6)
    assert torch.equal(top, order[:, :15])


def test_means_and_the_query_without_a_miss() -> None:
    """Query 0 finds only its class in its top 2: it has no miss and is left out of the
    miss mean; query 1's top 2 are a cat (2 hops) and a saw (5 hops) for a dog query."""
    q = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    db = torch.tensor([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [1.0, -1.0]])
    ql = torch.tensor([0, 0])
    dl = torch.tensor([0, 0, 1, 4, 0])
    dist, wup = (torch.from_numpy(m) for m in TREE.relations(CLASSES))
    report = taxonomy_metrics(q, db, ql, dl, dist, wup, k=2)
    assert report.tax_dist == pytest.approx((0 + (2 + 5) / 2) / 2)
    assert report.miss_tax_dist == pytest.approx(3.5)
    assert report.queries_with_miss == 1
    assert report.ndcg_wup < 1.0
    assert report.as_dict("test/")["test/tax_dist@2"] == report.tax_dist
    perfect = taxonomy_metrics(q[:1], db, ql[:1], dl, dist, wup, k=2)
    assert perfect.ndcg_wup == pytest.approx(1.0) and math.isnan(perfect.miss_tax_dist)


def test_rejects_multi_hot_and_short_matrices() -> None:
    q, db, ql, dl = random_case(0, 4, 3, 5)
    dist, wup = (torch.from_numpy(m) for m in TREE.relations(CLASSES))
    with pytest.raises(ValueError, match="multi-hot"):
        taxonomy_scores(q, db, torch.eye(5)[ql], torch.eye(5)[dl], dist, wup)
    with pytest.raises(ValueError, match="covers 3 classes"):
        taxonomy_scores(q, db, ql, dl, dist[:3, :3], wup)
