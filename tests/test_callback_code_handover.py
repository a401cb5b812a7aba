"""The evaluation gathers the test codes once and hands them to the retrieval grid."""

from __future__ import annotations

import logging

import pytest

from hashing.callbacks import RetrievalEvaluation
from hashing.callbacks.retrieval_grid import RetrievalGrid
from hashing.metrics import mean_average_precisions
from hashing.metrics.accumulator import RetrievalAccumulator
from tests.test_callback_retrieval_evaluation import (
    TinyHasher,
    TinyRetrievalData,
    codes_of,
    make_trainer,
)


def test_evaluation_and_grid_read_one_gathering(tmp_path, monkeypatch) -> None:
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
    trainer = make_trainer(tmp_path, grid)  # the grid first: the order of callbacks is free
    trainer.callbacks.append(evaluation)
    batches = len(range(0, 17, 5)) + len(range(0, 90, 16))
    for run in range(2):  # a second test run gathers afresh
        updates.clear()
        grid.table = None
        trainer.test(model, datamodule=data, verbose=False)
        assert len(updates) == batches and len(set(updates)) == 1, run

        qc, ql = codes_of(model, data.test_q)
        dc, dl = codes_of(model, data.test_db)
        expected = mean_average_precisions(qc, dc, ql, dl, [None])[None]
        assert float(trainer.callback_metrics["test/mAP@ALL"]) == pytest.approx(expected)
        assert grid.table is not None and len(grid.table) == 3
        for entry in grid.table:
            distances = (dc != qc[entry["query"]]).sum(dim=1).tolist()
            ranked = sorted(zip(distances, range(len(dc)), strict=True))[:4]
            assert entry["results"] == [j for _, j in ranked]
        assert evaluation.codes == {}  # handed over and dropped: nothing held after the epoch


def test_grid_without_the_evaluation_says_why_it_drew_nothing(tmp_path, caplog) -> None:
    grid = RetrievalGrid(num_queries=2, top_k=3, output_dir=tmp_path / "grid")
    trainer = make_trainer(tmp_path, grid)
    with caplog.at_level(logging.WARNING, logger="hashing.callbacks.retrieval_grid"):
        trainer.test(TinyHasher(bits=4), datamodule=TinyRetrievalData(None), verbose=False)
    assert grid.table is None and not (tmp_path / "grid").exists()
    assert "needs the retrieval_evaluation callback" in caplog.text


def test_only_the_requested_ks_are_reported(tmp_path) -> None:
    evaluation = RetrievalEvaluation(top_ks=(5,), curves=False)
    trainer = make_trainer(tmp_path, evaluation)
    trainer.test(TinyHasher(bits=4), datamodule=TinyRetrievalData(None, seed=2), verbose=False)
    logged = set(trainer.callback_metrics)
    assert {"test/mAP@5", "test/mAP@ALL", "test/P@5"} <= logged  # ALL: the protocol's k
    assert not {"test/mAP@100", "test/mAP@1000", "test/P@100"} & logged
