"""`python -m hashing.report`: aggregation against a brute-force computation, failed runs listed."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml

from hashing.report.__main__ import main
from hashing.report.plots import map_vs_bits_figure
from hashing.report.runs import collect_runs
from hashing.report.table import aggregate
from hashing.runs.status import FAILED, INTERRUPTED

METRICS = ("test/mAP@100", "test/mAP@1000", "test/mAP@ALL")
PNG = b"\x89PNG\r\n\x1a\n"


def make_run(
    folder: Path,
    method: str,
    bits: int,
    seed: int,
    metrics: dict[str, float] | None,
    extra: tuple[str, ...] = (),
    marker: tuple[str, dict] | None = None,
    curve: bool = False,
) -> Path:
    """A run folder as hashing.train leaves it (config, Hydra's overrides, metrics, markers)."""
    (folder / ".hydra").mkdir(parents=True)
    overrides = [f"method={method}", f"bits={bits}", f"seed={seed}", "debug=fast", *extra]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    config = {
        "bits": bits,
        "seed": seed,
        "method": {"name": method},
        "data": {"_target_": "hashing.data.digits.DigitsDataModule", "protocol": "digits-1"},
    }
    (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if marker is not None:
        (folder / marker[0]).write_text(json.dumps(marker[1]))
    if curve:
        radius = list(range(bits + 1))
        data = {
            "bits": bits,
            "pr_curve": {
                "radius": radius,
                "precision": [1.0 - r / (2 * bits) for r in radius],
                "recall": [r / bits for r in radius],
            },
        }
        (folder / "curves").mkdir()
        (folder / "curves" / "curves.json").write_text(json.dumps(data))
    return folder


def metric_values(seed: int, bits: int, method: str) -> dict[str, float]:
    base = 0.3 + 0.01 * bits / 16 + (0.1 if method == "shc" else 0.0)
    return {key: base + 0.013 * seed + 0.05 * i for i, key in enumerate(METRICS)} | {
        "val/mAP_best": base + 0.02 * seed
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    job = 0
    for method in ("csq", "shc"):
        for bits in (16, 32):
            for seed in (0, 1, 2):
                failed = method == "shc" and bits == 32 and seed == 1
                make_run(
                    root / str(job),
                    method,
                    bits,
                    seed,
                    None if failed else metric_values(seed, bits, method),
                    marker=(FAILED, {"type": "ValueError", "message": "bits too small"})
                    if failed
                    else None,
                    curve=True,
                )
                job += 1
    make_run(
        root / str(job),
        "csq",
        16,
        3,
        None,
        marker=(INTERRUPTED, {"signal": "SIGTERM", "epoch": 4}),
    )
    (root / str(job + 1) / ".hydra").mkdir(parents=True)  # started, nothing else yet
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_cells_hold_mean_and_sample_std_over_seeds(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out)]) == 0
    rows = {(r["method"], int(r["bits"])): r for r in read_csv(out / "cells.csv") if r["bits"]}
    assert set(rows) == {("csq", 16), ("csq", 32), ("shc", 16), ("shc", 32)}
    for (method, bits), row in rows.items():
        seeds = [0, 2] if (method, bits) == ("shc", 32) else [0, 1, 2]
        assert row["seeds"] == " ".join(map(str, seeds))
        assert row["dataset"] == "digits:digits-1"
        for metric in (*METRICS, "val/mAP_best"):
            values = [metric_values(seed, bits, method)[metric] for seed in seeds]
            assert float(row[f"{metric}_mean"]) == pytest.approx(statistics.mean(values))
            assert float(row[f"{metric}_std"]) == pytest.approx(statistics.stdev(values))
    # runs without metrics stay out of the cells unless asked
    assert rows["csq", 16]["runs"] == "3" and rows["csq", 16]["finished"] == "3"
    assert rows["shc", 32]["runs"] == "2" and rows["shc", 32]["finished"] == "2"
    main([str(sweep), "--out", str(out), "--include-failed"])
    rows = {(r["method"], int(r["bits"])): r for r in read_csv(out / "cells.csv") if r["bits"]}
    assert rows["csq", 16]["runs"] == "4" and rows["csq", 16]["finished"] == "3"
    assert rows["shc", 32]["runs"] == "3" and rows["shc", 32]["finished"] == "2"
    assert "0,2 (2/3 ok)" in (out / "report.md").read_text()


def test_runs_without_metrics_are_listed_not_dropped(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    main([str(sweep), "--out", str(out)])
    statuses = {Path(r["run"]).name: r["status"] for r in read_csv(out / "runs.csv")}
    assert len(statuses) == 14
    assert statuses["10"] == "failed"
    assert statuses["12"] == "interrupted"
    assert statuses["13"] == "incomplete"
    assert sum(s == "ok" for s in statuses.values()) == 11
    report = (out / "report.md").read_text()
    assert "## Runs without metrics" in report
    assert "ValueError: bits too small" in report
    assert f"resume={sweep / '12'}" in report
    assert "| 0,2 |" in report and "(2/3 ok)" not in report
    assert "3 run(s) without metrics are left out of the table and listed apart" in report
    best = max(
        (metric_values(s, b, m)["val/mAP_best"], m, b) for m in ("csq", "shc") for b in (16, 32)
        for s in (0, 1, 2) if (m, b, s) != ("shc", 32, 1)
    )  # fmt: skip
    assert f"Best run by val/mAP_best: {sweep}" in report
    assert f"{best[0]:.4f}; shc, 32 bits, seed 2" in report


def test_plots_are_written(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    main([str(sweep), "--out", str(out), "--pr-bits", "16"])
    for name in ("map_vs_bits_digits_digits-1.png", "pr_curves_digits_digits-1_16bits.png"):
        assert (out / name).read_bytes()[:8] == PNG


def test_missing_curves_are_skipped(tmp_path: Path) -> None:
    make_run(tmp_path / "s" / "0", "csq", 16, 0, metric_values(0, 16, "csq"))
    assert main([str(tmp_path / "s"), "--out", str(tmp_path / "out")]) == 0
    assert not list((tmp_path / "out").glob("pr_curves_*.png"))
    assert list((tmp_path / "out").glob("map_vs_bits_*.png"))


def test_varying_overrides_split_cells_and_several_sweeps_combine(tmp_path: Path) -> None:
    for seed in (0, 1):
        make_run(tmp_path / "a" / str(seed), "csq", 16, seed, metric_values(seed, 16, "csq"))
        make_run(
            tmp_path / "b" / str(seed),
            "csq",
            16,
            seed,
            metric_values(seed + 5, 16, "csq"),
            extra=("method.lambda_q=0",),
        )
    runs = collect_runs([tmp_path / "a", tmp_path / "b"])
    assert sorted({run.setting for run in runs}) == ["", "method.lambda_q=0"]
    out = tmp_path / "out"
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--no-plots"])
    rows = read_csv(out / "cells.csv")
    assert [row["setting"] for row in rows] == ["", "method.lambda_q=0"]
    ablated = [metric_values(s + 5, 16, "csq")["test/mAP@ALL"] for s in (0, 1)]
    assert float(rows[1]["test/mAP@ALL_mean"]) == pytest.approx(statistics.mean(ablated))
    assert "| setting |" in (out / "report.md").read_text()


def test_no_runs_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1
    assert "no run folders" in capsys.readouterr().out


def test_a_failed_typo_run_makes_no_row(tmp_path: Path) -> None:
    make_run(tmp_path / "s" / "0", "csq", 16, 0, metric_values(0, 16, "csq"))
    failure = {"type": "UserError", "message": "unknown key trainer.max_epochz"}
    make_run(tmp_path / "s" / "1", "csqq", 16, 0, None, marker=(FAILED, failure))
    out = tmp_path / "out"
    main([str(tmp_path / "s"), "--out", str(out), "--no-plots"])
    assert [row["method"] for row in read_csv(out / "cells.csv")] == ["csq"]
    report = (out / "report.md").read_text()
    assert "| csqq |" not in report.split("## Runs without metrics")[0]
    assert "unknown key trainer.max_epochz" in report.split("## Runs without metrics")[1]


def test_repeats_of_one_seed_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for job in range(3):
        make_run(tmp_path / "s" / str(job), "csq", 16, 0, metric_values(job, 16, "csq"))
    make_run(tmp_path / "s" / "3", "csq", 32, 0, metric_values(0, 32, "csq"))
    make_run(tmp_path / "s" / "4", "csq", 32, 1, metric_values(1, 32, "csq"))
    make_run(tmp_path / "s" / "5", "csq", 32, 1, metric_values(2, 32, "csq"))
    out = tmp_path / "out"
    main([str(tmp_path / "s"), "--out", str(out), "--no-plots"])
    report = (out / "report.md").read_text()
    assert "| 0 ×3, repeats of one seed |" in report
    assert "| 0,1 ×2 |" in report
    assert "0 ×3, repeats of one seed" in capsys.readouterr().out


def test_console_shows_whole_names_and_the_best_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    method = "tbh_supervised_with_a_long_name"
    setting = "data.batch_size=128 method.lambda_adv=0.5 method.optimizer.lr=0.0001"
    for seed in (0, 1):
        make_run(tmp_path / "a" / str(seed), method, 16, seed, metric_values(seed, 16, "csq"))
        make_run(
            tmp_path / "b" / str(seed),
            method,
            16,
            seed,
            metric_values(seed, 16, "csq"),
            extra=tuple(setting.split()),
        )
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o"), "--no-plots"])
    console = capsys.readouterr().out
    assert method in console and setting in console and "…" not in console
    best = metric_values(1, 16, "csq")["val/mAP_best"]
    assert f"Best run by val/mAP_best: {tmp_path / 'a' / '1'} ({best:.4f};" in console


def test_map_vs_bits_axis_starts_at_zero(tmp_path: Path) -> None:
    close = {"test/mAP@100": 0.9188, "test/mAP@1000": 0.9188, "test/mAP@ALL": 0.9188}
    make_run(tmp_path / "s" / "0", "csq", 16, 0, close)
    make_run(tmp_path / "s" / "1", "csq", 32, 0, {key: 0.9173 for key in close})
    cells = aggregate(collect_runs([tmp_path / "s"]))
    figure = map_vs_bits_figure("digits", cells)
    assert [ax.get_ylim() for ax in figure.axes] == [(0.0, 1.02)] * 3


def test_taxonomy_metrics_join_the_table_when_runs_have_them(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    make_run(plain / "0", "csq", 16, 0, metric_values(0, 16, "csq"))
    main([str(plain), "--out", str(tmp_path / "out0"), "--no-plots"])
    assert "tax_dist@100" not in (tmp_path / "out0" / "report.md").read_text()
    sweep_dir = tmp_path / "tax"
    for seed, miss in ((0, 9.0), (1, 10.0)):
        metrics = {
            **metric_values(seed, 16, "shc"),
            "test/tax_dist@100": miss - 2,
            "test/miss_tax_dist@100": miss,
            "test/ndcg_wup@100": 0.6,
            "val/miss_tax_dist@100": miss + 1,
        }
        make_run(sweep_dir / str(seed), "shc", 16, seed, metrics)
    main([str(sweep_dir), "--out", str(tmp_path / "out1"), "--no-plots"])
    report = (tmp_path / "out1" / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| dataset"))
    assert header.endswith("| tax_dist@100 | miss_tax_dist@100 | ndcg_wup@100 |")
    assert "9.5000 ± 0.7071" in report
    row = read_csv(tmp_path / "out1" / "cells.csv")[0]
    assert float(row["test/miss_tax_dist@100_mean"]) == pytest.approx(9.5)
    assert float(row["val/miss_tax_dist@100_mean"]) == pytest.approx(10.5)
    assert "val/tax_dist@100_mean" not in row  # no run has it
