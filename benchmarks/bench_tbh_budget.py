"""TBH at the released training budget: one ``hashing.train`` run per (method, bits, seed).

Every job is ``python -m hashing.train experiment=tbh_fc7`` with the released critic BCE
(``method.critic_probability_clip=1e-7``) on the features in ``--features``, for
``--iterations`` batches (``trainer.max_steps`` = 2 x iterations: Lightning counts both
optimisers), validation every ``--val-every-epochs`` epochs, in its own folder
``<work>/<method>/<bits>/seed<seed>`` (docs/tbh_reproduction.md#released-budget):

- no folder: the job is started;
- a folder whose run is unfinished (no ``metrics.json``, or an interruption/failure marker) is
  resumed, ``python -m hashing.train resume=<folder> trainer.max_steps=<2 x iterations>``
  (docs/resume.md), so the study extends across sessions;
- a finished run with fewer than 2 x iterations optimiser steps in its ``last.ckpt`` is trained
  on to the budget with the same resume plus ``trainer.max_epochs=<iterations>`` (a finished run
  is only extended when the epoch limit is raised; ``max_steps`` then binds);
- a folder whose ``train.log`` changed in the last ``--busy-minutes`` is being trained by
  another process: left alone.

Jobs run one after another in this process's foreground (start it with nohup), each with
``--threads`` BLAS threads and its output in ``<work>/logs/``. ``--dry-run``
prints what it would do.

``--collect`` writes ``benchmarks/results/tbh_budget.json`` from whatever folders exist, finished or
not: each job's validation curve from its CSV log (``csv/metrics.part*.csv`` of earlier attempts,
then ``csv/metrics.csv``): ``val/mAP@1000`` and ``val/dead_bits`` against iterations (a validation
row's epoch + 1 times the batches per epoch: validation runs at an epoch's end), and its test
metrics once finished; an unfinished job's best checkpoint so far, and every job's last model
(``last.ckpt``, what the released code tests), are tested by ``python -m hashing.eval`` (once per
checkpoint, under ``<work>/evaluations/``; ``--no-eval`` skips it), so a study stopped before the
budget still has test-protocol numbers. Beside them, on the same split and
the same queries: the training-free floors LSH, PCA-sign and ITQ (``benchmarks/floor_rows.py``,
fitted on the fit split), the untrained TBH network of each seed (built as ``hashing.train`` builds
it) and the float k-NN ceiling, each on the validation protocol (5,000 validation queries against
the 45,000 fit items, what ``val/*`` measures) and on the test protocol (10,000 test queries against
the 50,000 training images); cached in ``<work>/floors.json``. It renders the table (mean ± std over
seeds at the latest iteration every seed of a (method, bits) has reached), the last models'
test paired by seed (supervised against unsupervised TBH, each against ITQ; paired t-test) and
``docs/img/tbh_budget_curve.png``.

    nohup python -m benchmarks.bench_tbh_budget --work /work/runs/tbh26 > budget.log &
    python -m benchmarks.bench_tbh_budget --work /work/runs/tbh26 --dry-run
    python -m benchmarks.bench_tbh_budget --work /work/runs/tbh26 --collect
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from benchmarks.results_io import Provenance  # noqa: E402
from benchmarks.sweep_runs import run_training  # noqa: E402
from hashing.runs.atomic import atomic_path, write_json_atomic  # noqa: E402
from hashing.runs.status import FAILED, INTERRUPTED, METRICS  # noqa: E402

FEATURES = (ROOT.parent / "shared" / "data" / "cifar10_efficientnet_lite0_128.npz").resolve()
METHODS = ("tbh", "tbh_supervised")
CLIP = "method.critic_probability_clip=1e-7"
VAL_MAP, VAL_DEAD = "val/mAP@1000", "val/dead_bits"
TEST_KEYS = ("test/mAP@1000", "test/mAP@ALL", "test/mAP@100", "test/dead_bits")
K = 1000
FLOOR_LABELS = ("LSH", "PCA-sign", "ITQ")
PLOT = ROOT / "docs" / "img" / "tbh_budget_curve.png"


@dataclass(frozen=True)
class Job:
    """One (method, bits, seed) of the study and its folder."""

    method: str
    bits: int
    seed: int
    folder: Path

    @property
    def name(self) -> str:
        return f"{self.method}/{self.bits}/seed{self.seed}"


def jobs(work: Path, methods: list[str], bits: list[int], seeds: list[int]) -> list[Job]:
    """Every (method, bits, seed) of the study, in ``<work>/<method>/<bits>/seed<seed>``."""
    return [
        Job(m, b, s, work / m / str(b) / f"seed{s}") for m in methods for b in bits for s in seeds
    ]


def found_jobs(work: Path) -> list[Job]:
    """The jobs whose folders exist under ``work`` (symbolic links followed)."""
    found = []
    for folder in sorted(work.glob("*/*/seed*")):
        method, bits, seed = folder.parent.parent.name, folder.parent.name, folder.name[4:]
        if bits.isdigit() and seed.isdigit() and (folder / "config_resolved.yaml").is_file():
            found.append(Job(method, int(bits), int(seed), folder))
    return sorted(found, key=lambda j: (j.method, j.bits, j.seed))


# --- running ------------------------------------------------------------------------------
def optimiser_steps(folder: Path) -> int:
    """``global_step`` of the run's ``last.ckpt`` (both optimisers' steps), 0 without one."""
    from hashing.runs.checkpoint_file import read_checkpoint

    checkpoint = folder / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        return 0
    return int(read_checkpoint(checkpoint, "resume", mmap=True).get("global_step", 0))


def finished(folder: Path) -> bool:
    """Tested, and no interruption or failure marker (docs/resume.md)."""
    markers = (folder / name for name in (INTERRUPTED, FAILED))
    return (folder / METRICS).is_file() and not any(m.exists() for m in markers)


def busy(folder: Path, minutes: float) -> bool:
    """Whether another process is training in ``folder`` (its log changed recently)."""
    log = folder / "train.log"
    return log.is_file() and time.time() - log.stat().st_mtime < 60 * minutes


def plan(job: Job, args: argparse.Namespace) -> tuple[str, list[str] | None]:
    """What to do with ``job``: (state, the ``hashing.train`` arguments, or None to skip)."""
    steps = 2 * args.iterations
    folder = job.folder
    if not (folder / "config_resolved.yaml").is_file():
        return "new", [
            "experiment=tbh_fc7",
            f"method={job.method}",
            CLIP,
            f"data.path={args.features}",
            f"bits={job.bits}",
            f"seed={job.seed}",
            f"trainer.max_steps={steps}",
            f"trainer.check_val_every_n_epoch={args.val_every_epochs}",
            *args.extra,
            f"hydra.run.dir={folder}",
        ]
    if busy(folder, args.busy_minutes):
        return "running elsewhere", None
    if not (folder / "checkpoints" / "last.ckpt").is_file():
        return "no checkpoint (stopped in its first epoch): remove the folder to restart", None
    resume = [f"resume={folder}", f"trainer.max_steps={steps}"]
    if not finished(folder):
        return "unfinished", resume
    done = optimiser_steps(folder)
    if done >= steps:
        return f"finished ({done // 2} iterations)", None
    return f"finished at {done // 2} iterations: extending", [
        *resume,
        f"trainer.max_epochs={args.iterations}",
    ]


def run_jobs(args: argparse.Namespace) -> None:
    """Start, resume or extend every job of the study, one at a time."""
    for job in jobs(args.work, args.methods, args.bits, args.seeds):
        state, command = plan(job, args)
        line = "" if command is None else " ".join(["python -m hashing.train", *command])
        print(f"{job.name}: {state}{' -> ' + line if line else ''}", flush=True)
        if command is None or args.dry_run:
            continue
        job.folder.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        log = args.work / "logs" / f"{job.method}_{job.bits}_seed{job.seed}_{stamp}.log"
        outcome = run_training(command, log, args.threads)
        hours = outcome["wall_seconds"] / 3600
        print(f"{job.name}: {outcome.get('error', 'done')} ({hours:.2f} h, log {log})", flush=True)


# --- collecting -----------------------------------------------------------------------------
def csv_files(folder: Path) -> list[Path]:
    """The run's CSV logs, oldest attempt first (``metrics.part<N>.csv``, then ``metrics.csv``)."""
    parts = sorted(
        (folder / "csv").glob("metrics.part*.csv"),
        key=lambda p: int(p.stem.removeprefix("metrics.part") or 0),
    )
    current = folder / "csv" / "metrics.csv"
    return [*parts, *([current] if current.is_file() else [])]


def _number(text: str | None) -> float | None:
    return None if text in (None, "") else float(text)


def epoch_end(folder: Path) -> Callable[[int], int]:
    """The iteration at the end of an epoch (``(epoch + 1) x batches per epoch``, capped at the
    run's budget: the last epoch may stop early), from the run's split file (``fit``) and its
    ``config_resolved.yaml`` (batch size, ``drop_last``, ``max_steps``)."""
    import numpy as np
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(folder / "config_resolved.yaml")
    (split,) = (p for p in folder.glob("*.npz") if "fit" in np.load(p).files)
    count, batch = len(np.load(split)["fit"]), int(cfg.data.batch_size)
    per_epoch = count // batch if cfg.data.get("drop_last") else -(-count // batch)
    budget = int(cfg.trainer.max_steps) // 2
    return lambda epoch: min((epoch + 1) * per_epoch, budget)


def curve(folder: Path) -> tuple[list[dict[str, float]], int]:
    """Validation rounds ``{"iteration", "map", "dead_bits"}`` by iteration (a later attempt's
    row replaces an earlier one's), and the iterations trained so far by the CSV.

    A row's iteration is its epoch's end (:func:`epoch_end`): validation and the per-epoch
    training values are logged at the end of an epoch. (The CSV's ``step`` column is not used:
    it is one higher after a resume.)
    """
    iteration_of = epoch_end(folder)
    rounds: dict[int, dict[str, float]] = {}
    trained = 0
    for path in csv_files(folder):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("epoch") in (None, ""):
                    continue
                iteration = iteration_of(int(row["epoch"]))
                if _number(row.get("train/loss")) is not None:
                    trained = max(trained, iteration)
                value = _number(row.get(VAL_MAP))
                if value is not None:
                    dead = _number(row.get(VAL_DEAD))
                    rounds[iteration] = {"iteration": iteration, "map": value, "dead_bits": dead}
    return [rounds[i] for i in sorted(rounds)], trained


def best_checkpoint(folder: Path) -> Path | None:
    """The run's best-so-far checkpoint (``epoch_<n>.ckpt``: ``save_top_k`` is 1), None without
    one; the latest epoch if an older one was left behind."""
    found = sorted((folder / "checkpoints").glob("epoch_*.ckpt"))
    return found[-1] if found else None


def checkpoint_test(
    job: Job, work: Path, threads: int, checkpoint: Path | None = None
) -> dict[str, Any] | None:
    """Test metrics of one of a job's checkpoints (default its best so far), by ``python -m
    hashing.eval`` (the run's own data, split and protocol), evaluated once per checkpoint into
    ``<work>/evaluations/<method>_<bits>_seed<seed>_<epoch_N | last_<iterations>>/``: for the
    best checkpoint, what the run would report as its test if it stopped now (``test_ckpt:
    best``); for ``last.ckpt``, the model after the last iteration, which is what the released
    code tests. None without the checkpoint or when the evaluation fails (its log says why)."""
    checkpoint = checkpoint or best_checkpoint(job.folder)
    if checkpoint is None or not checkpoint.is_file():
        return None
    if checkpoint.name == "last.ckpt":
        iteration = optimiser_steps(job.folder) // 2
        name = f"last_{iteration}"
    else:
        iteration = epoch_end(job.folder)(int(checkpoint.stem.split("_")[1]))
        name = checkpoint.stem
    out = work / "evaluations" / f"{job.method}_{job.bits}_seed{job.seed}_{name}"
    if not (out / METRICS).is_file():
        print(f"{job.name}: testing {checkpoint.name} (python -m hashing.eval)", flush=True)
        outcome = run_training(
            [f"ckpt_path={checkpoint.resolve()}", f"hydra.run.dir={out.resolve()}"],
            out.with_suffix(".log"),
            threads,
            module="hashing.eval",
        )
        if "error" in outcome:
            print(f"{job.name}: {outcome['error']} (log {out.with_suffix('.log')})", flush=True)
            return None
    metrics = json.loads((out / METRICS).read_text())
    return {
        "checkpoint": checkpoint.name,
        "iteration": iteration,
        **{k: metrics[k] for k in TEST_KEYS if k in metrics},
    }


def job_record(job: Job, work: Path | None = None, threads: int = 1) -> dict[str, Any]:
    """A job's curve, state and test metrics: its own when finished; otherwise, with ``work``,
    its best checkpoint's so far (:func:`checkpoint_test`, under ``"test_so_far"``). With
    ``work``, also its last model's (``"test_last"``), finished or not."""
    rounds, trained = curve(job.folder)
    record: dict[str, Any] = {
        "method": job.method,
        "bits": job.bits,
        "seed": job.seed,
        "folder": str(job.folder),
        "finished": finished(job.folder),
        "iterations_trained": trained,
        "val": rounds,
    }
    if record["finished"]:
        metrics = json.loads((job.folder / METRICS).read_text())
        record["test"] = {k: metrics[k] for k in TEST_KEYS if k in metrics}
    elif work is not None:
        so_far = checkpoint_test(job, work, threads)
        if so_far is not None:
            record["test_so_far"] = so_far
    if work is not None:
        last = checkpoint_test(job, work, threads, job.folder / "checkpoints" / "last.ckpt")
        if last is not None:
            record["test_last"] = last
    return record


def at_iteration(rounds: list[dict[str, float]], iteration: int) -> dict[str, float] | None:
    """The validation round at exactly ``iteration`` (None if the job has none there)."""
    return next((r for r in rounds if r["iteration"] == iteration), None)


def mean_std(values: list[float]) -> str:
    """``mean ± std`` (sample std; the mean alone for one value)."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, bits): the latest iteration every seed reached, and the values there."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["method"], record["bits"]), []).append(record)
    rows = []
    for (method, bits), members in sorted(groups.items()):
        common = sorted(
            set.intersection(*({r["iteration"] for r in m["val"]} for m in members)) or {0}
        )[-1]
        at = [at_iteration(m["val"], common) for m in members]
        tests = [
            m["test"]["test/mAP@1000"] for m in members if "test/mAP@1000" in m.get("test", {})
        ]
        so_far = [m["test_so_far"] for m in members if "test/mAP@1000" in m.get("test_so_far", {})]
        last = [m["test_last"] for m in members if "test/mAP@1000" in m.get("test_last", {})]
        rows.append(
            {
                "method": method,
                "bits": bits,
                "seeds": [m["seed"] for m in members],
                "iteration": common if any(at) else None,
                "val_map": [a["map"] for a in at if a],
                "val_dead_bits": [a["dead_bits"] for a in at if a and a["dead_bits"] is not None],
                "test_map": tests,
                "test_map_so_far": [t["test/mAP@1000"] for t in so_far],
                "test_iterations_so_far": [t["iteration"] for t in so_far],
                "test_map_last": [t["test/mAP@1000"] for t in last],
                "test_iterations_last": [t["iteration"] for t in last],
                "finished": sum(m["finished"] for m in members),
            }
        )
    return rows


def with_iterations(values: list[float], iterations: list[int]) -> str:
    """``mean ± std (first-last)``: the values and the iterations they were measured at."""
    text = mean_std(values)
    if iterations:
        first, last = min(iterations), max(iterations)
        text += f" ({first:,})" if first == last else f" ({first:,}-{last:,})"
    return text


def markdown(rows: list[dict[str, Any]], floors: dict[str, Any]) -> str:
    """The results table: the jobs at their latest common iteration, then the references."""
    lines = [
        "| method | bits | seeds (finished) | iteration | val mAP@1000 | val dead bits "
        "| test mAP@1000 (finished) | test mAP@1000 so far (iterations) "
        "| test mAP@1000, last model (iterations) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        iteration = "–" if row["iteration"] is None else f"{row['iteration']:,}"
        dead = mean_std(row["val_dead_bits"]).replace(".0000", "")
        so_far = with_iterations(row["test_map_so_far"], row["test_iterations_so_far"])
        last = with_iterations(row["test_map_last"], row["test_iterations_last"])
        lines.append(
            f"| {row['method']} | {row['bits']} | {len(row['seeds'])} ({row['finished']}) | "
            f"{iteration} | {mean_std(row['val_map'])} | {dead} | {mean_std(row['test_map'])} "
            f"| {so_far} | {last} |"
        )
    for label in (*FLOOR_LABELS, "untrained TBH"):
        for bits, entry in sorted(floors.get(label, {}).items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| {label} | {bits} | {len(entry['val'])} | – | {mean_std(entry['val'])} | – | "
                f"{mean_std(entry['test'])} | – | – |"
            )
    ceiling = floors.get("float")
    if ceiling:
        lines.append(
            f"| float k-NN (ceiling) | – | – | – | {ceiling['val'][0]:.4f} | – | "
            f"{ceiling['test'][0]:.4f} | – | – |"
        )
    return "\n".join(lines)


PAIRS = (("tbh_supervised", "tbh"), ("tbh", "ITQ"), ("tbh_supervised", "ITQ"))


def last_model_map(record: dict[str, Any]) -> float | None:
    """A job's test mAP@1000 for the paired comparisons: its last model's (the released code
    tests the model after the last iteration; the best-checkpoint monitor, validation mAP@ALL,
    can peak thousands of iterations before mAP@1000 does)."""
    return record.get("test_last", {}).get("test/mAP@1000")


def paired_rows(records: list[dict[str, Any]], floors: dict[str, Any]) -> list[dict[str, Any]]:
    """Test mAP@1000 of the last models (:func:`last_model_map`) paired by seed, per code
    length, for each pair in ``PAIRS`` with at least one common seed: supervised against
    unsupervised TBH (from the same seed), and each against ITQ (its rotation initialised from
    that seed). Per-seed differences ``a - b`` and the two-sided paired t-test's p
    (``bench_pretrained.paired``)."""
    from benchmarks.bench_pretrained import paired

    values: dict[tuple[str, int], dict[int, float]] = {}
    for record in records:
        value = last_model_map(record)
        if value is not None:
            values.setdefault((record["method"], record["bits"]), {})[record["seed"]] = value
    for label in FLOOR_LABELS:
        for bits, entry in floors.get(label, {}).items():
            if entry.get("test"):
                values[(label, int(bits))] = dict(zip(entry["seeds"], entry["test"], strict=True))
    rows = []
    for bits in sorted({b for (_, b) in values}):
        for a, b in PAIRS:
            x, y = values.get((a, bits), {}), values.get((b, bits), {})
            if not set(x) & set(y):
                continue
            diffs, p = paired(list(x.values()), list(y.values()), list(x), list(y))
            rows.append(
                {
                    "bits": bits,
                    "a": a,
                    "b": b,
                    "seeds": sorted(set(x) & set(y)),
                    "differences": diffs,
                    "a_wins": sum(d > 0 for d in diffs),
                    "t_test_p": p,
                }
            )
    return rows


def paired_markdown(rows: list[dict[str, Any]]) -> str:
    """The paired comparisons as a Markdown table."""
    lines = [
        "| bits | a vs b | seeds | a − b per seed | mean a − b | a wins | paired t-test p |",
        "|---:|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        per_seed = ", ".join(f"{d:+.4f}" for d in row["differences"])
        p = "–" if row["t_test_p"] is None else f"{row['t_test_p']:.2g}"
        lines.append(
            f"| {row['bits']} | {row['a']} vs {row['b']} | {row['seeds']} | {per_seed} | "
            f"{statistics.mean(row['differences']):+.4f} | {row['a_wins']}/{len(row['seeds'])} "
            f"| {p} |"
        )
    return "\n".join(lines)


# --- floors ----------------------------------------------------------------------------------
def floors_of(features: Path, bits: list[int], seeds: list[int], cache: Path) -> dict[str, Any]:
    """mAP@1000 of the floors, the untrained networks and the ceiling on the validation and the
    test protocol, ``{label: {bits: {"val": [per seed], "test": [...]}}}`` (``"float"``: one
    value each). Each part (untrained networks, each protocol's floors) is saved in ``cache``
    as soon as it is computed, and only what ``cache`` lacks for these bits and seeds is
    computed."""
    stored = json.loads(cache.read_text()) if cache.is_file() else {}
    key = f"{features.resolve()} bits={bits} seeds={seeds}"
    entry = stored.setdefault(key, {"done": []})

    def save() -> None:
        write_json_atomic(cache, stored)

    if len(entry["done"]) < 3:
        compute_floors(features, bits, seeds, entry, save)
    return {k: v for k, v in entry.items() if k != "done"}


def compute_floors(
    features: Path, bits: list[int], seeds: list[int], entry: dict[str, Any], save: Any
) -> None:
    """Fill ``entry`` with the parts of :func:`floors_of` not in ``entry["done"]``."""
    import tempfile

    import torch

    from benchmarks import bench_training
    from benchmarks.floor_rows import FLOORS, datamodule_of, floor_codes, split_features
    from hashing.baselines import float_average_precision
    from hashing.metrics import mean_average_precisions

    overrides = ["experiment=tbh_fc7", f"data.path={features}"]
    protocols = {"val": ("fit", "val_query", "fit"), "test": ("fit", "query", "database")}

    def map1000(query: Any, database: Any, name: str) -> float:
        (_, q, db) = protocols[name]
        return float(mean_average_precisions(query, database, data[q][1], data[db][1], (K,))[K])

    with tempfile.TemporaryDirectory() as tmp:
        datamodule = datamodule_of(overrides, Path(tmp) / "splits")
        split_dir = f"data.split_dir={Path(tmp) / 'splits'}"
        data = split_features(datamodule, ("fit", "val_query", "query", "database"))
        if "untrained" not in entry["done"]:
            for length in bits:
                cell = entry.setdefault("untrained TBH", {})[str(length)] = {"seeds": list(seeds)}
                for seed in seeds:
                    folder = Path(tmp) / f"untrained{length}_{seed}"
                    cfg = bench_training.compose_case(
                        [*overrides, "method=tbh", f"bits={length}", f"seed={seed}", split_dir],
                        1,
                        folder,
                    )
                    _, model, _ = bench_training.build(cfg, folder)
                    model.eval()
                    with torch.no_grad():
                        codes = {k: model.encode(x) for k, (x, _) in data.items()}
                    for name, (_, query, database) in protocols.items():
                        value = map1000(codes[query], codes[database], name)
                        cell.setdefault(name, []).append(value)
            entry["done"].append("untrained")
            save()
            print("untrained networks done", flush=True)
        for name, (train, query, database) in protocols.items():
            if name in entry["done"]:
                continue
            for label, projection in FLOORS:
                for length in bits:
                    used = list(seeds[:1]) if projection == "pcah" else list(seeds)
                    cell = entry.setdefault(label, {}).setdefault(str(length), {"seeds": used})
                    cell[name] = [
                        map1000(
                            *floor_codes(
                                data[train][0], data[query][0], data[database][0],
                                projection, length, seed,
                            ),
                            name,
                        )
                        for seed in used
                    ]  # fmt: skip
            ap = float_average_precision(
                data[query][0], data[database][0], data[query][1], data[database][1], (K,)
            )
            entry.setdefault("float", {})[name] = [float(ap.mean())]
            entry["done"].append(name)
            save()
            print(f"floors on the {name} protocol done", flush=True)


# --- the plot --------------------------------------------------------------------------------
def plot(records: list[dict[str, Any]], floors: dict[str, Any], out: Path) -> None:
    """val mAP@1000 (top) and val dead bits (bottom) against iterations, one column per code
    length, every job a line; the validation floors and ceiling as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted({r["bits"] for r in records}) or [32]
    fig, axes = plt.subplots(2, len(lengths), figsize=(4.2 * len(lengths), 6), squeeze=False)
    colours = {"tbh": "tab:blue", "tbh_supervised": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    references = {"ITQ": "tab:green", "LSH": "tab:gray", "untrained TBH": "tab:purple"}
    for column, bits in enumerate(lengths):
        top, bottom = axes[0][column], axes[1][column]
        for record in (r for r in records if r["bits"] == bits):
            x = [v["iteration"] for v in record["val"]]
            label = f"{record['method']} seed {record['seed']}"
            style = {
                "color": colours.get(record["method"], "black"),
                "linestyle": styles[record["seed"] % len(styles)],
                "marker": "." if len(x) < 30 else None,
            }
            top.plot(x, [v["map"] for v in record["val"]], label=label, **style)
            bottom.plot(x, [v["dead_bits"] for v in record["val"]], **style)
        for name, colour in references.items():
            values = floors.get(name, {}).get(str(bits), {}).get("val")
            if values:
                top.axhline(statistics.mean(values), color=colour, lw=1, label=name)
        if floors.get("float"):
            top.axhline(floors["float"]["val"][0], color="black", lw=1, label="float k-NN")
        top.set_title(f"{bits} bits")
        top.set_ylabel("val mAP@1000")
        bottom.set_ylabel("val dead bits")
        bottom.set_xlabel("iterations (batches of 400)")
    legend = {}  # one figure legend below the panels, each label once
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0.04 + 0.025 * -(-len(legend) // 5), 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as partial:
        fig.savefig(partial, dpi=100, format="png")
    plt.close(fig)


def collect(args: argparse.Namespace) -> None:
    """Build ``tbh_budget.json`` and the plot from the job folders under ``--work``."""
    provenance = Provenance(args.out, "benchmarks/bench_tbh_budget.py", args, seeds=args.seeds)
    work = None if args.no_eval else args.work
    records = [job_record(job, work, args.threads) for job in found_jobs(args.work)]
    floors = {} if args.no_floors else floors_of(args.features, args.bits, args.seeds, args.floors)
    rows = summary_rows(records)
    table = markdown(rows, floors)
    pairs = paired_rows(records, floors)
    paired_table = paired_markdown(pairs)
    print(table, paired_table, sep="\n\n")
    plot(records, floors, args.plot)
    print(f"written {args.plot}")
    notes = [
        "val: 5,000 validation queries against the 45,000 fit items; test: 10,000 test queries "
        "against the 50,000 training images (data.protocol=official). mAP@1000, stable order.",
        "A row's iteration is the latest validation round every one of its seeds reached; "
        "test (finished): the finished seeds' own test (best validation checkpoint); test so "
        "far: each unfinished seed's best validation checkpoint so far, tested by "
        "python -m hashing.eval (the iterations it was saved at); last model: every job's "
        "last.ckpt, tested the same way (the released code tests the model after the last "
        "iteration).",
    ]
    paired_notes = [
        "Test mAP@1000 (10,000 test queries against the 50,000 training images) paired by seed: "
        "each job's last model (the table above gives its iterations); ITQ's seed initialises "
        "its rotation. p: two-sided paired t-test (– with fewer than 2 pairs).",
    ]
    provenance.write(
        {
            "main": {"markdown": table, "notes": notes},
            "paired": {"markdown": paired_table, "notes": paired_notes},
        },
        jobs=records,
        summary=rows,
        floors=floors,
        paired=pairs,
    )
    print(f"written {args.out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="the study's folder")
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=100_000, help="released: 100,000")
    parser.add_argument("--val-every-epochs", type=int, default=9)
    parser.add_argument("--busy-minutes", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per job")
    parser.add_argument(
        "--extra", nargs="*", default=[], help="more overrides for new jobs (e.g. trainer=gpu)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--collect", action="store_true", help="results and plot, no training")
    parser.add_argument("--no-floors", action="store_true", help="collect without the floors")
    parser.add_argument(
        "--no-eval",
        action="store_true",
        help="collect without testing checkpoints (unfinished jobs' best so far, last models)",
    )
    parser.add_argument("--floors", type=Path, default=None, help="default <work>/floors.json")
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "tbh_budget.json"
    )
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.val_every_epochs < 1:
        parser.error("--iterations and --val-every-epochs must be positive")
    if not args.features.is_file():
        parser.error(
            f"--features {args.features} is not a file: pass the features the jobs train on"
        )
    if args.collect and not found_jobs(args.work):
        parser.error(f"--work {args.work}: no job folders (<method>/<bits>/seed<seed>) to collect")
    args.floors = args.floors or args.work / "floors.json"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.collect:
        collect(args)
    else:
        run_jobs(args)


if __name__ == "__main__":
    main()
