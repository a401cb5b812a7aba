"""Command line of the comparison report (see :mod:`hashing.report`).

    python -m hashing.report multirun_outputs/2024-05-01/12-00-00 [more dirs]
        [--out DIR] [--pr-bits N] [--no-plots] [--include-failed]

Writes ``report.md``, ``cells.csv`` (one row per cell), ``runs.csv`` (one row per run) and the
PNG figures into ``--out`` (default ``<first dir>/report``), and prints the table and the best
run. Runs without metrics are listed apart (``--include-failed`` counts them in the table).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from hashing.report.plots import plot_map_vs_bits, plot_pr_curves
from hashing.report.runs import collect_runs
from hashing.report.table import (
    aggregate,
    markdown_report,
    metric_columns,
    print_report,
    write_cells_csv,
    write_runs_csv,
)
from hashing.runs.atomic import write_text_atomic
from hashing.runs.quiet import quiet_libraries


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The report's options."""
    parser = argparse.ArgumentParser(
        prog="python -m hashing.report",
        description="Aggregate sweep runs into method x bits x dataset tables and plots.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or run folders")
    parser.add_argument("--out", type=Path, help="output folder (default <first dir>/report)")
    parser.add_argument("--pr-bits", type=int, help="bit length of the PR curves (default max)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument(
        "--include-failed",
        action="store_true",
        help="count runs without metrics (failed, interrupted) in their cells of the table "
        "(default: listed apart only)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the report; returns the process exit status (1 when no run was found)."""
    args = parse_args(argv)
    quiet_libraries()
    console = Console(width=max(Console().width, 120))
    try:
        runs = collect_runs(args.dirs)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        return 1
    out_dir = args.out or args.dirs[0] / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = aggregate(runs, include_failed=args.include_failed)
    metrics = metric_columns(runs)
    written = [out_dir / "report.md", out_dir / "cells.csv", out_dir / "runs.csv"]
    write_text_atomic(written[0], markdown_report(cells, runs, [str(d) for d in args.dirs]))
    write_cells_csv(written[1], cells, metrics)
    write_runs_csv(written[2], runs, metrics)
    if not args.no_plots:
        written += plot_map_vs_bits(cells, out_dir)
        pr = plot_pr_curves(runs, out_dir, args.pr_bits)
        if not pr:
            console.print("no PR curve data (curves/curves.json) for the chosen bit length")
        written += pr
    print_report(cells, runs, console)
    console.print("wrote " + ", ".join(str(path) for path in written), soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
