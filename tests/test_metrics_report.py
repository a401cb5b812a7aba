"""The one-pass report equals the separate functional metrics; the curve grid is sane."""

from __future__ import annotations

import pytest
import torch

from hashing.metrics import (
    curve_ks,
    evaluate_retrieval,
    hamming_distance,
    mean_average_precisions,
    precision_at_k,
    precision_recall_by_radius,
    tie_aware_average_precision,
)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_report_equals_separate_metrics(multi_label, backend):
    gen = torch.Generator().manual_seed(61 + multi_label)
    bits, nq, nd = 8, 25, 240
    qc = torch.randint(0, 2, (nq, bits), generator=gen).float() * 2 - 1
    dc = torch.randint(0, 2, (nd, bits), generator=gen).float() * 2 - 1
    if multi_label:
        ql = (torch.rand(nq, 4, generator=gen) < 0.3).long()
        dl = (torch.rand(nd, 4, generator=gen) < 0.3).long()
    else:
        ql = torch.randint(0, 3, (nq,), generator=gen)
        dl = torch.randint(0, 3, (nd,), generator=gen)
    report = evaluate_retrieval(
        qc, dc, ql, dl, (1, 30, None), (10, None), (1, 5, 100, 1000), chunk_size=7, backend=backend
    )
    other = "torch" if backend == "numpy" else "numpy"
    maps = mean_average_precisions(qc, dc, ql, dl, (1, 30, None), backend=other)
    assert report.map_at_k == pytest.approx(maps, abs=1e-12)
    tie = tie_aware_average_precision(qc, dc, ql, dl, (10, None)).mean(0)
    assert report.tie_aware_map_at_k[10] == pytest.approx(float(tie[0]), abs=1e-12)
    assert report.tie_aware_map_at_k[None] == pytest.approx(float(tie[1]), abs=1e-12)
    assert report.precision_at_k == pytest.approx(precision_at_k(qc, dc, ql, dl, (1, 5, 100, 1000)))
    curve = precision_recall_by_radius(qc, dc, ql, dl)
    torch.testing.assert_close(report.radius_curve.precision, curve.precision)
    torch.testing.assert_close(report.radius_curve.recall, curve.recall)
    assert report.precision_within_radius(2) == pytest.approx(float(curve.precision[2]))
    assert (report.num_queries, report.num_database, report.bits) == (nq, nd, bits)


def test_hamming_distance_matches_bit_count():
    gen = torch.Generator().manual_seed(2)
    a = torch.randint(0, 2, (9, 13), generator=gen) * 2 - 1
    b = torch.randint(0, 2, (11, 13), generator=gen) * 2 - 1
    expected = (a[:, None, :] != b[None, :, :]).sum(-1)
    assert torch.equal(hamming_distance(a, b).long(), expected)


def test_curve_ks_covers_the_database():
    ks = curve_ks(54000, points=40)
    assert ks[0] == 1 and ks[-1] == 54000
    assert ks == sorted(set(ks))
    assert curve_ks(3) == [1, 2, 3]
    with pytest.raises(ValueError, match="num_database"):
        curve_ks(0)
