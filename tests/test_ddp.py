"""`trainer=ddp` on 2 CPU processes (gloo): every database item is evaluated exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hashing import pipeline
from tests.runs import compose_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    run, cache = root / "run", root / "cache"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hashing.train",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "debug=fast",
            "bits=16",
            "+callbacks.probe._target_=tests.ddp_probe.GatherProbe",
            "+callbacks.probe.output_dir=${paths.output_dir}",
            "callbacks.progress_bar.refresh_rate=0",
            f"hydra.run.dir={run}",
            f"paths.cache_dir={cache}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run, cache


def split_sizes(run: Path) -> dict[str, int]:
    """Query and database sizes read from the split file the run saved."""
    [split_file] = run.glob("*.npz")
    with np.load(split_file) as split:
        return {"query": len(split["query"]), "database": len(split["database"])}


def test_evaluation_gathers_each_database_item_once(ddp_run) -> None:
    run, _ = ddp_run
    sizes = split_sizes(run)
    records = [json.loads((run / f"gathered_rank{r}.json").read_text()) for r in (0, 1)]
    for record in records:
        assert record["world_size"] == 2
        assert record["gathered"]["database_codes"] == [sizes["database"], 16]
        assert record["gathered"]["database_index"] == [sizes["database"]]
        assert record["gathered"]["query_codes"] == [sizes["query"], 16]
    # each rank saw about half; DistributedSampler pads an odd database with a duplicate
    for role in ("query", "database"):
        local = [record["local"][role] for record in records]
        assert local[0] == local[1] == -(-sizes[role] // 2)
    assert sizes["database"] % 2 == 1, "digits' database is odd: the padding case is exercised"


def test_ddp_test_metrics_equal_a_single_process_evaluation(ddp_run, tmp_path: Path) -> None:
    run, cache = ddp_run
    ddp_metrics = json.loads((run / "metrics.json").read_text())
    [best] = sorted((run / "checkpoints").glob("epoch_*.ckpt"))
    single = pipeline.evaluate(compose_run("eval", tmp_path / "eval", cache, [f"ckpt_path={best}"]))
    assert single == {key: value for key, value in ddp_metrics.items() if key.startswith("test/")}
