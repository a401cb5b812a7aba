"""CodeBalance logs every method's database bit balance, dead bits and collapse."""

from __future__ import annotations

import warnings

import pytest
import torch

from hashing.callbacks import RetrievalEvaluation
from hashing.callbacks.code_balance import CodeBalance
from tests.test_callback_retrieval_evaluation import (
    TinyHasher,
    TinyRetrievalData,
    codes_of,
    make_trainer,
)


def per_bit_fractions(codes: torch.Tensor) -> list[float]:
    """The fraction of +1 of each bit, counted one entry at a time."""
    rows = codes.tolist()
    return [sum(1 for row in rows if row[bit] > 0) / len(rows) for bit in range(len(rows[0]))]


def balance_trainer(tmp_path):
    """A trainer with the balance and the evaluation that hands it the gathered codes."""
    trainer = make_trainer(tmp_path, CodeBalance())
    trainer.callbacks.append(RetrievalEvaluation(top_ks=(None,), curves=False))
    return trainer


def logged_values(trainer) -> dict[str, float]:
    return {key: float(value) for key, value in trainer.callback_metrics.items()}


@pytest.mark.parametrize("stage", ["val", "test"])
def test_logs_the_balance_of_the_database_codes_only(tmp_path, stage) -> None:
    data = TinyRetrievalData(protocol_k=None, seed=4)
    model = TinyHasher(bits=6)
    with torch.no_grad():  # bit 0 constant (+1 for every item): a dead bit
        model.layer.weight[0].zero_()
        model.layer.bias[0] = 1.0
    trainer = balance_trainer(tmp_path)
    if stage == "val":
        trainer.validate(model, datamodule=data, verbose=False)
        database = data.val_db
    else:
        trainer.test(model, datamodule=data, verbose=False)
        database = data.test_db
    fractions = per_bit_fractions(codes_of(model, database)[0])
    logged = logged_values(trainer)
    assert logged[f"{stage}/bit_balance_min"] == pytest.approx(min(fractions))
    assert logged[f"{stage}/bit_balance_max"] == pytest.approx(max(fractions)) == 1.0
    assert logged[f"{stage}/bit_balance_mean"] == pytest.approx(sum(fractions) / 6)
    dead = sum(1 for f in fractions if f <= 0.01 or f >= 0.99)
    assert logged[f"{stage}/dead_bits"] == dead >= 1
    assert logged[f"{stage}/all_codes_equal"] == 0.0


def test_collapsed_codes_warn_and_every_bit_is_dead(tmp_path) -> None:
    data = TinyRetrievalData(protocol_k=None, seed=2)
    model = TinyHasher(bits=5)
    with torch.no_grad():
        model.layer.weight.zero_()
        model.layer.bias.fill_(-2.0)
    trainer = balance_trainer(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.test(model, datamodule=data, verbose=False)
    logged = logged_values(trainer)
    assert logged["test/dead_bits"] == 5 and logged["test/all_codes_equal"] == 1.0
    assert logged["test/bit_balance_max"] == 0.0
    assert any("every test database code is the same code" in str(w.message) for w in caught)


def test_a_second_epoch_counts_afresh(tmp_path) -> None:
    data = TinyRetrievalData(protocol_k=None, seed=1)
    model = TinyHasher(bits=4)
    trainer = balance_trainer(tmp_path)
    trainer.test(model, datamodule=data, verbose=False)
    with torch.no_grad():
        model.layer.weight.neg_()
        model.layer.bias.neg_()
    trainer.test(model, datamodule=data, verbose=False)
    fractions = per_bit_fractions(codes_of(model, data.test_db)[0])
    assert logged_values(trainer)["test/bit_balance_mean"] == pytest.approx(sum(fractions) / 4)
