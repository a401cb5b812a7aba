"""`logger=wandb` offline: names from the config, run folder published, same run id on resume."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from hydra.utils import instantiate

from hashing import pipeline
from hashing.callbacks.interrupt import TrainingInterrupted
from hashing.loggers.wandb_run import RUN_ID_FILE, sweep_group
from tests.helpers.runs import compose_run

TINY = ["bits=16", "seed=0", "trainer.max_epochs=2", "logger=wandb", "tags=[ablation]"]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def wait_for_records(path: Path, texts: tuple[str, ...], timeout: float = 60.0) -> bytes:
    """The offline run log once it holds ``texts``: wandb's service process writes it
    asynchronously, also after ``run.finish()`` returned."""
    deadline = time.monotonic() + timeout
    while True:
        records = path.read_bytes() if path.is_file() else b""
        if all(text.encode() in records for text in texts) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def test_logger_takes_names_from_the_config(tmp_path: Path) -> None:
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", TINY)
    run = instantiate(cfg.logger.wandb).experiment  # the offline run wandb started
    try:
        assert list(run.tags) == ["csq", "16bits", "digits", "ablation"]
        assert run.group == "single"
        assert run.job_type == "train"
        assert run.name == "csq-16b-digits-s0"
        assert run.id == (tmp_path / "run" / RUN_ID_FILE).read_text()
    finally:
        run.finish()


def test_sweep_group_is_the_sweep_folder(tmp_path: Path) -> None:
    job = tmp_path / "2024-05-01" / "12-00-00" / "3"
    job.mkdir(parents=True)
    assert sweep_group(job) == "single"
    (job.parent / "multirun.yaml").write_text("{}\n")
    assert sweep_group(job) == "2024-05-01/12-00-00"


def test_offline_run_is_published_and_resumed_under_the_same_id(tmp_path: Path) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    signal_at = [
        "+callbacks.signal_at._target_=tests.helpers.signal_at_batch.SignalAtBatch",
        "+callbacks.signal_at.batch=14",
    ]
    with pytest.raises(TrainingInterrupted) as stop:
        pipeline.train(compose_run("train", run, cache, [*TINY, *signal_at]))
    assert stop.value.code == 128 + signal.SIGTERM
    run_id = (run / RUN_ID_FILE).read_text()
    [first] = offline_runs(run)
    assert f"-{run_id}" in first.name

    metrics = pipeline.train(compose_run("train", run, cache, [*TINY, f"resume={run}"]))
    runs = offline_runs(run)
    # wandb names a folder offline-run-<time>-<id>, adding "-1" when two start in the same second
    assert len(runs) == 2 and all(f"-{run_id}" in path.name for path in runs)
    resumed = next(path for path in runs if path != first)
    files = resumed / "files"
    assert json.loads((files / "metrics.json").read_text()) == pytest.approx(metrics)
    assert (files / "center_stats.json").is_file()
    assert (files / "curves" / "curves.json").is_file()
    # the run record, summary and history as wandb wrote them (protobuf keeps strings as is)
    expected = ("csq-16b-digits-s0", "16bits", "ablation", "test/mAP@ALL", "centers/min")
    records = wait_for_records(resumed / f"run-{run_id}.wandb", expected)
    for text in expected:
        assert text.encode() in records, text
    assert os.environ["WANDB_MODE"] == "offline"
