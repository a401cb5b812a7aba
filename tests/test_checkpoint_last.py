"""last.ckpt is the state after the last epoch, and resuming a finished run leaves it alone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from hashing import pipeline
from hashing.callbacks.checkpoint import LastEpochCheckpoint
from hashing.callbacks.progress import EpochProgress
from hashing.index.manifest import config_digest
from hashing.runs import resume
from hashing.runs.checkpoint_file import read_checkpoint
from hashing.runs.errors import UserError
from hashing.runs.resume import finished_run_from_command_line, resume_checkpoint
from tests.helpers.runs import compose_run, digests


class FallingScore(pl.LightningModule):
    """A model whose monitored val/mAP falls every epoch: the best epoch is the first."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val/mAP", 1.0 - 0.1 * self.current_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> torch.utils.data.DataLoader:
    data = torch.utils.data.TensorDataset(torch.randn(8, 2))
    return torch.utils.data.DataLoader(data, batch_size=4)


def fit(tmp_path: Path, *callbacks: pl.Callback, epochs: int = 3) -> None:
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=list(callbacks),
        logger=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(FallingScore(), train_dataloaders=loader(), val_dataloaders=loader())


def test_last_ckpt_holds_the_last_epoch_when_the_best_is_earlier(tmp_path: Path) -> None:
    options = {"monitor": "val/mAP", "mode": "max", "save_last": True, "save_top_k": 1}
    ours = LastEpochCheckpoint(dirpath=tmp_path / "ours", filename="best", **options)
    fit(tmp_path, ours, EpochProgress(bar=False))
    assert torch.load(tmp_path / "ours" / "last.ckpt", weights_only=False)["epoch"] == 2
    assert torch.load(tmp_path / "ours" / "best.ckpt", weights_only=False)["epoch"] == 0
    # the state key stays ModelCheckpoint's, so runs checkpointed before still restore it
    assert ours.state_key == ModelCheckpoint(**options).state_key


def test_epoch_lines_off_a_terminal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hashing.callbacks.progress"):
        fit(tmp_path, EpochProgress(bar=False), epochs=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "hashing.callbacks.progress"]
    assert [line.split(" · ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "val/mAP 0.9000" in lines[1] and "train/loss" in lines[1]


def test_resuming_a_finished_run_changes_no_file(tmp_path: Path) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    base = ["bits=16", "trainer.max_epochs=2"]
    metrics = pipeline.train(compose_run("train", run, cache, base))
    before = digests(run)

    message = finished_run_from_command_line([f"resume={run}"])
    assert message is not None and "finished run (2 epochs" in message
    assert "trainer.max_epochs=12" in message
    assert finished_run_from_command_line([f"resume={run}", "trainer.max_epochs=2"]) is not None
    assert finished_run_from_command_line([f"resume={run}", "trainer.max_epochs=3"]) is None
    # in-process (no command line): the same decision, the stored metrics, no file touched
    again = pipeline.train(compose_run("train", run, cache, [*base, f"resume={run}"]))
    assert again == metrics
    assert digests(run) == before

    # a larger max_epochs extends it by exactly the missing epoch
    pipeline.train(
        compose_run("train", run, cache, ["bits=16", "trainer.max_epochs=3", f"resume={run}"])
    )
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 2


def test_bookkeeping_keys_stay_out_of_the_index_identity() -> None:
    config = {"bits": 16, "method": {"name": "csq"}, "resume": None, "fail_fast": None}
    resumed = {**config, "resume": "/runs/a", "fail_fast": True, "test_ckpt": "last"}
    assert config_digest(resumed) == config_digest(config)
    assert config_digest({**config, "bits": 32}) != config_digest(config)


def test_a_truncated_last_ckpt_fails_before_any_data(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config_resolved.yaml").write_text("bits: 16\n")
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, run / "checkpoints" / "last.ckpt")
    data = (run / "checkpoints" / "last.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(data[: len(data) // 2])
    cfg = compose_run("train", run, tmp_path / "cache", [f"resume={run}"])
    with pytest.raises(UserError, match=r"resume='.*last.ckpt' is not a readable"):
        resume_checkpoint(cfg)


def test_resuming_reads_last_ckpt_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config_resolved.yaml").write_text("trainer:\n  max_epochs: 2\n")
    (run / "metrics.json").write_text('{"test/mAP": 0.5}')
    fit_loop = {"epoch_loop.batch_progress": {"is_last_batch": True}}
    checkpoint = {"state_dict": {}, "epoch": 1, "loops": {"fit_loop": fit_loop}}
    torch.save(checkpoint, run / "checkpoints" / "last.ckpt")
    reads: list[Path] = []

    def counted(path: Path, *args: object, **kwargs: object) -> dict:
        reads.append(Path(path))
        return read_checkpoint(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(resume, "read_checkpoint", counted)
    cfg = compose_run("train", run, tmp_path / "cache", ["trainer.max_epochs=2", f"resume={run}"])
    assert pipeline.train(cfg) == {"test/mAP": 0.5}  # finished: 2 epochs, none to add
    assert reads == [run / "checkpoints" / "last.ckpt"]


def test_ckpt_path_of_a_finished_run_says_there_is_nothing_to_train(tmp_path: Path) -> None:
    done, cache = tmp_path / "done", tmp_path / "cache"
    base = ["bits=16", "trainer.max_epochs=1"]
    pipeline.train(compose_run("train", done, cache, base))
    checkpoint = done / "checkpoints" / "last.ckpt"
    new = tmp_path / "new"
    with pytest.raises(UserError, match="already holds 1 trained epoch and") as refused:
        pipeline.train(compose_run("train", new, cache, [*base, f"ckpt_path={checkpoint}"]))
    message = str(refused.value)
    assert "trainer.max_epochs=1" in message and "trainer.max_epochs=11" in message
    assert f"resume={done}" in message
    assert not (new / "metrics.json").exists()
    # a larger max_epochs trains on from it: one more epoch in the new folder
    pipeline.train(
        compose_run(
            "train", new, cache, ["bits=16", "trainer.max_epochs=2", f"ckpt_path={checkpoint}"]
        )
    )
    assert torch.load(new / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    assert (new / "metrics.json").is_file()
