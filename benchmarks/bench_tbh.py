"""Supervised vs unsupervised TBH on MNIST and CIFAR-10 (../shared/data), 16/32/64 bits, seeds.

Protocol (sized for a 2-core CPU; see ``--help`` for every knob):

- Data: the project's DataModules on the offline copies in ``../shared/data``: MNIST through
  torchvision (protocol ``mnist``) and the CIFAR-10 JPEG folder copy (protocol ``cifar10``).
  Both: per class 100 queries and 500 training images (5,000; 10% of them per class are the
  held-out validation queries, so TBH fits on 4,500), the database is everything else (MNIST
  64,000, CIFAR-10 54,000), split seed 0. Relevance: same class.
- Features: TBH's protocol is a fixed feature extractor (fc7) under the hashing network. No
  pretrained weights can be downloaded here, so the fixed "backbone" is the identity on the
  pixels scaled to [0, 1]: MNIST 28x28 (784-d) and CIFAR-10 decoded at 16x16 (768-d, the
  folder DataModule's ``image_size=16``; a quarter of the 3,072-d input's cost, for the CPU
  budget), through the ``mlp`` backbone with no hidden layer, frozen. The decoder reconstructs
  those pixels (non-negative, so the released ReLU output fits).
- Model: ``conf/method/tbh_supervised.yaml`` and ``conf/method/tbh.yaml`` exactly as
  configured (architecture 1024/512, gamma 1.4, code-depth discriminators, summed
  reconstruction, lambda_cls 1 vs 0) except the training budget: Adam lr 1e-3 (not 1e-4),
  batch 100, a fixed number of epochs (default 5, 225 iterations, against the released
  ~100,000), and ``lambda_adv`` (default 1, the released value; ``--lambda-adv``).
- Evaluation: the final weights; every query against the whole database with the project's
  exact stable-order mAP@100, @1000 and @ALL (ties broken by database index), and the
  tie-aware mAP (expected value under a random order of ties). They differ when codes collapse:
  the CIFAR-10 folder pool is ordered by class, so the stable order of a block of identical
  codes is a class-sorted list, which scores far above chance. Mean ± sample std over seeds
  (weights, shuffling and priors; the split stays fixed).

Run from the project root (one thread: on this shared 2-core machine one thread is several
times faster than two):

    python -m benchmarks.bench_tbh          # full table -> benchmarks/results/tbh.json
    python -m benchmarks.bench_tbh --quick  # mnist, 16 bits, 1 seed, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from hashing.backbones.mlp import MLP
from hashing.data.base import RetrievalDataModule
from hashing.data.folder import FolderDataModule
from hashing.data.torchvision_datasets import MNISTDataModule
from hashing.methods.tbh import TBH
from hashing.metrics import mean_average_precisions, tie_aware_average_precision

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / ".cache"
METHODS = ("tbh_supervised", "tbh")
TOP_KS: tuple[int | None, ...] = (100, 1000, None)
METRICS = ("mAP@100", "mAP@1000", "mAP@ALL")


def datamodule(name: str) -> RetrievalDataModule:
    """The project's DataModule for ``name`` on the ../shared/data copy, set up."""
    common = {"split_seed": 0, "val_fraction": 0.1, "split_dir": CACHE / "splits"}
    if name == "mnist":
        dm: RetrievalDataModule = MNISTDataModule(
            root=SHARED / "mnist", download=False, protocol="mnist", **common
        )
    elif name == "cifar10":
        dm = FolderDataModule(
            root=SHARED / "cifar10",
            name="cifar10_folder",
            protocol="cifar10",
            image_size=16,
            cache_dir=CACHE / "decoded",
            **common,
        )
    else:
        raise ValueError(f"dataset {name!r} unknown; expected mnist or cifar10")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def split_tensors(dm: RetrievalDataModule, key: str) -> tuple[Tensor, Tensor]:
    """All (flattened inputs, labels) of split ``key`` with the evaluation transform."""
    loader = DataLoader(dm.dataset(key), batch_size=4096, shuffle=False)
    xs, ys = zip(*((x.flatten(1), y) for x, y, _ in loader), strict=True)
    return torch.cat(xs), torch.cat(ys)


def method_config(method: str, bits: int, seed: int, overrides: list[str]) -> Any:
    """``conf/method/<method>.yaml`` composed through train.yaml (so ``${seed}`` resolves)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[f"method={method}", f"bits={bits}", f"seed={seed}", *overrides],
        )
    return OmegaConf.to_container(cfg.method, resolve=True)


def train_and_score(
    data: dict[str, tuple[Tensor, Tensor]],
    method: str,
    bits: int,
    seed: int,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Train one TBH on the fit split; mAP@k of the queries against the database."""
    x_fit, y_fit = data["fit"]
    overrides = [
        f"method.optimizer.lr={args.lr}",
        f"method.lambda_adv={args.lambda_adv}",
    ]
    node = method_config(method, bits, seed, overrides)
    pl.seed_everything(seed, verbose=False)
    backbone = MLP(input_shape=(x_fit.shape[1],), hidden_dims=[])
    model: TBH = instantiate(node, backbone=backbone, bits=bits, num_classes=10)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        TensorDataset(x_fit, y_fit, torch.arange(len(y_fit))),
        batch_size=args.batch_size,
        shuffle=True,
        generator=generator,
    )
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    started = time.perf_counter()
    trainer.fit(model, loader)
    seconds = time.perf_counter() - started
    model.eval()
    codes = {
        key: torch.cat([model.encode(c) for c in data[key][0].split(8192)])
        for key in ("query", "database")
    }
    scores = mean_average_precisions(
        codes["query"], codes["database"], data["query"][1], data["database"][1], TOP_KS
    )
    tie_aware = tie_aware_average_precision(
        codes["query"], codes["database"], data["query"][1], data["database"][1], TOP_KS
    ).mean(dim=0)
    balance = (codes["database"] > 0).float().mean(dim=0)
    return {
        **{f"mAP@{'ALL' if k is None else k}": v for k, v in scores.items()},
        **{
            f"mAP@{'ALL' if k is None else k}_tie_aware": float(v)
            for k, v in zip(TOP_KS, tie_aware, strict=True)
        },
        "dead_bits": int(((balance < 0.01) | (balance > 0.99)).sum()),
        "train_seconds": seconds,
        "iterations": int(trainer.global_step // 2),
    }


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std over seeds per (dataset, bits, method)."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["dataset"], run["bits"], run["method"]), []).append(run)
    rows = []
    for (dataset, bits, method), members in groups.items():
        row: dict[str, Any] = {"dataset": dataset, "bits": bits, "method": method}
        row["seeds"] = len(members)
        for metric in (*METRICS, *(f"{m}_tie_aware" for m in METRICS)):
            values = [m[metric] for m in members]
            row[metric] = statistics.fmean(values)
            row[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["dead_bits_max"] = max(m["dead_bits"] for m in members)
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table (mean ± std over seeds)."""
    lines = [
        "| dataset | bits | method | mAP@100 | mAP@1000 | mAP@ALL | mAP@ALL tie-aware "
        "| max dead bits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [f"{row[m]:.4f} ± {row[m + '_std']:.4f}" for m in (*METRICS, "mAP@ALL_tie_aware")]
        lines.append(
            f"| {row['dataset']} | {row['bits']} | {row['method']} | {' | '.join(cells)} "
            f"| {row['dead_bits_max']} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lambda-adv", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tbh.json")
    parser.add_argument("--quick", action="store_true", help="mnist, 16 bits, seed 0, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.bits, args.seeds, args.epochs = ["mnist"], [16], [0], 1
    if args.epochs < 1 or args.batch_size < 1 or not math.isfinite(args.lr) or args.lr <= 0:
        parser.error("--epochs and --batch-size must be >= 1 and --lr a positive number")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for dataset in args.datasets:
        dm = datamodule(dataset)
        data = {key: split_tensors(dm, key) for key in ("fit", "query", "database")}
        sizes = {key: len(value[1]) for key, value in data.items()}
        print(f"{dataset}: {sizes}, input dim {data['fit'][0].shape[1]}", flush=True)
        for bits in args.bits:
            for method in METHODS:
                for seed in args.seeds:
                    result = train_and_score(data, method, bits, seed, args)
                    runs.append(
                        {"dataset": dataset, "bits": bits, "method": method, "seed": seed} | result
                    )
                    print(
                        f"  {dataset} {bits:>2} bits {method:<14} seed {seed}: "
                        f"mAP@ALL {result['mAP@ALL']:.4f} mAP@100 {result['mAP@100']:.4f} "
                        f"dead bits {result['dead_bits']} ({result['train_seconds']:.0f} s)",
                        flush=True,
                    )
    rows = summarise(runs)
    table = markdown(rows)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    protocol = {
        key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()
    }
    protocol |= {
        "features": "pixels in [0, 1] (MNIST 28x28, CIFAR-10 16x16), flattened, identity backbone",
        "splits": "per class 100 query / 500 train (450 fit + 50 val), database = the rest",
        "evaluation": "final weights, stable-order and tie-aware mAP over the whole database",
        "total_seconds": time.perf_counter() - started,
    }
    payload = {"protocol": protocol, "summary": rows, "runs": runs, "table": table}
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
