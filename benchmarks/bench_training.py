"""Training throughput: ``hashing.train``'s fit against a plain PyTorch loop, same everything.

For each case the run's config is composed as ``python -m hashing.train`` would, the data, model,
trainer and method preparation (centers) are built by the pipeline's own ``build_run`` in the
order ``hashing.train`` builds them, and then
  framework   ``Trainer.fit`` with the run's callbacks and logger (checkpoints, interrupt
              handler, progress bar, CSV log), the resumable train loader, the run's optimiser
              and scheduler;
  lightning   ``Trainer(barebones=True).fit``, Lightning's raw-speed mode: the same model,
              loader, optimiser and scheduler, but no callbacks, logger, progress bar,
              checkpoints or model summary. The gap between it and the plain loop is
              Lightning's own loop; the gap between it and the framework is this project's
              layer;
  plain loop  DeepHash-pytorch's shape on the same model (same initial weights), the same
              in-memory training tensors and batch size, the model's own optimiser and scheduler
              (``configure_optimizers``) and loss: a for loop over a fresh permutation each
              epoch, ``loss.backward()``, ``optimizer.step()``.
Validation is excluded from all three (``trainer.limit_val_batches=0``), the test too. images/s
is training items x epochs / wall seconds of the loop (``fit`` for the two Trainers). The three
run in ``--repeats`` interleaved rounds (median reported), so a shared machine's load falls on
all of them; the "+" columns are the median extra milliseconds per batch against the plain
loop (a TBH batch is two optimiser steps).

  python benchmarks/bench_training.py                          # all cases, full size
  python benchmarks/bench_training.py --cases csq_digits --repeats 5
  python benchmarks/bench_training.py --epochs 3               # every case for 3 epochs
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

from benchmarks.results_io import Provenance  # noqa: E402
from hashing import pipeline  # noqa: E402
from hashing.data.resumable import epoch_seed  # noqa: E402
from hashing.methods.center_hashing import center_loss, center_targets  # noqa: E402

FEATURES = ROOT.parent / "shared" / "data" / "cifar10_efficientnet_lite0_128.npz"
CASES: dict[str, dict[str, Any]] = {
    "csq_digits": {"overrides": [], "epochs": 30},
    "csq_features": {
        "overrides": [
            "data=features",
            f"data.path={FEATURES}",
            "data.batch_size=128",
            "backbone=identity",
        ],
        "epochs": 20,
    },
    "tbh_features": {
        "overrides": ["experiment=tbh_fc7", f"data.path={FEATURES}", "trainer.max_steps=-1"],
        "epochs": 5,
    },
}


def compose_case(overrides: list[str], epochs: int, folder: Path) -> DictConfig:
    """The run config as ``python -m hashing.train <overrides>`` composes it, in ``folder``."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                *overrides,
                f"trainer.max_epochs={epochs}",
                "+trainer.limit_val_batches=0",
                "+trainer.num_sanity_val_steps=0",
                "test=false",
                f"paths.output_dir={folder}",
                f"paths.cache_dir={ROOT / '.cache'}",
                f"hydra.run.dir={folder}",
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def build(cfg: DictConfig, folder: Path) -> tuple[Any, Any, pl.Trainer]:
    """Data module, prepared model and the run's trainer, built as ``hashing.train`` builds
    them (the same order of random draws for all three loops)."""
    folder.mkdir(parents=True, exist_ok=True)
    datamodule, model, trainer = pipeline.build_run(cfg, folder)
    model.prepare(datamodule, folder)
    return datamodule, model, trainer


Loop = Callable[[DictConfig, Path], tuple[float, int, torch.nn.Module]]


def framework(cfg: DictConfig, folder: Path) -> tuple[float, int, torch.nn.Module]:
    """Seconds of ``Trainer.fit``, the training items it saw, the trained model."""
    datamodule, model, trainer = build(cfg, folder)
    return timed_fit(trainer, model, datamodule)


def lightning(cfg: DictConfig, folder: Path) -> tuple[float, int, torch.nn.Module]:
    """Seconds of ``Trainer(barebones=True).fit``, the items it saw, the trained model.

    Barebones is Lightning's own "raw speed" mode: no callbacks, logger, progress bar,
    checkpoints, model summary or sanity check, and ``self.log`` does nothing.
    """
    datamodule, model, _ = build(cfg, folder)
    trainer = pl.Trainer(
        barebones=True,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        max_epochs=int(cfg.trainer.max_epochs),
        limit_train_batches=cfg.trainer.get("limit_train_batches"),
        limit_val_batches=0,
        default_root_dir=folder,
    )
    return timed_fit(trainer, model, datamodule)


def timed_fit(
    trainer: pl.Trainer, model: torch.nn.Module, datamodule: Any
) -> tuple[float, int, torch.nn.Module]:
    """Seconds of ``trainer.fit``, the training items it saw, the trained model."""
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - started
    return seconds, len(datamodule.dataset("fit")) * int(trainer.max_epochs), model


def plain_step(model: Any, optimizers: list[torch.optim.Optimizer]) -> Callable:
    """One training step of ``model``'s method written as a plain loop would write it."""
    if hasattr(model, "step_losses"):  # TBH: actor and critic updates from one forward pass
        actor, critic = model.actor_parameters(), model.critic_parameters()

        def tbh_step(x: torch.Tensor, y: torch.Tensor) -> None:
            _, losses = model.step_losses(x, y)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            losses.actor.backward(inputs=actor, retain_graph=True)
            losses.critic.backward(inputs=critic)
            for optimizer in optimizers:
                optimizer.step()

        return tbh_step

    [optimizer] = optimizers

    def center_step(x: torch.Tensor, y: torch.Tensor) -> None:
        targets = center_targets(y, model.centers, model.tie_breaker, model.multi_label)
        loss = center_loss(model(x), targets, model.lambda_q)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return center_step


def plain_loop(cfg: DictConfig, folder: Path) -> tuple[float, int, torch.nn.Module]:
    """Seconds of a plain loop over the fit split's tensors, the items it saw, the model.

    Each epoch's order is the framework loader's permutation (``epoch_seed``), so the two see
    the same batches and, with the same initial weights, should end with the same weights.
    """
    datamodule, model, _ = build(cfg, folder)
    configured = model.configure_optimizers()
    schedulers: list[Any] = []
    if isinstance(configured, dict):
        optimizers = [configured["optimizer"]]
        schedulers = [configured["lr_scheduler"]["scheduler"]]
    elif isinstance(configured, tuple):
        optimizers, schedulers = configured
    else:
        optimizers = configured if isinstance(configured, list) else [configured]
    step = plain_step(model, optimizers)
    epochs = int(cfg.trainer.max_epochs)
    model.train()
    started = time.perf_counter()
    for batches in epoch_batches(datamodule, epochs, batch_limit(cfg)):
        for x, y in batches:
            step(x, y)
        for scheduler in schedulers:
            scheduler.step()
    return time.perf_counter() - started, len(datamodule.dataset("fit")) * epochs, model


def batch_limit(cfg: DictConfig) -> int | None:
    """``trainer.limit_train_batches`` when it is a count of batches (None: whole epochs)."""
    limit = cfg.trainer.get("limit_train_batches")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None


def epoch_batches(
    datamodule: Any, epochs: int, limit: int | None = None
) -> Iterator[Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """Per epoch, the fit split's (inputs, labels) batches in the framework loader's order.

    The order is the loader's permutation (``epoch_seed``) and a short last batch is dropped
    when the data module drops it (``drop_last``), so a plain loop sees exactly the batches
    ``Trainer.fit`` sees; ``limit`` stops each epoch after that many batches.
    """
    split = datamodule.dataset("fit", train=True)
    x_all = split.transform(split.source[split.indices])
    y_all = split.labels
    batch, count = int(datamodule.batch_size), len(y_all)
    stop = count - count % batch if getattr(datamodule, "drop_last", False) else count
    starts = range(0, stop, batch)[:limit]

    def one_epoch(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(epoch_seed(datamodule.order_seed, epoch))
        order = torch.randperm(count, generator=generator)
        for start in starts:
            rows = order[start : start + batch]
            yield x_all[rows], y_all[rows]

    return (one_epoch(epoch) for epoch in range(epochs))


def batches_per_epoch(datamodule: Any, limit: int | None = None) -> int:
    """How many batches one training epoch of ``datamodule`` has (``drop_last`` respected)."""
    count, batch = len(datamodule.dataset("fit")), int(datamodule.batch_size)
    full = count // batch if getattr(datamodule, "drop_last", False) else -(-count // batch)
    return full if limit is None else min(full, limit)


def weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest absolute difference between two models' floating-point parameters."""
    pairs = zip(a.parameters(), b.parameters(), strict=True)
    return max(float((p.detach() - q.detach()).abs().max()) for p, q in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--epochs", type=int, default=None, help="override every case's epochs")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "training.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_training.py", args)
    provenance.capture_printed_tables()
    torch.set_num_threads(args.threads)
    pipeline.setup_process()  # as hashing.train does (all loops run in this process)
    loops: dict[str, Loop] = {"plain": plain_loop, "lightning": lightning, "framework": framework}
    rows = []
    for name in args.cases:
        case = CASES[name]
        if "features" in name and not FEATURES.is_file():
            print(f"{name}: {FEATURES} is absent; skipped")
            continue
        epochs = args.epochs or case["epochs"]
        seconds: dict[str, list[float]] = {kind: [] for kind in loops}
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                models = {}
                for kind, run in loops.items():
                    folder = Path(tmp) / f"{kind}{repeat}"
                    cfg = compose_case(case["overrides"], epochs, folder)
                    elapsed, items, models[kind] = run(cfg, folder)
                    seconds[kind].append(elapsed)
        # the same work: same batches from the same weights give the same weights
        differences = {
            kind: weight_difference(models["plain"], model)
            for kind, model in models.items()
            if kind != "plain"
        }
        batch = int(cfg.data.batch_size)
        per_epoch = items // epochs
        full = per_epoch // batch if cfg.data.get("drop_last") else -(-per_epoch // batch)
        batches = full * epochs
        median = {kind: float(np.median(values)) for kind, values in seconds.items()}
        rate = {kind: items / value for kind, value in median.items()}
        rows.append(
            {
                "case": name,
                "overrides": case["overrides"],
                "epochs": epochs,
                "batch_size": batch,
                "train_items": items // epochs,
                "batches": batches,
                **{f"{kind}_images_per_s": value for kind, value in rate.items()},
                "ratio": rate["framework"] / rate["plain"],
                "lightning_vs_plain": rate["lightning"] / rate["plain"],
                "framework_vs_lightning": rate["framework"] / rate["lightning"],
                "plain_ms_per_batch": 1000 * median["plain"] / batches,
                "lightning_overhead_ms_per_batch": 1000
                * (median["lightning"] - median["plain"])
                / batches,
                "framework_overhead_ms_per_batch": 1000
                * (median["framework"] - median["plain"])
                / batches,
                "max_weight_difference_vs_plain": differences,
                "seconds": seconds,
            }
        )
    print(f"training throughput, {args.threads} thread(s), median of {args.repeats} rounds")
    print(
        "| case | epochs | batch | items | plain loop (img/s) | bare Lightning (img/s) | "
        "hashing.train (img/s) | vs plain | Lightning vs plain | vs Lightning | "
        "plain ms/batch | + Lightning | + hashing.train |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {row['epochs']} | {row['batch_size']} | {row['train_items']:,} | "
            f"{row['plain_images_per_s']:,.0f} | {row['lightning_images_per_s']:,.0f} | "
            f"{row['framework_images_per_s']:,.0f} | {row['ratio']:.2f}x | "
            f"{row['lightning_vs_plain']:.2f}x | {row['framework_vs_lightning']:.2f}x | "
            f"{row['plain_ms_per_batch']:.2f} | {row['lightning_overhead_ms_per_batch']:+.2f} | "
            f"{row['framework_overhead_ms_per_batch']:+.2f} |"
        )
    for row in rows:
        differences = ", ".join(
            f"{kind} {value:.1e}" for kind, value in row["max_weight_difference_vs_plain"].items()
        )
        print(f"{row['case']}: largest weight difference from the plain loop's: {differences}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average": os.getloadavg(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "pytorch_lightning": pl.__version__,
        "rows": rows,
    }
    provenance.write(None, **payload)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
