"""Sweeps submitted the way a user does, to a real one-node SLURM cluster (tests/cluster/slurm.sh)
through `hydra/launcher=slurm` (submitit): a job array whose failing jobs leave the others'
results, a job stopped by SLURM's pre-timeout signal that resumes to the uninterrupted metrics,
and DDP whose two ranks are SLURM tasks of one allocation."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hashing.report.__main__ import main as report
from tests.helpers.ddp_probe import check_equals_single_process, check_gathered_once
from tests.helpers.runs import ROOT, run_sweep_cli, run_train_cli, sweep_args, train_command

pytestmark = pytest.mark.cluster

# what the test node has (2 CPUs, 2000 MB, no GPU, partition short); one CPU a task
LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=short",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
]
# 2 epochs of 3 batches; deterministic so that a resumed job can match an uninterrupted one
TRAIN = ["debug=fast", "trainer.deterministic=true"]
TIMEOUT_S = 600


def cluster_overrides(overrides: list[str]) -> list[str]:
    """A sweep's overrides with the launcher's and the tiny training's settings before them."""
    return [*LAUNCHER, *TRAIN, *overrides]


def submit(
    env: dict[str, str], sweep: Path, cache: Path, overrides: list[str], failing: int = 0
) -> None:
    """Submit a sweep and wait for all its jobs (the launcher waits for submitit's results);
    with ``failing`` jobs expected to fail, the sweep exits 1 and its end says how many ran."""
    result = run_sweep_cli(sweep, cache, cluster_overrides(overrides), TIMEOUT_S, env)
    assert result.returncode == (1 if failing else 0), result.stderr[-3000:]
    if failing:
        jobs = len(list(sweep.glob("[0-9]*")))
        assert f"sweep: {jobs - failing} of {jobs} jobs finished, in {sweep}" in result.stdout


def job_folders(sweep: Path) -> dict[int, Path]:
    """Hydra's job folders of a sweep by job number."""
    return {int(p.name): p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()}


def slurm_job_id(job: Path) -> str:
    """The SLURM job id the launcher recorded in the job's Hydra config."""
    hydra = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())
    return str(hydra["hydra"]["job"]["id"])


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    """Poll ``condition`` every second; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(1)


def squeue(env: dict[str, str]) -> list[str]:
    """Ids of the jobs (array tasks included) still pending or running."""
    listed = subprocess.run(
        ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=env, check=True
    )
    return listed.stdout.split()


def run_config(job: Path) -> dict:
    """A finished job's resolved config."""
    return yaml.safe_load((job / "config_resolved.yaml").read_text())


def run_metrics(job: Path) -> dict[str, float]:
    """A job's test metrics and best validation mAP."""
    metrics = json.loads((job / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if key.startswith(("test/", "val/"))}


@pytest.fixture(scope="module")
def array_sweep(slurm_cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """csq, mds x 2, 16, 32 bits as one job array; 2 bits cannot hold 10 classes: those fail."""
    root = tmp_path_factory.mktemp("array")
    sweep, cache = root / "sweep", root / "cache"
    submit(slurm_cluster, sweep, cache, ["method=csq,mds", "bits=2,16,32"], failing=2)
    return sweep, cache


def test_job_array_writes_every_job_and_the_report_tables_them(array_sweep) -> None:
    sweep, _ = array_sweep
    jobs = job_folders(sweep)
    assert sorted(jobs) == [0, 1, 2, 3, 4, 5]
    # one sbatch array: each job ran as task <n> of the same array job
    [script] = sweep.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --array=0-5" in script.read_text()
    ids = {n: slurm_job_id(job) for n, job in jobs.items()}
    array_id = script.name.split("_")[0]
    assert sorted(ids.values()) == sorted(f"{array_id}_{n}" for n in range(6))

    bits = {
        n: yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["bits"]
        for n, job in jobs.items()
    }
    failed = {n for n, job in jobs.items() if (job / "failed.json").is_file()}
    finished = {n for n, job in jobs.items() if (job / "metrics.json").is_file()}
    assert failed == {n for n in jobs if bits[n] == 2}
    assert finished == {n for n in jobs if bits[n] != 2}
    for n in failed:
        failure = json.loads((jobs[n] / "failed.json").read_text())
        assert failure["type"] == "UserError" and "bits=2" in failure["message"]

    out = sweep / "report"
    assert report([str(sweep), "--out", str(out), "--no-plots"]) == 0
    with (out / "cells.csv").open() as handle:
        cells = {(row["method"], int(row["bits"])): row for row in csv.DictReader(handle)}
    with (out / "runs.csv").open() as handle:
        runs = {Path(row["run"]).name: row for row in csv.DictReader(handle)}
    # the failed jobs (bits=2) stay out of the comparison table and are listed apart (runs.csv)
    assert set(cells) == {(method, b) for method in ("csq", "mds") for b in (16, 32)}
    for cell in cells.values():
        assert cell["finished"] == "1"
    for n in finished:
        config = run_config(jobs[n])
        cell = cells[(config["method"]["name"], config["bits"])]
        assert float(cell["test/mAP@ALL_mean"]) == pytest.approx(
            run_metrics(jobs[n])["test/mAP@ALL"]
        )
        assert runs[str(n)]["status"] == "ok"
    for n in failed:
        assert runs[str(n)]["status"] == "failed"
        assert "bits=2" in runs[str(n)]["detail"]
        assert str(jobs[n]) in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "signalled_by", ["scancel", pytest.param("time_limit", marks=pytest.mark.slow)]
)
def test_job_signalled_before_its_time_limit_resumes_to_the_uninterrupted_metrics(
    slurm_cluster, array_sweep, tmp_path: Path, signalled_by: str
) -> None:
    """SLURM sends submitit's SIGUSR2 ``signal_delay_s`` before a job's time limit. The job is held
    at batch 3 until it arrives: sent by ``scancel --signal=USR2``, or (slow) by SLURM itself at
    a 2-minute limit with a 30 s delay (a start-up slower than 90 s would be signalled before
    training, where there is nothing to save yet)."""
    reference_sweep, cache = array_sweep
    [reference] = [
        job
        for job in job_folders(reference_sweep).values()
        if (job / "metrics.json").is_file()
        and (run_config(job)["method"]["name"], run_config(job)["bits"]) == ("csq", 16)
    ]
    sweep = tmp_path / "sweep"
    wait = [
        "+callbacks.wait._target_=tests.helpers.wait_for_signal.WaitForSignal",
        "+callbacks.wait.batch=3",
        "+callbacks.wait.output_dir=${paths.output_dir}",
        "+callbacks.wait.timeout_s=300",
    ]
    if signalled_by == "time_limit":
        wait += ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=30"]
    command = train_command(
        *sweep_args(sweep, cache, cluster_overrides(["method=csq", "bits=16", *wait]))
    )
    # the launcher waits for a result the stopped job never writes (without SLURM accounting,
    # submitit cannot see that it ended): it runs in the background and is stopped below
    with subprocess.Popen(
        command, cwd=ROOT, env=slurm_cluster, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as launcher:
        try:
            job = sweep / "0"
            waiting = job / "waiting"
            wait_until(
                lambda: waiting.is_file() or launcher.poll() is not None, "the job at batch 3"
            )
            logs = "\n".join(path.read_text()[-2000:] for path in sweep.glob(".submitit/*/*.err"))
            assert waiting.is_file(), f"the job ended before batch 3:\n{logs}"
            job_id = slurm_job_id(job)
            if signalled_by == "scancel":
                subprocess.run(
                    ["scancel", "--signal=USR2", job_id], env=slurm_cluster, check=True, timeout=60
                )
            wait_until(lambda: job_id not in squeue(slurm_cluster), f"job {job_id} to end")
        finally:
            launcher.terminate()
    marker = json.loads((job / "interrupted.json").read_text())
    assert marker["signal"] == "SIGUSR2"
    assert marker["global_step"] == 5  # the batch after the one it waited in
    assert (job / "checkpoints" / "last.ckpt").is_file()
    assert not (job / "metrics.json").exists()
    out = tmp_path / "report"
    assert report([str(sweep), "--out", str(out), "--no-plots"]) == 0
    with (out / "runs.csv").open() as handle:
        [row] = list(csv.DictReader(handle))
    assert row["status"] == "interrupted"
    assert f"resume={job}" in row["detail"]

    resumed = run_train_cli([f"resume={job}"], TIMEOUT_S, slurm_cluster)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_metrics(job) == run_metrics(reference)
    assert not (job / "interrupted.json").exists()


def test_ddp_ranks_started_by_slurm_gather_like_one_process(slurm_cluster, tmp_path: Path) -> None:
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    submit(
        slurm_cluster,
        sweep,
        cache,
        [
            "hydra.launcher.tasks_per_node=2",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "bits=16",
            "+callbacks.probe._target_=tests.helpers.ddp_probe.GatherProbe",
            "+callbacks.probe.output_dir=${paths.output_dir}",
        ],
    )
    [job] = job_folders(sweep).values()
    # the two ranks are the two tasks SLURM started (Lightning launched no process of its own)
    [script] = sweep.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --ntasks-per-node=2" in script.read_text()
    logs = sorted(sweep.glob(".submitit/*/*_log.err"))
    assert len(logs) == 2, "one log per SLURM task"
    check_gathered_once(job)
    check_equals_single_process(job, cache, tmp_path / "eval")
