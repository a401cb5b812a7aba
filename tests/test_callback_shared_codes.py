"""The evaluation and the retrieval grid share one gathering of the test codes."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from hashing.callbacks import RetrievalEvaluation, shared_codes
from hashing.callbacks.retrieval_grid import RetrievalGrid
from hashing.metrics import mean_average_precisions
from hashing.metrics.accumulator import RetrievalAccumulator
from tests.test_callback_retrieval_evaluation import (
    TinyHasher,
    TinyRetrievalData,
    codes_of,
    make_trainer,
)


def test_evaluation_and_grid_feed_one_accumulator(tmp_path, monkeypatch) -> None:
    updates: list[int] = []
    update = RetrievalAccumulator.update

    def counting_update(self, codes, *args, **kwargs):
        updates.append(id(self))
        return update(self, codes, *args, **kwargs)

    monkeypatch.setattr(RetrievalAccumulator, "update", counting_update)
    data = TinyRetrievalData(protocol_k=None, seed=5)
    model = TinyHasher(bits=5)
    evaluation = RetrievalEvaluation(top_ks=(None,), curves=False)
    grid = RetrievalGrid(num_queries=3, top_k=4, output_dir=tmp_path / "grid")
    trainer = make_trainer(tmp_path, evaluation)
    trainer.callbacks.append(grid)
    batches = len(range(0, 17, 5)) + len(range(0, 90, 16))
    for run in range(2):  # a second test run starts fresh shared codes
        updates.clear()
        trainer.test(model, datamodule=data, verbose=False)
        assert len(updates) == batches and len(set(updates)) == 1, run

        qc, ql = codes_of(model, data.test_q)
        dc, dl = codes_of(model, data.test_db)
        expected = mean_average_precisions(qc, dc, ql, dl, [None])[None]
        assert float(trainer.callback_metrics["test/mAP@ALL"]) == pytest.approx(expected)
        for entry in grid.table:
            distances = (dc != qc[entry["query"]]).sum(dim=1).tolist()
            ranked = sorted(zip(distances, range(len(dc)), strict=True))[:4]
            assert entry["results"] == [j for _, j in ranked]
        store = shared_codes._STORES[trainer]["test"]
        assert store.members == [evaluation, grid]
        assert store.accumulator.database_codes == []  # released by both: nothing held


def test_only_the_feeder_adds_and_the_last_release_frees() -> None:
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    first, second = object(), object()
    store = shared_codes.join(trainer, "test", first, torch.device("cpu"))
    assert shared_codes.join(trainer, "test", second, torch.device("cpu")) is store
    batch = {"codes": torch.ones(2, 4), "labels": torch.tensor([0, 1]), "index": torch.arange(2)}
    store.update(second, batch, 1)
    assert store.accumulator.database_codes == []
    store.update(first, batch, 1)
    store.update(first, batch, 0)
    assert store.gathered()["database_codes"].shape == (2, 4)
    store.release(first)
    assert len(store.accumulator.database_codes) == 1
    store.release(second)
    assert store.accumulator.database_codes == []
    # joining again is a new epoch: a fresh store
    assert shared_codes.join(trainer, "test", first, torch.device("cpu")) is not store
