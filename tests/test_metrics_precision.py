"""P@k, precision/recall by Hamming radius and P@H<=2 against per-query brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashing.metrics.functional.precision_at_k import precision_at_k
from hashing.metrics.functional.radius import precision_recall_by_radius, precision_within_radius


def make_inputs(seed, bits, nq, nd, multi_label):
    gen = torch.Generator().manual_seed(seed)
    qc = torch.randint(0, 2, (nq, bits), generator=gen).float() * 2 - 1
    dc = torch.randint(0, 2, (nd, bits), generator=gen).float() * 2 - 1
    if multi_label:
        ql = (torch.rand(nq, 4, generator=gen) < 0.3).long()
        dl = (torch.rand(nd, 4, generator=gen) < 0.3).long()
    else:
        ql = torch.randint(0, 5, (nq,), generator=gen)
        dl = torch.randint(0, 5, (nd,), generator=gen)
    return qc, dc, ql, dl


def brute_relevance_and_distance(qc, dc, ql, dl, i):
    bits = qc.shape[1]
    dist = np.array([(bits - float(qc[i] @ dc[j])) / 2 for j in range(dc.shape[0])])
    if ql.ndim == 1:
        rel = np.array([int(ql[i]) == int(dl[j]) for j in range(dc.shape[0])])
    else:
        rel = np.array([float(ql[i].double() @ dl[j].double()) > 0 for j in range(dc.shape[0])])
    return dist, rel


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_precision_at_k_matches_brute_force(multi_label, backend):
    qc, dc, ql, dl = make_inputs(31 + multi_label, 5, 17, 120, multi_label)
    ks = [1, 7, 50, 120, 500]
    got = precision_at_k(qc, dc, ql, dl, ks, chunk_size=6, backend=backend)
    expected = {k: [] for k in ks}
    for i in range(qc.shape[0]):
        dist, rel = brute_relevance_and_distance(qc, dc, ql, dl, i)
        ranked = rel[np.argsort(dist, kind="stable")]
        for k in ks:
            cut = min(k, len(ranked))
            expected[k].append(ranked[:cut].sum() / cut)
    for k in ks:
        assert got[k] == pytest.approx(float(np.mean(expected[k])), abs=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_precision_recall_by_radius_matches_brute_force(multi_label, backend):
    bits = 6
    qc, dc, ql, dl = make_inputs(41 + multi_label, bits, 19, 90, multi_label)
    curve = precision_recall_by_radius(qc, dc, ql, dl, chunk_size=5, backend=backend)
    assert curve.radius.tolist() == list(range(bits + 1))
    for r in range(bits + 1):
        precisions, recalls, any_retrieved = [], [], []
        for i in range(qc.shape[0]):
            dist, rel = brute_relevance_and_distance(qc, dc, ql, dl, i)
            inside = dist <= r
            precisions.append(rel[inside].sum() / inside.sum() if inside.any() else 0.0)
            recalls.append(rel[inside].sum() / rel.sum() if rel.any() else 0.0)
            any_retrieved.append(float(inside.any()))
        assert float(curve.precision[r]) == pytest.approx(np.mean(precisions), abs=1e-12)
        assert float(curve.recall[r]) == pytest.approx(np.mean(recalls), abs=1e-12)
        assert float(curve.retrieved_fraction[r]) == pytest.approx(np.mean(any_retrieved))
    assert float(curve.retrieved_fraction[-1]) == 1.0
    # Radius bits retrieves everything: recall 1 for every query with a relevant item.
    has_relevant = np.mean(
        [brute_relevance_and_distance(qc, dc, ql, dl, i)[1].any() for i in range(qc.shape[0])]
    )
    assert float(curve.recall[-1]) == pytest.approx(has_relevant)


def test_precision_within_radius_two_counts_empty_retrieval_as_zero():
    bits = 8
    q = torch.ones(2, bits)
    q[1] = -1  # second query: everything is at distance >= 6, nothing within radius 2
    d = torch.ones(4, bits)
    d[1, :2] = -1  # distance 2 from query 0
    d[2, :3] = -1  # distance 3 from query 0
    d[3, :2] = -1
    ql = torch.tensor([0, 0])
    dl = torch.tensor([0, 1, 0, 0])
    # Query 0 retrieves items 0, 1, 3 within radius 2, two relevant: 2/3. Query 1: nothing -> 0.
    assert precision_within_radius(q, d, ql, dl) == pytest.approx((2 / 3 + 0) / 2)
    assert precision_within_radius(q, d, ql, dl, radius=0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="radius must be"):
        precision_within_radius(q, d, ql, dl, radius=-1)


def test_precision_at_k_rejects_bad_ks():
    qc, dc, ql, dl = make_inputs(1, 4, 3, 10, False)
    with pytest.raises(ValueError, match="ks entry"):
        precision_at_k(qc, dc, ql, dl, [0])
    with pytest.raises(ValueError, match="at least one"):
        precision_at_k(qc, dc, ql, dl, [])
