"""End to end on the embedded digits: train, test, resume from last.ckpt, re-evaluate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from hashing import pipeline
from tests.helpers.runs import compose_run, run_train_cli

TINY = ["bits=16", "trainer.max_epochs=3", "seed=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, float]]:
    root = tmp_path_factory.mktemp("run")
    out, cache = root / "run", root / "cache"
    cfg = compose_run("train", out, cache, TINY)
    metrics = pipeline.train(cfg)
    return out, cache, metrics


def test_run_writes_metrics_above_chance(trained) -> None:
    out, _, metrics = trained
    stored = json.loads((out / "metrics.json").read_text())
    assert stored == pytest.approx(metrics)
    for key in ("test/mAP@100", "test/mAP@1000", "test/mAP@ALL"):
        assert key in stored
    # 10 balanced classes: a random ranking scores about 0.1
    assert stored["test/mAP@ALL"] > 0.5
    assert stored["test/mAP@100"] >= stored["test/mAP@ALL"] - 0.05
    assert (out / "config_resolved.yaml").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "centers.pt").is_file()


def test_eval_reproduces_test_metrics_exactly(trained, tmp_path: Path) -> None:
    out, cache, metrics = trained
    [best] = sorted((out / "checkpoints").glob("epoch_*.ckpt"))
    cfg = compose_run("eval", tmp_path / "eval", cache, [f"ckpt_path={best}"])
    reproduced = pipeline.evaluate(cfg)
    expected = {k: v for k, v in metrics.items() if k.startswith("test/")}
    assert reproduced == expected


def test_resume_continues_at_the_next_epoch(trained, tmp_path: Path) -> None:
    out, cache, _ = trained
    last = out / "checkpoints" / "last.ckpt"
    first = torch.load(last, map_location="cpu", weights_only=False)
    assert first["epoch"] == 2
    resumed_dir = tmp_path / "resumed"
    cfg = compose_run(
        "train",
        resumed_dir,
        cache,
        [*TINY[:1], "trainer.max_epochs=5", "seed=1", f"ckpt_path={last}"],
    )
    pipeline.train(cfg)
    second = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert second["epoch"] == 4
    steps_per_epoch = first["global_step"] // 3
    assert second["global_step"] == 5 * steps_per_epoch
    with (resumed_dir / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    epochs = {int(row["epoch"]) for row in rows if row.get("train/loss")}
    assert min(epochs) == 3 and max(epochs) == 4
    assert second["optimizer_states"][0]["state"], "optimizer state was not carried over"


def test_eval_rejects_a_foreign_checkpoint(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="holds no 'hashing_config'"):
        pipeline.load_run_config(foreign)


def test_multirun_writes_one_folder_per_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_train_cli(
        [
            "-m",
            "bits=8,16",
            "debug=fast",
            f"hydra.sweep.dir={sweep}",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    for job, bits in zip(jobs, (8, 16), strict=True):
        assert json.loads((job / "metrics.json").read_text())["test/mAP@ALL"] > 0
        assert f"bits: {bits}" in (job / "config_resolved.yaml").read_text()
        assert (job / "checkpoints" / "last.ckpt").is_file()
