"""Aggregate runs into (dataset, method, setting, bits) cells: mean ± std over seeds.

The std is the sample standard deviation (ddof = 1) over the cell's finished runs; a cell with
one finished run shows its value without ±. Runs without metrics (a failed job, a config typo)
stay out of the cells and :func:`problem_rows` lists them one by one; asked to
(``include_failed``), cells count them too, so a missing seed shows as ``(2/3 ok)``.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from hashing.report.runs import RunRecord
from hashing.runs.atomic import atomic_path

HEADLINE = ("test/mAP@100", "test/mAP@1000", "test/mAP@ALL")
VALIDATION = "val/mAP_best"
#: with a class taxonomy (data.hierarchy; docs/taxonomy.md): in the table when any run has them
TAXONOMY = ("test/tax_dist@100", "test/miss_tax_dist@100", "test/ndcg_wup@100")
#: also in the CSV when any run has them (the val/ taxonomy values: the tested checkpoint's)
EXTRA = (
    "test/mAP",
    "test/mAP@ALL_tie_aware",
    "val/mAP_best",
    *TAXONOMY,
    *(metric.replace("test/", "val/", 1) for metric in TAXONOMY),
)


@dataclass
class Cell:
    """The runs of one (dataset, method, setting, bits)."""

    dataset: str
    method: str
    setting: str
    bits: int | None
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def finished(self) -> list[RunRecord]:
        """Runs with metrics."""
        return [run for run in self.runs if run.status == "ok"]

    @property
    def seeds(self) -> list[int | None]:
        """Seeds of the finished runs, sorted (None last)."""
        return sorted((run.seed for run in self.finished), key=lambda s: (s is None, s or 0))

    def values(self, metric: str) -> list[float]:
        """The metric over the finished runs that report it."""
        return [run.metrics[metric] for run in self.finished if metric in run.metrics]

    def mean_std(self, metric: str) -> tuple[float | None, float | None]:
        """(mean, sample std) of a metric; std None below two values, both None for none."""
        values = self.values(metric)
        if not values:
            return None, None
        mean = math.fsum(values) / len(values)
        if len(values) < 2:
            return mean, None
        variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
        return mean, math.sqrt(variance)


def cell_key(run: RunRecord) -> tuple[str, str, str, int | None]:
    """(dataset, method, setting, bits) of a run."""
    return run.dataset, run.method, run.setting, run.bits


def aggregate(runs: Sequence[RunRecord], include_failed: bool = False) -> list[Cell]:
    """Cells sorted by dataset, method, setting, bits: of the finished runs, or with
    ``include_failed`` of every run (a cell then counts its runs without metrics)."""
    cells: dict[tuple[str, str, str, int | None], Cell] = {}
    for run in runs:
        if run.status != "ok" and not include_failed:
            continue
        key = cell_key(run)
        if key not in cells:
            cells[key] = Cell(*key)
        cells[key].runs.append(run)
    return [cells[key] for key in sorted(cells, key=lambda k: (k[0], k[1], k[2], k[3] or 0))]


def short(metric: str) -> str:
    """``test/mAP@100`` -> ``mAP@100``."""
    return metric.removeprefix("test/")


def formatted(mean: float | None, std: float | None) -> str:
    """``0.7023 ± 0.0123``, ``0.7023`` (one run) or ``—`` (none)."""
    if mean is None:
        return "—"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def seeds_text(cell: Cell) -> str:
    """``0,1,2`` and, when runs are missing, ``(2/3 ok)``; runs of one seed repeated say so
    (``0 ×5, repeats of one seed``: their ± is the run-to-run spread, not the seeds')."""
    counts = Counter("?" if seed is None else str(seed) for seed in cell.seeds)
    if len(counts) == 1 and len(cell.seeds) > 1:
        seeds = f"{next(iter(counts))} ×{len(cell.seeds)}, repeats of one seed"
    else:
        seeds = ",".join(f"{seed} ×{n}" if n > 1 else seed for seed, n in counts.items()) or "—"
    if len(cell.finished) != len(cell.runs):
        seeds += f" ({len(cell.finished)}/{len(cell.runs)} ok)"
    return seeds


def show_setting(cells: Sequence[Cell]) -> bool:
    """Whether any cell has a setting (else the column is left out)."""
    return any(cell.setting for cell in cells)


def table_rows(cells: Sequence[Cell]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (strings)."""
    with_setting = show_setting(cells)
    header = ["dataset", "method", *(["setting"] if with_setting else []), "bits", "seeds"]
    present = {key for cell in cells for run in cell.finished for key in run.metrics}
    shown = [*HEADLINE, *(metric for metric in TAXONOMY if metric in present)]
    header += [short(metric) for metric in shown]
    rows = []
    for cell in cells:
        row = [cell.dataset, cell.method, *([cell.setting] if with_setting else [])]
        row += ["?" if cell.bits is None else str(cell.bits), seeds_text(cell)]
        row += [formatted(*cell.mean_std(metric)) for metric in shown]
        rows.append(row)
    return header, rows


def problem_rows(runs: Sequence[RunRecord]) -> tuple[list[str], list[list[str]]]:
    """Header and one row per run without metrics."""
    header = ["run", "status", "method", "dataset", "bits", "seed", "detail"]
    rows = [
        [
            str(run.path),
            run.status,
            run.method,
            run.dataset,
            "?" if run.bits is None else str(run.bits),
            "?" if run.seed is None else str(run.seed),
            run.detail,
        ]
        for run in runs
        if run.status != "ok"
    ]
    return header, rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table (pipes in cells escaped)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def markdown_report(
    cells: Sequence[Cell], runs: Sequence[RunRecord], sources: Sequence[str]
) -> str:
    """The whole Markdown report: comparison table and runs without metrics."""
    finished = sum(run.status == "ok" for run in runs)
    parts = [
        "# Retrieval comparison",
        "",
        f"Runs from {', '.join(sources)}: {len(runs)} found, {finished} with metrics. "
        "Values: mean ± sample std over seeds (test split).",
        "",
        markdown_table(*table_rows(cells)),
    ]
    left_out = left_out_text(cells, runs)
    if left_out:
        parts += ["", left_out]
    best = best_run_text(runs)
    if best:
        parts += ["", best]
    header, rows = problem_rows(runs)
    if rows:
        parts += ["", "## Runs without metrics", "", markdown_table(header, rows)]
    return "\n".join(parts) + "\n"


def left_out_text(cells: Sequence[Cell], runs: Sequence[RunRecord]) -> str:
    """The note that runs without metrics are not in the table ("" when none is left out)."""
    counted = sum(len(cell.runs) for cell in cells)
    left_out = len(runs) - counted
    if not left_out:
        return ""
    return (
        f"{left_out} run(s) without metrics are left out of the table and listed apart "
        "(--include-failed counts them in their cells)."
    )


def best_run_text(runs: Sequence[RunRecord]) -> str:
    """``Best run by val/mAP_best: <folder> (0.6010; csq, 32 bits, seed 0)`` ("" for none)."""
    best = best_by_validation(runs)
    if best is None:
        return ""
    return (
        f"Best run by {VALIDATION}: {best.path} ({best.metrics[VALIDATION]:.4f}; "
        f"{best.method}, {best.bits} bits, seed {best.seed}"
        + (f", {best.setting}" if best.setting else "")
        + ")"
    )


def best_by_validation(runs: Sequence[RunRecord]) -> RunRecord | None:
    """The finished run with the highest best validation mAP (model selection never looks
    at the test queries); None when no run has one."""
    scored = [run for run in runs if run.status == "ok" and VALIDATION in run.metrics]
    return max(scored, key=lambda run: run.metrics[VALIDATION], default=None)


def metric_columns(runs: Sequence[RunRecord]) -> list[str]:
    """Headline metrics, then the extra ones some run reports."""
    present = {key for run in runs for key in run.metrics}
    return [*HEADLINE, *(metric for metric in EXTRA if metric in present)]


def write_cells_csv(path: Path, cells: Sequence[Cell], metrics: Sequence[str]) -> None:
    """One row per cell: counts, seeds and mean/std of every metric (std empty below 2 runs)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["dataset", "method", "setting", "bits", "runs", "finished", "seeds"]
        for metric in metrics:
            header += [f"{metric}_mean", f"{metric}_std"]
        writer.writerow(header)
        for cell in cells:
            row: list[object] = [cell.dataset, cell.method, cell.setting]
            row += ["" if cell.bits is None else cell.bits, len(cell.runs), len(cell.finished)]
            row.append(" ".join(str(seed) for seed in cell.seeds))
            for metric in metrics:
                mean, std = cell.mean_std(metric)
                row += ["" if mean is None else repr(mean), "" if std is None else repr(std)]
            writer.writerow(row)


def write_runs_csv(path: Path, runs: Sequence[RunRecord], metrics: Sequence[str]) -> None:
    """One row per run (failed and unfinished ones included) with its status and metrics."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["run", "status", "dataset", "method", "setting", "bits", "seed", *metrics, "detail"]
        )
        for run in runs:
            writer.writerow(
                [
                    run.path,
                    run.status,
                    run.dataset,
                    run.method,
                    run.setting,
                    "" if run.bits is None else run.bits,
                    "" if run.seed is None else run.seed,
                    *(repr(run.metrics[m]) if m in run.metrics else "" for m in metrics),
                    run.detail,
                ]
            )


def print_whole(console: Console, table: Table) -> None:
    """Print ``table`` at its natural width, even past the console's: names and values whole."""
    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = console.width
    console.width = max(width, needed)
    try:
        console.print(table)
    finally:
        console.width = width


def print_report(cells: Sequence[Cell], runs: Sequence[RunRecord], console: Console) -> None:
    """The comparison table, the best run and the runs without metrics, on the console."""
    header, rows = table_rows(cells)
    table = Table(title="mean ± std over seeds (test)")
    for name in header:
        justify = "right" if name.startswith("mAP") else "left"
        table.add_column(name, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    print_whole(console, table)
    for note in (left_out_text(cells, runs), best_run_text(runs)):
        if note:
            console.print(note, soft_wrap=True)
    header, rows = problem_rows(runs)
    if rows:
        problems = Table(title=f"{len(rows)} run(s) without metrics")
        for name in header:
            problems.add_column(name, overflow="fold")
        for row in rows:
            problems.add_row(*row)
        console.print(problems)
