"""Train and evaluate runs from a composed config: the work behind the thin entry points.

Order of a training run: check the config, seed, set up the data, build backbone and method,
run the method's preparation stage (e.g. hash centers), fit, test the selected checkpoint, then
write ``metrics.json`` and print a summary table. Every run folder holds the resolved config,
the data split, checkpoints, logs and the metrics.

``resume=<run dir>`` fits from the folder's ``checkpoints/last.ckpt`` (:mod:`hashing.runs.resume`);
the train loader resumes mid-epoch (:mod:`hashing.data.resumable`) and the RNG
states travel in checkpoints (:class:`RNGState`), so an interrupted run resumes exactly.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hashing.callbacks.config_snapshot import CONFIG_KEY, ConfigSnapshot
from hashing.callbacks.retrieval_evaluation import RetrievalEvaluation
from hashing.callbacks.rng_state import RNGState
from hashing.data.labels import LABELS_FILE
from hashing.loggers import publish_run_folder
from hashing.methods.base import HashingModule
from hashing.runs.atomic import write_json_atomic, write_text_atomic
from hashing.runs.checkpoint_file import read_checkpoint
from hashing.runs.checkpoint_io import AtomicCheckpointIO
from hashing.runs.config_checks import check_bits_for_classes, check_run_config
from hashing.runs.errors import UserError, as_user_error
from hashing.runs.quiet import quiet_libraries
from hashing.runs.resume import finished_run, keep_csv_history, resume_checkpoint
from hashing.runs.status import METRICS, RESOLVED_CONFIG, clear_markers
from hashing.runs.stopping import stop_on_signal
from hashing.runs.summary import print_summary, run_title

log = logging.getLogger(__name__)


def skip_nvml_cuda_checks() -> None:
    """Answer ``torch.cuda.is_available()`` from torch's cached device count where no GPU is.

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on import (a CUDA check that does not
    initialise CUDA, safe before forking workers); torch then asks NVML on every check, and
    Adam checks in every ``step()``: where the NVML library is missing (a CPU machine) each
    check tries to load it again, about 0.1-1 ms a step. With no GPU visible there is nothing
    to protect, so the cheap check is restored; with a GPU the setting is left alone.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def setup_process() -> None:
    """What every job does first: drop third-party noise and keep CUDA checks cheap."""
    quiet_libraries()
    skip_nvml_cuda_checks()


def instantiate_list(group: DictConfig | None, **kwargs: Any) -> list[Any]:
    """Instantiate each entry of a callbacks/logger group (a mapping of name -> config)."""
    if not group:
        return []
    return [instantiate(node, **kwargs) for node in group.values() if node and "_target_" in node]


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """Instantiate and set up the DataModule (splits drawn or loaded); it gets the run's seed,
    which sets the training order (docs/resume.md).

    A bad value, a missing file or folder, or data that cannot make the split is the user's
    to fix: it is raised as a :class:`UserError` (the message names the data key or file).
    """
    with as_user_error(f"data ({cfg.data.get('_target_', '?')})"):
        datamodule = instantiate(cfg.data, seed=int(cfg.seed))
        datamodule.prepare_data()
        datamodule.setup("fit")
    check_bits_for_classes(int(cfg.bits), int(datamodule.num_classes))
    return datamodule


def build_model(cfg: DictConfig, datamodule: pl.LightningDataModule) -> HashingModule:
    """Instantiate backbone and method for the datamodule's input shape and classes."""
    # a missing optional package (its ImportError names the extra to install); the backbones'
    # own checks (a value, a weight file, an input shape) raise UserError / MissingFileError
    with as_user_error("backbone", (ImportError,)):
        backbone = instantiate(cfg.backbone, input_shape=tuple(datamodule.input_shape))
    # a method rejecting a value (e.g. bits for its centers) raises UserError; any other error
    # is a bug and keeps its traceback
    with as_user_error("method"):
        return instantiate(
            cfg.method,
            backbone=backbone,
            bits=int(cfg.bits),
            num_classes=int(datamodule.num_classes),
            multi_label=bool(datamodule.multi_label),
        )


def build_trainer(cfg: DictConfig, extra_callbacks: list[pl.Callback]) -> pl.Trainer:
    """Instantiate the trainer with the configured callbacks and loggers; its checkpoints are
    written atomically (:class:`AtomicCheckpointIO`) unless the config names plugins."""
    callbacks = instantiate_list(cfg.get("callbacks")) + extra_callbacks
    loggers = instantiate_list(cfg.get("logger"))
    plugins = {} if "plugins" in cfg.trainer else {"plugins": [AtomicCheckpointIO()]}
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **plugins)


def build_run(
    cfg: DictConfig, output_dir: Path
) -> tuple[pl.LightningDataModule, HashingModule, pl.Trainer]:
    """Seed, then the data (its train order set by the seed), model and trainer of a training run;
    the resolved config, the split and the training labels (``labels.json``, docs/labels.md)
    are written into ``output_dir``, and the loggers get the config (after a resume has kept the
    CSV logger's earlier rows).

    One order of random draws for every caller: ``benchmarks/bench_training.py`` times the
    fit this builds.
    """
    pl.seed_everything(int(cfg.seed), workers=True)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    datamodule.use_labels(model.label_use)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    write_text_atomic(output_dir / RESOLVED_CONFIG, OmegaConf.to_yaml(resolved))
    datamodule.export_splits(output_dir)
    write_json_atomic(output_dir / LABELS_FILE, datamodule.label_record())
    trainer = build_trainer(cfg, [ConfigSnapshot(resolved), RNGState()])
    if cfg.get("resume") is not None:
        keep_csv_history(trainer.loggers)
    for logger in trainer.loggers:
        logger.log_hyperparams(resolved)
    return datamodule, model, trainer


def test_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The ``test/*`` values the evaluation callback logged, as plain floats."""
    return {
        key: float(value)
        for key, value in sorted(trainer.callback_metrics.items())
        if key.startswith("test/")
    }


def tested_validation(trainer: pl.Trainer) -> dict[str, float]:
    """The validation values of the tested weights other than mAP (``val/mAP_best`` is that):
    the taxonomy metrics (docs/taxonomy.md) of the validation the tested checkpoint was saved
    after (testing a checkpoint restores them), or of the last validation for the current
    weights."""
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, RetrievalEvaluation):
            return {
                key: value
                for key, value in callback.validation.items()
                if not key.startswith("val/mAP")
            }
    return {}


def select_test_checkpoint(trainer: pl.Trainer, choice: str | None) -> str | None:
    """Path of the checkpoint to test: the best by val/mAP, the last, or None (current weights)."""
    checkpoint = trainer.checkpoint_callback
    if choice is None or checkpoint is None:
        return None
    path = checkpoint.best_model_path if choice == "best" else checkpoint.last_model_path
    return path or None


def report_metrics(
    metrics: dict[str, float],
    output_dir: Path,
    run_cfg: DictConfig,
    datamodule: pl.LightningDataModule,
    footer: str,
) -> None:
    """Write ``metrics.json`` into the run folder and print the summary table."""
    write_json_atomic(output_dir / METRICS, metrics)
    name = str(run_cfg.method.get("name", "method"))
    title = f"{run_title(name, run_cfg.bits, datamodule.name)} · seed {run_cfg.seed}"
    print_summary(metrics, title=title, footer=footer)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job; returns the test metrics and the best val/mAP (``val/mAP_best``)."""
    setup_process()
    check_run_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    fit_from, done = resume_checkpoint(cfg)
    if done is not None:  # a resume
        finished = finished_run(output_dir, cfg.trainer.get("max_epochs"), done)
        if finished is not None:  # left as it is: no file is written
            log.info(finished)
            return json.loads((output_dir / METRICS).read_text())
    clear_markers(output_dir)
    with stop_on_signal("building the data", output_dir) as stage:
        if fit_from is not None and done is not None:
            stage.resume = f"python -m hashing.train resume={output_dir}"
        datamodule, model, trainer = build_run(cfg, output_dir)
        started = time.perf_counter()
        stage.doing = f"preparing {cfg.method.get('name', 'the method')} (before training)"
        model.prepare(datamodule, output_dir)
        if cfg.get("train", True):
            stage.doing = "starting to train"  # the interrupt checkpoint takes over once it runs
            trainer.fit(model, datamodule=datamodule, ckpt_path=fit_from)
        train_seconds = time.perf_counter() - started

    metrics: dict[str, float] = {}
    best_score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    if best_score is not None:
        metrics["val/mAP_best"] = float(best_score)
    if cfg.get("test", True):
        ckpt_path = select_test_checkpoint(trainer, cfg.get("test_ckpt", "best"))
        with stop_on_signal("testing", output_dir) as stage:
            if cfg.get("train", True):  # trained: a resume only tests
                stage.resume = f"python -m hashing.train resume={output_dir}"
            trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        metrics.update(tested_validation(trainer))
        metrics.update(test_metrics(trainer))
        if trainer.is_global_zero:
            footer = f"trained in {train_seconds:.1f} s · tested {ckpt_path or 'last weights'}"
            labels = datamodule.labelling.describe()
            footer += f"\n{labels}" if labels else ""
            report_metrics(metrics, output_dir, cfg, datamodule, footer)
    if trainer.is_global_zero:
        publish_run_folder(trainer.loggers, output_dir)
    log.info("run folder: %s", output_dir)
    return metrics


def run_config_of(checkpoint: dict[str, Any], path: str | Path) -> DictConfig:
    """The resolved training config that :class:`ConfigSnapshot` stored in ``checkpoint``."""
    if CONFIG_KEY not in checkpoint:
        raise UserError(
            f"ckpt_path={str(path)!r} holds no '{CONFIG_KEY}': it was not written by "
            "hashing.train, so the model and data it belongs to are unknown"
        )
    return OmegaConf.create(checkpoint[CONFIG_KEY])


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved training config stored in a checkpoint (checked before anything is built)."""
    return run_config_of(read_checkpoint(ckpt_path, "ckpt_path", mmap=True), ckpt_path)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild a run from its checkpoint and recompute its test metrics."""
    setup_process()
    run_cfg = load_run_config(cfg.ckpt_path)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(int(run_cfg.seed), workers=True)
    datamodule = build_datamodule(run_cfg)
    model = build_model(run_cfg, datamodule)
    trainer = build_trainer(cfg, [])
    trainer.test(model, datamodule=datamodule, ckpt_path=str(cfg.ckpt_path), verbose=False)
    metrics = test_metrics(trainer)
    if trainer.is_global_zero:
        footer = f"evaluated {cfg.ckpt_path} · metrics in {output_dir / METRICS}"
        report_metrics(metrics, output_dir, run_cfg, datamodule, footer)
    return metrics
