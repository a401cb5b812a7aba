"""Tiny-ImageNet-200 with a taxonomy: do semantic centers beat data-independent ones, and are
their misses nearer in WordNet? (docs/taxonomy.md)

Through the real pipeline (``python -m hashing.train experiment=tinyimagenet_effnet ...``,
one process per method, code length and seed): CSQ, MDS, SHC with the classifier's S (the
paper), SHC with the WordNet S (``method.similarity=taxonomy``) and supervised TBH. Beside
them, computed here on the same split: LSH and ITQ codes (``hashing.baselines``, fitted on
the training split), the float k-NN ceiling (Euclidean ranking of the features) and a linear
probe's accuracy. Every row reports mAP@1000 (the protocol's k), mAP@ALL, tax_dist@100,
miss_tax_dist@100 and ndcg_wup@100; then paired differences SHC - MDS over the seeds (mean,
paired t-test p, seeds positive) at every length that has both. Results:
``benchmarks/results/tinyimagenet.json`` (rewritten after every run, so a cut-short benchmark
leaves what finished; a run whose folder holds metrics.json is not run again).

    python benchmarks/bench_tinyimagenet.py [--bits 32 64 16] [--seeds 0 1 2] [--epochs 15]
        [--val-every 3] [--parallel 2] [--work .cache/bench_tinyimagenet]
    python benchmarks/bench_tinyimagenet.py --no-runs --baselines lsh itq   # the floors only
    python benchmarks/bench_tinyimagenet.py --collect   # the finished runs, into --out

The computed baselines already in ``--out`` are kept unless this invocation recomputes them
(``--baselines``: any of lsh, itq, float_knn, linear_probe; all by default), each with the
command, commit and date that computed it (``computed_by``); ``--no-runs`` also keeps the
pipeline runs of ``--out``, and ``--collect`` rebuilds them from the run folders under
``--work``. So the floors can be refreshed alone, and a collect needs no file from outside the
repository.

Runs go in priority order (``--plan``; by default SHC and MDS at the first two ``--bits`` over
all seeds, then the other methods, then the remaining lengths), ``--parallel`` at a time. The
training budget is the one the validation curve supports: each run validates every
``--val-every`` epochs and the JSON keeps every run's curve (``val_curve``) and its best
validation mAP (the checkpoint tested).
"""

from __future__ import annotations

import argparse
import csv
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
import yaml  # noqa: E402
from scipy.stats import ttest_rel  # noqa: E402

from benchmarks.floor_rows import floor_codes  # noqa: E402
from benchmarks.results_io import Provenance  # noqa: E402
from benchmarks.sweep_runs import mean_std, run_training  # noqa: E402
from hashing.baselines.float_ranking import float_average_precision  # noqa: E402
from hashing.centers.bound import required_min_distance  # noqa: E402
from hashing.data.features import FeaturesDataModule  # noqa: E402
from hashing.metrics.functional.map_at_k import mean_average_precisions  # noqa: E402
from hashing.metrics.functional.taxonomy import taxonomy_metrics  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
FEATURES = SHARED / "tinyimagenet200_efficientnet_lite0_128.npz"
WORDNET = SHARED / "tinyimagenet200_wordnet.json"
OUT = ROOT / "benchmarks" / "results" / "tinyimagenet.json"
#: pipeline methods in priority order: name -> overrides
PIPELINE = {
    "mds": ["method=mds"],
    "shc": ["method=shc"],
    "shc_taxonomy": ["method=shc", "method.similarity=taxonomy"],
    "csq": ["method=csq"],
    "tbh_supervised": ["method=tbh_supervised"],
}
METRICS = ("mAP@1000", "mAP@ALL", "tax_dist@100", "miss_tax_dist@100", "ndcg_wup@100")
#: the training-free code floors computed here (hashing.baselines via benchmarks/floor_rows.py)
FLOORS = ("lsh", "itq")
#: every baseline computed here (``--baselines``)
BASELINES = (*FLOORS, "float_knn", "linear_probe")
CLASSES = 200
LOCK = threading.Lock()
#: the run's :class:`Provenance`, made on the first write
PROVENANCE: dict[str, Provenance] = {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(PIPELINE))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--val-every", type=int, default=3)
    parser.add_argument("--classifier-epochs", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench_tinyimagenet")
    parser.add_argument(
        "--baselines",
        nargs="*",
        choices=BASELINES,
        default=list(BASELINES),
        help="the baselines computed here (LSH and ITQ at every --bits and seed, the float "
        "k-NN ceiling, the linear probe); the others already in --out are kept",
    )
    parser.add_argument("--no-baselines", action="store_true", help="the same as --baselines")
    parser.add_argument(
        "--no-runs", action="store_true", help="computed baselines only (keeps --out's runs)"
    )
    parser.add_argument(
        "--also",
        type=Path,
        nargs="*",
        default=[],
        help="with --collect: further results files of this repository whose computed "
        "baselines are kept (they replace --out's of the same method and length)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--collect",
        action="store_true",
        help="run nothing: rebuild --out from every finished run folder, keeping the baselines "
        "(LSH, ITQ, float ceiling, probe) already in it",
    )
    parser.add_argument(
        "--plan",
        nargs="+",
        default=None,
        help="runs in priority order as method:bits:seed (default: SHC and MDS at the first "
        "two --bits over all seeds, then the other methods seed by seed, then the rest)",
    )
    args = parser.parse_args(argv)
    if args.no_baselines:
        args.baselines = []
    for path in args.also:
        if not path.resolve().is_relative_to(ROOT):
            parser.error(
                f"--also {path}: not a file of this repository ({ROOT}); a collect keeps "
                "only baselines whose results file others can read (copy it under "
                "benchmarks/results/, or recompute them with --no-runs --baselines ...)"
            )
    return args


def default_plan(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """The headline comparison first (SHC vs MDS at the first two lengths, every seed), then
    the other methods at those lengths seed by seed, then the remaining lengths."""
    head, rest = args.bits[:2], args.bits[2:]
    plan = [
        (m, b, s) for s in args.seeds for b in head for m in ("mds", "shc") if m in args.methods
    ]
    others = [m for m in args.methods if m not in ("mds", "shc")]
    plan += [(m, b, s) for s in args.seeds for m in others for b in head]
    plan += [(m, b, s) for b in rest for s in args.seeds for m in args.methods]
    return plan


# --- the pipeline runs --------------------------------------------------------------------
def run_overrides(method: str, bits: int, seed: int, args: argparse.Namespace) -> list[str]:
    """One training run of the preset: a method at one code length and seed."""
    overrides = [
        "experiment=tinyimagenet_effnet",
        *PIPELINE[method],
        f"bits={bits}",
        f"seed={seed}",
        f"paths.shared_data_dir={SHARED}",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.check_val_every_n_epoch={args.val_every}",
        "logger=csv",
        "callbacks.progress_bar.refresh_rate=0",
        "callbacks.retrieval_evaluation.curves=false",
        "~callbacks.retrieval_grid",
        f"paths.cache_dir={args.work / 'cache'}",
        f"hydra.run.dir={job_dir(method, bits, seed, args)}",
        "tags=[bench_tinyimagenet]",
    ]
    if method.startswith("shc"):
        overrides += [
            f"method.center_source.classifier.max_epochs={args.classifier_epochs}",
            "method.center_source.figures=false",
        ]
    return overrides


def job_dir(method: str, bits: int, seed: int, args: argparse.Namespace) -> Path:
    """The run folder of one planned run (the epoch budget in its path: a folder is reused
    only by a run of the same budget)."""
    return args.work / "runs" / method / str(bits) / f"epochs{args.epochs}" / f"seed{seed}"


def val_curve(job: Path) -> list[tuple[int, float]]:
    """(epoch, val/mAP) of every validation of a job, from its CSV log."""
    path = job / "csv" / "metrics.csv"
    if not path.is_file():
        return []
    with path.open() as handle:
        return [
            (int(row["epoch"]) + 1, float(row["val/mAP"]))
            for row in csv.DictReader(handle)
            if row.get("val/mAP")
        ]


def read_job(job: Path) -> dict[str, Any]:
    """Bits, seed, metrics, validation curve and center statistics of one finished job."""
    config = yaml.safe_load((job / "config_resolved.yaml").read_text())
    bits, seed = int(config["bits"]), int(config["seed"])
    metrics = json.loads((job / "metrics.json").read_text())
    record: dict[str, Any] = {
        "bits": bits,
        "seed": seed,
        "metrics": {m: metrics.get(f"test/{m}", math.nan) for m in METRICS},
        "val_mAP_best": metrics.get("val/mAP_best"),
        "val_curve": val_curve(job),
        "seconds": (job / "metrics.json").stat().st_mtime
        - (job / "config_resolved.yaml").stat().st_mtime,
    }
    stats_path = job / "center_stats.json"
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text())
        record["taxonomy_spearman"] = stats.get("taxonomy_spearman")
        record["center_min_distance"] = stats.get("min")
        record["required_min_distance"] = stats.get("required_min_distance")
        record["csq_test_passed"] = stats.get("csq_test_passed")
        record["similarity_spearman"] = stats.get("spearman")
    return record


def run_job(method: str, bits: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run (or reuse: its metrics.json exists) one training run; a failure is recorded."""
    folder = job_dir(method, bits, seed, args)
    entry: dict[str, Any] = {"method": method, "bits": bits, "seed": seed}
    if not (folder / "metrics.json").is_file():
        log_path = args.work / "logs" / f"{method}_{bits}_seed{seed}.log"
        print(f"[run] {method} {bits} bits seed {seed}", flush=True)
        entry.update(run_training(run_overrides(method, bits, seed, args), log_path, args.threads))
        if "error" in entry:
            return entry
    entry["job"] = read_job(folder)
    return entry


# --- the baselines computed here --------------------------------------------------------
def linear_probe(train_x, train_y, test_x, test_y, classes: int, seed: int = 0) -> float:
    """Accuracy of softmax regression on standardised features (60 full-batch L-BFGS steps)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x, t = (train_x - mean) / std, (test_x - mean) / std
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], classes)
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=60, history_size=20)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = (
            torch.nn.functional.cross_entropy(layer(x), train_y)
            + 1e-3 * (layer.weight**2).sum() / 2
        )
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float((layer(t).argmax(1) == test_y).double().mean())


def split_data(args: argparse.Namespace) -> dict[str, Any]:
    """Features, labels and relations of the train/query/database splits (seed 0's split, as
    the preset's data.split_seed)."""
    datamodule = FeaturesDataModule(
        FEATURES,
        name="tinyimagenet200_effnet_lite0_128",
        protocol="tinyimagenet200",
        train_per_class=100,
        top_k=1000,
        hierarchy=WORDNET,
        split_dir=args.work / "cache" / "splits",
    )
    datamodule.setup()
    pool = datamodule.pool
    parts = {
        key: (pool.source[datamodule.split[key]], pool.labels[datamodule.split[key]])
        for key in ("train", "query", "database")
    }
    relations = datamodule.class_relations
    return {
        "parts": parts,
        "distance": torch.from_numpy(relations.distance),
        "wu_palmer": torch.from_numpy(relations.wu_palmer),
        "classes": datamodule.num_classes,
    }


def score_codes(data: dict[str, Any], query: torch.Tensor, database: torch.Tensor) -> dict:
    """The benchmark's metrics of one pair of code sets."""
    (_, query_y), (_, database_y) = data["parts"]["query"], data["parts"]["database"]
    maps = mean_average_precisions(query, database, query_y, database_y, (1000, None))
    taxonomy = taxonomy_metrics(
        query, database, query_y, database_y, data["distance"], data["wu_palmer"], 100
    )
    return {
        "mAP@1000": maps[1000],
        "mAP@ALL": maps[None],
        "tax_dist@100": taxonomy.tax_dist,
        "miss_tax_dist@100": taxonomy.miss_tax_dist,
        "ndcg_wup@100": taxonomy.ndcg_wup,
    }


def computed_by() -> dict[str, Any]:
    """Where a baseline computed now comes from: this invocation's command, commit, date and
    whether the benchmarked code had uncommitted changes."""
    record = PROVENANCE["record"].record
    return {key: record[key] for key in ("command", "commit", "uncommitted_changes", "date_utc")}


def baselines(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The ``--baselines`` into ``results``: LSH and ITQ per (bits, seed), the float ceiling,
    the linear probe; each stamped with :func:`computed_by`."""
    data = split_data(args)
    (train_x, train_y), (query_x, query_y), (database_x, database_y) = (
        data["parts"][key] for key in ("train", "query", "database")
    )
    for bits in args.bits:
        for name in (name for name in FLOORS if name in args.baselines):
            jobs = []
            for seed in args.seeds:
                query, database = floor_codes(train_x, query_x, database_x, name, bits, seed)
                jobs.append(
                    {"bits": bits, "seed": seed, "metrics": score_codes(data, query, database)}
                )
                print(f"[baseline] {name} {bits} bits seed {seed}: {jobs[-1]['metrics']}")
            entry = {"method": name, "bits": bits, "jobs": jobs, "computed_by": computed_by()}
            with LOCK:
                results["runs"].append(entry)
                write(results, args)
    if "float_knn" in args.baselines:
        started = time.perf_counter()
        ap = float_average_precision(query_x, database_x, query_y, database_y, (1000, None))
        with LOCK:
            results["float_knn"] = {
                "mAP@1000": float(ap[:, 0].mean()),
                "mAP@ALL": float(ap[:, 1].mean()),
                "seconds": time.perf_counter() - started,
                "computed_by": computed_by(),
            }
            write(results, args)
    if "linear_probe" in args.baselines:
        started = time.perf_counter()
        accuracy = linear_probe(train_x, train_y, query_x, query_y, data["classes"])
        with LOCK:
            results["linear_probe"] = {
                "accuracy": accuracy,
                "seconds": time.perf_counter() - started,
                "computed_by": computed_by(),
            }
            write(results, args)


def previous_results(path: Path) -> dict[str, Any]:
    """The raw results of an earlier results file ({} when there is none)."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    return old.get("results", old)  # a Provenance file keeps the raw results there


def carried_over(sources: list[Path], recomputed: set[Any], keep_runs: bool) -> dict[str, Any]:
    """What earlier results files pass on: their computed baselines (a later file's row of
    the same method and length replaces an earlier one's) except the ``recomputed`` ones
    (``(method, bits)`` floors, ``"float_knn"``, ``"linear_probe"``), and with ``keep_runs``
    their pipeline runs."""
    floors: dict[tuple[str, int], dict[str, Any]] = {}
    carried: dict[str, Any] = {"runs": []}
    for source in sources:
        old = previous_results(source)
        for entry in old.get("runs", []):
            if "jobs" in entry:
                if (entry["method"], entry["bits"]) not in recomputed:
                    floors[entry["method"], entry["bits"]] = entry
            elif keep_runs:
                carried["runs"].append(entry)
        for key in ("float_knn", "linear_probe"):
            if key in old and key not in recomputed:
                carried[key] = old[key]
    carried["runs"] = [*floors.values(), *carried["runs"]]
    return carried


# --- summary --------------------------------------------------------------------------------
def rows(results: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """(method, bits) -> jobs by seed and the errors of the runs that failed."""
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in results["runs"]:
        cell = table.setdefault((entry["method"], entry["bits"]), {"jobs": {}, "errors": []})
        if "job" in entry:
            cell["jobs"][entry["seed"]] = entry["job"]
        elif "jobs" in entry:
            cell["jobs"].update({job["seed"]: job for job in entry["jobs"]})
        if entry.get("error"):
            cell["errors"].append(f"seed {entry.get('seed')}: {entry['error']}")
    return table


def paired(table: dict, bits: int, metric: str, a: str = "shc", b: str = "mds") -> dict | None:
    """Paired differences ``a - b`` over the seeds both have."""
    if (a, bits) not in table or (b, bits) not in table:
        return None
    left, right = table[a, bits]["jobs"], table[b, bits]["jobs"]
    seeds = sorted(set(left) & set(right))
    if not seeds:
        return None
    x = [left[s]["metrics"][metric] for s in seeds]
    y = [right[s]["metrics"][metric] for s in seeds]
    diffs = [p - q for p, q in zip(x, y, strict=True)]
    p_value = float(ttest_rel(x, y).pvalue) if len(seeds) > 1 else math.nan
    return {
        "seeds": seeds,
        "per_seed": dict(zip(seeds, diffs, strict=True)),
        "mean_difference": sum(diffs) / len(diffs),
        "paired_t_p": p_value,
        "positive": sum(d > 0 for d in diffs),
    }


def required_distance(bits: int) -> int:
    """The minimum distance MDS and SHC demand between 200 centers of ``bits`` bits
    (docs/methods.md#required-minimum-distance)."""
    return required_min_distance(bits, CLASSES)


def center_note(jobs: list[dict[str, Any]], bits: int) -> str:
    """How far apart a center method's centers are against the required distance d, over its
    seeds: ``min center distance 2 < d = 4; CSQ's test failed (best of 20 draws kept)``
    ("" for a method without centers)."""
    minima = [job["center_min_distance"] for job in jobs if job.get("center_min_distance")]
    if not minima:
        return ""
    lowest, d = min(minima), required_distance(bits)
    note = f"min center distance {lowest:g} {'<' if lowest < d else '≥'} d = {d}"
    if any(job.get("csq_test_passed") is False for job in jobs):
        note += "; CSQ's test failed (best of 20 Bernoulli draws kept)"
    return note


def planned_seeds(results: dict[str, Any]) -> dict[tuple[str, int], list[int]]:
    """(method, bits) -> the seeds the plan runs."""
    planned: dict[tuple[str, int], list[int]] = {}
    for item in results.get("plan", []):
        method, bits, seed = item.split(":")
        planned.setdefault((method, int(bits)), []).append(int(seed))
    return planned


def origin_text(origin: dict[str, Any] | None) -> str:
    """``computed by `<command>` at commit abc1234567 on <date>`` (or that it is unknown)."""
    if not origin:
        return "computed before the benchmark recorded where its baselines came from"
    dirty = " with uncommitted changes" if origin.get("uncommitted_changes") else ""
    return (
        f"computed by `{origin['command']}` at commit `{origin['commit'][:10]}`{dirty} "
        f"on {origin['date_utc']}"
    )


def origin_lines(results: dict[str, Any]) -> list[str]:
    """One line per distinct origin of the computed baselines, naming the rows it made."""
    made: dict[str, list[str]] = {}
    for entry in results["runs"]:
        if "jobs" in entry:
            made.setdefault(origin_text(entry.get("computed_by")), []).append(
                f"{entry['method']} {entry['bits']}"
            )
    for key, label in (("float_knn", "float k-NN"), ("linear_probe", "linear probe")):
        if key in results:
            made.setdefault(origin_text(results[key].get("computed_by")), []).append(label)
    return [f"\n{', '.join(rows)}: {origin}." for origin, rows in made.items()]


def markdown(results: dict[str, Any]) -> str:
    """Mean ± std over seeds per (bits, method), with the seeds that exist (of those
    planned), and a note: why a run failed, whether its centers reach the required distance,
    or that it did not run; then the float ceiling, the paired SHC - MDS lines at every length
    that has both, the required distances and where the computed baselines come from."""
    table = rows(results)
    planned = planned_seeds(results)
    for key in planned:
        table.setdefault(key, {"jobs": {}, "errors": []})
    lines = [
        "| bits | method | seeds | " + " | ".join(METRICS) + " | note |",
        "|---|---|---|" + "---|" * (len(METRICS) + 1),
    ]
    for (method, bits), cell in sorted(table.items(), key=lambda item: (item[0][1], item[0][0])):
        jobs = list(cell["jobs"].values())
        notes = [center_note(jobs, bits), *cell["errors"]]
        seeds = ",".join(str(s) for s in sorted(cell["jobs"])) or "none"
        wanted = planned.get((method, bits), [])
        if set(wanted) - set(cell["jobs"]):
            seeds += f" of {','.join(str(s) for s in wanted)}"
        if not jobs:
            notes.append("not run" if not cell["errors"] else "")
            cells = ["-"] * len(METRICS)
        else:
            cells = []
            for metric in METRICS:
                summary = mean_std([job["metrics"][metric] for job in jobs])
                cells.append(f"{summary['mean']:.4f} ± {summary['std']:.4f}")
        note = "; ".join(n for n in notes if n)
        lines.append(f"| {bits} | {method} | {seeds} | " + " | ".join([*cells, note]) + " |")
    if "float_knn" in results:
        knn = results["float_knn"]
        cells = [f"{knn['mAP@1000']:.4f}", f"{knn['mAP@ALL']:.4f}", *["-"] * (len(METRICS) - 2)]
        lines.append("| float | k-NN ceiling | - | " + " | ".join([*cells, ""]) + " |")
    if "linear_probe" in results:
        lines.append(f"\nlinear probe accuracy: {results['linear_probe']['accuracy']:.4f}")
    for bits in sorted({b for _, b in table}):
        for metric in ("mAP@1000", "miss_tax_dist@100"):
            test = paired(table, bits, metric)
            if test:
                per_seed = ", ".join(f"{s}: {d:+.4f}" for s, d in test["per_seed"].items())
                lines.append(
                    f"\nSHC - MDS {metric} at {bits} bits: mean {test['mean_difference']:+.4f} "
                    f"(seeds {per_seed}; paired t p = {test['paired_t_p']:.3g}; "
                    f"difference > 0 on {test['positive']}/{len(test['seeds'])} seeds)"
                )
    lengths = sorted({b for _, b in table})
    if lengths:
        required = ", ".join(f"{b} bits: d = {required_distance(b)}" for b in lengths)
        lines.append(
            f"\nRequired minimum distance between {CLASSES} centers (MDS and SHC meet it by "
            f"construction; CSQ does not aim at it): {required}."
        )
    lines += origin_lines(results)
    return "\n".join(lines)


def per_seed_markdown(results: dict[str, Any]) -> str:
    """SHC vs MDS seed by seed: mAP@1000 and miss_tax_dist@100 of each and their difference."""
    table = rows(results)
    lines = [
        "| bits | seed | MDS mAP@1000 | SHC mAP@1000 | SHC - MDS | MDS miss_tax_dist@100 "
        "| SHC miss_tax_dist@100 | SHC - MDS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for bits in sorted({b for _, b in table}):
        if ("mds", bits) not in table or ("shc", bits) not in table:
            continue
        mds, shc = table["mds", bits]["jobs"], table["shc", bits]["jobs"]
        for seed in sorted(set(mds) & set(shc)):
            cells = []
            for metric in ("mAP@1000", "miss_tax_dist@100"):
                a, b = mds[seed]["metrics"][metric], shc[seed]["metrics"][metric]
                cells += [f"{a:.4f}", f"{b:.4f}", f"{b - a:+.4f}"]
            lines.append(f"| {bits} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Rewrite the results JSON (with its provenance: benchmarks/results_io.py) with the table
    and paired tests as they stand."""
    table = rows(results)
    results["paired_shc_vs_mds"] = {
        f"{bits}/{metric}": paired(table, bits, metric)
        for bits in sorted({b for _, b in table})
        for metric in METRICS
    }
    results["markdown"] = markdown(results)
    provenance = PROVENANCE["record"]
    tables = {
        "main": {"markdown": results["markdown"]},
        "per_seed": {"markdown": per_seed_markdown(results)},
    }
    provenance.write(tables, **results)


def collect(results: dict[str, Any], args: argparse.Namespace) -> None:
    """``--collect``: every finished run under the work folder, beside the computed baselines
    of the existing ``--out`` (and ``--also``), written back to ``--out``."""
    out = Path(args.out)
    results.update(carried_over([out, *args.also], set(), keep_runs=False))
    for metrics in sorted((args.work / "runs").glob(f"*/*/epochs{args.epochs}/seed*/metrics.json")):
        job = read_job(metrics.parent)
        method = metrics.parents[3].name
        results["runs"].append(
            {"method": method, "bits": job["bits"], "seed": job["seed"], "job": job}
        )
    write(results, args)
    print(results["markdown"])
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    plan = default_plan(args)
    if args.plan:
        plan = [(m, int(b), int(s)) for m, b, s in (item.split(":") for item in args.plan)]
    results: dict[str, Any] = {
        "bits_note": {
            str(b): f"d = {required_distance(b)} required between {CLASSES} centers"
            for b in args.bits
        },
        "plan": [f"{m}:{b}:{s}" for m, b, s in plan],
        "runs": [],
    }
    script = "benchmarks/bench_tinyimagenet.py"
    PROVENANCE["record"] = Provenance(
        Path(args.out), script, args, args.seeds, argv=None if argv is None else [script, *argv]
    )
    started = time.perf_counter()
    if args.collect:
        collect(results, args)
        return
    if not FEATURES.is_file() or not WORDNET.is_file():
        raise SystemExit(f"needs {FEATURES} and {WORDNET} (the shared data)")
    recomputed: set[Any] = {
        (method, bits) for method in FLOORS if method in args.baselines for bits in args.bits
    }
    recomputed |= {key for key in ("float_knn", "linear_probe") if key in args.baselines}
    results.update(carried_over([Path(args.out)], recomputed, keep_runs=args.no_runs))

    def one(method: str, bits: int, seed: int) -> None:
        entry = run_job(method, bits, seed, args)
        with LOCK:
            results["runs"].append(entry)
            results["seconds"] = time.perf_counter() - started
            write(results, args)
            print(f"[table]\n{results['markdown']}", flush=True)

    with ThreadPoolExecutor(max_workers=args.parallel + (1 if args.baselines else 0)) as pool:
        extra = [pool.submit(baselines, args, results)] if args.baselines else []
        futures = [] if args.no_runs else [pool.submit(one, *item) for item in plan]
        for future in [*futures, *extra]:
            future.result()
    print(results["markdown"])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
