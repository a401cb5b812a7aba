"""Test helpers for DDP runs: record what the evaluation callback gathers at test time on each
rank (:class:`GatherProbe`), and check a finished run's records and metrics against an
independent single-process evaluation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch import Tensor

from hashing import pipeline
from tests.helpers.runs import compose_run


class GatherProbe(pl.Callback):
    """Records the sizes of the test codes :class:`RetrievalEvaluation` gathered and handed over,
    and writes them to ``<output_dir>/gathered_rank<r>.json``."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
        self.gathered: dict[str, list[int]] = {}
        self.local: dict[str, int] = {}

    def on_retrieval_codes(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        stage: str,
        splits: Mapping[str, Tensor],
    ) -> None:
        """Keep the shapes of the gathered test splits."""
        if stage == "test":
            self.gathered = {key: list(value.shape) for key, value in splits.items()}

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the items this rank evaluated (with DistributedSampler's padding)."""
        role = "query" if dataloader_idx == 0 else "database"
        self.local[role] = self.local.get(role, 0) + int(outputs["index"].numel())

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write this rank's record."""
        record = {"gathered": self.gathered, "local": self.local, "world_size": trainer.world_size}
        path = self.output_dir / f"gathered_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))


def split_sizes(run: Path) -> dict[str, int]:
    """Query and database sizes read from the split file the run saved."""
    [split_file] = run.glob("*.npz")
    with np.load(split_file) as split:
        return {"query": len(split["query"]), "database": len(split["database"])}


def check_gathered_once(run: Path, world_size: int = 2, bits: int = 16) -> None:
    """Every rank gathered the whole query set and database, each item once, from about an
    equal share per rank (DistributedSampler pads an odd database with a duplicate)."""
    sizes = split_sizes(run)
    records = [json.loads((run / f"gathered_rank{r}.json").read_text()) for r in range(world_size)]
    for record in records:
        assert record["world_size"] == world_size
        assert record["gathered"]["database_codes"] == [sizes["database"], bits]
        assert record["gathered"]["database_index"] == [sizes["database"]]
        assert record["gathered"]["query_codes"] == [sizes["query"], bits]
    for role in ("query", "database"):
        local = {record["local"][role] for record in records}
        assert local == {-(-sizes[role] // world_size)}
    assert sizes["database"] % 2 == 1, "digits' database is odd: the padding case is exercised"


def check_equals_single_process(run: Path, cache: Path, eval_dir: Path) -> None:
    """The run's test metrics equal one process evaluating its best checkpoint."""
    metrics = json.loads((run / "metrics.json").read_text())
    [best] = sorted((run / "checkpoints").glob("epoch_*.ckpt"))
    single = pipeline.evaluate(compose_run("eval", eval_dir, cache, [f"ckpt_path={best}"]))
    assert single == {key: value for key, value in metrics.items() if key.startswith("test/")}
