"""Lightning callback: gather query/database codes during val/test, log exact retrieval metrics.

The LightningModule's validation_step/test_step return {"codes", "labels", "index"}; dataloader
0 is the query split, 1 the database. Codes are accumulated in a torchmetrics Metric, which
gathers them across DDP ranks and drops DistributedSampler's padded repeats by item index, so
every rank computes the same numbers and logging needs no further reduction (sync_dist=False).

This callback is the one owner of an epoch's codes: other callbacks that need them (the
retrieval grid) define ``on_retrieval_codes(trainer, pl_module, stage, splits)`` and receive the
gathered splits once the metrics are logged, instead of gathering them a second time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from hashing.callbacks.curve_plots import curve_data, log_curves_to_wandb, write_curves
from hashing.metrics.accumulator import ROLES, RetrievalAccumulator
from hashing.metrics.functional.chunking import DEFAULT_MEMORY_BUDGET
from hashing.metrics.functional.curves import curve_ks
from hashing.metrics.functional.map_at_k import mean_average_precisions
from hashing.metrics.functional.report import evaluate_retrieval
from hashing.metrics.functional.taxonomy import taxonomy_metrics
from hashing.metrics.functional.validation import check_top_k
from hashing.metrics.map_at_k import k_name
from hashing.runs.summary import run_title

ROLE_BY_DATALOADER = dict(enumerate(ROLES))


def unique_ks(ks: Sequence[int | None]) -> list[int | None]:
    """Keep the first occurrence of each k, in order."""
    seen: list[int | None] = []
    for k in ks:
        if k not in seen:
            seen.append(k)
    return seen


class RetrievalEvaluation(pl.Callback):
    """Log mAP@k (stable ties) at validation; at test also tie-aware mAP, P@k, P@H<=r, curves.

    Validation logs ``val/mAP`` (at the datamodule's ``protocol_k``, None = ALL) and
    ``val/mAP@<k>``; test logs ``test/mAP``, ``test/mAP@<k>`` for ``top_ks`` and the protocol k
    (exactly those: a k left out of ``top_ks`` is not reported unless it is the protocol's),
    ``test/mAP@ALL_tie_aware``, ``test/P@H<=<radius>`` and ``test/P@<k>`` for the integer k;
    with a class taxonomy (``data.hierarchy``) both stages also log ``tax_dist@<taxonomy_k>``,
    ``miss_tax_dist@<taxonomy_k>`` and ``ndcg_wup@<taxonomy_k>`` (docs/taxonomy.md);
    with ``curves`` it writes ``curves/{pr_curve,precision_at_k}.png`` and ``curves/curves.json``
    under ``output_dir`` (default ``trainer.default_root_dir``) and logs them to wandb.

    The values of the latest validation are its state (:attr:`validation`): a checkpoint
    carries those of the validation it was saved after, and testing a checkpoint restores them,
    so the run's ``metrics.json`` can report the validation of the tested weights.
    """

    def __init__(
        self,
        top_ks: Sequence[int | None] = (100, 1000, None),
        curves: bool = True,
        output_dir: str | Path | None = None,
        radius: int = 2,
        curve_points: int = 60,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        taxonomy_k: int | None = 100,
    ) -> None:
        super().__init__()
        self.top_ks = list(top_ks)
        for k in self.top_ks:
            check_top_k(k, "top_ks entry")
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(f"radius must be a non-negative int, got {radius!r}")
        self.curves = curves
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.radius = radius
        self.curve_points = curve_points
        self.memory_budget = memory_budget
        if taxonomy_k is not None:
            check_top_k(taxonomy_k, "taxonomy_k")
        self.taxonomy_k = taxonomy_k
        self.codes: dict[str, RetrievalAccumulator] = {}
        #: ``val/...`` values of the latest validation (of a restored checkpoint after one is
        #: loaded); empty before the first
        self.validation: dict[str, float] = {}

    def state_dict(self) -> dict[str, Any]:
        """The latest validation's values, saved into every checkpoint."""
        return {"validation": dict(self.validation)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the validation values of a loaded checkpoint."""
        self.validation = {str(k): float(v) for k, v in state_dict.get("validation", {}).items()}

    @staticmethod
    def protocol_k(trainer: pl.Trainer) -> int | None:
        """The datamodule's protocol k (None = ALL, also when there is no datamodule)."""
        return getattr(getattr(trainer, "datamodule", None), "protocol_k", None)

    def _start(self, stage: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.codes[stage] = RetrievalAccumulator().to(pl_module.device)

    def _feed(self, stage: str, outputs: Any, dataloader_idx: int) -> None:
        if not isinstance(outputs, Mapping) or not {"codes", "labels", "index"} <= set(outputs):
            raise ValueError(
                f"RetrievalEvaluation needs {stage}_step to return a dict with 'codes', "
                f"'labels' and 'index', got {type(outputs).__name__}"
                + (f" with keys {sorted(outputs)}" if isinstance(outputs, Mapping) else "")
            )
        if dataloader_idx not in ROLE_BY_DATALOADER:
            raise ValueError(
                f"dataloader_idx must be 0 (queries) or 1 (database), got {dataloader_idx}"
            )
        self.codes[stage].update(
            outputs["codes"],
            outputs["labels"],
            outputs["index"],
            role=ROLE_BY_DATALOADER[dataloader_idx],  # type: ignore[arg-type]
        )

    def _gathered(self, stage: str) -> dict[str, torch.Tensor]:
        """``{role}_codes`` / ``_labels`` / ``_index`` over all ranks, de-duplicated and sorted
        by index (a collective: every rank calls it)."""
        return self.codes[stage].compute()  # torchmetrics syncs the states here

    @staticmethod
    def _retrieval_inputs(splits: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Query codes, database codes, query labels, database labels: the metrics' order."""
        return (
            splits["query_codes"],
            splits["database_codes"],
            splits["query_labels"],
            splits["database_labels"],
        )

    def _log_taxonomy(
        self,
        stage: str,
        splits: Mapping[str, torch.Tensor],
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
    ) -> dict[str, float]:
        """``<stage>/tax_dist@k``, ``miss_tax_dist@k``, ``ndcg_wup@k`` when the datamodule has
        a class taxonomy (``data.hierarchy``); a miss distance without any miss is not logged.
        Returns what was logged."""
        relations = getattr(getattr(trainer, "datamodule", None), "class_relations", None)
        if relations is None or self.taxonomy_k is None:
            return {}
        report = taxonomy_metrics(
            *self._retrieval_inputs(splits),
            torch.from_numpy(relations.distance),
            torch.from_numpy(relations.wu_palmer),
            self.taxonomy_k,
            memory_budget=self.memory_budget,
        )
        logged = {
            name: float(value)
            for name, value in report.as_dict(f"{stage}/").items()
            if not math.isnan(value)
        }
        for name, value in logged.items():
            pl_module.log(name, value, sync_dist=False)
        return logged

    def _hand_over(
        self,
        stage: str,
        splits: Mapping[str, torch.Tensor],
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
    ) -> None:
        """Give the gathered splits to every callback that reads them, then drop them."""
        for callback in trainer.callbacks:  # type: ignore[attr-defined]
            reader = getattr(callback, "on_retrieval_codes", None)
            if reader is not None and callback is not self:
                reader(trainer, pl_module, stage, splits)
        self.codes.pop(stage).reset()

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start("val", trainer, pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start("test", trainer, pl_module)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking:
            return
        self._feed("val", outputs, dataloader_idx)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._feed("test", outputs, dataloader_idx)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        protocol = self.protocol_k(trainer)
        ks = unique_ks([*self.top_ks, protocol])
        splits = self._gathered("val")
        values = mean_average_precisions(
            *self._retrieval_inputs(splits), ks, memory_budget=self.memory_budget
        )
        logged = {"val/mAP": float(values[protocol])}
        logged.update({f"val/mAP@{k_name(k)}": float(values[k]) for k in ks})
        for name, value in logged.items():
            pl_module.log(name, value, sync_dist=False)
        logged.update(self._log_taxonomy("val", splits, trainer, pl_module))
        self.validation = logged
        self._hand_over("val", splits, trainer, pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        protocol = self.protocol_k(trainer)
        ks = unique_ks([*self.top_ks, protocol])
        logged_pks = [k for k in ks if k is not None]
        splits = self._gathered("test")
        query_codes, database_codes, query_labels, database_labels = self._retrieval_inputs(splits)
        grid = curve_ks(database_codes.shape[0], self.curve_points) if self.curves else []
        report = evaluate_retrieval(
            query_codes,
            database_codes,
            query_labels,
            database_labels,
            top_ks=ks,
            tie_aware_ks=(None,),
            precision_ks=sorted({*logged_pks, *grid}),
            memory_budget=self.memory_budget,
        )
        pl_module.log("test/mAP", report.map_at_k[protocol], sync_dist=False)
        for k in ks:
            pl_module.log(f"test/mAP@{k_name(k)}", report.map_at_k[k], sync_dist=False)
        pl_module.log("test/mAP@ALL_tie_aware", report.tie_aware_map_at_k[None], sync_dist=False)
        pl_module.log(
            f"test/P@H<={self.radius}", report.precision_within_radius(self.radius), sync_dist=False
        )
        for k in logged_pks:
            pl_module.log(f"test/P@{k}", report.precision_at_k[k], sync_dist=False)
        self._log_taxonomy("test", splits, trainer, pl_module)
        if self.curves and trainer.is_global_zero:
            folder = (self.output_dir or Path(trainer.default_root_dir)) / "curves"
            data = curve_data(report, grid)
            paths = write_curves(data, folder, title=plot_title(trainer, pl_module))
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    log_curves_to_wandb(logger, data, paths, prefix="test")
        self._hand_over("test", splits, trainer, pl_module)


def plot_title(trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
    """``csq · 32 bits · digits test``: what a curve figure shows, readable on its own."""
    name = pl_module.hparams.get("name") or type(pl_module).__name__
    dataset = getattr(getattr(trainer, "datamodule", None), "name", None)
    bits = getattr(pl_module, "bits", None)
    return run_title(str(name), bits, dataset if isinstance(dataset, str) else None) + " test"
