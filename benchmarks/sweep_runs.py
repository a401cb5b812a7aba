"""What the sweep benchmarks share: run one Hydra multirun of ``hashing.train`` (or reuse it), or
one training run into its folder, read a job's bits and seed, summarise seeds, and write the
table, caption and raw results as JSON (with their provenance, :mod:`benchmarks.results_io`)."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.results_io import Provenance
from hashing.report.runs import read_run, run_config

ROOT = Path(__file__).resolve().parents[1]


def multirun_command(overrides: list[str]) -> list[str]:
    """``-m hashing.train -m <overrides>``: the sweep's command after the interpreter, as the
    benchmarks record it."""
    return ["-m", "hashing.train", "-m", *overrides]


def run_multirun(
    name: str,
    overrides: list[str],
    sweep_dir: Path,
    log_path: Path,
    threads: int,
    expected: int,
    reuse: bool = True,
) -> float:
    """``python -m hashing.train -m <overrides>`` into ``sweep_dir``; its seconds.

    With ``reuse``, a sweep that ran the same command (``bench_command.json``) and whose
    ``expected`` jobs all left ``metrics.json`` is not run again: its recorded seconds (NaN
    without a record). A failed sweep raises, naming its log.
    """
    timing = sweep_dir / "bench_seconds.txt"
    record = sweep_dir / "bench_command.json"
    command = multirun_command(overrides)
    finished = len(list(sweep_dir.glob("*/metrics.json")))
    same = record.is_file() and json.loads(record.read_text()) == command
    if reuse and same and finished >= expected:
        print(f"[reuse] {sweep_dir}", flush=True)
        return float(timing.read_text()) if timing.is_file() else math.nan
    env = dict(os.environ)
    env.update({key: str(threads) for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env.setdefault("WANDB_MODE", "offline")
    print(f"[run] {name}: {' '.join(overrides)}", flush=True)
    started = time.perf_counter()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        result = subprocess.run(
            [sys.executable, *command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {result.returncode}); see {log_path}")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    timing.write_text(f"{seconds:.1f}")
    record.write_text(json.dumps(command))
    print(f"[done] {name} in {seconds:.0f} s", flush=True)
    return seconds


def run_training(
    overrides: list[str], log_path: Path, threads: int, module: str = "hashing.train"
) -> dict[str, Any]:
    """``python -m <module> <overrides>`` (``hashing.train``, or another entry point such as
    ``hashing.eval``), its output in ``log_path``, ``threads`` BLAS threads:
    ``{"wall_seconds": ...}``, with ``"error"`` (its ``error:`` line, else its last line) when
    it failed."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = str(threads)
    env.setdefault("WANDB_MODE", "offline")
    command = [sys.executable, "-m", module, *overrides]
    started = time.perf_counter()
    with log_path.open("w") as log:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    outcome: dict[str, Any] = {"wall_seconds": time.perf_counter() - started}
    if done.returncode != 0:
        lines = log_path.read_text().strip().splitlines()
        error = [line for line in lines if line.startswith("error:")]
        outcome["error"] = (error or lines[-1:] or ["no output"])[0]
    return outcome


def job_bits_seed(job: Path) -> tuple[int, int]:
    """A job folder's code length and seed, read as the report reads them (its resolved config,
    else Hydra's, so a job that failed early has them too)."""
    run = read_run(job, run_config(job))
    if run.bits is None or run.seed is None:
        raise ValueError(f"{job}: its config names no bits or seed")
    return run.bits, run.seed


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value) and count of one metric over seeds."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": spread, "n": len(values)}


def write_report(provenance: Provenance, table: str, caption: str, **results: Any) -> None:
    """Print the table and caption; write them (table ``main``) with ``results`` and the run's
    provenance (commit, command, seeds, machine, wall time) to its results JSON."""
    print()
    print(table)
    print()
    print(caption)
    path = provenance.write({"main": {"markdown": table, "notes": [caption]}}, **results)
    print(f"wrote {path}")
