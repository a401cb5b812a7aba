"""Training throughput: ``hashing.train``'s fit against a plain PyTorch loop, same everything.

For each case the run's config is composed as ``python -m hashing.train`` would, the data, model
and method preparation (centers) are built by the pipeline's own functions, and then
  framework   ``Trainer.fit`` with the run's callbacks and logger (checkpoints, interrupt
              handler, progress bar, CSV log), the resumable train loader, the run's optimiser
              and scheduler;
  lightning   ``Trainer.fit`` bare: the same model, loader, optimiser and scheduler, but no
              callbacks, logger, progress bar, checkpoints or model summary. The gap between it
              and the plain loop is Lightning's own loop; the gap between it and the framework
              is this project's layer;
  plain loop  DeepHash-pytorch's shape on the same model (same initial weights), the same
              in-memory training tensors and batch size, the model's own optimiser and scheduler
              (``configure_optimizers``) and loss: a for loop over a fresh permutation each
              epoch, ``loss.backward()``, ``optimizer.step()``.
Validation is excluded from all three (``trainer.limit_val_batches=0``), the test too. images/s
is training items x epochs / wall seconds of the loop (``fit`` for the two Trainers). The three
run in ``--repeats`` interleaved rounds (median reported), so a shared machine's load falls on
all of them; "overhead" is the median extra milliseconds per optimiser step against the plain
loop.

  python benchmarks/bench_training.py                          # all cases, full size
  python benchmarks/bench_training.py --cases csq_digits --repeats 5
  python benchmarks/bench_training.py --epochs 3               # every case for 3 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402

from hashing import pipeline  # noqa: E402
from hashing.callbacks.config_snapshot import ConfigSnapshot  # noqa: E402
from hashing.callbacks.rng_state import RNGState  # noqa: E402
from hashing.methods.center_hashing import center_loss, center_targets  # noqa: E402
from hashing.runs.resumable_loader import make_training_resumable  # noqa: E402

FEATURES = ROOT.parent / "shared" / "data" / "cifar10_efficientnet_lite0_128.npz"
CASES: dict[str, dict[str, Any]] = {
    "csq_digits": {"overrides": [], "epochs": 30},
    "csq_features": {
        "overrides": [
            "data=features",
            f"data.path={FEATURES}",
            "data.batch_size=128",
            "backbone.hidden_dims=[]",
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


def build(cfg: DictConfig, folder: Path) -> tuple[Any, Any]:
    """Data module and prepared model, seeded as the pipeline seeds them."""
    pl.seed_everything(int(cfg.seed), workers=True)
    datamodule = pipeline.build_datamodule(cfg)
    make_training_resumable(datamodule, int(cfg.seed))
    model = pipeline.build_model(cfg, datamodule)
    model.prepare(datamodule, folder)
    return datamodule, model


def framework(cfg: DictConfig, folder: Path) -> tuple[float, int]:
    """Seconds of ``Trainer.fit`` and the training items it saw."""
    datamodule, model = build(cfg, folder)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    trainer = pipeline.build_trainer(cfg, [ConfigSnapshot(resolved), RNGState()])
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - started
    return seconds, len(datamodule.dataset("fit")) * int(cfg.trainer.max_epochs)


def lightning(cfg: DictConfig, folder: Path) -> tuple[float, int]:
    """Seconds of a bare ``Trainer.fit`` (nothing but the loop) and the items it saw."""
    datamodule, model = build(cfg, folder)
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        max_epochs=int(cfg.trainer.max_epochs),
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=folder,
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - started
    return seconds, len(datamodule.dataset("fit")) * int(cfg.trainer.max_epochs)


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


def plain_loop(cfg: DictConfig, folder: Path) -> tuple[float, int]:
    """Seconds of a plain loop over the fit split's tensors, and the items it saw."""
    datamodule, model = build(cfg, folder)
    split = datamodule.dataset("fit", train=True)
    x_all = split.transform(split.source[split.indices])
    y_all = split.labels
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
    batch, epochs, count = int(datamodule.batch_size), int(cfg.trainer.max_epochs), len(y_all)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    model.train()
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator)
        for start in range(0, count, batch):
            rows = order[start : start + batch]
            step(x_all[rows], y_all[rows])
        for scheduler in schedulers:
            scheduler.step()
    return time.perf_counter() - started, count * epochs


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
    torch.set_num_threads(args.threads)
    pipeline.skip_nvml_cuda_checks()  # as hashing.train does (all loops run in this process)
    loops = {"plain": plain_loop, "lightning": lightning, "framework": framework}
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
                for kind, run in loops.items():
                    folder = Path(tmp) / f"{kind}{repeat}"
                    cfg = compose_case(case["overrides"], epochs, folder)
                    elapsed, items = run(cfg, folder)
                    seconds[kind].append(elapsed)
        batch = int(cfg.data.batch_size)
        batches = -(-(items // epochs) // batch) * epochs
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
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
