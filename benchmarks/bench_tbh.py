"""TBH vs supervised TBH on pretrained CIFAR-10 features, with floors, ceiling and a paired test.

What runs (``--help`` lists every knob; the defaults are the full size the issue asks for):

- Features: ``../shared/data/cifar10_efficientnet_lite0_128.npz`` (ImageNet-pretrained
  EfficientNet-Lite0, 1280-d, all 60,000 CIFAR-10 images) read through the project's
  ``data=features`` DataModule; the frozen backbone is the identity (``backbone=identity``), so
  TBH reconstructs the features, as it reconstructs fc7 in the paper.
- Protocols: ``tbh`` = TBH's own shape (``cifar10-2``, docs/metrics.md#protocols): the 10,000 test
  images are the queries, the 50,000 training images are training set and database; ``cifar10``: per
  class 100 queries and 500 training images, the database is the other 54,000. Both hold out
  10% of the training set a class as validation queries (so TBH fits 45,000 / 4,500 items);
  split seed 0. The database is put in a seeded random order (seed 0): the file is sorted by
  class, and under the stable tie order (ties by database index) a block of equal codes would
  otherwise come back class-sorted and score far above chance.
- Rows per (protocol, bits, seed): the training-free floors ``lsh``, ``pcah`` (PCA-sign) and
  ``itq`` (``benchmarks/floor_rows.py``, fitted on the fit set's features), ``tbh_untrained``
  (the network both TBH rows start from: one seed builds the same initial weights for both),
  ``tbh``, ``tbh_supervised`` (``conf/method/*.yaml`` as configured, except the training budget
  below), optionally ``csq``/``mds`` (the project's center methods,
  a Linear + tanh head on the same features, the same budget); once per protocol ``float``
  (exact Euclidean k-NN on the features, the ceiling).
- Budget: ``--iterations`` batches of ``--batch-size`` (400, the released batch) at Adam lr
  ``--lr`` (1e-3; released 1e-4 for 100,000 iterations, which a shared 2-core CPU cannot run).
  Validation mAP@ALL (1,000 validation queries against 10,000 fit items) at iteration 0 (the
  untrained network) and every ``--val-every`` iterations; a run whose best validation round is
  0 did not beat its own starting point and is flagged ``best_at_start``; a run whose database
  codes are all one code is flagged ``collapsed``.
- Evaluation: the final weights; every query against the whole database: stable-order mAP@100,
  @1000, @ALL (ties by database index) and tie-aware mAP (the expected value under a random
  order of ties). Mean ± sample std over seeds (weights, batch order, priors, LSH planes).
- Paired tests over seeds (same seed = same initial network and batch order): scipy's paired
  t-test (``ttest_rel``, assumes normal differences) and the exact Wilcoxon signed-rank test
  (no normality; with 5 seeds its smallest two-sided p-value is 2/32 = 0.0625, so it cannot
  reach 0.05 however large the effect: read it together with the t-test).
- ``--max-queries N``: a seeded subset of the test queries (default: all). The published table
  used 2,000 of the ``tbh`` shape's 10,000, for the CPU budget; ``cifar10`` has 1,000.
- ``--sweep-lambda-cls V ...``: instead of the table, supervised TBH at each relative
  ``lambda_cls`` (``--sweep-absolute V ...``: the same with ``lambda_cls_reference=absolute``),
  selected on *validation* mAP@ALL; the test mAP is recorded beside it, not used.

Every finished run is appended to ``benchmarks/results/tbh_runs/<protocol>.jsonl`` and skipped
when the script is started again with the same settings, so an interrupted benchmark resumes;
``--report`` rebuilds ``benchmarks/results/tbh.json`` and the table from those files alone.

    python -m benchmarks.bench_tbh                       # everything -> results/tbh.json
    python -m benchmarks.bench_tbh --protocols cifar10   # one protocol (run two in parallel)
    python -m benchmarks.bench_tbh --report              # table from the finished runs
    python -m benchmarks.bench_tbh --quick               # cifar10, 16 bits, 1 seed, 20 iterations
    python -m benchmarks.bench_tbh --sweep-lambda-cls 0.01 0.1 1 --bits 32 --seeds 0
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy import stats
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.floor_rows import floor_codes
from benchmarks.results_io import Provenance
from hashing.backbones.identity import Identity
from hashing.baselines import float_average_precision
from hashing.data.splits import Protocol, make_split
from hashing.methods.base import HashingModule
from hashing.metrics import evaluate_retrieval, mean_average_precisions
from hashing.metrics.functional.bit_balance import bit_balance, codes_all_equal, dead_bits

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ROOT.parent / "shared" / "data" / "cifar10_efficientnet_lite0_128.npz"
RESULTS = ROOT / "benchmarks" / "results"
TOP_KS: tuple[int | None, ...] = (100, 1000, None)
METRICS = ("mAP@100", "mAP@1000", "mAP@ALL", "mAP@ALL_tie_aware")
CENTER_METHODS = ("csq", "mds")
PROTOCOLS = {
    "tbh": Protocol("official"),
    "cifar10": Protocol("disjoint", query_per_class=100, train_per_class=500),
}
FLOOR_METHODS = ("lsh", "pcah", "itq")
ROW_ORDER = ("float", *FLOOR_METHODS, "tbh_untrained", "tbh", "tbh_supervised", *CENTER_METHODS)
PAIRS = (
    ("tbh_supervised", "tbh"),
    ("tbh", "tbh_untrained"),
    ("tbh_supervised", "tbh_untrained"),
    ("tbh", "lsh"),
    ("tbh", "itq"),
    ("tbh_supervised", "itq"),
    ("tbh_supervised", "csq"),
)
Data = dict[str, tuple[Tensor, Tensor]]


# --- data -----------------------------------------------------------------------------------
def load_pool(path: Path) -> tuple[Tensor, Tensor, dict[str, np.ndarray]]:
    """All features and labels of the file (train rows, then test rows) via ``data=features``."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["data=features", f"data.path={path}"])
    dm = instantiate(cfg.data, split_dir=None)
    dm.setup("fit")
    parts = []
    for key in ("train", "query"):
        loader = DataLoader(dm.dataset(key), batch_size=8192, shuffle=False)
        xs, ys = zip(*((x.flatten(1).float(), y) for x, y, _ in loader), strict=True)
        parts.append((torch.cat(xs), torch.cat(ys)))
    (x_train, y_train), (x_test, y_test) = parts
    n_train = len(y_train)
    groups = {"train": np.arange(n_train), "test": np.arange(n_train, n_train + len(y_test))}
    return torch.cat([x_train, x_test]), torch.cat([y_train, y_test]), groups


def protocol_data(
    name: str,
    x: Tensor,
    y: Tensor,
    groups: dict[str, np.ndarray],
    val_queries: int,
    val_database: int,
    max_queries: int | None = None,
) -> Data:
    """(features, labels) of query, database, fit, val_query and val_database for a protocol.

    Database and fit are in a seeded random order (seed 0); the validation sets are the first
    ``val_queries`` validation queries and ``val_database`` fit items of seeded permutations;
    ``max_queries`` keeps a seeded subset of the test queries (None: all of them).
    """
    split = make_split(y.numpy(), PROTOCOLS[name], seed=0, val_fraction=0.1, groups=groups)
    rng = np.random.default_rng(0)
    order = {key: rng.permutation(split[key]) for key in ("database", "fit", "val_query")}
    query = split["query"]
    if max_queries is not None and max_queries < len(query):
        query = np.sort(rng.permutation(query)[:max_queries])
    index = {
        "query": query,
        "database": order["database"],
        "fit": order["fit"],
        "val_query": order["val_query"][:val_queries],
        "val_database": order["fit"][:val_database],
    }
    return {key: (x[torch.as_tensor(i)], y[torch.as_tensor(i)]) for key, i in index.items()}


# --- scoring ----------------------------------------------------------------------------------
def scores(query_codes: Tensor, database_codes: Tensor, data: Data) -> dict[str, Any]:
    """Stable-order and tie-aware mAP@100/@1000/@ALL, dead bits and the all-equal flag."""
    yq, ydb = data["query"][1], data["database"][1]
    report = evaluate_retrieval(query_codes, database_codes, yq, ydb, TOP_KS, TOP_KS)
    balance = bit_balance(database_codes)
    result: dict[str, Any] = {f"mAP@{_k(k)}": v for k, v in report.map_at_k.items()}
    result |= {f"mAP@{_k(k)}_tie_aware": v for k, v in report.tie_aware_map_at_k.items()}
    result["dead_bits"] = dead_bits(balance)
    result["collapsed"] = codes_all_equal(balance)
    return result


def _k(k: int | None) -> str:
    return "ALL" if k is None else str(k)


def encode(model: HashingModule, x: Tensor) -> Tensor:
    """±1 codes of ``x`` in eval mode (the module's mode is restored)."""
    was_training = model.training
    model.eval()
    codes = torch.cat([model.encode(part) for part in x.split(8192)])
    model.train(was_training)
    return codes


def validation_map(model: HashingModule, data: Data) -> float:
    """mAP@ALL of the validation queries against the validation database (stable order)."""
    q, db = encode(model, data["val_query"][0]), encode(model, data["val_database"][0])
    return mean_average_precisions(q, db, data["val_query"][1], data["val_database"][1], (None,))[
        None
    ]


# --- training -----------------------------------------------------------------------------------
class Budget(pl.Callback):
    """Stop after ``iterations`` batches; validation mAP every ``every`` batches; per-epoch
    TBH diagnostics (gradient norms at the codes) from the logged metrics."""

    def __init__(self, iterations: int, every: int, validate: Callable[[], float]) -> None:
        self.iterations, self.every, self.validate = iterations, every, validate
        self.batches = 0
        self.history: list[tuple[int, float]] = []
        self.diagnostics: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.batches += 1
        if self.batches % self.every == 0 or self.batches == self.iterations:
            self.history.append((self.batches, self.validate()))
        if self.batches >= self.iterations:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        logged = {
            k.removeprefix("train/"): float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("train/grad_b") or k == "train/collapsed_batch"
        }
        if logged:
            self.diagnostics.append({"iteration": self.batches, **logged})


def build(method: str, bits: int, seed: int, width: int, overrides: list[str]) -> HashingModule:
    """``conf/method/<method>.yaml`` (composed through train.yaml) on an identity backbone."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[f"method={method}", f"bits={bits}", f"seed={seed}", *overrides],
        )
    node = OmegaConf.to_container(cfg.method, resolve=True)
    pl.seed_everything(seed, verbose=False)
    backbone = Identity(input_shape=(width,))
    return instantiate(node, backbone=backbone, bits=bits, num_classes=10)


def method_overrides(method: str, args: argparse.Namespace) -> list[str]:
    """The budget's overrides: learning rate, and no epoch-based scheduler for center methods."""
    overrides = [f"method.optimizer.lr={args.lr}"]
    if method in CENTER_METHODS:
        overrides.append("method.scheduler=null")
    return overrides


def train_and_score(
    data: Data, method: str, bits: int, seed: int, args: argparse.Namespace, extra: list[str]
) -> dict[str, Any]:
    """Train one model for the budget; test scores, validation history and flags."""
    x_fit, y_fit = data["fit"]
    model = build(method, bits, seed, x_fit.shape[1], [*method_overrides(method, args), *extra])
    if method in CENTER_METHODS:
        model.prepare(None, RESULTS / "tbh_runs" / "centers")  # type: ignore[arg-type]
    budget = Budget(args.iterations, args.val_every, lambda: validation_map(model, data))
    budget.history.append((0, validation_map(model, data)))
    loader = DataLoader(
        TensorDataset(x_fit, y_fit, torch.arange(len(y_fit))),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    trainer = pl.Trainer(
        max_epochs=-1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[budget],
    )
    started = time.perf_counter()
    trainer.fit(model, loader)
    seconds = time.perf_counter() - started
    result = scores(encode(model, data["query"][0]), encode(model, data["database"][0]), data)
    best_round = max(range(len(budget.history)), key=lambda i: budget.history[i][1])
    result |= {
        "train_seconds": seconds,
        "iterations": budget.batches,
        "val_history": budget.history,
        "best_val_iteration": budget.history[best_round][0],
        "best_at_start": best_round == 0,
        "diagnostics": budget.diagnostics,
    }
    if hasattr(model, "cls_scale"):
        result["lambda_cls"] = float(model.lambda_cls)
        result["lambda_cls_reference"] = str(model.lambda_cls_reference)
        result["cls_scale"] = float(model.cls_scale)
        result["classification_weight"] = float(model.classification_weight())
    return result


def untrained_tbh(data: Data, bits: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Scores of the network ``tbh`` and ``tbh_supervised`` start from at this seed."""
    model = build("tbh", bits, seed, data["fit"][0].shape[1], method_overrides("tbh", args))
    return scores(encode(model, data["query"][0]), encode(model, data["database"][0]), data)


def training_free(data: Data, projection: str, bits: int, seed: int) -> dict[str, Any]:
    """A training-free floor (``lsh``, ``pcah`` or ``itq``, fitted on the fit set's features)
    scored like the models."""
    query, database = floor_codes(
        data["fit"][0], data["query"][0], data["database"][0], projection, bits, seed
    )
    return scores(query, database, data)


def float_ceiling(data: Data) -> dict[str, Any]:
    """Exact Euclidean k-NN on the features (no ties, so tie-aware = stable)."""
    ap = float_average_precision(
        data["query"][0], data["database"][0], data["query"][1], data["database"][1], TOP_KS
    ).mean(0)
    values = {f"mAP@{_k(k)}": float(v) for k, v in zip(TOP_KS, ap, strict=True)}
    return values | {f"{k}_tie_aware": v for k, v in values.items()}


# --- runs file (resume) -----------------------------------------------------------------------
def settings_key(args: argparse.Namespace) -> str:
    """Hash of the settings a run's result depends on (a changed setting reruns it)."""
    relevant = {k: getattr(args, k) for k in ("iterations", "batch_size", "lr", "val_every")}
    relevant |= {"val_queries": args.val_queries, "val_database": args.val_database}
    if args.max_queries is not None:
        relevant["max_queries"] = args.max_queries
    return hashlib.sha1(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]


def read_runs(path: Path) -> list[dict[str, Any]]:
    """The finished runs in a JSONL file (a torn last line from an interruption is dropped)."""
    if not path.is_file():
        return []
    runs = []
    for line in path.read_text().splitlines():
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return runs


def append_run(path: Path, run: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(run) + "\n")
        handle.flush()


def run_id(run: dict[str, Any]) -> tuple[Any, ...]:
    return (run["settings"], run["protocol"], run["bits"], run["method"], run["seed"])


def record(path: Path, run: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> None:
    """Compute one run, append it to the runs file and print a line."""
    started = time.perf_counter()
    run |= compute()
    append_run(path, run)
    flags = [f for f in ("collapsed", "best_at_start") if run.get(f)]
    print(
        f"  {run['protocol']} {run['bits']:>2} bits {run['method']:<14} seed {run['seed']}: "
        f"mAP@ALL {run['mAP@ALL']:.4f} (tie-aware {run['mAP@ALL_tie_aware']:.4f}) "
        f"mAP@100 {run['mAP@100']:.4f} {' '.join(flags)} ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )


# --- summary -------------------------------------------------------------------------------------
def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std over seeds per (protocol, bits, method), with flag counts."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["protocol"], run["bits"], run["method"]), []).append(run)
    rows = []
    for (protocol, bits, method), members in groups.items():
        row: dict[str, Any] = {"protocol": protocol, "bits": bits, "method": method}
        row["seeds"] = len(members)
        for metric in METRICS:
            values = [m[metric] for m in members]
            row[metric] = statistics.fmean(values)
            row[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["dead_bits_max"] = max(m.get("dead_bits", 0) for m in members)
        row["collapsed"] = sum(bool(m.get("collapsed")) for m in members)
        row["best_at_start"] = sum(bool(m.get("best_at_start")) for m in members)
        rows.append(row)
    rows.sort(key=lambda r: (r["protocol"], r["bits"], ROW_ORDER.index(r["method"])))
    return rows


def paired_tests(runs: list[dict[str, Any]], metric: str = "mAP@ALL") -> list[dict[str, Any]]:
    """Paired t-test and exact Wilcoxon signed-rank over seeds for each pair in ``PAIRS``."""
    by_key = {(r["protocol"], r["bits"], r["method"], r["seed"]): r[metric] for r in runs}
    tests = []
    for protocol, bits in sorted({(r["protocol"], r["bits"]) for r in runs}):
        for a, b in PAIRS:
            seeds = sorted(
                s
                for (p, n, m, s) in by_key
                if (p, n, m) == (protocol, bits, a) and (protocol, bits, b, s) in by_key
            )
            if len(seeds) < 2:
                continue
            xa = np.array([by_key[(protocol, bits, a, s)] for s in seeds])
            xb = np.array([by_key[(protocol, bits, b, s)] for s in seeds])
            diff = xa - xb
            t_p = float(stats.ttest_rel(xa, xb).pvalue) if diff.std() > 0 else math.nan
            w_p = (
                float(stats.wilcoxon(xa, xb, method="exact").pvalue)
                if np.all(diff != 0)
                else math.nan
            )
            tests.append(
                {
                    "protocol": protocol,
                    "bits": bits,
                    "a": a,
                    "b": b,
                    "metric": metric,
                    "seeds": len(seeds),
                    "mean_difference": float(diff.mean()),
                    "wins": int((diff > 0).sum()),
                    "t_test_p": t_p,
                    "wilcoxon_p": w_p,
                }
            )
    return tests


def markdown(rows: list[dict[str, Any]], tests: list[dict[str, Any]]) -> str:
    """The summary and the paired tests as Markdown tables."""
    lines = [
        "| protocol | bits | method | seeds | mAP@100 | mAP@1000 | mAP@ALL | mAP@ALL tie-aware "
        "| max dead bits | collapsed | best at start |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [f"{row[m]:.4f} ± {row[m + '_std']:.4f}" for m in METRICS]
        lines.append(
            f"| {row['protocol']} | {row['bits'] or '-'} | {row['method']} | {row['seeds']} | "
            f"{' | '.join(cells)} | {row['dead_bits_max']} | {row['collapsed']} | "
            f"{row['best_at_start']} |"
        )
    lines += [
        "",
        "| protocol | bits | a vs b | metric | seeds | mean a - b | a wins | paired t p "
        "| Wilcoxon p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tests:
        lines.append(
            f"| {t['protocol']} | {t['bits']} | {t['a']} vs {t['b']} | {t['metric']} | "
            f"{t['seeds']} | {t['mean_difference']:+.4f} | {t['wins']}/{t['seeds']} | "
            f"{t['t_test_p']:.2g} | {t['wilcoxon_p']:.3g} |"
        )
    return "\n".join(lines)


def report(args: argparse.Namespace, provenance: Provenance | None = None) -> None:
    """Rebuild ``--out`` and print the tables from every protocol's runs file; ``provenance``
    started with the benchmark (else the wall time is the report's alone)."""
    key = settings_key(args)
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for path in sorted(args.runs_dir.glob("*.jsonl")):
        for r in read_runs(path):
            if r["settings"] == key:
                unique.setdefault(run_id(r), r)  # the first of any duplicate run counts
    runs = list(unique.values())
    rows = summarise(runs)
    tests = [*paired_tests(runs, "mAP@ALL"), *paired_tests(runs, "mAP@ALL_tie_aware")]
    # the table tests stable-order mAP@ALL; the JSON also holds the tie-aware tests
    table = markdown(rows, [t for t in tests if t["metric"] == "mAP@ALL"])
    print(table)
    protocol = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    protocol |= {
        "settings": key,
        "features": str(FEATURES.name),
        "protocols": {
            "tbh": "10,000 test queries; 50,000 train = database (fit 45,000, 5,000 validation)",
            "cifar10": "per class 100 queries, 500 train (450 fit + 50 val); database the rest",
        },
        "evaluation": "final weights; stable-order (database in a seeded order) and tie-aware",
    }
    payload = {"protocol": protocol, "summary": rows, "tests": tests, "runs": runs}
    provenance = provenance or Provenance(args.out, "benchmarks/bench_tbh.py", args, args.seeds)
    print(f"wrote {provenance.write({'main': {'markdown': table}}, **payload)}")


# --- main ---------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--centers", nargs="*", default=list(CENTER_METHODS), choices=CENTER_METHODS
    )
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--val-every", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--val-queries", type=int, default=1000)
    parser.add_argument("--val-database", type=int, default=10000)
    parser.add_argument(
        "--max-queries", type=int, default=None, help="seeded subset of the test queries"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep-lambda-cls", nargs="*", type=float, default=[])
    parser.add_argument("--sweep-absolute", nargs="*", type=float, default=[])
    parser.add_argument("--runs-dir", type=Path, default=RESULTS / "tbh_runs")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--report", action="store_true", help="only rebuild the table")
    parser.add_argument("--quick", action="store_true", help="cifar10, 16 bits, 1 seed, 20 it")
    args = parser.parse_args()
    if args.quick:
        args.protocols, args.bits, args.seeds = ["cifar10"], [16], [0]
        args.iterations, args.val_every, args.centers = 20, 10, ["csq"]
        args.runs_dir, args.out = RESULTS / "tbh_runs_quick", RESULTS / "tbh_quick.json"
    for key in ("iterations", "val_every", "batch_size", "val_queries", "val_database"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}")
    if args.max_queries is not None and args.max_queries < 1:
        parser.error(f"--max-queries must be >= 1, got {args.max_queries}")
    if not math.isfinite(args.lr) or args.lr <= 0:
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if any(v <= 0 or not math.isfinite(v) for v in args.sweep_lambda_cls + args.sweep_absolute):
        parser.error("--sweep-lambda-cls/--sweep-absolute values must be positive numbers")
    if not args.report and not args.features.is_file():
        parser.error(f"--features {args.features} does not exist (see ../shared/data/README.md)")
    sweeping = bool(args.sweep_lambda_cls or args.sweep_absolute)
    if args.out is None:
        args.out = RESULTS / ("tbh_lambda_sweep.json" if sweeping else "tbh.json")
    return args


def sweep(args: argparse.Namespace, datasets: dict[str, Data]) -> None:
    """Supervised TBH at each lambda_cls, selected on validation mAP@ALL."""
    points = [(v, "reconstruction") for v in args.sweep_lambda_cls]
    points += [(v, "absolute") for v in args.sweep_absolute]
    results = []
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    for protocol, data in datasets.items():
        for bits in args.bits:
            for value, reference in points:
                for seed in args.seeds:
                    extra = [
                        f"method.lambda_cls={value}",
                        f"method.lambda_cls_reference={reference}",
                    ]
                    r = train_and_score(data, "tbh_supervised", bits, seed, args, extra)
                    final_val = r["val_history"][-1][1]
                    results.append(
                        {"protocol": protocol, "bits": bits, "lambda_cls": value}
                        | {"reference": reference, "seed": seed, "final_val_mAP@ALL": final_val}
                        | r
                    )
                    print(
                        f"{protocol} {bits} bits lambda_cls {value:g} ({reference}) seed {seed}: "
                        f"val mAP@ALL {final_val:.4f}, test {r['mAP@ALL']:.4f} "
                        f"(tie-aware {r['mAP@ALL_tie_aware']:.4f}), weight "
                        f"{r['classification_weight']:.4g}, {r['train_seconds']:.0f} s",
                        flush=True,
                    )
                    # rewritten after every run, so an interrupted sweep keeps what it measured
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    payload = {"protocol": settings, "runs": results}
                    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")


def main() -> None:
    args = parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_tbh.py", args, args.seeds)
    if args.report:
        report(args)
        return
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    x, y, groups = load_pool(args.features)
    datasets = {
        name: protocol_data(
            name, x, y, groups, args.val_queries, args.val_database, args.max_queries
        )
        for name in args.protocols
    }
    for name, data in datasets.items():
        print(f"{name}: " + ", ".join(f"{k} {len(v[1])}" for k, v in data.items()), flush=True)
    if args.sweep_lambda_cls or args.sweep_absolute:
        sweep(args, datasets)
        return
    key = settings_key(args)
    for name, data in datasets.items():
        path = args.runs_dir / f"{name}.jsonl"
        jobs: list[tuple[int, str, int, Callable[[], dict[str, Any]]]] = [
            (0, "float", 0, partial(float_ceiling, data))
        ]
        # code length by code length in --bits order, seed by seed, so an interrupted benchmark
        # leaves whole (bits, seed) cells
        for bits in args.bits:
            for seed in args.seeds:
                methods = (*FLOOR_METHODS, "tbh_untrained", "tbh", *args.centers)
                for method in (*methods, "tbh_supervised"):
                    if method in FLOOR_METHODS:
                        job = partial(training_free, data, method, bits, seed)
                    elif method == "tbh_untrained":
                        job = partial(untrained_tbh, data, bits, seed, args)
                    else:
                        job = partial(train_and_score, data, method, bits, seed, args, [])
                    jobs.append((bits, method, seed, job))
        for bits, method, seed, compute in jobs:
            run = {"settings": key, "protocol": name, "bits": bits, "method": method, "seed": seed}
            # re-read before every job: another process may be filling the same file
            if run_id(run) not in {run_id(r) for r in read_runs(path)}:
                record(path, run, compute)
    report(args, provenance)


if __name__ == "__main__":
    main()
