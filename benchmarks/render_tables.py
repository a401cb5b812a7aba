"""Render the benchmark tables in the docs from the committed results JSON.

    python benchmarks/render_tables.py            # rewrite every generated table in docs/
    python benchmarks/render_tables.py --check    # exit 1 when any differs from its JSON

A generated table sits between markers in a docs page::

    <!-- table:pretrained/headline -->
    ... (everything here is replaced) ...
    <!-- /table -->

``pretrained/headline`` names ``benchmarks/results/pretrained.json`` and its table
``headline`` (written by :class:`benchmarks.results_io.Provenance`). Under each table a line
says where it comes from: the command, the commit and date it was measured at, its wall time and
machine, and whether the benchmarked code (``hashing/``, ``conf/``, the script) has changed
since that commit (``git diff --shortstat <commit> HEAD``), so a stale table reads as stale.
Because that line follows ``HEAD``, a commit that changes the benchmarked code makes ``--check``
fail until the tables are rendered again (and then say they are stale).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's modules, also when run as a script
from benchmarks.results_io import RESULTS, benchmarked_paths, git, markdown_table  # noqa: E402

DOCS = ROOT / "docs"
BLOCK = re.compile(
    r"(?P<open><!-- table:(?P<name>[\w.-]+)/(?P<table>[\w.-]+) -->\n)(?P<body>.*?)"
    r"(?P<close><!-- /table -->)",
    re.DOTALL,
)


class RenderError(Exception):
    """A marker names a results file or table that does not exist, or the JSON is malformed."""


def staleness(record: dict[str, Any]) -> str:
    """Whether the benchmarked code changed between the measured commit and ``HEAD``."""
    commit = record.get("commit") or ""
    paths = benchmarked_paths(record["script"])
    shown = ", ".join(f"`{p}/`" if "." not in p else f"`{p}`" for p in paths)
    if not commit or not git("cat-file", "-t", commit):
        return f"The benchmarked code ({shown}): **unknown whether changed** (commit not here)."
    if not git("diff", "--name-only", commit, "HEAD", "--", *paths):
        return f"The benchmarked code ({shown}) is unchanged since."
    # said once, without a count of changes, so later commits do not re-render a stale table
    return (
        f"**Stale: the benchmarked code ({shown}) has changed since; re-run the command to "
        f"refresh these numbers.**"
    )


#: a table's staleness sentence (any of its three forms), for comparing pages in a clone
#: that lacks the measured commit (a shallow clone): there it cannot be recomputed
STALENESS = re.compile(
    r"The benchmarked code \([^)]*\)(?: is unchanged since\.|: \*\*unknown whether changed"
    r"\*\* \(commit not here\)\.)|\*\*Stale: the benchmarked code \([^)]*\) has changed "
    r"since; re-run the command to refresh these numbers\.\*\*"
)
UNKNOWN = "unknown whether changed"


def same_tables(rendered: str, text: str) -> bool:
    """Whether a page's tables are what the results render; where the measured commit is not
    in this clone, the staleness sentences are left out of the comparison."""
    if rendered == text:
        return True
    if UNKNOWN not in rendered:
        return False
    return STALENESS.sub("", rendered) == STALENESS.sub("", text)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def provenance(record: dict[str, Any], name: str) -> str:
    """The line under a table: what ran, where, when, how long, and whether it is stale."""
    start, end = record.get("machine_at_start", {}), record.get("machine_at_end", {})
    load = start.get("load_average")
    load_end = end.get("load_average")
    loads = f"load average {load[0]:.1f} at the start" if load else "load average unknown"
    if load_end:
        loads += f", {load_end[0]:.1f} at the end"
    gpu = f"GPU {start['gpu']}" if start.get("gpu") else "no GPU"
    dirty = (
        " (with uncommitted changes to the benchmarked code)"
        if record.get("uncommitted_changes")
        else ""
    )
    return (
        f"*Generated from `benchmarks/results/{name}.json` by `python "
        f"benchmarks/render_tables.py`. Measured by `{record['command']}` at commit "
        f"`{record.get('commit', '?')[:10]}`{dirty} on {record.get('date_utc', '?')}: wall time "
        f"{minutes(float(record.get('wall_s', 0)))}, {start.get('cores', '?')} cores, "
        f"{loads}, {gpu}; config digest `{record.get('config_digest', '?')}`, seeds "
        f"{record.get('seeds') or '–'}.* {staleness(record)}"
    )


def load_results(results: Path, name: str) -> dict[str, Any]:
    path = results / f"{name}.json"
    if not path.is_file():
        raise RenderError(f"{path} not found: run the benchmark that writes it")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RenderError(f"{path} is not valid JSON: {error}") from error


def render_block(results: Path, name: str, table: str) -> str:
    """The body between a table's markers."""
    record = load_results(results, name)
    tables = record.get("tables", {})
    if table not in tables:
        raise RenderError(
            f"benchmarks/results/{name}.json has no table {table!r}; it has {sorted(tables)}"
        )
    spec = tables[table]
    parts = [spec["markdown"] if "markdown" in spec else markdown_table(spec)]
    parts += [f"- {note}" for note in spec.get("notes", [])]
    return "\n".join(parts) + "\n\n" + provenance(record, name) + "\n"


def render_text(text: str, results: Path) -> str:
    """``text`` with every generated table rendered again."""

    def replace(match: re.Match[str]) -> str:
        body = render_block(results, match["name"], match["table"])
        return match["open"] + body + match["close"]

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any table differs")
    parser.add_argument("--docs", nargs="+", type=Path, default=None, help="pages (default: docs)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    pages = args.docs or sorted(DOCS.rglob("*.md"))
    differing = []
    try:
        for page in pages:
            text = page.read_text()
            rendered = render_text(text, args.results)
            if rendered == text or (args.check and same_tables(rendered, text)):
                continue
            if args.check:
                differing.append(page)
            else:
                page.write_text(rendered)
                print(f"rendered {page}")
    except RenderError as error:
        print(f"render_tables: {error}", file=sys.stderr)
        return 2
    if differing:
        names = ", ".join(str(p) for p in differing)
        print(
            f"generated tables differ from benchmarks/results in {names}: run `python "
            "benchmarks/render_tables.py` (after a change to the benchmarked code too: the "
            "tables then say they are stale)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
