"""Tie-aware AP against the exhaustive average over every order inside the distance ties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hashing.metrics.functional.tie_aware import (
    tie_aware_average_precision,
    tie_aware_mean_average_precision,
)


def ap_at_k(rel_in_order, k):
    hits, total = 0, 0.0
    for r, rel in enumerate(rel_in_order[:k]):
        if rel:
            hits += 1
            total += hits / (r + 1)
    return total / hits if hits else 0.0


def exhaustive_tie_aware_ap(dist, rel, k):
    """Average AP@k over all orders of the items inside each distance bucket."""
    buckets = [np.flatnonzero(dist == d) for d in np.unique(dist)]
    values = []
    for orders in itertools.product(*(itertools.permutations(b) for b in buckets)):
        ranked = np.concatenate(orders)
        values.append(ap_at_k(rel[ranked], k))
    return float(np.mean(values))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_tie_aware_matches_exhaustive_average(multi_label, backend):
    gen = torch.Generator().manual_seed(21 + multi_label)
    bits, nq, nd = 3, 6, 8
    qc = torch.randint(0, 2, (nq, bits), generator=gen).float() * 2 - 1
    dc = torch.randint(0, 2, (nd, bits), generator=gen).float() * 2 - 1
    if multi_label:
        ql = (torch.rand(nq, 3, generator=gen) < 0.4).long()
        dl = (torch.rand(nd, 3, generator=gen) < 0.4).long()
        rel = (ql @ dl.T > 0).numpy()
    else:
        ql = torch.randint(0, 3, (nq,), generator=gen)
        dl = torch.randint(0, 3, (nd,), generator=gen)
        rel = (ql[:, None] == dl[None, :]).numpy()
    dist = ((bits - qc @ dc.T) / 2).numpy()
    top_ks = [1, 2, 3, 5, nd, None]
    got = tie_aware_average_precision(qc, dc, ql, dl, top_ks, chunk_size=4, backend=backend)
    for i in range(nq):
        for j, k in enumerate(top_ks):
            expected = exhaustive_tie_aware_ap(dist[i], rel[i], nd if k is None else k)
            assert float(got[i, j]) == pytest.approx(expected, abs=1e-9), (i, k)


def test_tie_aware_equals_stable_when_there_are_no_ties():
    # Database item j sits at distance j from the single query: no ties, so expectation = value.
    bits = 6
    q = torch.ones(1, bits)
    d = torch.ones(bits + 1, bits)
    for j in range(bits + 1):
        d[j, :j] = -1
    ql = torch.tensor([1])
    dl = torch.tensor([0, 1, 0, 0, 1, 1, 0])
    from hashing.metrics import mean_average_precision

    for k in (1, 3, None):
        assert tie_aware_mean_average_precision(q, d, ql, dl, k) == pytest.approx(
            mean_average_precision(q, d, ql, dl, k), abs=1e-12
        )


def test_tie_aware_all_in_one_bucket_is_hypergeometric_expectation():
    # All items tied: AP@ALL expectation over random orders; for n=3, r=1 it is (1 + 1/2 + 1/3)/3.
    q = torch.ones(1, 4)
    d = torch.ones(3, 4)
    value = tie_aware_mean_average_precision(q, d, torch.tensor([0]), torch.tensor([0, 1, 1]))
    assert value == pytest.approx((1 + 1 / 2 + 1 / 3) / 3, abs=1e-12)
