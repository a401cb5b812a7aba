"""Training values are summed per step and logged once per epoch as per-sample means."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from hashing import pipeline
from tests.helpers.runs import compose_run


class StepLosses(pl.Callback):
    """Each training step's returned loss and batch size, per epoch."""

    def __init__(self) -> None:
        self.steps: dict[int, list[tuple[float, int]]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        epoch = self.steps.setdefault(trainer.current_epoch, [])
        epoch.append((float(loss), int(batch[1].shape[0])))


def test_csq_logs_the_batch_weighted_epoch_mean_loss(tmp_path: Path) -> None:
    # batch 50 over 720 items: a short last batch, so a plain mean of steps would differ
    cfg = compose_run(
        "train",
        tmp_path / "run",
        tmp_path / "cache",
        ["bits=16", "trainer.max_epochs=2", "data.batch_size=50", "test=false"],
    )
    pl.seed_everything(0)
    datamodule = pipeline.build_datamodule(cfg)
    model = pipeline.build_model(cfg, datamodule)
    model.prepare(datamodule, tmp_path / "run")
    recorder = StepLosses()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=pl.loggers.CSVLogger(tmp_path / "csv", name="", version=""),
        callbacks=[recorder],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=datamodule)
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    logged = [
        float(row.split(",")[header.index("train/loss")])
        for row in rows[1:]
        if row.split(",")[header.index("train/loss")]
    ]
    expected = [
        sum(loss * size for loss, size in steps) / sum(size for _, size in steps)
        for _, steps in sorted(recorder.steps.items())
    ]
    assert len(recorder.steps[0]) == 15 and recorder.steps[0][-1][1] == 20
    assert logged == pytest.approx(expected, rel=1e-5)
    plain = sum(loss for loss, _ in recorder.steps[0]) / 15
    assert abs(plain - expected[0]) > 1e-7  # the weighting is visible


def test_cuda_check_falls_back_to_the_cached_count_without_a_gpu(monkeypatch) -> None:
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    gpu = torch.cuda.is_available()
    pipeline.skip_nvml_cuda_checks()
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == ("1" if gpu else "0")
    monkeypatch.delenv("PYTORCH_NVML_BASED_CUDA_CHECK")
    pipeline.skip_nvml_cuda_checks()
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ
