"""CIFAR-10 on frozen ImageNet-pretrained EfficientNet-Lite0 features: every method vs the floor
and the ceiling, with each row's cost in operation.

    python benchmarks/bench_pretrained.py [--methods csq mds shc tbh tbh_supervised]
        [--bits 16 32 64] [--seeds 0 1 2] [--epochs N] [--method-epochs tbh=5 ...]
        [--jobs 2] [--features <npz>] [--extract-images 1000] [--skip-methods] [--work <dir>]

The defaults are the headline comparison of ``docs/benchmarks.md`` (every method, 16/32/64 bits,
seeds 0-2, two sweeps at a time on 2 cores, TBH at a reduced epoch budget so the whole fits in
45 minutes); its results go to ``benchmarks/results/pretrained.json`` with their provenance, and
``python benchmarks/render_tables.py`` puts its tables into the docs.

Parts (one run, one machine):

* **Extractor**: :func:`hashing.features.encode_pool` on the first ``--extract-images`` images
  of ``../shared/data/cifar10`` (pool order) against a bare loop over the same model (batches
  sliced from the same uint8 tensor, ``model(x / 255)`` under ``inference_mode``), interleaved
  batch by batch in alternating order so both see the same load: img/s and the ratio (goal
  >= 0.9x). The same rows are compared with
  the features file (``--features``): max |ours - file| against half a float16 step.
* **Reference rows** on the features file, protocol ``cifar10`` (the split the runs draw):
  Euclidean k-NN on the float features (faiss ``IndexFlatL2`` for queries/s, exact AP by
  :func:`hashing.baselines.float_average_precision`), the training-free floors LSH, PCA-sign and
  ITQ at every length and seed (``benchmarks/floor_rows.py``, the functions of
  ``method=lsh|pcah|itq``), the untrained model (``train=false``: the CSQ hash layer at its
  initialisation), and a logistic-regression probe's accuracy on the queries.
* **Methods**: ``python -m hashing.train -m experiment=cifar10_effnet method=<m> bits=.. seed=..``
  (the real pipeline, one multirun per method); each job's ``metrics.json``. For the first seed
  the best checkpoint encodes queries and database and the project's binary index
  (:class:`hashing.index.HashIndex`, exact flat) is timed at k=100 on the same queries.
  Degenerate runs are flagged (dead bits, best epoch 0, few distinct codes).

Tables: mean ± sample std over seeds of mAP@100/1000/ALL and tie-aware mAP@ALL, each seed's
best epoch against the budget (a best epoch at the budget's end: the validation curve was still
rising), bytes per database item, queries/s at k=100 and the speed-up over the float index; and
paired comparisons over seeds (every learned method against ITQ, SHC against CSQ).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's `hashing`, also when run as a script
from benchmarks.floor_rows import ceiling_row, floor_rows  # noqa: E402
from benchmarks.results_io import Provenance, markdown_table  # noqa: E402
from benchmarks.sweep_runs import job_bits_seed, mean_std, run_multirun  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
FEATURES = SHARED / "cifar10_efficientnet_lite0_128.npz"
METHODS = ("csq", "mds", "shc", "tbh", "tbh_supervised")
METRICS = ("mAP@100", "mAP@1000", "mAP@ALL", "mAP@ALL_tie_aware")
K = 100
#: the headline's epoch budgets where the preset's 30 do not fit in 45 minutes on 2 cores
METHOD_EPOCHS = {"tbh": 5, "tbh_supervised": 5}
SUPERVISED = ("csq", "mds", "shc", "tbh_supervised")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument(
        "--method-epochs", nargs="*", default=[f"{m}={e}" for m, e in METHOD_EPOCHS.items()],
        help="per-method epoch budgets, method=epochs (over --epochs)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="method sweeps run at once")
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--extract-images", type=int, default=0, help="0: no extractor part")
    parser.add_argument("--skip-methods", action="store_true")
    parser.add_argument("--skip-extract", action="store_true")
    parser.add_argument("--skip-references", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    # a finished sweep with the same command is reused (delete the work folder to rerun)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench_pretrained")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pretrained.json")
    return parser.parse_args()


def timed(function: Any, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls (the shared machine's noise only ever adds)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


# --- extractor --------------------------------------------------------------------------------
def bench_extractor(count: int, features: Path) -> dict[str, Any]:
    import numpy as np
    import torch

    from hashing.backbones.efficientnet_lite import EfficientNetLite0
    from hashing.data.folder import FolderDataModule
    from hashing.data.transforms import to_unit_float
    from hashing.features import encode_pool

    datamodule = FolderDataModule(
        SHARED / "cifar10", name="cifar10_folder", cache_dir=ROOT / ".cache" / "decoded",
        split_dir=None,
    )  # fmt: skip
    datamodule.setup()
    source = datamodule.pool.source[:count]
    model = EfficientNetLite0((3, 32, 32)).eval()
    batch = 100

    def ours(part: torch.Tensor) -> None:
        encode_pool(model, part, to_unit_float, batch, progress=False)

    def bare(part: torch.Tensor) -> None:
        with torch.inference_mode():
            for start in range(0, len(part), batch):
                model(part[start : start + batch].float() / 255.0)

    bare(source[:batch])  # warm-up: the first forward pays oneDNN's kernel selection
    # Interleaved a batch at a time, order alternating, so both see the same machine load.
    seconds = {"ours": 0.0, "bare": 0.0}
    for number, start in enumerate(range(0, count, batch)):
        part = source[start : start + batch]
        pair = [("ours", ours), ("bare", bare)]
        for name, function in pair if number % 2 == 0 else pair[::-1]:
            began = time.perf_counter()
            function(part)
            seconds[name] += time.perf_counter() - began
    result: dict[str, Any] = {
        "images": count,
        "batch": batch,
        "ours_img_s": count / seconds["ours"],
        "bare_img_s": count / seconds["bare"],
    }
    rows = encode_pool(model, source, to_unit_float, batch, dtype="float32", progress=False)
    result["ratio"] = result["ours_img_s"] / result["bare_img_s"]
    result["full_extraction_s_estimate"] = 60000 / result["ours_img_s"]
    if features.is_file():
        with np.load(features) as stored:
            reference = stored["train_x"][:count].astype(np.float32)
            files = stored["train_files"][:count]
        assert list(files) == datamodule.relative_paths()[:count], "row order differs"
        error = np.abs(rows.astype(np.float32) - reference)
        half_step = np.spacing(np.abs(reference).astype(np.float16)).astype(np.float32) / 2
        result["max_abs_diff_vs_file"] = float(error.max())
        result["rows_within_fp16_rounding"] = bool((error <= half_step + 1e-4).all())
    return result


# --- reference rows ---------------------------------------------------------------------------
def reference_split(features: Path, cache: Path) -> dict[str, Any]:
    from hashing.data.features import FeaturesDataModule

    datamodule = FeaturesDataModule(
        features, name="cifar10_effnet_lite0_128", protocol="cifar10", split_dir=cache / "splits"
    )
    datamodule.setup()
    pool = datamodule.pool
    return {
        key: (pool.source[datamodule.split[key]], pool.labels[datamodule.split[key]])
        for key in ("query", "train", "fit", "database")
    }


def search_speed(index_search: Any, queries: Any) -> float:
    return len(queries) / timed(lambda: index_search(queries), 3)


def binary_qps(database_codes: Any, query_codes: Any) -> float:
    from hashing.index import HashIndex

    index = HashIndex.from_codes(database_codes)
    return search_speed(lambda q: index.search(q, k=K), query_codes)


def reference_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    import faiss
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    split = reference_split(args.features, args.work / "cache")
    (xq, yq), (xt, yt), (xd, yd) = split["query"], split["train"], split["database"]
    ceiling = ceiling_row((xq, yq), (xd, yd))
    flat = faiss.IndexFlatL2(xd.shape[1])
    flat.add(np.ascontiguousarray(xd.numpy(), dtype=np.float32))
    queries = np.ascontiguousarray(xq.numpy(), dtype=np.float32)
    ceiling |= {"bytes": 4 * xd.shape[1], "qps": search_speed(lambda q: flat.search(q, K), queries)}
    rows: list[dict[str, Any]] = [ceiling]
    # the floors fit on the split the learned methods train on (train minus validation queries)
    for row in floor_rows(split["fit"][0], (xq, yq), (xd, yd), args.bits, args.seeds):
        rows.append(row | {"bytes": row["bits"] / 8, "qps": None, "flags": []})
    scaler = StandardScaler().fit(xt.numpy())
    probe = LogisticRegression(max_iter=2000, C=0.1)
    probe.fit(scaler.transform(xt.numpy()), yt.numpy())
    accuracy = float((probe.predict(scaler.transform(xq.numpy())) == yq.numpy()).mean())
    rows.append({"method": "logistic probe (accuracy on the queries)", "accuracy": accuracy})
    rows.append(probe_center_row(probe, scaler, split, max(args.bits)))
    return rows


def probe_center_row(probe: Any, scaler: Any, split: dict[str, Any], bits: int) -> dict[str, Any]:
    """What perfectly collapsed center codes would score with the probe's classifier: each item
    coded as the Hadamard center of its *predicted* class (the bound a center method reaches
    when its codes sit exactly at the centers and it classifies as well as the probe)."""
    import torch

    from hashing.centers.csq import hadamard_matrix
    from hashing.metrics import evaluate_retrieval

    centers = hadamard_matrix(bits)[:10].float()
    (xq, yq), (xd, yd) = split["query"], split["database"]
    codes = [centers[torch.as_tensor(probe.predict(scaler.transform(x.numpy())))] for x in (xq, xd)]
    report = evaluate_retrieval(codes[0], codes[1], yq, yd, top_ks=(100, 1000, None))
    values = {"mAP@100": [report.map_at_k[100]], "mAP@1000": [report.map_at_k[1000]],
              "mAP@ALL": [report.map_at_k[None]],
              "mAP@ALL_tie_aware": [report.tie_aware_map_at_k[None]]}  # fmt: skip
    return {"method": "probe's predicted class as its center code", "bits": bits, "seeds": [0],
            "values": values, "bytes": bits / 8, "qps": None, "flags": []}  # fmt: skip


# --- methods through the pipeline -------------------------------------------------------------
def method_epochs(args: argparse.Namespace) -> dict[str, int]:
    """``--method-epochs m=e ...`` as a mapping (a malformed entry stops with its text)."""
    budgets = {}
    for entry in args.method_epochs:
        method, _, epochs = entry.partition("=")
        if not epochs.isdigit() or int(epochs) < 1:
            raise SystemExit(f"--method-epochs {entry!r}: write method=epochs, e.g. tbh=10")
        budgets[method] = int(epochs)
    return budgets


def epochs_of(args: argparse.Namespace, method: str) -> int | None:
    """The epoch budget of ``method`` in this benchmark (None: the preset's)."""
    return method_epochs(args).get(method, args.epochs)


def run_sweep(
    args: argparse.Namespace, method: str, extra: list[str], tag: str
) -> tuple[Path, float]:
    """One method's multirun into ``<work>/runs/<tag>`` (reused when the same one finished); its
    folder and seconds."""
    sweep_dir = args.work / "runs" / tag
    overrides = [
        "experiment=cifar10_effnet", f"method={method}", f"bits={','.join(map(str, args.bits))}",
        f"seed={','.join(map(str, args.seeds))}",
        f"paths.cache_dir={args.work / 'cache'}", f"hydra.sweep.dir={sweep_dir}",
        "~callbacks.retrieval_grid", "callbacks.progress_bar.refresh_rate=0",
        "callbacks.retrieval_evaluation.curves=false", "logger=csv", "fail_fast=false", *extra,
    ]  # fmt: skip
    epochs = epochs_of(args, method)
    if epochs is not None and tag != "untrained":
        overrides.append(f"trainer.max_epochs={epochs}")
    expected = len(args.bits) * len(args.seeds)
    log = args.work / f"{tag}.log"
    return sweep_dir, run_multirun(tag, overrides, sweep_dir, log, args.threads, expected)


def job_codes(job: Path, split: dict[str, Any]) -> tuple[Any, Any, str | None]:
    """(query codes, database codes, best checkpoint name) of a finished job."""
    import torch

    from hashing.index.encoder import CodeEncoder, InputSpec

    checkpoints = sorted((job / "checkpoints").glob("epoch_*.ckpt"))
    if not checkpoints:
        return None, None, None
    best = checkpoints[-1]
    spec = InputSpec((int(split["query"][0].shape[1]),), "scale", None, None)
    encoder = CodeEncoder.from_checkpoint(best, spec, batch_size=4096)
    codes = [torch.from_numpy(encoder.encode_inputs(split[k][0])) for k in ("query", "database")]
    return codes[0], codes[1], best.name


def best_epoch(job: Path) -> int | None:
    """The epoch of the job's best checkpoint by val/mAP (the one it tested), or None."""
    checkpoints = sorted((job / "checkpoints").glob("epoch_*.ckpt"))
    return int(checkpoints[-1].stem.split("_")[-1]) if checkpoints else None


def method_plans(args: argparse.Namespace) -> list[tuple[str, str, list[str], str]]:
    """(row label, method, extra overrides, sweep tag) of every sweep, longest first."""
    plans = [("untrained (csq head at init)", "csq", ["train=false"], "untrained")]
    plans += [(m, m, [], m) for m in args.methods]
    return sorted(plans, key=lambda plan: plan[1] not in ("tbh", "tbh_supervised"))


def run_sweeps(args: argparse.Namespace, plans: list[Any]) -> dict[str, tuple[Path, float]]:
    """Every plan's sweep, ``--jobs`` at a time (each a process of ``--threads`` threads)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {
            tag: pool.submit(run_sweep, args, method, extra, tag) for _, method, extra, tag in plans
        }
        return {tag: future.result() for tag, future in futures.items()}


def method_rows(args: argparse.Namespace, rows: list[dict[str, Any]], save: Any) -> None:
    """Run every method's sweep, then append its rows to ``rows`` and call ``save``."""
    split = reference_split(args.features, args.work / "cache")
    plans = method_plans(args)
    sweeps = run_sweeps(args, plans)
    for label, method, _, tag in sorted(plans, key=lambda plan: plan[3] != "untrained"):
        sweep_dir, wall = sweeps[tag]
        jobs: dict[int, dict[int, Path]] = {}
        for job in sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()):
            bits, seed = job_bits_seed(job)
            jobs.setdefault(bits, {})[seed] = job
        budget = None if tag == "untrained" else epochs_of(args, method) or 30
        for bits in sorted(jobs):
            values: dict[str, list[float]] = {m: [] for m in METRICS}
            flags, seeds, best_epochs = [], [], []
            for seed, job in sorted(jobs[bits].items()):
                metrics_file = job / "metrics.json"
                if not metrics_file.is_file():
                    flags.append(f"seed {seed} failed (see {job})")
                    continue
                metrics = json.loads(metrics_file.read_text())
                seeds.append(seed)
                for name in METRICS:
                    values[name].append(metrics[f"test/{name}"])
                if metrics.get("test/dead_bits", 0) > 0:
                    flags.append(f"seed {seed}: {int(metrics['test/dead_bits'])} dead bits")
                best_epochs.append(best_epoch(job))
            first = jobs[bits][min(jobs[bits])]
            codes = untrained_codes if tag == "untrained" else job_codes
            qc, dc, _ = codes(first, split)
            qps = binary_qps(dc, qc) if dc is not None else None
            if dc is not None:
                distinct = len({tuple(r) for r in dc.tolist()})
                dead = int(((dc == dc[0]).all(0)).sum())
                shared = constant_center_bits(first)
                if dead > shared:  # bits the centers share are constant by design, not collapse
                    flags.append(f"{dead} constant database bits ({shared} in the centers)")
                if distinct <= 20:
                    flags.append(f"only {distinct} distinct database codes")
            if budget is not None and 0 in best_epochs:
                flags.append("best epoch 0")
            rows.append({"method": label, "bits": bits, "seeds": seeds, "values": values,
                         "bytes": bits / 8, "qps": qps, "flags": flags, "sweep_wall_s": wall,
                         "best_epochs": best_epochs, "epochs": budget})  # fmt: skip
        save()


def constant_center_bits(job: Path) -> int:
    """Bits equal in every hash center of a center method's run (0 without centers).

    Sylvester-Hadamard rows share their first column, so CSQ's codes have a bit that is the same
    for every class by construction; only constant bits beyond the centers' mean collapse.
    """
    import torch

    path = job / "centers.pt"
    if not path.is_file():
        return 0
    centers = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(centers, dict):
        centers = next(v for v in centers.values() if isinstance(v, torch.Tensor))
    return int((centers == centers[0]).all(0).sum())


def untrained_codes(job: Path, split: dict[str, Any]) -> tuple[Any, Any, str | None]:
    """Codes of the CSQ model at its seed-0 initialisation (what ``train=false`` tested)."""
    import pytorch_lightning as pl
    import torch
    from omegaconf import OmegaConf

    from hashing.pipeline import build_model

    cfg = OmegaConf.load(job / "config_resolved.yaml")
    pl.seed_everything(int(cfg.seed), workers=True)
    shape = type("Shape", (), {"input_shape": (int(split["query"][0].shape[1]),),
                               "num_classes": 10, "multi_label": False})  # fmt: skip
    model = build_model(cfg, shape).eval()
    with torch.no_grad():
        return model.encode(split["query"][0]), model.encode(split["database"][0]), None


# --- tables -----------------------------------------------------------------------------------
def summary(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    over_seeds = mean_std(values)
    return f"{over_seeds['mean']:.4f} ± {over_seeds['std']:.4f}"


def epochs_cell(row: dict[str, Any]) -> str:
    """Each seed's best epoch (0-based) of the budget, e.g. ``9, 9, 8 of 10``."""
    if not row.get("epochs") or not row.get("best_epochs"):
        return "–"
    best = ", ".join("?" if e is None else str(e) for e in row["best_epochs"])
    return f"{best} of {row['epochs']}"


def headline_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every row: floors, ceiling, probe, untrained and the methods."""
    float_qps = next((r["qps"] for r in rows if r.get("qps") and r["bits"] > 1000), None)
    columns = ["method", "bits", "seeds", *METRICS, "best epoch", "bytes/item", "q/s @100",
               "vs float", "flags"]  # fmt: skip
    table_rows = []
    for row in rows:
        if "accuracy" in row:
            cells = [row["method"], "–", "–", f"{row['accuracy']:.4f}"]
            table_rows.append(cells + [""] * (len(columns) - len(cells)))
            continue
        qps = row.get("qps")
        cells = [row["method"], str(row["bits"]), str(len(row["seeds"]) or 1)]
        cells += [summary(row["values"][m]) for m in METRICS]
        cells += [epochs_cell(row), f"{row['bytes']:g}", f"{qps:,.0f}" if qps else "–"]
        cells += [f"{qps / float_qps:.1f}x" if qps and float_qps else "–"]
        cells += ["; ".join(row.get("flags", []))]
        table_rows.append(cells)
    return {"columns": columns, "rows": table_rows}


def paired(a: list[float], b: list[float], seeds_a: list[int], seeds_b: list[int]) -> Any:
    """Per-seed differences a - b over the seeds both have, and the two-sided paired t-test's
    p-value (None for fewer than 2 pairs or no spread)."""
    from scipy.stats import ttest_rel

    common = sorted(set(seeds_a) & set(seeds_b))
    x = [a[seeds_a.index(s)] for s in common]
    y = [b[seeds_b.index(s)] for s in common]
    diffs = [u - v for u, v in zip(x, y, strict=True)]
    p = None
    if len(diffs) > 1 and len(set(diffs)) > 1:
        p = float(ttest_rel(x, y).pvalue)
    return diffs, p


def comparisons_table(rows: list[dict[str, Any]], metric: str = "mAP@ALL") -> dict[str, Any]:
    """Paired over seeds: every learned method against ITQ (does it beat the training-free
    bar at every length?), and SHC against CSQ (the semantic centers' claim)."""
    by_key = {(r["method"], r["bits"]): r for r in rows if "values" in r and r["seeds"]}
    pairs = [(m, "ITQ") for m in ("csq", "mds", "shc", "tbh_supervised", "tbh")]
    pairs.append(("shc", "csq"))
    columns = ["comparison", "bits", "seeds", f"mean difference ({metric})", "seeds won",
               "paired t-test p"]  # fmt: skip
    table_rows = []
    for first, second in pairs:
        for bits in sorted({b for (m, b) in by_key if m == first}):
            if (second, bits) not in by_key:
                continue
            a, b = by_key[first, bits], by_key[second, bits]
            diffs, p = paired(a["values"][metric], b["values"][metric], a["seeds"], b["seeds"])
            if not diffs:
                continue
            mean = sum(diffs) / len(diffs)
            won = sum(d > 0 for d in diffs)
            table_rows.append([f"{first} − {second}", str(bits), str(len(diffs)),
                               f"{mean:+.4f}", f"{won} of {len(diffs)}",
                               "–" if p is None else f"{p:.2g}"])  # fmt: skip
    return {"columns": columns, "rows": table_rows}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    if not args.features.is_file():
        raise SystemExit(
            f"features file {args.features} not found: write it with `python -m hashing.features "
            f"data=cifar10_folder backbone=efficientnet_lite0` and pass --features <file>"
        )
    method_epochs(args)  # a malformed budget stops before anything runs
    provenance = Provenance(args.out, "benchmarks/bench_pretrained.py", args, args.seeds)
    result: dict[str, Any] = {"threads": args.threads}
    if not args.skip_extract and args.extract_images > 0:
        result["extractor"] = bench_extractor(args.extract_images, args.features)
        print(json.dumps(result["extractor"], indent=1))
    rows = [] if args.skip_references else reference_rows(args)

    def save() -> None:
        tables = {"headline": headline_table(rows), "comparisons": comparisons_table(rows)}
        provenance.write(tables, rows=rows, **result)

    save()
    if not args.skip_methods:
        method_rows(args, rows, save)
    save()
    print(markdown_table(headline_table(rows)))
    print()
    print(markdown_table(comparisons_table(rows)))
    print(f"whole benchmark: {time.perf_counter() - provenance.started:.0f} s")


if __name__ == "__main__":
    main()
