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


#: diagnostics kept in metrics.json but left out of the printed table (dead_bits says it)
DETAIL_ONLY = ("test/bit_balance_", "test/all_codes_equal")
#: counts, printed as integers
COUNTS = ("test/dead_bits",)


def summary_table(metrics: dict[str, float]) -> Table:
    """A two-column table of metric name and value, test mAP first; the bit balance's
    details stay in metrics.json."""
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    shown = [key for key in metrics if not key.startswith(DETAIL_ONLY)]
    ordered = sorted(shown, key=lambda key: (not key.startswith("test/mAP"), key))
    for key in ordered:
        value = metrics[key]
        text = f"{int(value)}" if key in COUNTS else f"{value:.4f}"
        table.add_row(key.removeprefix("test/"), text)
    return table


def print_summary(metrics: dict[str, float], title: str, footer: str = "") -> None:
    """Print a title line, the table and a footer line; the job's log file gets them too."""
    console = Console(width=max(Console().width, 100), record=True)
    console.print(f"[bold]{title}[/bold]")
    console.print(summary_table(metrics))
    if footer:
        console.print(footer, soft_wrap=True)
    write_to_log_files("summary\n" + console.export_text().rstrip())
