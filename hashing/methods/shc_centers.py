"""SHC's centers (docs/methods.md#shc): a classifier's logits -> class similarity -> fitted centers.

Stage 1 trains a classifier (``ClassifierModule`` on a ``pl.Trainer``) on the fit split's labelled
items (all of them unless ``data.label_fraction`` < 1, with their training labels: docs/labels.md)
and keeps their logits; the class similarity ``S`` follows from them; stage 2 optimises centers
to ``S`` starting from MDS. With ``similarity="taxonomy"`` stage 1 instead reads ``S`` off the
dataset's class taxonomy (``data.hierarchy``: Wu-Palmer similarity, normalised as the
classifier's; docs/taxonomy.md). Both stages are cached in a :class:`~hashing.centers.StageCache`,
keyed by everything they depend on (data split fingerprint, backbone, settings, seed).
"""

from __future__ import annotations

import csv
import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from hashing.centers import (
    DISTANCE_BOUND_RULE,
    StageCache,
    cache_key,
    class_similarity,
    semantic_centers,
)
from hashing.centers.quality import center_quality
from hashing.centers.semantic import SOLVER_SETTINGS, asymmetry
from hashing.centers.similarity import taxonomy_similarity
from hashing.digests import tensor_digest
from hashing.methods.center_sources import RuleCheckedSource, is_rank_zero, save_centers
from hashing.methods.classifier import ClassifierModule, fit_classifier, isolated_rng
from hashing.runs.atomic import atomic_path, atomic_write, write_json_atomic
from hashing.runs.errors import UserError

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """A DictConfig/ListConfig as plain containers (resolved); anything else unchanged."""
    if isinstance(value, DictConfig) or OmegaConf.is_list(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def split_fingerprint(datamodule: pl.LightningDataModule) -> dict[str, Any]:
    """What identifies the data stage 1 trains on: dataset, protocol, seed, fit split digest.

    The digest covers the pool indices and training labels of the fit split's labelled items,
    so a split drawn differently (other seed, validation fraction or protocol sizes) or labelled
    differently (docs/labels.md) never matches; ``transform`` and ``input_shape`` cover what
    the classifier sees of each item.
    """
    needed = ("name", "protocol", "split_seed", "training_dataset", "train_labels", "input_shape")
    missing = [attr for attr in needed if not hasattr(datamodule, attr)]
    if missing:
        raise TypeError(
            f"SHC needs a RetrievalDataModule (set up); {type(datamodule).__name__} lacks {missing}"
        )
    fit = np.asarray(datamodule.training_dataset("labelled", train=False).indices, np.int64)
    labels = datamodule.train_labels()
    return {
        "name": str(datamodule.name),
        "protocol": str(datamodule.protocol.key),
        "split_seed": int(datamodule.split_seed),
        "fit_size": int(fit.size),
        "fit_sha256": tensor_digest(fit, labels),
        "num_classes": int(datamodule.num_classes),
        "multi_label": bool(datamodule.multi_label),
        "transform": getattr(datamodule, "transform", None),
        "input_shape": [int(d) for d in datamodule.input_shape],
    }


def write_similarity_csv(similarity: Tensor, path: Path, names: list[str]) -> None:
    """``S`` as CSV: a header of class names, then one row per class, name first."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", *names])
        for name, row in zip(names, similarity.tolist(), strict=True):
            writer.writerow([name, *(repr(float(v)) for v in row)])


CLASSIFIER_KEYS = ("max_epochs", "batch_size", "optimizer", "scheduler", "trainer")
#: the settings of :func:`semantic_centers` and their defaults, read off its signature so the
#: two never drift: its keyword-only arguments except the start and the bound, which it derives
OPTIMISATION_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(semantic_centers).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("init", "min_distance")
}
OPTIMISATION_KEYS = tuple(OPTIMISATION_DEFAULTS)
MULTI_LABEL_RULES = ("all", "first")
SIMILARITIES = ("classifier", "taxonomy")
#: what ends stage 2 early, outside the work budget: not part of the result's cache key
SAFETY_SETTINGS = ("max_seconds",)
#: settings of configs written before the local search stopped by work alone: ignored
RETIRED_SETTINGS = ("time_budget",)
#: bump when a stage's computation changes, so old cache entries stop matching
STAGE1_VERSION = 1
STAGE2_VERSION = 3
TAXONOMY_STAGE1_VERSION = 1


class SemanticCenters(RuleCheckedSource):
    """SHC (docs/methods.md#shc): classifier -> class similarity -> similarity-fitting centers.

    Args:
        backbone: the backbone *config* (``_target_`` + arguments, as in ``conf/backbone``);
            stage 1 builds a fresh instance with the datamodule's input shape.
        classifier: stage-1 training settings: ``max_epochs``, ``batch_size``, ``optimizer``
            (a ``_partial_`` optimiser config), ``scheduler`` (a ``_partial_`` scheduler
            config or None) and ``trainer`` (further ``pl.Trainer`` arguments).
        optimisation: keyword arguments of :func:`hashing.centers.semantic_centers`:
            ``solver`` (local_search or reference), ``mds_max_sweeps``, and the solver's own
            settings (``SOLVER_SETTINGS``: the local search's kicks, kick_flips and safety stop
            max_seconds; the reference's rho, mu, eta, ...). Settings of the other solver, and
            the retired ``time_budget``, are ignored with a warning.
        seed: seed of the classifier (weights, shuffling) and of the MDS start.
        multi_label: how a multi-hot sample enters ``S``: ``all`` masks every positive label
            and adds to each of their rows, ``first`` keeps the first positive only (SHC code).
        cache_dir: folder of the stage cache (None: no caching).
        cache: False computes both stages every time (nothing read or written).
        figures: draw the similarity heatmap and the distance-vs-similarity scatter into the
            run folder (about a second each; off for large sweeps or huge ``C``).
        similarity: where ``S`` comes from: ``classifier`` (the paper's stage 1) or
            ``taxonomy`` (Wu-Palmer similarity in the datamodule's ``hierarchy``; no classifier
            is trained).
    """

    method = "shc"
    bits_rule = DISTANCE_BOUND_RULE

    def __init__(
        self,
        backbone: Mapping[str, Any],
        classifier: Mapping[str, Any],
        optimisation: Mapping[str, Any] | None = None,
        seed: int = 0,
        multi_label: str = "all",
        cache_dir: str | Path | None = None,
        cache: bool = True,
        figures: bool = True,
        similarity: str = "classifier",
    ) -> None:
        if similarity not in SIMILARITIES:
            raise UserError(
                f"method.similarity={similarity!r} is invalid: use one of {list(SIMILARITIES)}"
            )
        self.similarity = similarity
        self.backbone = dict(_plain(backbone))
        if "_target_" not in self.backbone:
            raise UserError(f"backbone must be a config with a _target_, got {self.backbone!r}")
        self.classifier = self._check_classifier(dict(_plain(classifier)))
        self.optimisation = self._check_optimisation(dict(_plain(optimisation or {})))
        if multi_label not in MULTI_LABEL_RULES:
            raise UserError(
                f"multi_label={multi_label!r} is invalid: use one of {list(MULTI_LABEL_RULES)}"
            )
        self.seed = int(seed)
        self.multi_label = multi_label
        self.cache = StageCache(cache_dir or ".", enabled=bool(cache) and cache_dir is not None)
        self.figures = bool(figures)
        #: "hit" / "miss" per stage, from the latest call (also written to shc_stages.json)
        self.last_cache: dict[str, str] = {}

    @staticmethod
    def _check_classifier(settings: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and reject unknown or invalid stage-1 settings."""
        unknown = sorted(set(settings) - set(CLASSIFIER_KEYS))
        if unknown:
            raise UserError(
                f"unknown SHC classifier setting(s) {unknown}; allowed: {list(CLASSIFIER_KEYS)}"
            )
        for key in ("max_epochs", "batch_size"):
            value = settings.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"classifier.{key}={value!r} is invalid: use a positive integer")
        optimizer = settings.get("optimizer")
        if not isinstance(optimizer, Mapping) or "_target_" not in optimizer:
            raise UserError(
                f"classifier.optimizer={optimizer!r} is invalid: give a _partial_ optimiser "
                "config, e.g. {_target_: torch.optim.Adam, _partial_: true, lr: 1e-3}"
            )
        settings.setdefault("scheduler", None)
        settings["trainer"] = dict(settings.get("trainer") or {})
        clash = sorted(
            set(settings["trainer"])
            & {"max_epochs", "logger", "enable_checkpointing", "default_root_dir", "callbacks"}
        )
        if clash:
            raise UserError(f"classifier.trainer may not set {clash}: stage 1 controls them")
        return settings

    @staticmethod
    def _check_optimisation(settings: dict[str, Any]) -> dict[str, Any]:
        """The solver's settings, every one given (defaults filled); unknown ones rejected,
        the other solver's and retired ones dropped with a warning."""
        unknown = sorted(set(settings) - set(OPTIMISATION_KEYS) - set(RETIRED_SETTINGS))
        if unknown:
            raise UserError(
                f"unknown SHC optimisation setting(s) {unknown}; allowed: {list(OPTIMISATION_KEYS)}"
            )
        solver = settings.get("solver", OPTIMISATION_DEFAULTS["solver"])
        if solver not in SOLVER_SETTINGS:
            raise UserError(
                f"method.center_source.optimisation.solver={solver!r} is invalid: use "
                f"method/solver=<one of {list(SOLVER_SETTINGS)}>"
            )
        own = ("solver", "mds_max_sweeps", *SOLVER_SETTINGS[solver])
        ignored = sorted(set(settings) - set(own))
        if ignored:
            log.warning(
                "SHC stage 2 ignores %s: not settings of solver=%s (choose a solver with "
                "method/solver=<name>; time_budget is retired: the local search stops after "
                "`kicks`, max_seconds is only its safety stop)",
                ignored,
                solver,
            )
        return {name: settings.get(name, OPTIMISATION_DEFAULTS[name]) for name in own}

    # --- stage 1 -------------------------------------------------------------------------
    def stage1_inputs(self, datamodule: pl.LightningDataModule) -> dict[str, Any]:
        """Cache-key inputs of stage 1: data split, backbone, classifier settings, seed."""
        return {
            "stage": "shc-1-classifier-logits",
            "version": STAGE1_VERSION,
            "data": split_fingerprint(datamodule),
            "backbone": self.backbone,
            "classifier": self.classifier,
            "seed": self.seed,
        }

    def _train_classifier(self, datamodule: Any, num_classes: int) -> dict[str, Tensor]:
        """Stage 1 proper: train a fresh classifier, return its training-set logits."""
        log.info(
            "SHC stage 1: training the classifier (%s, %d epochs) on %d %s items",
            self.backbone["_target_"].rsplit(".", 1)[-1],
            self.classifier["max_epochs"],
            len(datamodule.train_labels()),
            datamodule.name,
        )
        with isolated_rng(self.seed):
            backbone = instantiate(self.backbone, input_shape=tuple(datamodule.input_shape))
            scheduler = self.classifier["scheduler"]
            module = ClassifierModule(
                backbone,
                num_classes,
                multi_label=bool(datamodule.multi_label),
                optimizer=instantiate(self.classifier["optimizer"]),
                scheduler=instantiate(scheduler) if scheduler else None,
            )
            logits = fit_classifier(
                module,
                datamodule.training_dataset("labelled", train=True),
                datamodule.training_dataset("labelled", train=False),
                max_epochs=self.classifier["max_epochs"],
                batch_size=self.classifier["batch_size"],
                eval_batch_size=int(getattr(datamodule, "eval_batch_size", 256)),
                seed=self.seed,
                num_workers=int(getattr(datamodule, "num_workers", 0)),
                trainer_options=self.classifier["trainer"],
            )
        return {
            "logits": logits,
            "labels": datamodule.train_labels().clone(),
            "train_loss": torch.tensor(module.history["loss"], dtype=torch.float64),
            "train_acc": torch.tensor(module.history["acc"], dtype=torch.float64),
        }

    def taxonomy_inputs(self, datamodule: Any) -> tuple[dict[str, Any], Tensor]:
        """Cache-key inputs of the taxonomy's stage 1 and its Wu-Palmer matrix (C, C)."""
        relations = getattr(datamodule, "class_relations", None)
        if relations is None:
            raise UserError(
                "method.similarity=taxonomy needs a class taxonomy: set data.hierarchy=<file> "
                "(docs/taxonomy.md), or use method.similarity=classifier"
            )
        wu_palmer = torch.from_numpy(relations.wu_palmer)
        inputs = {
            "stage": "shc-1-taxonomy-similarity",
            "version": TAXONOMY_STAGE1_VERSION,
            "classes": list(relations.class_names),
            "wu_palmer_sha256": tensor_digest(wu_palmer),
        }
        return inputs, wu_palmer

    def stage1(self, datamodule: Any, num_classes: int) -> tuple[Tensor, dict[str, Any], Any]:
        """(S, stage-1 key inputs, stage-1 value), computed or from the cache."""
        if self.similarity == "taxonomy":
            inputs, wu_palmer = self.taxonomy_inputs(datamodule)
            value = self._stage(
                "stage1",
                "taxonomy similarity",
                inputs,
                lambda: {"similarity": taxonomy_similarity(wu_palmer)},
            )
            return value["similarity"].to(torch.float64), inputs, value
        inputs = self.stage1_inputs(datamodule)
        value = self._stage(
            "stage1",
            "classifier logits",
            inputs,
            lambda: self._train_classifier(datamodule, num_classes),
        )
        labels = datamodule.train_labels()
        if not torch.equal(value["labels"], labels.to(value["labels"].dtype)):
            raise RuntimeError(
                f"cached stage-1 labels differ from the fit split's: delete {self.cache.root}"
            )
        similarity = class_similarity(value["logits"], labels, num_classes, self.multi_label)
        return similarity, inputs, value

    # --- stage 2 -------------------------------------------------------------------------
    def stage2_inputs(
        self, stage1_inputs: Mapping[str, Any], similarity: Tensor, bits: int
    ) -> dict[str, Any]:
        """Cache-key inputs of stage 2: stage 1's key, ``S`` itself, bits, seed and every
        setting the result depends on (the work budget included, the safety stop not: a
        result it cut short is never stored)."""
        return {
            "stage": "shc-2-centers",
            "version": STAGE2_VERSION,
            "stage1": cache_key(stage1_inputs),
            "multi_label": self.multi_label,
            "similarity_sha256": tensor_digest(similarity),
            "bits": int(bits),
            "optimisation": {
                k: v for k, v in self.optimisation.items() if k not in SAFETY_SETTINGS
            },
            "seed": self.seed,
        }

    def setting(self, name: str) -> Any:
        """Stage 2's optimisation setting ``name`` (the configured one or the default; None for
        a setting of the other solver)."""
        return self.optimisation.get(name)

    def _optimise(self, similarity: Tensor, bits: int) -> dict[str, Any]:
        """Stage 2 proper: similarity-fitting centers from semantic_centers' own MDS start."""
        log.info(
            "SHC stage 2: optimising %d centers of %d bits (solver %s)",
            similarity.shape[0],
            bits,
            self.setting("solver"),
        )
        centers, info = semantic_centers(similarity, bits, seed=self.seed, **self.optimisation)
        start = info.pop("start")
        return {"centers": centers, "info": info, "start": start}

    def _stage(
        self,
        name: str,
        what: str,
        inputs: Mapping[str, Any],
        compute: Callable[[], Any],
        keep: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Run one cached stage, record and log whether it was a cache hit; a computed value
        that ``keep`` rejects is not stored."""
        value = self.cache.get_or_compute(inputs, compute, keep)
        outcome = "hit" if self.cache.last_hit else "miss"
        self.last_cache[name] = outcome
        where = self.cache.value_path(inputs) if self.cache.enabled else None
        log.info("SHC %s (%s): cache %s [%s]", name, what, outcome.upper(), where or "caching off")
        return value

    # --- the source ----------------------------------------------------------------------
    def __call__(
        self, num_classes: int, bits: int, datamodule: pl.LightningDataModule, output_dir: Path
    ) -> Tensor:
        """Run (or load) stages 1 and 2 and write their outputs into ``output_dir``."""
        self.last_cache = {}
        similarity, inputs1, stage1 = self.stage1(datamodule, num_classes)
        inputs2 = self.stage2_inputs(inputs1, similarity, bits)
        stage2 = self._stage(
            "stage2",
            "centers",
            inputs2,
            lambda: self._optimise(similarity, bits),
            keep=lambda value: value["info"].get("stopped_by") != "max_seconds",
        )
        centers = stage2["centers"].to(torch.float32)
        if bool(stage2["info"]["equals_start"]):
            why = (
                f"the reference's steps must clear the flip threshold eta={self.setting('eta')} "
                "and keep the distance bound, which at 32/64 bits they rarely do; use "
                "method/solver=local_search"
                if stage2["info"]["solver"] == "reference"
                else "no allowed flip improved the fit"
            )
            log.warning(
                "SHC stage 2 accepted no update: the centers are the MDS start (solver %s; %s)",
                stage2["info"]["solver"],
                why,
            )
        self._write_outputs(
            output_dir,
            datamodule,
            similarity,
            centers,
            stage2["start"].to(torch.float32),
            stage1,
            stage2["info"],
            inputs1,
            inputs2,
        )
        return centers

    def _write_outputs(
        self,
        output_dir: Path,
        datamodule: Any,
        similarity: Tensor,
        centers: Tensor,
        start: Tensor,
        stage1: Mapping[str, Tensor],
        info: Mapping[str, Any],
        inputs1: Mapping[str, Any],
        inputs2: Mapping[str, Any],
    ) -> None:
        """similarity.pt/.csv, centers, center_stats.json, shc_stages.json and two figures."""
        if not is_rank_zero():
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        num_classes = similarity.shape[0]
        names = [str(n) for n in getattr(datamodule, "class_names", None) or range(num_classes)]
        atomic_write(
            output_dir / "similarity.pt", lambda handle: torch.save(similarity.clone(), handle)
        )
        write_similarity_csv(similarity, output_dir / "similarity.csv", names)
        related = getattr(datamodule, "related_classes", None)
        quality = center_quality(similarity, centers, related)
        start_quality = center_quality(similarity, start, related)

        def show(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        log.info(
            "SHC stage 2 (%s): fit loss %.4f -> %.4f, Spearman(s_ij, h_i.h_j) %s -> %s, "
            "group AUC %s -> %s, %d updates accepted",
            info["solver"],
            float(info["initial_fit_loss"]),
            float(info["fit_loss"]),
            show(start_quality["spearman"]),
            show(quality["spearman"]),
            show(start_quality.get("group_auc")),
            show(quality.get("group_auc")),
            int(info["accepted_updates"]),
        )
        save_centers(
            centers,
            output_dir,
            {
                "method": self.method,
                "solver": str(info["solver"]),
                "fit_loss": float(info["fit_loss"]),
                "initial_fit_loss": float(info["initial_fit_loss"]),
                "best_epoch": int(info["best_epoch"]),
                "accepted_updates": int(info["accepted_updates"]),
                "equals_start": bool(info["equals_start"]),
                # local search: kicks (the work budget was spent) or max_seconds (safety stop)
                "stopped_by": info.get("stopped_by", "epochs"),
                "spearman": quality["spearman"],
                "initial_spearman": start_quality["spearman"],
                "group_auc": quality.get("group_auc"),
                "initial_group_auc": start_quality.get("group_auc"),
                "similarity_asymmetry": asymmetry(similarity),
                "multi_label_rule": self.multi_label,
                "similarity": self.similarity,
                "cache": dict(self.last_cache),
            },
            datamodule,
        )
        write_json_atomic(
            output_dir / "shc_stages.json",
            {
                "stage1": {
                    "similarity": self.similarity,
                    "cache": self.last_cache["stage1"],
                    "key": cache_key(inputs1),
                    "inputs": dict(inputs1),
                    **{
                        f"classifier_{name}": stage1[name].tolist()
                        for name in ("train_loss", "train_acc")
                        if name in stage1
                    },
                },
                "stage2": {
                    "cache": self.last_cache["stage2"],
                    "key": cache_key(inputs2),
                    "inputs": dict(inputs2),
                    "fit_history": list(info["fit_history"]),
                    "solver_info": {
                        k: v for k, v in info.items() if k not in ("fit_history", "statistics")
                    },
                },
            },
        )
        if self.figures:
            # imported here: keeps matplotlib out of the import path of every other method
            from hashing.centers.figures import distance_similarity_scatter, similarity_heatmap

            similarity_heatmap(similarity, output_dir / "similarity_heatmap.png", class_names=names)
            distance_similarity_scatter(
                centers, similarity, output_dir / "center_distance_vs_similarity.png"
            )
