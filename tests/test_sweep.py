"""Sweeps: parallel jobs (joblib launcher), a failing job recorded without stopping the others,
the report over the sweep, fail_fast, and the hparams_search presets."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from hashing.report.__main__ import main as report
from hashing.runs.status import record_failures
from tests.helpers.runs import CONF, compose_run, run_sweep_cli


def test_parallel_sweep_records_failures_and_reports(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_sweep_cli(
        sweep,
        tmp_path / "cache",
        [
            "hydra/launcher=local",
            "hydra.launcher.n_jobs=2",
            "bits=2,16",  # 2 bits cannot hold 10 classes: those jobs fail
            "seed=0,1",
            "debug=fast",
        ],
    )
    # a failed job fails the sweep: its end names the failed jobs, the folder and the report
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    assert f"sweep: 2 of 4 jobs finished, in {sweep}" in result.stdout
    assert f"  {sweep / '0'} [bits=2 seed=0] failed: UserError: bits=2" in result.stdout
    assert f"  {sweep / '1'} [bits=2 seed=1] failed: UserError: bits=2" in result.stdout
    assert f"compare the jobs: python -m hashing.report {sweep}" in result.stdout
    jobs = {int(p.name): p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()}
    assert sorted(jobs) == [0, 1, 2, 3]
    failed = {n for n, job in jobs.items() if (job / "failed.json").is_file()}
    finished = {n for n, job in jobs.items() if (job / "metrics.json").is_file()}
    assert failed == {0, 1} and finished == {2, 3}
    failure = json.loads((jobs[0] / "failed.json").read_text())
    assert failure["type"] == "UserError" and "bits=2" in failure["message"]
    assert "Traceback" in failure["traceback"]

    out = tmp_path / "report"
    assert report([str(sweep), "--out", str(out)]) == 0
    with (out / "cells.csv").open() as handle:
        [cell] = [row for row in csv.DictReader(handle) if row["bits"] == "16"]
    values = [json.loads((jobs[n] / "metrics.json").read_text())["test/mAP@ALL"] for n in (2, 3)]
    assert float(cell["test/mAP@ALL_mean"]) == pytest.approx(statistics.mean(values))
    assert float(cell["test/mAP@ALL_std"]) == pytest.approx(statistics.stdev(values))
    assert cell["seeds"] == "0 1"
    markdown = (out / "report.md").read_text()
    assert markdown.count("| failed |") == 2
    assert list(out.glob("pr_curves_*_16bits.png"))


def failing_job(cfg) -> dict:
    raise RuntimeError("boom")


@pytest.mark.parametrize(("fail_fast", "raises"), [("false", False), ("true", True)])
def test_failures_are_recorded_and_fail_fast_reraises(tmp_path: Path, fail_fast, raises) -> None:
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", [f"fail_fast={fail_fast}"])
    if raises:
        with pytest.raises(RuntimeError, match="boom"):
            record_failures(failing_job, cfg)
    else:
        assert record_failures(failing_job, cfg) is None
    failure = json.loads((tmp_path / "run" / "failed.json").read_text())
    assert failure["type"] == "RuntimeError" and failure["message"] == "boom"


def test_single_run_fails_fast_by_default(tmp_path: Path) -> None:
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache")
    assert cfg.fail_fast is None
    with pytest.raises(RuntimeError):
        record_failures(failing_job, cfg)


def test_grid_search_preset_sweeps_the_validation_objective() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=grid"], return_hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = cfg.hydra.sweeper.params
    assert params["method.optimizer.lr"] == "1e-4,3e-4,1e-3,3e-3"
    assert cfg.callbacks.model_checkpoint.monitor == "val/mAP"


def test_slurm_launcher_composes_with_its_pre_timeout_signal_handled() -> None:
    """submitit asks SLURM for SIGUSR2 before the time limit; unless the interrupt callback takes
    it, submitit's own handler ends the job mid-batch without a checkpoint."""
    from submitit.core.job_environment import JobEnvironment

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert f"SIG{JobEnvironment.USR_SIG}" in cfg.callbacks.interrupt_checkpoint.signals
    assert cfg.hydra.launcher.signal_delay_s > 0 and cfg.hydra.launcher.max_num_timeout == 0


def test_optuna_study_runs_and_writes_the_best_trial(tmp_path: Path) -> None:
    """A 3-trial TPE study on digits (the sweeper comes with the `hpo` extra, so no skip)."""
    sweep = tmp_path / "sweep"
    result = run_sweep_cli(
        sweep,
        tmp_path / "cache",
        [
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.sampler.n_startup_trials=2",
            "debug=fast",
            "bits=16",
        ],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = {p.name: p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()}
    assert sorted(trials) == ["0", "1", "2"]
    scores = {
        name: json.loads((trial / "metrics.json").read_text())["val/mAP_best"]
        for name, trial in trials.items()
    }
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(scores.values()))
    [winner] = [
        name for name, score in scores.items() if score == pytest.approx(max(scores.values()))
    ]
    overrides = yaml.safe_load((trials[winner] / ".hydra" / "overrides.yaml").read_text())
    chosen = dict(item.split("=", 1) for item in overrides)
    assert set(best["best_params"]) == {"method.optimizer.lr", "data.batch_size"}
    assert float(chosen["method.optimizer.lr"]) == pytest.approx(
        best["best_params"]["method.optimizer.lr"]
    )
    assert int(chosen["data.batch_size"]) == best["best_params"]["data.batch_size"]
    assert 1e-5 <= best["best_params"]["method.optimizer.lr"] <= 1e-2


def missing_groups(preset: Path) -> list[str]:
    """``group/name`` options a preset selects that this checkout does not have yet."""
    defaults = yaml.safe_load(preset.read_text()).get("defaults", [])
    missing = []
    for entry in defaults:
        if isinstance(entry, dict):
            for key, name in entry.items():
                group = key.removeprefix("override ").strip("/")
                if name and not (CONF / group / f"{name}.yaml").is_file():
                    missing.append(f"{group}/{name}")
    return missing


@pytest.mark.parametrize(
    "preset", sorted((CONF / "experiment").glob("*.yaml")), ids=lambda p: p.stem
)
def test_experiment_presets_compose(preset: Path, tmp_path: Path) -> None:
    missing = missing_groups(preset)
    if missing:
        pytest.skip(f"needs {missing}, not in this checkout yet")
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", [f"experiment={preset.stem}"])
    assert cfg.bits > 0 and cfg.trainer.max_epochs != 0
