"""The center ablation: CSQ vs MDS vs SHC centers, same network and loss
(docs/methods.md#center-methods).

Runs the real pipeline (``python -m hashing.train -m ...``, one Hydra multirun per dataset and
method) and reads each job's ``metrics.json``: mAP@100 / @1000 / @ALL at 16, 32 and 64 bits,
mean and sample standard deviation over seeds, beside the training-free floors (LSH, PCA-sign,
ITQ) and the float k-NN ceiling on the flattened input pixels (``benchmarks/floor_rows.py``).
Prints a Markdown table and writes JSON to ``benchmarks/results/centers_ablation.json``.

    python benchmarks/bench_centers_ablation.py [--seeds 0 1 2] [--bits 16 32 64]
        [--datasets mnist cifar10] [--threads 1] [--work .cache/bench_centers_ablation]

CPU budget (2 shared cores; the defaults below take roughly half an hour):

* ``mnist``: ``data=mnist_shared`` (../shared/data/mnist, protocol mnist: 100 queries and 500
  training images a class, database = the other 64,000), ``backbone=mlp`` (784-256).
* ``cifar10``: ``data=cifar10_folder`` on a *subset* of ../shared/data/cifar10: the first
  third (sorted file names) of every class folder of train/ and test/, i.e. 2,001 images a
  class, linked (symlinks) into the work folder. Protocol cifar10 on that pool: 100 queries
  and 500 training images a class, database = the other 14,010 (the full set's database is
  54,000: encoding it would dominate the budget). ``backbone=cnn`` slimmed to channels
  16-32-64 and a 128-d head.
* Few epochs (``--epochs-mnist``, ``--epochs-cifar``; the SHC classifier gets the same
  number), validation once at the end, curves and figures off where they cost time.
* Torch/BLAS threads limited to ``--threads`` (default 1) in the runs: on a loaded 2-core
  machine two-thread kernels were several times slower.

Every run uses a fresh stage cache in the work folder, so SHC's classifier is trained once per
(dataset, seed) inside the sweep and reused for the other code lengths (``shc_stages.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.floor_rows import CEILING, datamodule_of, reference_rows  # noqa: E402
from benchmarks.results_io import Provenance  # noqa: E402
from benchmarks.sweep_runs import (  # noqa: E402
    job_bits_seed,
    mean_std,
    multirun_command,
    run_multirun,
    write_report,
)

SHARED = ROOT.parent / "shared" / "data"
METHODS = ("csq", "mds", "shc", "shc_tuned")
#: stage-2 settings of ``shc_tuned``: with the reference's eta = 0.5 no gradient entry clears
#: the flip threshold at 32/64 bits for 10 classes, so SHC returns its MDS start unchanged
TUNED = {"eta": 0.1, "backtrack": "true"}
METRICS = ("mAP@100", "mAP@1000", "mAP@ALL")


def cifar_subset(source: Path, target: Path, fraction: float) -> Path:
    """Symlink the first ``fraction`` (sorted names) of every class folder into ``target``."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source} not found: the CIFAR-10 folder copy is needed")
    for split in ("train", "test"):
        for class_dir in sorted(p for p in (source / split).iterdir() if p.is_dir()):
            files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() == ".jpg")
            keep = files[: math.ceil(len(files) * fraction)]
            out = target / split / class_dir.name
            out.mkdir(parents=True, exist_ok=True)
            for path in keep:
                link = out / path.name
                if not link.exists():
                    link.symlink_to(path.resolve())
    return target


def dataset_overrides(name: str, work: Path, args: argparse.Namespace) -> list[str]:
    """Data, backbone and trainer overrides of one benchmark dataset."""
    if name == "mnist":
        epochs = args.epochs_mnist
        return [
            "data=mnist_shared",
            f"paths.shared_data_dir={SHARED}",
            "backbone=mlp",
            "data.batch_size=128",
            "data.eval_batch_size=2048",
            f"trainer.max_epochs={epochs}",
            f"trainer.check_val_every_n_epoch={epochs}",
        ]
    if name == "cifar10":
        epochs = args.epochs_cifar
        root = cifar_subset(SHARED / "cifar10", work / "cifar10_subset", args.cifar_fraction)
        return [
            "data=cifar10_folder",
            f"data.root={root}",
            "data.name=cifar10_subset",
            "backbone=cnn",
            "backbone.channels=[16,32,64]",
            "backbone.hidden_dim=128",
            "data.batch_size=128",
            "data.eval_batch_size=1024",
            f"trainer.max_epochs={epochs}",
            f"trainer.check_val_every_n_epoch={epochs}",
        ]
    raise ValueError(f"dataset {name!r} unknown; expected mnist or cifar10")


def method_overrides(method: str, epochs: int) -> list[str]:
    """Method overrides: the SHC classifier trains as long as the hashing network.

    Both use the reference solver (``bench_shc_solvers.py`` compares it with the local
    search). ``shc_tuned`` is SHC with :data:`TUNED` stage-2 settings (same classifier: its stage 1
    comes from the cache that ``shc`` filled).
    """
    if method in ("csq", "mds"):
        return [f"method={method}"]
    if method not in ("shc", "shc_tuned"):
        raise ValueError(f"method {method!r} unknown; expected one of {METHODS}")
    overrides = [
        "method=shc",
        "method/solver=reference",
        f"method.center_source.classifier.max_epochs={epochs}",
        "method.center_source.figures=false",
    ]
    if method == "shc_tuned":
        overrides += [f"method.center_source.optimisation.{k}={v}" for k, v in TUNED.items()]
    return overrides


def sweep(
    dataset: str, method: str, work: Path, args: argparse.Namespace
) -> tuple[Path, list[str], float]:
    """Run one multirun (all bits x seeds) unless its results exist; returns dir, cmd, secs."""
    sweep_dir = work / "runs" / dataset / method
    epochs = args.epochs_mnist if dataset == "mnist" else args.epochs_cifar
    overrides = [
        *dataset_overrides(dataset, work, args),
        *method_overrides(method, epochs),
        f"bits={','.join(map(str, args.bits))}",
        f"seed={','.join(map(str, args.seeds))}",
        "logger=csv",
        "callbacks.progress_bar.refresh_rate=0",
        "callbacks.retrieval_evaluation.curves=false",
        f"paths.cache_dir={work / 'cache'}",
        f"hydra.sweep.dir={sweep_dir}",
        "tags=[bench_centers_ablation]",
    ]
    log_path = work / "logs" / f"{dataset}_{method}.log"
    expected = len(args.bits) * len(args.seeds)
    name = f"{dataset} {method}"
    seconds = run_multirun(name, overrides, sweep_dir, log_path, args.threads, expected, args.reuse)
    return sweep_dir, multirun_command(overrides), seconds


def read_job(job: Path) -> dict[str, Any]:
    """Bits, seed, test metrics, center statistics and SHC cache outcomes of one job folder."""
    bits, seed = job_bits_seed(job)
    metrics = json.loads((job / "metrics.json").read_text())
    stats = json.loads((job / "center_stats.json").read_text())
    record: dict[str, Any] = {
        "bits": bits,
        "seed": seed,
        "metrics": {m: metrics[f"test/{m}"] for m in METRICS},
        "seconds": (job / "metrics.json").stat().st_mtime
        - (job / "config_resolved.yaml").stat().st_mtime,
        "center_min_distance": stats["min"],
        "center_mean_distance": stats["mean"],
        "required_min_distance": stats.get("required_min_distance"),
    }
    if "csq_test_passed" in stats:
        record["csq_test_passed"] = stats["csq_test_passed"]
    stages = job / "shc_stages.json"
    if stages.is_file():
        record["shc_cache"] = {k: v["cache"] for k, v in json.loads(stages.read_text()).items()}
        record["shc_fit_loss"] = stats["fit_loss"]
    return record


def summarise(jobs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation over seeds of every metric."""
    return {metric: mean_std([job["metrics"][metric] for job in jobs]) for metric in METRICS}


def add_reference_rows(
    per_bits: dict[str, Any], dataset: str, work: Path, args: argparse.Namespace
) -> None:
    """The training-free floors (LSH, PCA-sign, ITQ) and the float ceiling on the flattened
    input pixels (the benchmark's methods learn from pixels too), as rows of every length."""
    datamodule = datamodule_of(dataset_overrides(dataset, work, args), work / "cache" / "splits")
    for row in reference_rows(datamodule, args.bits, args.seeds):
        label = f"{row['method']} (pixels)"
        summary = {m: mean_std(row["values"][m]) for m in METRICS}
        for bits in args.bits if row["method"] == CEILING else [row["bits"]]:
            per_bits.setdefault(str(bits), {})[label] = summary


def markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The Markdown table: one row per (dataset, bits, method); best mean per column bold."""
    lines = [
        "| dataset | bits | method | mAP@100 | mAP@1000 | mAP@ALL |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, per_bits in results.items():
        for bits, per_method in per_bits.items():
            best = {m: max(per_method[method][m]["mean"] for method in per_method) for m in METRICS}
            for method, summary in per_method.items():
                cells = []
                for m in METRICS:
                    mean, std = summary[m]["mean"], summary[m]["std"]
                    text = f"{mean:.4f} ± {std:.4f}"
                    cells.append(f"**{text}**" if mean == best[m] else text)
                lines.append(f"| {dataset} | {bits} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs-mnist", type=int, default=10)
    parser.add_argument("--epochs-cifar", type=int, default=5)
    parser.add_argument("--cifar-fraction", type=float, default=1 / 3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--no-reference-rows", action="store_true", help="skip the floors and the float row"
    )
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench_centers_ablation")
    parser.add_argument(
        "--reuse", action="store_true", help="skip sweeps that finished with the same command"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "centers_ablation.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_centers_ablation.py", args, args.seeds)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    for dataset in args.datasets:
        for method in args.methods:
            sweep_dir, command, seconds = sweep(dataset, method, work, args)
            jobs = [read_job(job) for job in sorted(sweep_dir.glob("*/")) if job.is_dir()]
            jobs = [j for j in jobs if j["bits"] in args.bits and j["seed"] in args.seeds]
            runs[f"{dataset}/{method}"] = {"command": command, "seconds": seconds, "jobs": jobs}
            for bits in args.bits:
                same = [j for j in jobs if j["bits"] == bits]
                per_bits = results.setdefault(dataset, {}).setdefault(str(bits), {})
                per_bits[method] = summarise(same)
        if not args.no_reference_rows:
            add_reference_rows(results.setdefault(dataset, {}), dataset, work, args)
    total = sum(run["seconds"] for run in runs.values())

    table = markdown(results, args)
    caption = (
        f"Center ablation, mean ± sample std over seeds {args.seeds}. MNIST: data=mnist_shared, "
        f"MLP 784-256, {args.epochs_mnist} epochs. CIFAR-10: first {args.cifar_fraction:.3g} "
        f"of every class folder of ../shared/data/cifar10 (~2,000 images a class; 1,000 queries, "
        f"5,000 train, ~14,000 database), CNN 16-32-64/128, {args.epochs_cifar} epochs. SHC's "
        f"classifier: same backbone and epochs; shc = the reference's stage-2 settings, "
        f"shc_tuned = eta {TUNED['eta']} with backtracking. Adam 1e-3, cosine, batch 128, "
        f"{args.threads} CPU thread(s); total {total / 60:.1f} min of sweeps."
    )
    write_report(provenance, table, caption, results=results, runs=runs, total_seconds=total)


if __name__ == "__main__":
    main()
