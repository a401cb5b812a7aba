"""What the commands print: epoch lines that match the run's CSV, and no third-party noise."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashing.runs.quiet import quiet_libraries
from tests.helpers.runs import ROOT, run_train_cli

LINE = re.compile(r"epoch (\d+)/(\d+) · (.*) · [\d.]+ s$", re.MULTILINE)


def epoch_lines(output: str) -> dict[int, dict[str, float]]:
    """``{epoch (0-based): {key: value}}`` from the printed epoch lines."""
    lines = {}
    for epoch, _, values in LINE.findall(output):
        pairs = (part.rsplit(" ", 1) for part in values.split(" · "))
        lines[int(epoch) - 1] = {key: float(value) for key, value in pairs}
    return lines


def csv_values(run: Path, keys: tuple[str, ...]) -> dict[int, dict[str, float]]:
    """``{epoch: {key: value}}`` of the keys that csv/metrics.csv holds for each epoch."""
    values: dict[int, dict[str, float]] = {}
    with (run / "csv" / "metrics.csv").open() as handle:
        for row in csv.DictReader(handle):
            for key in keys:
                if row.get(key):
                    values.setdefault(int(row["epoch"]), {})[key] = float(row[key])
    return values


def train(run: Path, cache: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """``python -m hashing.train`` into ``run`` with epoch lines, as a user runs it."""
    args = [*overrides, "callbacks.progress_bar.bar=false", f"paths.cache_dir={cache}"]
    if not any(item.startswith("resume=") for item in overrides):
        args.append(f"hydra.run.dir={run}")
    result = run_train_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_each_epoch_line_shows_its_own_epochs_values(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(run, tmp_path / "cache", "debug=fast", "trainer.max_epochs=3")
    printed = epoch_lines(result.stdout + result.stderr)
    stored = csv_values(run, ("train/loss", "val/mAP", "val/dead_bits"))
    assert sorted(printed) == [0, 1, 2]
    for epoch, values in printed.items():
        # the dead bits count is shown when there are any
        shown = {key for key, value in stored[epoch].items() if value or key != "val/dead_bits"}
        assert {"train/loss", "val/mAP"} <= set(values) == shown
        for key, value in values.items():
            assert value == pytest.approx(stored[epoch][key], abs=5e-5), (epoch, key)


def command(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_no_library_noise_reaches_the_console(tmp_path: Path) -> None:
    """Each message used to show in the command named beside it (on a CPU machine)."""
    cache, first, second = tmp_path / "cache", tmp_path / "first", tmp_path / "second"
    outputs = {}
    tbh = train(first, cache, "method=tbh", "debug=fast")
    outputs["train method=tbh"] = tbh
    outputs["resume"] = train(first, cache, f"resume={first}", "trainer.max_epochs=3")
    last = first / "checkpoints" / "last.ckpt"
    outputs["ckpt_path"] = train(
        second, cache, "method=tbh", "debug=fast", f"ckpt_path={last}", "trainer.max_epochs=4"
    )
    outputs["eval"] = command(
        "hashing.eval", f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'eval'}"
    )
    outputs["export"] = command(
        "hashing.export",
        f"ckpt_path={last}",
        f"out={tmp_path / 'index'}",
        f"hydra.run.dir={tmp_path / 'export'}",
        f"paths.cache_dir={cache}",
    )
    noise = {
        "train method=tbh": "in eval mode at the start of training",
        "resume": "Checkpoint directory",
        "ckpt_path": "The dirpath has changed",
        "eval": "Be aware that when using `ckpt_path`",
        "export": "faiss",
    }
    for name, result in outputs.items():
        console = result.stdout + result.stderr
        assert noise[name] not in console, (name, console[-3000:])
        assert "Trainer.fit` stopped" not in console
    # TBH logs 19 training values; its epoch lines show the few that say how the epoch went
    lines = epoch_lines(tbh.stdout + tbh.stderr)
    assert sorted(lines) == [0, 1]
    for values in lines.values():
        assert (
            {"train/loss", "val/mAP"} <= set(values) <= {"train/loss", "val/mAP", "val/dead_bits"}
        )


def test_tight_layout_warning_is_dropped() -> None:
    """matplotlib's warning for decorations that do not fit; the figure is still written."""
    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    for ax in fig.subplots(1, 3):
        ax.set(xlabel="a long axis label", ylabel="a long axis label")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.tight_layout()
        assert any("Tight layout not applied" in str(item.message) for item in caught)
        caught.clear()
        quiet_libraries()
        fig.tight_layout()
    assert not caught
