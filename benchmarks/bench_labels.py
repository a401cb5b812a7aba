"""Imperfect labels: how much retrieval mAP each method keeps as training labels vanish or turn
noisy (docs/labels.md).

Through the real pipeline (``python -m hashing.train experiment=<preset> method=<m>
data.label_fraction=<f> data.label_noise=<p> ...``, one process per run) on the frozen
EfficientNet-Lite0 features of CIFAR-10 (``experiment=cifar10_effnet``) and Tiny-ImageNet-200
(``experiment=tinyimagenet_effnet``, with its WordNet taxonomy): supervised TBH, CSQ, MDS and SHC
at label fractions {1, 0.3, 0.1, 0.03, 0.01} (no noise) and at label noise {0.2, 0.4} (every
label kept; ``uniform`` everywhere, ``sibling`` where a taxonomy exists). The zero-label floor
is unsupervised TBH (a pipeline run per seed) and ITQ (computed here on the fit split's
features, as ``method=itq`` fits it). ``data.label_seed`` is the run's seed, so every seed keeps
and replaces other items. For SHC, the Spearman correlation of each run's stage-1 similarity S
with the S of the clean run of the same seed, and SHC - MDS per setting (does SHC keep its lead?).

Training budget (``--budget steps``, the default): CSQ, MDS and SHC train on the labelled items
only, so an epoch shrinks with the fraction; they get the optimisation steps of the fully
labelled run instead of its epochs (more epochs, validation as often in steps, and SHC's stage-1
classifier likewise), so a lower mAP means fewer labels, not fewer updates. Supervised TBH sees
every item each epoch and keeps its epochs. ``--budget epochs`` gives every run the same epochs.

Results: ``benchmarks/results/labels.json`` (rewritten after every run: a cut-short benchmark
leaves what finished; a run whose folder holds metrics.json is not run again), its tables
rendered into docs/labels.md, and the plot of mAP@ALL against the label fraction written to
``docs/img/labels_fraction.png`` from those results.

    python benchmarks/bench_labels.py [--datasets cifar10 tinyimagenet] [--seeds 0 1 2]
        [--bits 32] [--epochs 15] [--parallel 2] [--threads 1] [--work .cache/bench_labels]

``--plan`` lists runs in priority order as ``dataset:method:fraction:noise:kind:seed``; the
default runs the claim first (supervised TBH, CSQ and the TBH floor over the fractions, seed by
seed), then MDS and SHC over the fractions, then the noise. ``--quick`` is a smoke test (CIFAR-10,
CSQ, fractions 1 and 0.1, one seed, one epoch); point ``--out`` and ``--plot`` away from the
committed results with it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from benchmarks.floor_rows import datamodule_of, floor_scores, split_features  # noqa: E402
from benchmarks.results_io import Provenance  # noqa: E402
from benchmarks.sweep_runs import mean_std, run_training  # noqa: E402
from hashing.data.labels import keep_labels  # noqa: E402
from hashing.runs.atomic import atomic_path  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "labels.json"
PLOT = ROOT / "docs" / "img" / "labels_fraction.png"
#: dataset -> (preset, features file, has a taxonomy)
DATASETS = {
    "cifar10": ("cifar10_effnet", "cifar10_efficientnet_lite0_128.npz", False),
    "tinyimagenet": ("tinyimagenet_effnet", "tinyimagenet200_efficientnet_lite0_128.npz", True),
}
#: the supervised methods, in table order
METHODS = ("tbh_supervised", "csq", "mds", "shc")
#: the methods that train on the labelled items only (``label_use = "labelled"``)
LABELLED_ONLY = ("csq", "mds", "shc")
#: the unsupervised TBH floor runs through the pipeline; ITQ is computed here
TBH_FLOOR = "tbh"
FRACTIONS = (1.0, 0.3, 0.1, 0.03, 0.01)
NOISES = (0.2, 0.4)
METRICS = ("mAP@ALL", "mAP@1000")
LOCK = threading.Lock()
PROVENANCE: dict[str, Provenance] = {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--noises", type=float, nargs="+", default=list(NOISES))
    parser.add_argument("--no-floors", action="store_true", help="no TBH or ITQ floor")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--val-every", type=int, default=3)
    parser.add_argument("--classifier-epochs", type=int, default=10)
    parser.add_argument(
        "--budget",
        choices=("steps", "epochs"),
        default="steps",
        help="steps: labelled-only methods get the fully labelled run's steps (module doc)",
    )
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench_labels")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument(
        "--plan",
        nargs="+",
        default=None,
        help="runs in priority order as dataset:method:fraction:noise:kind:seed",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: cifar10, csq, fractions 1 and 0.1, no noise, seed 0, 1 epoch, ITQ floor",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.methods, args.fractions, args.noises = (
            ["cifar10"],
            ["csq"],
            [1, 0.1],
            [],
        )
        args.seeds, args.epochs, args.val_every = args.seeds[:1], 1, 1
    return args


Run = tuple[str, str, float, float, str, int]


def setting(fraction: float, noise: float, kind: str) -> str:
    """A setting's name: ``f0.1`` (partial), ``uniform0.2`` (noisy) or ``clean``."""
    if noise > 0:
        return f"{kind}{noise:g}"
    return "clean" if fraction >= 1 else f"f{fraction:g}"


def default_plan(args: argparse.Namespace) -> list[Run]:
    """The claim first (supervised TBH and CSQ over the fractions, the TBH floor), then MDS
    and SHC over the fractions, then the noise (uniform, and sibling where a taxonomy exists)."""
    claim = [m for m in ("tbh_supervised", "csq") if m in args.methods]
    rest = [m for m in args.methods if m not in claim]
    floors = [] if args.no_floors else [TBH_FLOOR]
    plan: list[Run] = []
    for group in (claim, rest):
        for seed in args.seeds:
            for dataset in args.datasets:
                plan += [
                    (dataset, m, f, 0.0, "uniform", seed) for m in group for f in args.fractions
                ]
                if group is claim:
                    plan += [(dataset, m, 1.0, 0.0, "uniform", seed) for m in floors]
    for seed in args.seeds:
        for dataset in args.datasets:
            kinds = ["uniform", "sibling"] if DATASETS[dataset][2] else ["uniform"]
            for kind in kinds:
                plan += [
                    (dataset, m, 1.0, p, kind, seed) for m in args.methods for p in args.noises
                ]
    return list(dict.fromkeys(plan))


# --- the pipeline runs --------------------------------------------------------------------
def job_dir(run: Run, args: argparse.Namespace) -> Path:
    """One run's folder (bits and epoch budget in the path: reused only by the same budget)."""
    dataset, method, fraction, noise, kind, seed = run
    name = setting(fraction, noise, kind)
    return (
        args.work
        / "runs"
        / dataset
        / method
        / name
        / f"bits{args.bits}"
        / f"{args.budget}{args.epochs}"
        / f"seed{seed}"
    )


def budget(run: Run, args: argparse.Namespace) -> dict[str, int]:
    """Epochs, validation interval and SHC classifier epochs of one run (module doc)."""
    dataset, method, fraction = run[:3]
    plain = {
        "epochs": args.epochs,
        "val_every": args.val_every,
        "classifier_epochs": args.classifier_epochs,
    }
    if args.budget == "epochs" or method not in LABELLED_ONLY or fraction >= 1:
        return plain
    facts = args.facts[dataset]
    fit = len(facts["fit_labels"])
    kept = int(keep_labels(facts["fit_labels"], fraction, 0).sum())  # the count, any seed

    def stretched(epochs: int, batch: int) -> int:
        return math.ceil(epochs * math.ceil(fit / batch) / math.ceil(kept / batch))

    epochs = stretched(args.epochs, facts["batch_size"])
    return {
        "epochs": epochs,
        "val_every": max(1, round(args.val_every * epochs / args.epochs)),
        "classifier_epochs": stretched(args.classifier_epochs, facts["batch_size"]),
    }


def run_overrides(run: Run, args: argparse.Namespace) -> list[str]:
    """The overrides of one training run."""
    dataset, method, fraction, noise, kind, seed = run
    plan = budget(run, args)
    overrides = [
        f"experiment={DATASETS[dataset][0]}",
        f"method={method}",
        f"bits={args.bits}",
        f"seed={seed}",
        f"data.label_fraction={fraction}",
        f"data.label_noise={noise}",
        f"data.label_noise_kind={kind}",
        f"data.label_seed={seed}",
        f"paths.shared_data_dir={SHARED}",
        f"trainer.max_epochs={plan['epochs']}",
        f"trainer.check_val_every_n_epoch={plan['val_every']}",
        "logger=csv",
        "callbacks.progress_bar.refresh_rate=0",
        "callbacks.retrieval_evaluation.curves=false",
        "~callbacks.retrieval_grid",
        f"paths.cache_dir={args.work / 'cache'}",
        f"hydra.run.dir={job_dir(run, args)}",
        "tags=[bench_labels]",
    ]
    if method == "shc":
        overrides += [
            f"method.center_source.classifier.max_epochs={plan['classifier_epochs']}",
            "method.center_source.figures=false",
        ]
    return overrides


def read_job(job: Path) -> dict[str, Any]:
    """Metrics, labels used and replaced, and the wall time of one finished run."""
    metrics = json.loads((job / "metrics.json").read_text())
    labels = json.loads((job / "labels.json").read_text())
    return {
        "metrics": {m: metrics.get(f"test/{m}", math.nan) for m in METRICS},
        "val_mAP_best": metrics.get("val/mAP_best"),
        "labels_used": labels["labels_used"],
        "labelled_items": labels["labelled_items"],
        "fit_items": labels["fit_items"],
        "noisy_items": labels["noisy_items"],
        "seconds": (job / "metrics.json").stat().st_mtime
        - (job / "config_resolved.yaml").stat().st_mtime,
    }


def run_job(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """Run (or reuse: its metrics.json exists) one training run; a failure is recorded."""
    folder = job_dir(run, args)
    dataset, method, fraction, noise, kind, seed = run
    entry: dict[str, Any] = {
        "dataset": dataset,
        "method": method,
        "fraction": fraction,
        "noise": noise,
        "kind": kind,
        "seed": seed,
        "folder": str(folder),
    }
    if not (folder / "metrics.json").is_file():
        log_path = args.work / "logs" / f"{'_'.join(str(part) for part in run)}.log"
        print(f"[run] {' '.join(str(part) for part in run)}", flush=True)
        entry.update(run_training(run_overrides(run, args), log_path, args.threads))
        if "error" in entry:
            return entry
    entry["job"] = read_job(folder)
    return entry


# --- the ITQ floor, computed here ---------------------------------------------------------
def dataset_facts(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """(features, clean labels) of the fit, query and database splits of the preset, as the
    runs draw them (the same split file under the work folder), and the training batch size
    (SHC's classifier uses it too: ``method.center_source.classifier.batch_size``)."""
    overrides = [f"experiment={DATASETS[dataset][0]}", f"paths.shared_data_dir={SHARED}"]
    datamodule = datamodule_of(overrides, args.work / "cache" / "splits")
    parts = split_features(datamodule)
    return {
        "parts": parts,
        "fit_labels": parts["fit"][1].numpy(),
        "batch_size": int(datamodule.batch_size),
    }


def itq_floor(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """ITQ fitted on the fit split's features (no labels), per dataset and seed."""
    for dataset in args.datasets:
        parts = args.facts[dataset]["parts"]
        for seed in args.seeds:
            scores = floor_scores(
                parts["fit"][0],
                parts["query"],
                parts["database"],
                "itq",
                args.bits,
                seed,
                top_ks=(1000, None),
            )
            with LOCK:
                results["itq"].append(
                    {"dataset": dataset, "seed": seed, "metrics": {m: scores[m] for m in METRICS}}
                )


# --- summaries ----------------------------------------------------------------------------
def cells(results: dict[str, Any]) -> dict[tuple, dict[int, dict[str, Any]]]:
    """(dataset, method, setting) -> {seed: job} of the finished runs (ITQ as method ``itq``,
    setting ``clean``)."""
    table: dict[tuple, dict[int, dict[str, Any]]] = {}
    for entry in results["runs"]:
        if "job" in entry:
            key = (
                entry["dataset"],
                entry["method"],
                setting(entry["fraction"], entry["noise"], entry["kind"]),
            )
            table.setdefault(key, {})[entry["seed"]] = entry["job"]
    for entry in results["itq"]:
        table.setdefault((entry["dataset"], "itq", "clean"), {})[entry["seed"]] = entry
    return table


def summary(jobs: dict[int, dict[str, Any]] | None, metric: str) -> str:
    """``mean ± std`` over the seeds (``(n)`` when fewer than three), ``–`` without a run."""
    if not jobs:
        return "–"
    stats = mean_std([job["metrics"][metric] for job in jobs.values()])
    count = "" if stats["n"] >= 3 else f" ({stats['n']})"
    return f"{stats['mean']:.4f} ± {stats['std']:.4f}{count}"


def fraction_table(results: dict[str, Any], metric: str) -> dict[str, Any]:
    """Rows (dataset, method), columns the label fractions, plus the zero-label floors."""
    table = cells(results)
    fractions = results["fractions"]
    columns = ["dataset", "method", *(f"f = {f:g}" for f in fractions), "no labels"]
    rows = []
    for dataset in results["datasets"]:
        for method in results["methods"]:
            row = [
                summary(table.get((dataset, method, setting(f, 0, "uniform"))), metric)
                for f in fractions
            ]
            rows.append([dataset, method, *row, "–"])
        for method, label in (("itq", "ITQ"), (TBH_FLOOR, "TBH (unsupervised)")):
            if (dataset, method, "clean") in table:
                floor = summary(table[dataset, method, "clean"], metric)
                rows.append([dataset, label, *("–" for _ in fractions), floor])
        used = []
        for f in fractions:
            jobs = [
                job
                for (d, m, s), by_seed in table.items()
                if d == dataset and m in METHODS and s == setting(f, 0, "uniform")
                for job in by_seed.values()
            ]
            used.append(str(jobs[0]["labelled_items"]) if jobs else "–")
        rows.append([dataset, "labels used", *used, "0"])
    notes = [
        f"{metric} on the test split, mean ± std over seeds {results['seeds']}, "
        f"{results['bits']} bits, {results['epochs']} epochs ({results['budget']} budget: "
        "CSQ/MDS/SHC get the steps of the fully labelled run)"
    ]
    return {"columns": columns, "rows": rows, "notes": notes}


def noise_settings(results: dict[str, Any], dataset: str) -> list[tuple[str, float]]:
    kinds = ["uniform", "sibling"] if DATASETS[dataset][2] else ["uniform"]
    return [(kind, p) for kind in kinds for p in results["noises"]]


def noise_table(results: dict[str, Any]) -> dict[str, Any]:
    """Rows (dataset, method, kind), columns mAP@ALL and mAP@1000 at noise 0 and each p."""
    table = cells(results)
    noises = [0.0, *results["noises"]]
    columns = ["dataset", "method", "noise kind"]
    columns += [f"{metric} p = {p:g}" for metric in METRICS for p in noises]
    rows = []
    for dataset in results["datasets"]:
        kinds = ["uniform", "sibling"] if DATASETS[dataset][2] else ["uniform"]
        for method in results["methods"]:
            for kind in kinds:
                row = [
                    summary(table.get((dataset, method, setting(1, p, kind))), metric)
                    for metric in METRICS
                    for p in noises
                ]
                rows.append([dataset, method, kind, *row])
    notes = [
        "every label kept; p of each class's training labels replaced (uniform: any other "
        "class; sibling: the nearest class in the WordNet taxonomy)"
    ]
    return {"columns": columns, "rows": rows, "notes": notes}


def similarity_spearman(noisy_job: Path, clean_job: Path) -> float | None:
    """Spearman correlation of two runs' stage-1 S over the class pairs (i < j)."""
    noisy, clean = noisy_job / "similarity.pt", clean_job / "similarity.pt"
    if not noisy.is_file() or not clean.is_file():
        return None
    a = torch.load(noisy, weights_only=True)
    b = torch.load(clean, weights_only=True)
    upper = torch.triu_indices(len(a), len(a), offset=1)
    return float(spearmanr(a[upper[0], upper[1]], b[upper[0], upper[1]]).statistic)


def shc_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per dataset and setting: S's Spearman with the clean S, and SHC - MDS per seed."""
    folders = {
        (e["dataset"], e["method"], setting(e["fraction"], e["noise"], e["kind"]), e["seed"]): e
        for e in results["runs"]
        if "job" in e
    }
    out = []
    for dataset in results["datasets"]:
        settings = [setting(f, 0, "uniform") for f in results["fractions"]]
        settings += [setting(1, p, kind) for kind, p in noise_settings(results, dataset)]
        for name in settings:
            row: dict[str, Any] = {"dataset": dataset, "setting": name, "spearman": {}, "lead": {}}
            for seed in results["seeds"]:
                shc = folders.get((dataset, "shc", name, seed))
                clean = folders.get((dataset, "shc", "clean", seed))
                mds = folders.get((dataset, "mds", name, seed))
                if shc and clean:
                    rho = similarity_spearman(Path(shc["folder"]), Path(clean["folder"]))
                    if rho is not None:
                        row["spearman"][seed] = rho
                if shc and mds:
                    row["lead"][seed] = {
                        m: shc["job"]["metrics"][m] - mds["job"]["metrics"][m] for m in METRICS
                    }
            if row["spearman"] or row["lead"]:
                out.append(row)
    return out


def shc_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = ["dataset", "setting", "Spearman(S, clean S)"]
    columns += [f"SHC - MDS {m} (seeds > 0)" for m in METRICS]
    table_rows = []
    for row in rows:
        rho = list(row["spearman"].values())
        cell = f"{mean_std(rho)['mean']:.3f}" if rho else "–"
        leads = []
        for metric in METRICS:
            diffs = [lead[metric] for lead in row["lead"].values()]
            if not diffs:
                leads.append("–")
                continue
            positive = sum(d > 0 for d in diffs)
            leads.append(f"{mean_std(diffs)['mean']:+.4f} ({positive}/{len(diffs)})")
        table_rows.append([row["dataset"], row["setting"], cell, *leads])
    notes = [
        "S: SHC's stage-1 class similarity, against the clean run of the same seed "
        "(pairs i < j); SHC keeps its lead where the difference is > 0 on every seed"
    ]
    return {"columns": columns, "rows": table_rows, "notes": notes}


def claim_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Supervised TBH against unsupervised TBH at each fraction, and the mAP@ALL each method
    keeps of its fully labelled value (per seed ratio, then the mean), TBH against CSQ."""
    table = cells(results)
    out = []
    for dataset in results["datasets"]:
        floor = table.get((dataset, TBH_FLOOR, "clean"), {})
        full = {m: table.get((dataset, m, "clean"), {}) for m in ("tbh_supervised", "csq")}
        for fraction in results["fractions"]:
            if fraction >= 1:
                continue
            name = setting(fraction, 0, "uniform")
            sup = table.get((dataset, "tbh_supervised", name), {})
            csq = table.get((dataset, "csq", name), {})
            row: dict[str, Any] = {"dataset": dataset, "fraction": fraction}
            seeds = sorted(set(sup) & set(floor))
            if seeds:
                diffs = [
                    sup[s]["metrics"]["mAP@ALL"] - floor[s]["metrics"]["mAP@ALL"] for s in seeds
                ]
                row["above_floor"] = {
                    "mean": mean_std(diffs)["mean"],
                    "positive": sum(d > 0 for d in diffs),
                    "seeds": len(seeds),
                }
            for method, jobs in (("tbh_supervised", sup), ("csq", csq)):
                both = sorted(set(jobs) & set(full[method]))
                if both:
                    kept = [
                        jobs[s]["metrics"]["mAP@ALL"] / full[method][s]["metrics"]["mAP@ALL"]
                        for s in both
                    ]
                    row[f"kept_{method}"] = mean_std(kept)["mean"]
            if len(row) > 2:
                out.append(row)
    return out


def claim_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = [
        "dataset",
        "fraction",
        "sup. TBH - unsup. TBH mAP@ALL (seeds > 0)",
        "sup. TBH keeps",
        "CSQ keeps",
        "slower than CSQ?",
    ]
    table_rows = []
    for row in rows:
        above = row.get("above_floor")
        above_cell = (
            f"{above['mean']:+.4f} ({above['positive']}/{above['seeds']})" if above else "–"
        )
        tbh, csq = row.get("kept_tbh_supervised"), row.get("kept_csq")
        slower = "–" if tbh is None or csq is None else ("yes" if tbh > csq else "no")
        table_rows.append(
            [
                row["dataset"],
                f"{row['fraction']:g}",
                above_cell,
                "–" if tbh is None else f"{tbh:.1%}",
                "–" if csq is None else f"{csq:.1%}",
                slower,
            ]
        )
    notes = [
        "keeps: mAP@ALL at the fraction over mAP@ALL with every label, per seed, mean; the "
        "claim holds where supervised TBH is above the floor on every seed and keeps more "
        "than CSQ"
    ]
    return {"columns": columns, "rows": table_rows, "notes": notes}


def plot(results: dict[str, Any], path: Path) -> bool:
    """mAP@ALL against the label fraction, one panel per dataset, floors as dashed lines;
    False (nothing written) without a finished run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = cells(results)
    datasets = [d for d in results["datasets"] if any(k[0] == d for k in table)]
    if not datasets:
        return False
    figure, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for axis, dataset in zip(axes[0], datasets, strict=True):
        for method in results["methods"]:
            xs, ys, errors = [], [], []
            for fraction in results["fractions"]:
                jobs = table.get((dataset, method, setting(fraction, 0, "uniform")))
                if jobs:
                    stats = mean_std([job["metrics"]["mAP@ALL"] for job in jobs.values()])
                    xs.append(fraction)
                    ys.append(stats["mean"])
                    errors.append(stats["std"])
            if xs:
                axis.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=method)
        for method, label, style in (
            ("itq", "ITQ (no labels)", ":"),
            (TBH_FLOOR, "TBH unsupervised", "--"),
        ):
            jobs = table.get((dataset, method, "clean"))
            if jobs:
                mean = mean_std([job["metrics"]["mAP@ALL"] for job in jobs.values()])["mean"]
                axis.axhline(mean, linestyle=style, color="grey", label=label)
        axis.set_xscale("log")
        axis.set_xlabel("fraction of training labels kept")
        axis.set_ylabel(f"mAP@ALL ({results['bits']} bits)")
        axis.set_title(dataset)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return True


def write(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Rewrite the results JSON (benchmarks/results_io.py) with the tables as they stand."""
    results["shc"] = shc_rows(results)
    results["claim"] = claim_rows(results)
    tables = {
        "fraction_map_all": fraction_table(results, "mAP@ALL"),
        "fraction_map_1000": fraction_table(results, "mAP@1000"),
        "noise": noise_table(results),
        "shc": shc_table(results["shc"]),
        "claim": claim_table(results["claim"]),
    }
    settings = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "facts"})
    provenance = PROVENANCE.get("record") or Provenance(
        Path(args.out), "benchmarks/bench_labels.py", settings, args.seeds
    )
    PROVENANCE["record"] = provenance
    provenance.write(tables, **results)
    return tables


def render(tables: dict[str, Any]) -> str:
    from benchmarks.results_io import markdown_table

    return "\n\n".join(f"## {name}\n\n{markdown_table(table)}" for name, table in tables.items())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    needed = [SHARED / DATASETS[d][1] for d in args.datasets]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise SystemExit(f"needs {missing} (the shared data)")
    plan = default_plan(args)
    if args.plan:
        plan = [
            (d, m, float(f), float(p), k, int(s))
            for d, m, f, p, k, s in (item.split(":") for item in args.plan)
        ]
    results: dict[str, Any] = {
        "datasets": args.datasets,
        "methods": args.methods,
        "fractions": args.fractions,
        "noises": args.noises,
        "seeds": args.seeds,
        "bits": args.bits,
        "epochs": args.epochs,
        "budget": args.budget,
        "plan": [":".join(str(part) for part in run) for run in plan],
        "runs": [],
        "itq": [],
    }
    started = time.perf_counter()
    args.facts = {dataset: dataset_facts(dataset, args) for dataset in args.datasets}
    results["budgets"] = {":".join(str(part) for part in run): budget(run, args) for run in plan}
    if not args.no_floors:
        itq_floor(args, results)

    def one(run: Run) -> None:
        entry = run_job(run, args)
        with LOCK:
            results["runs"].append(entry)
            results["seconds"] = time.perf_counter() - started
            write(results, args)

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for future in [pool.submit(one, run) for run in plan]:
            future.result()
    tables = write(results, args)
    plotted = plot(results, args.plot)
    print(render(tables))
    print(f"wrote {args.out}" + (f" and {args.plot}" if plotted else " (no finished run to plot)"))


if __name__ == "__main__":
    main()
