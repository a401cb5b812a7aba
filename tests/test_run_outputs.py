"""Where eval/export/search write, what the report counts, and what outputs say about a run."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir
from PIL import Image
from pytorch_lightning.loggers import WandbLogger

from hashing.callbacks.model_summary import CompactModelSummary
from hashing.callbacks.retrieval_evaluation import plot_title
from hashing.index import encoder
from hashing.index.encoder import InputSpec
from hashing.index.staging import staged_folder
from hashing.loggers.wandb_run import HashingWandbLogger
from hashing.report.runs import find_run_folders
from hashing.runs.atomic import current_umask
from hashing.runs.errors import UserError
from tests.helpers.runs import CONF


def job_folder(path: Path, task: str) -> Path:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"task_name": task}))
    return path


@pytest.mark.parametrize("task", ["eval", "export", "search"])
def test_other_jobs_have_their_own_folder(task: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        overrides = ["ckpt_path=x"] if task != "search" else ["index=x", "query=y"]
        cfg = compose(config_name=task, overrides=overrides, return_hydra_config=True)
    run_dir = str(cfg.hydra.run.dir)
    assert f"/{task}/" in run_dir and "/runs/" not in run_dir


def test_report_counts_training_runs_only(tmp_path: Path) -> None:
    train = job_folder(tmp_path / "runs" / "a", "train")
    job_folder(tmp_path / "runs" / "b", "eval")
    job_folder(tmp_path / "export" / "c", "export")
    (tmp_path / "runs" / "d").mkdir()
    (tmp_path / "runs" / "d" / "metrics.json").write_text("{}")  # no config: counted
    assert find_run_folders([tmp_path]) == [train, tmp_path / "runs" / "d"]


def test_index_folders_get_the_usual_mode(tmp_path: Path) -> None:
    with staged_folder(tmp_path / "index") as staging:
        (staging / "codes.npy").write_bytes(b"")
    assert (tmp_path / "index").stat().st_mode & 0o777 == 0o777 & ~current_umask()


def test_search_warns_when_it_converts_a_query(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoder, "_warned", set())
    query = tmp_path / "q.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(query)
    spec = InputSpec((1, 8, 8), "scale", None, "L")
    with caplog.at_level(logging.WARNING, logger="hashing.index.encoder"):
        assert tuple(spec.prepare(query).shape) == (1, 8, 8)
        spec.prepare(query)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # once per kind, not per image
    assert "is RGB but the model was trained on grayscale" in messages[0]
    assert "is 32x32 px but the model was trained on 8x8: resized" in messages[1]
    same = tmp_path / "same.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(same)
    monkeypatch.setattr(encoder, "_warned", set())
    caplog.clear()
    spec.prepare(same)
    assert not caplog.records


def test_plot_titles_name_method_bits_and_data() -> None:
    module = SimpleNamespace(hparams={"name": "csq"}, bits=32)
    trainer = SimpleNamespace(datamodule=SimpleNamespace(name="digits"))
    assert plot_title(trainer, module) == "csq · 32 bits · digits test"  # type: ignore[arg-type]


def test_model_summary_hides_flops_it_did_not_count(capsys: pytest.CaptureFixture) -> None:
    data = [(" ", ["0"]), ("Name", ["backbone"]), ("Type", ["MLP"]), ("Params", ["16.6 K"])]
    data += [("Mode", ["train"]), ("FLOPs", ["0"])]
    CompactModelSummary.summarize(data, 24_900, 24_900, 0.1, {"train": 6, "eval": 0}, 0)
    out = capsys.readouterr().out
    assert "FLOPs" not in out and "backbone" in out and "params: 24.9 K" in out
    CompactModelSummary.summarize(data, 24_900, 24_900, 0.1, {"train": 6, "eval": 0}, 5_000)
    assert "FLOPs: 5.0 K" in capsys.readouterr().out


def test_wandb_without_login_names_offline_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wandb.errors import UsageError

    def no_login(self: WandbLogger) -> None:
        raise UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(WandbLogger, "experiment", property(no_login))
    logger = HashingWandbLogger(save_dir=tmp_path, offline=False)
    assert "anonymous" not in logger._wandb_init
    with pytest.raises(UserError, match="WANDB_MODE=offline"):
        logger.experiment  # noqa: B018


def test_summary_table_shows_dead_bits_as_a_count_and_keeps_balance_details_out() -> None:
    from rich.console import Console

    from hashing.runs.summary import summary_table

    metrics = {
        "test/mAP@ALL": 0.5,
        "test/dead_bits": 2.0,
        "test/bit_balance_min": 0.0,
        "test/all_codes_equal": 0.0,
        "val/mAP_best": 0.6,
    }
    console = Console(width=100, record=True)
    console.print(summary_table(metrics))
    rows = [line.split("│")[1:3] for line in console.export_text().splitlines() if "│" in line]
    assert [(name.strip(), value.strip()) for name, value in rows] == [
        ("mAP@ALL", "0.5000"),
        ("dead_bits", "2"),
        ("val/mAP_best", "0.6000"),
    ]
