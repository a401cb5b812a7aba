"""SHC's claim on many classes: CSQ vs MDS vs SHC (reference solver) vs SHC (local search).

Runs the real pipeline (``python -m hashing.train -m ...``, one Hydra multirun per dataset and
method: all bits x seeds) on the pretrained CIFAR-10 features (../shared/data, EfficientNet-
Lite0, 1280-d; ``backbone=mlp``), and reads each job's ``metrics.json`` and centers:

* ``pairs``: ``data=cifar10_pairs``, the 100-class composite (two images' features side by
  side, class = the ordered pair of objects; 1,000 queries, 20,000 database, 5,000 train);
* ``cifar10``: ``data=features``, CIFAR-10 itself (10,000 queries, 50,000 train = database);
  ``--cifar-per-class Q T D`` instead writes a subset file into the work folder (the first
  ``Q`` test and ``D`` train rows of every class; the first ``T`` of those ``D`` train), e.g.
  ``100 500 2000``: 1,000 queries, 5,000 train, 20,000 database, the composite's sizes;
* ``mnist_pairs`` (not in the default list): ``data=mnist_pairs`` on raw MNIST images.

Center quality columns for every method, against the class similarity ``S`` of SHC's stage 1
(same seed): fit loss, Spearman(s_ij, h_i·h_j), the AUC of center similarity for class pairs
sharing an object (composites), whether SHC's centers equal their MDS start and how many
updates its solver accepted. ``mds_refined`` is MDS with ``refine_feasible_start=true`` (the
behaviour before MDS kept a feasible CSQ start as the reference does). Floor and ceiling rows
(``benchmarks/floor_rows.py``): LSH, PCA-sign and ITQ fitted on the training split's input
features, and exact Euclidean ranking of the float features. Prints a Markdown
table, writes JSON to ``benchmarks/results/shc_solvers.json``.

    python benchmarks/bench_shc_solvers.py [--datasets pairs cifar10] [--seeds 0 1 2]
        [--bits 16 32 64] [--epochs 10] [--work .cache/bench_shc_solvers]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.floor_rows import CEILING, FLOORS, datamodule_of  # noqa: E402
from benchmarks.floor_rows import reference_rows as floor_reference_rows  # noqa: E402
from benchmarks.results_io import Provenance  # noqa: E402
from benchmarks.sweep_runs import (  # noqa: E402
    job_bits_seed,
    mean_std,
    multirun_command,
    run_multirun,
    write_report,
)

SHARED = ROOT.parent / "shared" / "data"
FEATURES = SHARED / "cifar10_efficientnet_lite0_128.npz"
#: SHC methods first: their stage 1 writes the S every method's center quality is scored on
METHODS = ("shc_local_search", "shc_reference", "mds", "mds_refined", "csq")
METRICS = ("mAP@100", "mAP@1000", "mAP@ALL")
QUALITY = ("fit_loss", "spearman", "group_auc")


def cifar_subset(path: Path, per_class: list[int]) -> Path:
    """Write the per-class subset of the features file (see the module doc) to ``path``."""
    import numpy as np

    if path.is_file():
        return path
    queries, train, database = per_class
    with np.load(FEATURES, allow_pickle=False) as data:
        arrays = {k: data[k] for k in ("train_x", "train_y", "test_x", "test_y")}

    def first(labels: np.ndarray, count: int) -> np.ndarray:
        return np.concatenate([np.flatnonzero(labels == c)[:count] for c in np.unique(labels)])

    q = first(arrays["test_y"], queries)
    d = first(arrays["train_y"], database)
    t = first(arrays["train_y"][d], train)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        train_x=arrays["train_x"][d][t], train_y=arrays["train_y"][d][t],
        test_x=arrays["test_x"][q], test_y=arrays["test_y"][q],
        database_x=arrays["train_x"][d], database_y=arrays["train_y"][d],
    )  # fmt: skip
    return path


def dataset_overrides(name: str, cifar_file: Path = FEATURES) -> list[str]:
    """Data and backbone overrides of one benchmark dataset."""
    common = [f"paths.shared_data_dir={SHARED}", "backbone=mlp", "data.batch_size=128"]
    if name == "pairs":
        return ["data=cifar10_pairs", *common]
    if name == "mnist_pairs":
        return ["data=mnist_pairs", *common]
    if name == "cifar10":
        name = "cifar10_effnet" if cifar_file == FEATURES else f"cifar10_effnet_{cifar_file.stem}"
        return ["data=features", f"data.path={cifar_file}", f"data.name={name}", *common]
    raise ValueError(f"dataset {name!r} unknown; expected pairs, cifar10 or mnist_pairs")


def method_overrides(method: str, epochs: int) -> list[str]:
    """csq / mds as configured (``mds_refined``: a feasible start is swept anyway); SHC with
    its classifier trained as long as the hashing net."""
    if method in ("csq", "mds"):
        return [f"method={method}"]
    if method == "mds_refined":
        return ["method=mds", "method.center_source.refine_feasible_start=true"]
    solver = {"shc_reference": "reference", "shc_local_search": "local_search"}.get(method)
    if solver is None:
        raise ValueError(f"method {method!r} unknown; expected one of {METHODS}")
    return [
        "method=shc",
        f"method/solver={solver}",
        f"method.center_source.classifier.max_epochs={epochs}",
        "method.center_source.figures=false",
    ]


def sweep(dataset: str, method: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one multirun (all bits x seeds) unless its results exist."""
    sweep_dir = work / "runs" / dataset / method
    overrides = [
        *dataset_overrides(dataset, args.cifar_file), *method_overrides(method, args.epochs),
        f"trainer.max_epochs={args.epochs}", f"trainer.check_val_every_n_epoch={args.epochs}",
        f"bits={','.join(map(str, args.bits))}", f"seed={','.join(map(str, args.seeds))}",
        "logger=csv", "callbacks.progress_bar.refresh_rate=0",
        "callbacks.retrieval_evaluation.curves=false", f"paths.cache_dir={work / 'cache'}",
        f"hydra.sweep.dir={sweep_dir}", "tags=[bench_shc_solvers]",
    ]  # fmt: skip
    log_path = work / "logs" / f"{dataset}_{method}.log"
    expected = len(args.bits) * len(args.seeds)
    seconds = run_multirun(f"{dataset} {method}", overrides, sweep_dir, log_path, 1, expected)
    return {
        "dir": sweep_dir,
        "command": multirun_command(overrides),
        "seconds": seconds,
    }


def related_pairs(num_classes: int) -> torch.Tensor | None:
    """Pair classes sharing an object (the composites' known groups); None for 10 classes."""
    k = math.isqrt(num_classes)
    if k * k != num_classes or num_classes < 16:
        return None
    a, b = torch.arange(num_classes) // k, torch.arange(num_classes) % k
    related = (a[:, None] == a[None, :]) | (b[:, None] == b[None, :])
    related.fill_diagonal_(False)
    return related


def read_job(job: Path, similarities: dict[int, torch.Tensor]) -> dict[str, Any]:
    """Bits, seed, test metrics and center quality of one job folder."""
    from hashing.centers.quality import center_quality

    bits, seed = job_bits_seed(job)
    metrics = json.loads((job / "metrics.json").read_text())
    stats = json.loads((job / "center_stats.json").read_text())
    centers = torch.load(job / "centers.pt", weights_only=True)
    if (job / "similarity.pt").is_file():
        similarities.setdefault(seed, torch.load(job / "similarity.pt", weights_only=True))
    record: dict[str, Any] = {
        "bits": bits,
        "seed": seed,
        "metrics": {m: metrics[f"test/{m}"] for m in METRICS},
        "center_min_distance": stats["min"],
        "center_mean_distance": stats["mean"],
    }
    for key in ("equals_start", "accepted_updates", "best_epoch", "initial_fit_loss"):
        if key in stats:
            record[key] = stats[key]
    if seed in similarities:
        sim = similarities[seed]
        record["quality"] = center_quality(sim, centers, related_pairs(sim.shape[0]))
    return record


def reference_rows(dataset: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The training-free floors (LSH, PCA-sign, ITQ per bits, over seeds; fitted on the
    training split) and the float features (ceiling) on the test split."""
    overrides = dataset_overrides(dataset, args.cifar_file)
    datamodule = datamodule_of(overrides, args.work / "cache" / "splits")
    rows: dict[str, dict[str, Any]] = {}
    for row in floor_reference_rows(datamodule, args.bits, args.seeds):
        count = len(row["values"]["mAP@ALL"])
        per_seed = [{m: row["values"][m][i] for m in METRICS} for i in range(count)]
        key = "float" if row["method"] == CEILING else f"{row['method']}/{row['bits']}"
        rows[key] = summarise(per_seed)
    return rows


def summarise(values: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation over seeds of every key present in all entries."""
    out: dict[str, dict[str, float]] = {}
    for key in values[0]:
        column = [v[key] for v in values if v.get(key) is not None]
        if not column or any(isinstance(c, float) and math.isnan(c) for c in column):
            continue
        out[key] = mean_std(column)
    return out


def job_row(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of one (dataset, bits, method) over seeds: metrics, quality, solver counters."""
    flat = []
    for job in jobs:
        entry = dict(job["metrics"])
        entry.update(job.get("quality", {}))
        for key in ("accepted_updates", "initial_fit_loss"):
            if key in job:
                entry[key] = float(job[key])
        if "equals_start" in job:
            entry["equals_start"] = float(job["equals_start"])
        flat.append(entry)
    return summarise(flat)


def cell(summary: dict[str, Any], key: str, digits: int = 4) -> str:
    """``mean ± std`` of ``key``, or a dash."""
    if key not in summary:
        return "-"
    return f"{summary[key]['mean']:.{digits}f} ± {summary[key]['std']:.{digits}f}"


def markdown(results: dict[str, Any], floors: dict[str, Any]) -> str:
    """One row per (dataset, bits, method), with the floors' rows per dataset and bits and the
    float row per dataset."""
    lines = [
        "| dataset | bits | method | mAP@100 | mAP@1000 | mAP@ALL | fit loss | Spearman "
        "| group AUC | = start | accepted |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, per_bits in results.items():
        for bits, per_method in per_bits.items():
            rows = dict(per_method)
            for label, _ in FLOORS:
                if f"{label}/{bits}" in floors.get(dataset, {}):
                    rows[f"{label} (floor)"] = floors[dataset][f"{label}/{bits}"]
            for method, s in rows.items():
                start = f"{s['equals_start']['mean']:.2f}" if "equals_start" in s else "-"
                accepted = (
                    f"{s['accepted_updates']['mean']:.0f}" if "accepted_updates" in s else "-"
                )
                lines.append(
                    f"| {dataset} | {bits} | {method} | "
                    + " | ".join(cell(s, m) for m in METRICS)
                    + f" | {cell(s, 'fit_loss')} | {cell(s, 'spearman', 3)} "
                    f"| {cell(s, 'group_auc', 3)} | {start} | {accepted} |"
                )
        if "float" in floors.get(dataset, {}):
            s = floors[dataset]["float"]
            lines.append(
                f"| {dataset} | - | float features (ceiling) | "
                + " | ".join(cell(s, m) for m in METRICS)
                + " | - | - | - | - | - |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["pairs", "cifar10"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--cifar-per-class", nargs=3, type=int, metavar=("Q", "T", "D"), default=None,
        help="cifar10 on a per-class subset: queries, train, database (default: full set)",
    )  # fmt: skip
    parser.add_argument(
        "--no-reference-rows", action="store_true", help="skip the floors and the float row"
    )
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench_shc_solvers")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "shc_solvers.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_shc_solvers.py", args, args.seeds)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    args.cifar_file = FEATURES
    if args.cifar_per_class and "cifar10" in args.datasets:
        tag = "_".join(map(str, args.cifar_per_class))
        args.cifar_file = cifar_subset(
            args.work / f"cifar10_subset_{tag}.npz", args.cifar_per_class
        )
    torch.set_num_threads(1)

    results: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    for dataset in args.datasets:
        similarities: dict[int, torch.Tensor] = {}
        for method in args.methods:
            run = sweep(dataset, method, args.work, args)
            jobs = [read_job(j, similarities) for j in sorted(run["dir"].glob("*/")) if j.is_dir()]
            jobs = [j for j in jobs if j["bits"] in args.bits and j["seed"] in args.seeds]
            runs[f"{dataset}/{method}"] = {**run, "dir": str(run["dir"]), "jobs": jobs}
            for bits in args.bits:
                same = [j for j in jobs if j["bits"] == bits]
                results.setdefault(dataset, {}).setdefault(str(bits), {})[method] = job_row(same)
        if not args.no_reference_rows:
            floors[dataset] = reference_rows(dataset, args)
    total = sum(run["seconds"] for run in runs.values())
    table = markdown(results, floors)
    subset = (
        f"CIFAR-10 per-class subset (queries, train, database) = {args.cifar_per_class}; "
        if args.cifar_per_class
        else ""
    )
    caption = (
        f"SHC solvers, mean ± sample std over seeds {args.seeds}; {subset}backbone=mlp (256) "
        f"on the EfficientNet-Lite0 CIFAR-10 features, {args.epochs} epochs (SHC's classifier the "
        f"same), Adam 1e-3, cosine, batch 128, 1 CPU thread; quality columns against SHC's "
        f"stage-1 S of the same seed; total {total / 60:.1f} min of sweeps."
    )
    write_report(
        provenance,
        table,
        caption,
        results=results,
        reference_rows=floors,
        runs=runs,
        total_seconds=total,
    )


if __name__ == "__main__":
    main()
