"""Where a benchmark's numbers come from: one committed JSON per benchmark table.

Every benchmark script writes ``benchmarks/results/<name>.json`` through :class:`Provenance`:
the git commit it measured (and whether the benchmarked code had uncommitted changes), the exact
command, a digest of the configs it ran, its seeds, the machine (cores, load average, GPU or
not) and its wall time, beside the tables it produced. ``benchmarks/render_tables.py`` renders
those tables into the docs; nothing in a results table is typed by hand.

A table is ``{"columns": [...], "rows": [[cell, ...], ...], "notes": [...]}`` with cells already
formatted as text (the script decides the digits), so rendering is mechanical; a script that
builds its markdown itself stores ``{"markdown": "...", "notes": [...]}`` instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: what every benchmark measures besides its own script: a change here makes its tables stale
BENCHMARKED_PATHS = ("hashing", "conf")


def git(*args: str) -> str:
    """Output of ``git <args>`` in the repository ('' where git or the repository is missing)."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def command_line(script: str, argv: Sequence[str]) -> str:
    """How this process was started: ``python -m <module> ...`` when run as a module (as
    ``python -m benchmarks.bench_tbh`` is), else ``python <script> ...``."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    as_module = spec is not None and spec.name.startswith("benchmarks.")
    start = ["-m", spec.name] if as_module else [script]
    return "python " + shlex.join([*start, *argv[1:]])


def benchmarked_paths(script: str) -> list[str]:
    """The paths whose change makes a table of ``script`` stale (repository-relative)."""
    return [*BENCHMARKED_PATHS, script]


def config_digest(settings: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex) of every ``conf/**/*.yaml`` file and the script's settings: two
    runs with the same digest composed the same configs from the same arguments."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def machine() -> dict[str, Any]:
    """Cores, load average, GPU (name or None) and platform of this machine, now."""
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {
        "cores": os.cpu_count(),
        "load_average": load,
        "gpu": gpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def settings_of(args: Any) -> dict[str, Any]:
    """An argparse namespace (or mapping) as JSON-safe settings (paths as text)."""
    items = vars(args) if not isinstance(args, dict) else args
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in items.items()}


class PrintedTables(io.TextIOBase):
    """A stdout that also keeps what is printed, so the markdown tables a script prints (runs
    of lines starting with ``|``) can be recorded as they were shown."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.text = io.StringIO()

    def write(self, text: str) -> int:
        self.text.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def tables(self) -> dict[str, dict[str, str]]:
        """The printed tables as ``{"main": ...}`` (one) or ``{"table1": ..., ...}``."""
        blocks: list[list[str]] = [[]]
        for line in self.text.getvalue().splitlines():
            if line.startswith("|"):
                blocks[-1].append(line)
            elif blocks[-1]:
                blocks.append([])
        found = ["\n".join(block) for block in blocks if block]
        if len(found) == 1:
            return {"main": {"markdown": found[0]}}
        return {f"table{i}": {"markdown": text} for i, text in enumerate(found, 1)}


class Provenance:
    """Records a benchmark run from its start; :meth:`write` saves it with its tables.

    Args:
        out: the results file (``benchmarks/results/<name>.json``; a bare name means that).
        script: the script's path relative to the repository (its change makes tables stale).
        args: the script's parsed arguments (recorded, and digested with the configs).
        seeds: the seeds the run covers.
        argv: the command line (default: this process's).
    """

    def __init__(
        self,
        out: str | Path,
        script: str,
        args: Any,
        seeds: Sequence[int] = (),
        argv: Sequence[str] | None = None,
    ) -> None:
        self.out = RESULTS / f"{out}.json" if isinstance(out, str) else Path(out)
        self.printed: PrintedTables | None = None
        self.started = time.perf_counter()
        settings = settings_of(args)
        argv = list(sys.argv if argv is None else argv)
        dirty = git("status", "--porcelain", "--", *benchmarked_paths(script))
        self.record: dict[str, Any] = {
            "benchmark": self.out.stem,
            "script": script,
            "commit": git("rev-parse", "HEAD"),
            "uncommitted_changes": bool(dirty),
            "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command_line(script, argv),
            "config_digest": config_digest(settings),
            "seeds": list(seeds),
            "settings": settings,
            "machine_at_start": machine(),
        }

    def capture_printed_tables(self) -> None:
        """From now on keep what the script prints: :meth:`write` with ``tables=None`` records
        the markdown tables printed (for scripts that print their table line by line)."""
        self.printed = PrintedTables(sys.stdout)
        sys.stdout = self.printed

    def write(self, tables: dict[str, dict[str, Any]] | None, **results: Any) -> Path:
        """Write ``<name>.json`` (atomically) with the record, wall time, load average at the
        end, ``tables`` (None: the printed ones) and any raw ``results``; returns its path."""
        from hashing.runs.atomic import write_json_atomic

        printed = self.printed
        if printed is not None:
            sys.stdout = printed.stream
            self.printed = None
        if tables is None:
            tables = printed.tables() if printed is not None else {}
        record = dict(self.record)
        record["wall_s"] = round(time.perf_counter() - self.started, 1)
        record["machine_at_end"] = machine()
        payload = {**record, "tables": tables, "results": results}
        self.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out, json.loads(json.dumps(payload, default=str)))
        return self.out


def markdown_table(table: dict[str, Any]) -> str:
    """A table dict as GitHub markdown (header, rule, rows; notes are not included)."""
    columns = table["columns"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]]
    return "\n".join(lines)
