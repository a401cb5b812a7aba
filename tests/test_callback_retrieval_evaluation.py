"""RetrievalEvaluation in a real (tiny) Trainer run logs the functional metrics' values."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hashing.callbacks import RetrievalEvaluation
from hashing.metrics import (
    evaluate_retrieval,
    mean_average_precisions,
    tie_aware_mean_average_precision,
)


class IndexedSplit(Dataset):
    """(x, y, idx) items, as the project's DataModules yield them."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int):
        return self.x[i], self.y[i], i


class TinyRetrievalData(pl.LightningDataModule):
    def __init__(self, protocol_k, multi_label=False, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.protocol_k = protocol_k
        self.num_classes = 3
        self.multi_label = multi_label

        def split(n):
            x = torch.randn(n, 6, generator=gen)
            if multi_label:
                y = (torch.rand(n, 3, generator=gen) < 0.4).long()
            else:
                y = torch.randint(0, 3, (n,), generator=gen)
            return IndexedSplit(x, y)

        self.train, self.val_q, self.val_db = split(32), split(13), split(70)
        self.test_q, self.test_db = split(17), split(90)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=16)

    def val_dataloader(self):
        return [DataLoader(self.val_q, batch_size=5), DataLoader(self.val_db, batch_size=16)]

    def test_dataloader(self):
        return [DataLoader(self.test_q, batch_size=5), DataLoader(self.test_db, batch_size=16)]


class TinyHasher(pl.LightningModule):
    def __init__(self, bits=4):
        super().__init__()
        self.layer = nn.Linear(6, bits)

    def encode(self, x):
        return torch.where(self.layer(x) >= 0, 1.0, -1.0)

    def training_step(self, batch, batch_idx):
        x, _, _ = batch
        return self.layer(x).pow(2).mean()

    def _eval_step(self, batch):
        x, y, idx = batch
        return {"codes": self.encode(x), "labels": y, "index": idx}

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self._eval_step(batch)

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        return self._eval_step(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def make_trainer(tmp_path, callback, **kwargs):
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
        **kwargs,
    )


def codes_of(model, split):
    with torch.no_grad():
        return model.encode(split.x), split.y


@pytest.mark.parametrize(("protocol_k", "multi_label"), [(None, False), (20, True)])
def test_validation_logs_functional_map(tmp_path, protocol_k, multi_label):
    data = TinyRetrievalData(protocol_k, multi_label)
    model = TinyHasher()
    callback = RetrievalEvaluation(top_ks=(5, None), curves=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=1, limit_train_batches=2)
    trainer.fit(model, datamodule=data)

    qc, ql = codes_of(model, data.val_q)
    dc, dl = codes_of(model, data.val_db)
    ks = [5, None] if protocol_k is None else [5, None, protocol_k]
    expected = mean_average_precisions(qc, dc, ql, dl, ks)
    logged = trainer.callback_metrics
    assert float(logged["val/mAP"]) == pytest.approx(expected[protocol_k], abs=1e-6)
    assert float(logged["val/mAP@5"]) == pytest.approx(expected[5], abs=1e-6)
    assert float(logged["val/mAP@ALL"]) == pytest.approx(expected[None], abs=1e-6)
    if protocol_k is not None:
        assert float(logged[f"val/mAP@{protocol_k}"]) == pytest.approx(expected[protocol_k])


def test_test_logs_everything_and_writes_curves(tmp_path):
    data = TinyRetrievalData(protocol_k=30, seed=3)
    model = TinyHasher(bits=5)
    out = tmp_path / "eval"
    callback = RetrievalEvaluation(top_ks=(100, 1000, None), curves=True, output_dir=out)
    trainer = make_trainer(tmp_path, callback)
    trainer.test(model, datamodule=data)

    qc, ql = codes_of(model, data.test_q)
    dc, dl = codes_of(model, data.test_db)
    report = evaluate_retrieval(qc, dc, ql, dl, (100, 1000, None, 30), (None,), (30, 100, 1000))
    logged = trainer.callback_metrics
    for k, name in [(100, "100"), (1000, "1000"), (None, "ALL"), (30, "30")]:
        assert float(logged[f"test/mAP@{name}"]) == pytest.approx(report.map_at_k[k], abs=1e-6)
    assert float(logged["test/mAP"]) == pytest.approx(report.map_at_k[30], abs=1e-6)
    assert float(logged["test/mAP@ALL_tie_aware"]) == pytest.approx(
        tie_aware_mean_average_precision(qc, dc, ql, dl), abs=1e-6
    )
    assert float(logged["test/P@H<=2"]) == pytest.approx(report.precision_within_radius(2))
    for k in (30, 100, 1000):
        assert float(logged[f"test/P@{k}"]) == pytest.approx(report.precision_at_k[k], abs=1e-6)

    curves = out / "curves"
    assert (curves / "pr_curve.png").stat().st_size > 1000
    assert (curves / "precision_at_k.png").stat().st_size > 1000
    saved = json.loads((curves / "curves.json").read_text())
    assert saved["pr_curve"]["radius"] == list(range(6))
    assert saved["pr_curve"]["precision"] == pytest.approx(report.radius_curve.precision.tolist())
    assert saved["precision_at_k"]["k"][-1] == 90
    assert saved["precision_at_k"]["precision"][-1] == pytest.approx(
        float((ql[:, None] == dl[None, :]).double().mean())
    )


def test_bad_step_output_is_a_clear_error(tmp_path):
    class NoDict(TinyHasher):
        def test_step(self, batch, batch_idx, dataloader_idx=0):
            return self.encode(batch[0])

    trainer = make_trainer(tmp_path, RetrievalEvaluation(curves=False))
    with pytest.raises(ValueError, match="'codes', 'labels' and 'index'"):
        trainer.test(NoDict(), datamodule=TinyRetrievalData(None))


def test_bad_arguments():
    with pytest.raises(ValueError, match="top_ks entry"):
        RetrievalEvaluation(top_ks=(0,))
    with pytest.raises(ValueError, match="radius"):
        RetrievalEvaluation(radius=-1)


def test_curves_go_to_an_offline_wandb_run(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from pytorch_lightning.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="hashing-test")
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[RetrievalEvaluation(curves=True)],
    )
    try:
        trainer.test(TinyHasher(bits=5), datamodule=TinyRetrievalData(None, seed=4))
        run_dir = logger.experiment.dir
    finally:
        wandb.finish()
    media = {p.name.split("_0_")[0] for p in (tmp_path / "wandb").rglob("*") if "_0_" in p.name}
    assert {"pr_curve_image", "precision_at_k_image", "pr_curve_table"} <= media, (run_dir, media)
    assert (tmp_path / "curves" / "curves.json").exists()  # default output_dir = root dir


def test_wandb_logging_is_a_no_op_without_wandb(tmp_path, monkeypatch):
    from hashing.callbacks.curve_plots import log_curves_to_wandb

    class Recorder:
        calls = 0

        @property
        def experiment(self):
            Recorder.calls += 1
            raise AssertionError("must not touch the run without wandb")

    monkeypatch.setitem(__import__("sys").modules, "wandb", None)  # import wandb -> ImportError
    log_curves_to_wandb(Recorder(), {}, {}, prefix="test")
    assert Recorder.calls == 0
