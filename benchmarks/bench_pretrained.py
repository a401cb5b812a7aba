"""CIFAR-10 on frozen ImageNet-pretrained EfficientNet-Lite0 features: every method vs the floor
and the ceiling, with each row's cost in operation.

    python benchmarks/bench_pretrained.py [--methods csq mds shc tbh tbh_supervised]
        [--bits 16 32 64] [--seeds 0 1 2] [--epochs N] [--features <npz>]
        [--extract-images 1000] [--skip-methods] [--skip-extract] [--work <dir>]

Parts (one run, one machine):

* **Extractor**: :func:`hashing.features.encode_pool` on the first ``--extract-images`` images
  of ``../shared/data/cifar10`` (pool order) against a bare loop over the same model (batches
  sliced from the same uint8 tensor, ``model(x / 255)`` under ``inference_mode``), interleaved
  batch by batch in alternating order so both see the same load: img/s and the ratio (goal
  >= 0.9x). The same rows are compared with
  the features file (``--features``): max |ours - file| against half a float16 step.
* **Reference rows** on the features file, protocol ``cifar10`` (the split the runs draw):
  Euclidean k-NN on the float features (faiss ``IndexFlatL2`` for queries/s, exact AP by
  :func:`hashing.baselines.float_average_precision`), LSH at every length and seed
  (:func:`hashing.baselines.lsh_codes`), the untrained model (``train=false``: the CSQ hash layer
  at its initialisation), and a logistic-regression probe's accuracy on the queries.
* **Methods**: ``python -m hashing.train -m experiment=cifar10_effnet method=<m> bits=.. seed=..``
  (the real pipeline, one multirun per method); each job's ``metrics.json``. For the first seed
  the best checkpoint encodes queries and database and the project's binary index
  (:class:`hashing.index.HashIndex`, exact flat) is timed at k=100 on the same queries.
  Degenerate runs are flagged (dead bits, best epoch 0, few distinct codes).

Table: mean ± sample std over seeds of mAP@100/1000/ALL and tie-aware mAP@ALL, bytes per
database item, queries/s at k=100 and the speed-up over the float index. JSON goes to
``benchmarks/results/pretrained.json``. The defaults are the full comparison (5 methods x 3
lengths x 3 seeds, the preset's 30 epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's `hashing`, also when run as a script
from benchmarks.sweep_runs import job_bits_seed, mean_std, run_multirun  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
FEATURES = SHARED / "cifar10_efficientnet_lite0_128.npz"
METHODS = ("csq", "mds", "shc", "tbh", "tbh_supervised")
METRICS = ("mAP@100", "mAP@1000", "mAP@ALL", "mAP@ALL_tie_aware")
K = 100


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--extract-images", type=int, default=1000)
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
        for key in ("query", "train", "database")
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

    from hashing.baselines import float_average_precision, lsh_codes
    from hashing.metrics import evaluate_retrieval

    split = reference_split(args.features, args.work / "cache")
    (xq, yq), (xt, yt), (xd, yd) = split["query"], split["train"], split["database"]
    rows: list[dict[str, Any]] = []
    ap = float_average_precision(xq, xd, yq, yd, top_ks=(100, 1000, None)).mean(0)
    flat = faiss.IndexFlatL2(xd.shape[1])
    flat.add(np.ascontiguousarray(xd.numpy(), dtype=np.float32))
    queries = np.ascontiguousarray(xq.numpy(), dtype=np.float32)
    float_qps = search_speed(lambda q: flat.search(q, K), queries)
    values = dict(zip(METRICS[:3], ap.tolist(), strict=True))
    values["mAP@ALL_tie_aware"] = values["mAP@ALL"]  # real-valued distances: no ties
    rows.append(
        {"method": "float k-NN (IndexFlatL2)", "bits": 32 * xd.shape[1], "seeds": [0],
         "values": {k: [v] for k, v in values.items()}, "bytes": 4 * xd.shape[1],
         "qps": float_qps}
    )  # fmt: skip
    for bits in args.bits:
        per_seed: dict[str, list[float]] = {m: [] for m in METRICS}
        qps = None
        for seed in args.seeds:
            qc, dc = lsh_codes(xt, xq, xd, bits=bits, seed=seed)
            report = evaluate_retrieval(qc, dc, yq, yd, top_ks=(100, 1000, None))
            for name, k in (("mAP@100", 100), ("mAP@1000", 1000), ("mAP@ALL", None)):
                per_seed[name].append(report.map_at_k[k])
            per_seed["mAP@ALL_tie_aware"].append(report.tie_aware_map_at_k[None])
            if qps is None:
                qps = binary_qps(dc, qc)
        rows.append({"method": "LSH", "bits": bits, "seeds": list(args.seeds),
                     "values": per_seed, "bytes": bits / 8, "qps": qps})  # fmt: skip
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
def run_sweep(
    args: argparse.Namespace, method: str, extra: list[str], tag: str
) -> tuple[Path, float]:
    """One method's multirun into ``<work>/runs/<tag>`` (reused when the same one finished); its
    folder and seconds."""
    sweep_dir = args.work / "runs" / tag
    overrides = [
        "experiment=cifar10_effnet", f"method={method}", f"bits={','.join(map(str, args.bits))}",
        f"paths.cache_dir={args.work / 'cache'}", f"hydra.sweep.dir={sweep_dir}",
        "~callbacks.retrieval_grid", "callbacks.progress_bar.refresh_rate=0",
        "callbacks.retrieval_evaluation.curves=false", "logger=csv", "fail_fast=false", *extra,
    ]  # fmt: skip
    if args.epochs is not None and tag != "untrained":
        overrides.append(f"trainer.max_epochs={args.epochs}")
    expected = len(args.bits) * (1 if tag == "untrained" else len(args.seeds))
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


def method_rows(args: argparse.Namespace, rows: list[dict[str, Any]], save: Any) -> None:
    """Run every method's sweep, appending its rows to ``rows`` and calling ``save`` after each
    (an interrupted benchmark keeps what finished)."""
    split = reference_split(args.features, args.work / "cache")
    plans = [("untrained (csq head at init)", "csq", ["train=false", "seed=0"], "untrained")]
    plans += [(m, m, [f"seed={','.join(map(str, args.seeds))}"], m) for m in args.methods]
    for label, method, extra, tag in plans:
        sweep_dir, wall = run_sweep(args, method, extra, tag)
        jobs: dict[int, dict[int, Path]] = {}
        for job in sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()):
            bits, seed = job_bits_seed(job)
            jobs.setdefault(bits, {})[seed] = job
        for bits in sorted(jobs):
            values: dict[str, list[float]] = {m: [] for m in METRICS}
            flags, seeds = [], []
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
            first = jobs[bits][min(jobs[bits])]
            qc, dc, best = job_codes(first, split) if tag != "untrained" else (None, None, None)
            if tag == "untrained":
                qc, dc, best = untrained_codes(first, split)
            qps = binary_qps(dc, qc) if dc is not None else None
            if dc is not None:
                distinct = len({tuple(r) for r in dc.tolist()})
                dead = int(((dc == dc[0]).all(0)).sum())
                shared = constant_center_bits(first)
                if dead > shared:  # bits the centers share are constant by design, not collapse
                    flags.append(f"{dead} constant database bits ({shared} in the centers)")
                if distinct <= 20:
                    flags.append(f"only {distinct} distinct database codes")
            if best == "epoch_000.ckpt":
                flags.append("best epoch 0")
            rows.append({"method": label, "bits": bits, "seeds": seeds, "values": values,
                         "bytes": bits / 8, "qps": qps, "flags": flags,
                         "sweep_wall_s": wall})  # fmt: skip
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


# --- table ------------------------------------------------------------------------------------
def summary(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    over_seeds = mean_std(values)
    return f"{over_seeds['mean']:.4f} ± {over_seeds['std']:.4f}"


def print_table(rows: list[dict[str, Any]], float_qps: float | None) -> None:
    header = ["method", "bits", "seeds", *METRICS, "bytes/item", "q/s @100", "vs float", "flags"]
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for row in rows:
        if "accuracy" in row:
            cells = [row["method"], "–", "–", f"{row['accuracy']:.4f}"]
            print("| " + " | ".join(cells + [""] * (len(header) - len(cells))) + " |")
            continue
        qps = row.get("qps")
        cells = [row["method"], str(row["bits"]), str(len(row["seeds"]))]
        cells += [summary(row["values"][m]) for m in METRICS]
        cells += [f"{row['bytes']:g}", f"{qps:,.0f}" if qps else "–"]
        cells += [f"{qps / float_qps:.1f}x" if qps and float_qps else "–"]
        cells += ["; ".join(row.get("flags", []))]
        print("| " + " | ".join(cells) + " |")


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
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count(),
                              "threads": args.threads, "args": vars(args) | {
                                  "work": str(args.work), "out": str(args.out),
                                  "features": str(args.features)}}  # fmt: skip
    if not args.skip_extract:
        result["extractor"] = bench_extractor(args.extract_images, args.features)
        print(json.dumps(result["extractor"], indent=1))
    rows = [] if args.skip_references else reference_rows(args)
    result["rows"] = rows

    def save() -> None:
        result["wall_s"] = time.perf_counter() - started
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))

    save()
    if not args.skip_methods:
        method_rows(args, rows, save)
    float_qps = rows[0]["qps"] if rows and "qps" in rows[0] else None
    print_table(rows, float_qps)
    print(f"whole benchmark: {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
