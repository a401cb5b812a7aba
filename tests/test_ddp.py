"""`trainer=ddp` on 2 CPU processes (gloo): every database item is evaluated exactly once.

(tests/test_cluster.py runs the same checks on a DDP job whose ranks SLURM started.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.ddp_probe import check_equals_single_process, check_gathered_once
from tests.helpers.runs import run_train_cli


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    run, cache = root / "run", root / "cache"
    result = run_train_cli(
        [
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "debug=fast",
            "bits=16",
            "+callbacks.probe._target_=tests.helpers.ddp_probe.GatherProbe",
            "+callbacks.probe.output_dir=${paths.output_dir}",
            "callbacks.progress_bar.refresh_rate=0",
            f"hydra.run.dir={run}",
            f"paths.cache_dir={cache}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run, cache


def test_evaluation_gathers_each_database_item_once(ddp_run) -> None:
    run, _ = ddp_run
    check_gathered_once(run)


def test_ddp_test_metrics_equal_a_single_process_evaluation(ddp_run, tmp_path: Path) -> None:
    run, cache = ddp_run
    check_equals_single_process(run, cache, tmp_path / "eval")
