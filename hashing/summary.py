"""The table a run prints at its end."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def summary_table(metrics: dict[str, float], title: str, footer: str = "") -> Table:
    """A two-column table of metric name and value, mAP first."""
    table = Table(title=title, caption=footer or None, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    ordered = sorted(metrics, key=lambda key: (not key.startswith("test/mAP"), key))
    for key in ordered:
        table.add_row(key.removeprefix("test/"), f"{metrics[key]:.4f}")
    return table


def print_summary(metrics: dict[str, float], title: str, footer: str = "") -> None:
    """Print the summary table to the terminal (and so into the job log)."""
    Console().print(summary_table(metrics, title, footer))
