"""The stateful MeanAveragePrecision equals the functional form and drops padded duplicates."""

from __future__ import annotations

import pytest
import torch

from hashing.metrics import MeanAveragePrecision, mean_average_precisions


def make_split(n, bits, classes, gen, multi_label=False):
    codes = torch.randint(0, 2, (n, bits), generator=gen).float() * 2 - 1
    if multi_label:
        labels = (torch.rand(n, classes, generator=gen) < 0.4).long()
    else:
        labels = torch.randint(0, classes, (n,), generator=gen)
    return codes, labels


@pytest.mark.parametrize("multi_label", [False, True])
def test_metric_equals_functional_and_drops_duplicates(multi_label):
    gen = torch.Generator().manual_seed(1 + multi_label)
    qc, ql = make_split(30, 6, 4, gen, multi_label)
    dc, dl = make_split(200, 6, 4, gen, multi_label)
    top_ks = (1, 10, 1000, None)
    expected = mean_average_precisions(qc, dc, ql, dl, top_ks)

    metric = MeanAveragePrecision(top_ks=top_ks)
    # Feed the database shuffled, in batches, with padded repeats (as DistributedSampler does):
    # the metric must restore index order (the tie-break) and keep each item once.
    perm = torch.randperm(200, generator=gen)
    padded = torch.cat([perm, perm[:7]])
    for batch in padded.split(16):
        metric.update(dc[batch], dl[batch], batch, role="database")
    qpad = torch.cat([torch.arange(30), torch.tensor([0, 1, 2])])
    for batch in qpad.split(8):
        metric.update(qc[batch], ql[batch], batch, role="query")
    result = metric.compute()

    assert set(result) == {"mAP@1", "mAP@10", "mAP@1000", "mAP@ALL"}
    for k in top_ks:
        name = "mAP@" + ("ALL" if k is None else str(k))
        assert float(result[name]) == pytest.approx(expected[k], abs=1e-12)
    # The padded, un-deduplicated database gives a different number: the drop matters here.
    naive = mean_average_precisions(qc, dc[padded], ql, dl[padded], (None,))[None]
    assert naive != pytest.approx(expected[None], abs=1e-9)


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_metric_reset_and_errors():
    gen = torch.Generator().manual_seed(5)
    qc, ql = make_split(5, 4, 2, gen)
    metric = MeanAveragePrecision(top_ks=(None,))
    metric.update(qc, ql, torch.arange(5), role="query")
    with pytest.raises(ValueError, match="no database batches"):
        metric.compute()
    with pytest.raises(ValueError, match="role must be"):
        metric.update(qc, ql, torch.arange(5), role="gallery")
    with pytest.raises(ValueError, match="index must have shape"):
        metric.update(qc, ql, torch.arange(4), role="query")
    with pytest.raises(ValueError, match="top_ks entry"):
        MeanAveragePrecision(top_ks=(0,))
    metric.update(qc, ql, torch.arange(5), role="database")
    assert "mAP@ALL" in metric.compute()
    metric.reset()
    with pytest.raises(ValueError, match="no query batches"):
        metric.compute()
