"""Interrupt (SIGTERM/SIGINT) mid-epoch, resume in the same folder, end with identical results.

The in-process test runs under two seeds: the seed sets the batch order (docs/resume.md), and
the resumed run must continue on the order of its own seed.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
import yaml

from hashing import pipeline
from hashing.callbacks.interrupt import TrainingInterrupted
from hashing.runs.errors import UserError
from hashing.runs.resume import expand_command_line, resume_checkpoint
from tests.helpers.runs import compose_run, digests, run_train_cli

# 720 fit items / 64 = 12 batches an epoch; dropout makes the result depend on the RNG state
BASE = [
    "bits=16",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "backbone.dropout=0.3",
]
BATCHES_PER_EPOCH = 12
# the signal goes out after global batch 16 (epoch 1, batch 4); the interrupt callback sees it
# at the end of the next batch, so the checkpoint is taken after 18 of 24 optimizer steps
SIGNAL_AT = 16


def signal_overrides(name: str) -> list[str]:
    return [
        "+callbacks.signal_at._target_=tests.helpers.signal_at_batch.SignalAtBatch",
        f"+callbacks.signal_at.batch={SIGNAL_AT}",
        f"+callbacks.signal_at.signal_name={name}",
    ]


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, Path, dict, list[str]]:
    """An uninterrupted run of seed ``request.param`` (default 1) and its overrides."""
    seed = getattr(request, "param", 1)
    base = [*BASE, f"seed={seed}"]
    root = tmp_path_factory.mktemp(f"resume_seed{seed}")
    cache = root / "cache"
    metrics = pipeline.train(compose_run("train", root / "full", cache, base))
    return root, cache, metrics, base


def best_checkpoint(run_dir: Path) -> tuple[str, float]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    [model_checkpoint] = [v for k, v in state["callbacks"].items() if "ModelCheckpoint" in k]
    return Path(model_checkpoint["best_model_path"]).name, float(
        model_checkpoint["best_model_score"]
    )


@pytest.mark.parametrize("uninterrupted", [1, 2], indirect=True)
def test_sigint_mid_epoch_then_resume_gives_identical_metrics(uninterrupted) -> None:
    """(SIGTERM takes the same path: tests/test_wandb.py interrupts with it.)"""
    root, cache, expected, base = uninterrupted
    run = root / "interrupted"
    with pytest.raises(TrainingInterrupted) as stop:
        pipeline.train(compose_run("train", run, cache, [*base, *signal_overrides("SIGINT")]))
    assert stop.value.code == 128 + signal.SIGINT

    # the checkpoint was taken inside epoch 1, with the loader's position in it
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == SIGNAL_AT + 2
    assert state["epoch"] == 1
    fit_loop = state["loops"]["fit_loop"]
    assert fit_loop["state_dict"]["combined_loader"] == [
        {"epoch": 1, "batches": SIGNAL_AT + 2 - BATCHES_PER_EPOCH}
    ]
    marker = json.loads((run / "interrupted.json").read_text())
    assert marker["signal"] == "SIGINT"
    assert marker["global_step"] == SIGNAL_AT + 2
    assert not (run / "metrics.json").exists()

    # the callback gave the signals back when fit ended
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = pipeline.train(compose_run("train", run, cache, [*base, f"resume={run}"]))
    assert resumed == expected
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(expected)
    assert not (run / "interrupted.json").exists()
    # best-checkpoint tracking survived: same best epoch file and score as without interruption
    assert best_checkpoint(run) == best_checkpoint(root / "full")
    # the first attempt's CSV rows were kept beside the resumed ones
    assert (run / "csv" / "metrics.part1.csv").is_file()
    assert (run / "csv" / "metrics.csv").is_file()


@pytest.mark.slow  # two processes in a row (~20-40 s); the in-process test covers exactness
def test_cli_sigterm_then_resume_continues_in_the_same_folder(uninterrupted) -> None:
    root, cache, expected, base = uninterrupted
    run = root / "cli"
    first = run_train_cli(
        [
            *base,
            *signal_overrides("SIGTERM"),
            f"hydra.run.dir={run}",
            f"paths.cache_dir={cache}",
            "callbacks.progress_bar.refresh_rate=0",
        ],
        timeout=300,
    )
    assert first.returncode == 128 + signal.SIGTERM, first.stderr[-3000:]
    assert json.loads((run / "interrupted.json").read_text())["signal"] == "SIGTERM"

    second = run_train_cli([f"resume={run}"], timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(expected, abs=0)
    assert not (run / "interrupted.json").exists()
    # Hydra wrote the resumed invocation into the same folder, no new run folder elsewhere
    assert (run / ".hydra" / "overrides.yaml").is_file()


def write_run(folder: Path, overrides: list[str], config: str = "bits: 16\n") -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "config_resolved.yaml").write_text(config)
    return folder


def test_expand_command_line_restores_the_run_overrides(tmp_path: Path) -> None:
    run = write_run(tmp_path / "sweep" / "3", ["method=csq", "bits=16", "seed=2", "resume=x"])
    assert expand_command_line(["bits=8", "trainer.max_epochs=2"]) == [
        "bits=8",
        "trainer.max_epochs=2",
    ]
    expanded = expand_command_line([f"resume={run}", "trainer.max_epochs=5", "seed=2"])
    assert expanded == [
        "method=csq",
        "bits=16",
        "trainer.max_epochs=5",
        "seed=2",
        f"resume='{run}'",
        f"hydra.run.dir='{run}'",
    ]


def test_expand_command_line_reads_quoted_paths_as_hydra_does(tmp_path: Path) -> None:
    run = write_run(tmp_path / "a run", ["bits=16"])
    expanded = expand_command_line([f"resume='{run}'", "+trainer.max_time=null"])
    assert expanded == [
        "bits=16",
        "+trainer.max_time=null",
        f"resume='{run}'",
        f"hydra.run.dir='{run}'",
    ]


SAVED_CONFIG = "bits: 16\nseed: 2\ndata:\n  split_seed: 0\n  num_workers: 0\nmethod:\n  lr: 0.001\n"
HYDRA_CHOICES = {"hydra": {"runtime": {"choices": {"method": "csq", "data": "digits"}}}}


@pytest.mark.parametrize(
    ("override", "before", "now"),
    [
        ("bits=32", "16", "32"),
        ("method=tbh", "'csq'", "'tbh'"),
        ("data=mnist", "'digits'", "'mnist'"),
        ("data.split_seed=3", "0", "3"),
        ("seed=5", "2", "5"),
        ("method.lr=0.1", "0.001", "0.1"),
        ("+method.extra=1", "'(not set)'", "1"),
        ("~method.lr", "0.001", "'(not set)'"),
    ],
)
def test_a_resume_refuses_an_override_that_changes_the_run(
    tmp_path: Path, override: str, before: str, now: str
) -> None:
    run = write_run(tmp_path / "run", ["method=csq", "seed=2"], SAVED_CONFIG)
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(HYDRA_CHOICES))
    key = override.lstrip("+~").split("=")[0]
    with pytest.raises(UserError) as refused:
        expand_command_line([f"resume={run}", override])
    message = str(refused.value)
    assert f"would change {key} from {before} to {now}" in message
    assert "start a new run" in message and "trainer.max_epochs" in message


@pytest.mark.parametrize(
    "overrides",
    [
        ["bits=16", "seed=2", "method=csq", "data=digits", "data.split_seed=0"],  # its own values
        ["trainer.max_epochs=9", "logger=wandb", "callbacks.progress_bar.refresh_rate=0"],
        ["data.num_workers=2", "paths.cache_dir=/elsewhere", "hydra.job.chdir=false"],
    ],
)
def test_a_resume_accepts_safe_and_unchanged_overrides(
    tmp_path: Path, overrides: list[str]
) -> None:
    run = write_run(tmp_path / "run", ["method=csq", "seed=2"], SAVED_CONFIG)
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(HYDRA_CHOICES))
    expanded = expand_command_line([f"resume={run}", *overrides])
    assert expanded[-2:] == [f"resume='{run}'", f"hydra.run.dir='{run}'"]
    assert set(overrides) <= set(expanded)


def test_a_refused_resume_changes_no_file_and_the_plain_resume_still_matches(
    uninterrupted,
) -> None:
    root, cache, expected, base = uninterrupted
    run = root / "refused"
    overrides = [*base, *signal_overrides("SIGINT")]
    with pytest.raises(TrainingInterrupted):
        pipeline.train(compose_run("train", run, cache, overrides))
    # what Hydra saves when the command line starts the run (compose_run does not)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    before = digests(run)
    # the command a user types: refused before Hydra writes .hydra/ (exit 2, one paragraph)
    cli = run_train_cli([f"resume={run}", "bits=32"], timeout=120)
    assert cli.returncode == 2, cli.stderr[-3000:]
    assert "would change bits from 16 to 32" in cli.stderr
    assert "Traceback" not in cli.stderr
    assert digests(run) == before
    # in-process (no command line to check): the pipeline refuses before it writes
    with pytest.raises(UserError, match="would change bits from 16 to 32"):
        pipeline.train(compose_run("train", run, cache, [*base, "bits=32", f"resume={run}"]))
    assert digests(run) == before
    resumed = pipeline.train(compose_run("train", run, cache, [*base, f"resume={run}"]))
    assert resumed == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "resume={run}"], "continues one run"),
        (["resume={missing}"], "is not a folder"),
        (["resume={empty}"], "holds no config_resolved.yaml"),
    ],
)
def test_expand_command_line_rejects_bad_input(tmp_path: Path, args: list[str], message: str):
    run = write_run(tmp_path / "run", ["bits=16"])
    (tmp_path / "empty").mkdir()
    paths = {"run": run, "missing": tmp_path / "missing", "empty": tmp_path / "empty"}
    with pytest.raises(ValueError, match=message):
        expand_command_line([arg.format(**paths) for arg in args])


def test_resume_checkpoint_checks_folder_and_checkpoint(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", ["bits=16"])
    cache = tmp_path / "cache"
    elsewhere = compose_run("train", tmp_path / "other", cache, [f"resume={run}"])
    with pytest.raises(ValueError, match="continues in its own folder"):
        resume_checkpoint(elsewhere)
    same = compose_run("train", run, cache, [f"resume={run}"])
    with pytest.raises(ValueError, match="nothing to resume"):
        resume_checkpoint(same)
    both = compose_run("train", run, cache, [f"resume={run}", f"ckpt_path={run}/x.ckpt"])
    with pytest.raises(ValueError, match="choose one"):
        resume_checkpoint(both)
