"""mAP@k against an independent per-query brute force and against torchmetrics RetrievalMAP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.retrieval import RetrievalMAP

from hashing.metrics import average_precision, mean_average_precision, mean_average_precisions


def brute_force_map(qc, dc, ql, dl, top_k):
    """Per-query loop: stable argsort of Hamming distance, AP@k by the formula of
    docs/metrics.md#map-at-k."""
    qc, dc = qc.double().numpy(), dc.double().numpy()
    ql, dl = ql.numpy(), dl.numpy()
    bits = qc.shape[1]
    n = dc.shape[0]
    k = n if top_k is None else min(top_k, n)
    aps = []
    for i in range(qc.shape[0]):
        dist = (bits - dc @ qc[i]) / 2
        order = np.argsort(dist, kind="stable")
        if ql.ndim == 1:
            rel = np.array([ql[i] == dl[j] for j in order[:k]], dtype=np.float64)
        else:
            rel = np.array([float(ql[i] @ dl[j] > 0) for j in order[:k]])
        hits, total = 0, 0.0
        for r in range(k):
            if rel[r]:
                hits += 1
                total += hits / (r + 1)
        aps.append(total / hits if hits else 0.0)
    return float(np.mean(aps)), aps


def random_codes(n, bits, gen):
    return torch.randint(0, 2, (n, bits), generator=gen).float() * 2 - 1


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("bits", [3, 6, 70, 260])
@pytest.mark.parametrize("multi_label", [False, True])
def test_map_matches_brute_force_with_many_ties(bits, multi_label, backend):
    gen = torch.Generator().manual_seed(bits + 10 * multi_label)
    nq, nd = 23, 157
    qc, dc = random_codes(nq, bits, gen), random_codes(nd, bits, gen)
    if multi_label:
        # 70 classes: the packed labels span two 64-bit words.
        ql = (torch.rand(nq, 70, generator=gen) < 0.04).long()
        dl = (torch.rand(nd, 70, generator=gen) < 0.04).long()
    else:
        ql = torch.randint(0, 4, (nq,), generator=gen)
        dl = torch.randint(0, 4, (nd,), generator=gen)
    top_ks = [1, 2, 10, 50, nd, nd + 40, None]
    got = mean_average_precisions(qc, dc, ql, dl, top_ks, chunk_size=5, backend=backend)
    per_query = average_precision(qc, dc, ql, dl, top_ks, backend=backend)
    for j, k in enumerate(top_ks):
        expected, expected_aps = brute_force_map(qc, dc, ql, dl, k)
        assert got[k] == pytest.approx(expected, abs=1e-9)
        assert mean_average_precision(qc, dc, ql, dl, top_k=k, backend=backend) == pytest.approx(
            expected, abs=1e-9
        )
        torch.testing.assert_close(
            per_query[:, j], torch.tensor(expected_aps, dtype=torch.float64), atol=1e-9, rtol=0
        )


def test_tie_order_is_by_database_index():
    # One query, three items all at distance 0: relevant item first vs last changes AP@ALL.
    q = torch.ones(1, 4)
    d = torch.ones(3, 4)
    assert mean_average_precision(q, d, torch.tensor([0]), torch.tensor([0, 1, 1])) == 1.0
    assert mean_average_precision(
        q, d, torch.tensor([0]), torch.tensor([1, 1, 0])
    ) == pytest.approx(1 / 3)


def test_no_relevant_items_scores_zero_and_counts():
    q = torch.ones(2, 4)
    d = torch.ones(3, 4)
    # query 0 has relevant items everywhere (AP 1), query 1 none (AP 0, still counted).
    value = mean_average_precision(q, d, torch.tensor([0, 5]), torch.tensor([0, 0, 0]))
    assert value == pytest.approx(0.5)


def test_all_is_whole_database_without_off_by_one():
    # Only the last-ranked item is relevant: DeepHash's topk=-1 would drop it and score 0.
    q = torch.ones(1, 2)
    d = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    value = mean_average_precision(q, d, torch.tensor([0]), torch.tensor([1, 1, 0]))
    assert value == pytest.approx(1 / 3)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_chunking_does_not_change_the_result(backend):
    gen = torch.Generator().manual_seed(3)
    qc, dc = random_codes(40, 8, gen), random_codes(300, 8, gen)
    ql, dl = torch.randint(0, 3, (40,), generator=gen), torch.randint(0, 3, (300,), generator=gen)
    a = average_precision(qc, dc, ql, dl, [5, None], chunk_size=1, backend=backend)
    b = average_precision(qc, dc, ql, dl, [5, None], memory_budget=1, backend=backend)
    c = average_precision(qc, dc, ql, dl, [5, None], backend="torch")
    torch.testing.assert_close(a, c, atol=0, rtol=0)
    torch.testing.assert_close(b, c, atol=0, rtol=0)


def test_int8_and_float_codes_agree():
    gen = torch.Generator().manual_seed(4)
    qc, dc = random_codes(10, 16, gen), random_codes(80, 16, gen)
    ql, dl = torch.randint(0, 3, (10,), generator=gen), torch.randint(0, 3, (80,), generator=gen)
    a = mean_average_precision(qc, dc, ql, dl, 7)
    b = mean_average_precision(qc.to(torch.int8), dc.to(torch.int8), ql, dl, 7)
    assert a == b


def torchmetrics_map(qc, dc, ql, dl, top_k, index_tiebreak=False):
    """torchmetrics RetrievalMAP on positive scores ``bits + 1 - d`` (it drops scores <= 0).

    ``index_tiebreak`` adds ``0.5 * (1 - j / N)`` for database item j, which orders tied
    distances by index without crossing into another distance: torchmetrics (``topk``) has
    no defined order for tied scores, so with ties this is the only fair comparison.
    """
    bits, n = qc.shape[1], dc.shape[0]
    dist = (bits - qc.double() @ dc.double().T) / 2
    scores = bits + 1 - dist
    if index_tiebreak:
        scores = scores + 0.5 * (1 - torch.arange(n, dtype=torch.float64) / n)
    rel = ql[:, None] == dl[None, :]
    metric = RetrievalMAP(top_k=top_k)
    idx = torch.arange(qc.shape[0])[:, None].expand_as(dist)
    metric.update(scores.flatten(), rel.flatten(), indexes=idx.flatten())
    return float(metric.compute())


@pytest.mark.parametrize("top_k", [1, 5, 30, None])
def test_matches_torchmetrics_without_ties(top_k):
    # torchmetrics orders tied scores by its own (sort-implementation) rule, so the comparison
    # uses distinct distances per query: each query's database items sit at distinct distances.
    gen = torch.Generator().manual_seed(7)
    bits, nq = 40, 12
    nd = bits + 1
    qc = random_codes(nq, bits, gen)
    ql = torch.randint(0, 3, (nq,), generator=gen)
    dl = torch.randint(0, 3, (nd,), generator=gen)
    # Database item j for query 0 at distance j; other queries are query 0 with bits flipped.
    dc = qc[0].repeat(nd, 1)
    for j in range(nd):
        dc[j, :j] *= -1
    dc = dc[torch.randperm(nd, generator=gen)]
    qc[1:] = qc[0]
    qc[1:, : bits // 2] *= torch.where(torch.rand(nq - 1, bits // 2, generator=gen) < 0.5, -1, 1)
    dist = (bits - qc @ dc.T) / 2
    distinct = torch.tensor([row.unique().numel() == nd for row in dist])
    assert bool(distinct[0])
    qc, ql = qc[distinct], ql[distinct]
    expected = torchmetrics_map(qc, dc, ql, dl, top_k)
    assert mean_average_precision(qc, dc, ql, dl, top_k) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("top_k", [1, 10, None])
def test_matches_torchmetrics_with_ties_broken_by_index_in_the_scores(top_k):
    gen = torch.Generator().manual_seed(11)
    qc, dc = random_codes(6, 4, gen), random_codes(30, 4, gen)
    ql, dl = torch.randint(0, 2, (6,), generator=gen), torch.randint(0, 2, (30,), generator=gen)
    ours = mean_average_precision(qc, dc, ql, dl, top_k)
    expected = torchmetrics_map(qc, dc, ql, dl, top_k, index_tiebreak=True)
    assert ours == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query_codes": torch.zeros(2, 4)}, "only -1 and \\+1"),
        ({"query_codes": torch.ones(2, 5)}, "5 bits"),
        ({"query_labels": torch.zeros(2)}, "integer tensor"),
        ({"query_labels": torch.zeros(3, dtype=torch.long)}, "3 rows"),
        ({"query_labels": torch.zeros(2, 3, dtype=torch.long)}, "both must be class indices"),
        ({"top_k": 0}, "positive int or None"),
        ({"backend": "jax"}, "backend must be one of"),
        (
            {"query_codes": torch.ones(0, 4), "query_labels": torch.zeros(0, dtype=torch.long)},
            "empty",
        ),
    ],
)
def test_bad_input_raises_clear_error(kwargs, message):
    args = {
        "query_codes": torch.ones(2, 4),
        "database_codes": torch.ones(3, 4),
        "query_labels": torch.zeros(2, dtype=torch.long),
        "database_labels": torch.zeros(3, dtype=torch.long),
        "top_k": None,
        "backend": "auto",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mean_average_precision(**args)
