"""The table a run prints at its end."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hashing.runs.errors import write_to_log_files


def run_title(name: str, bits: int | None, dataset: str | None) -> str:
    """``csq · 32 bits · digits``: a run named by method, code length and data (what is known)."""
    parts = [name]
    if bits is not None:
        parts.append(f"{bits} bits")
    if dataset is not None:
        parts.append(dataset)
    return " · ".join(parts)


def summary_table(metrics: dict[str, float]) -> Table:
    """A two-column table of metric name and value, test mAP first."""
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    ordered = sorted(metrics, key=lambda key: (not key.startswith("test/mAP"), key))
    for key in ordered:
        table.add_row(key.removeprefix("test/"), f"{metrics[key]:.4f}")
    return table


def print_summary(metrics: dict[str, float], title: str, footer: str = "") -> None:
    """Print a title line, the table and a footer line; the job's log file gets them too."""
    console = Console(width=max(Console().width, 100), record=True)
    console.print(f"[bold]{title}[/bold]")
    console.print(summary_table(metrics))
    if footer:
        console.print(footer, soft_wrap=True)
    write_to_log_files("summary\n" + console.export_text().rstrip())
