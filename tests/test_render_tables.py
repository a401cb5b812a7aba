"""The docs' benchmark tables are generated from the committed results JSON, never typed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import render_tables
from benchmarks.results_io import markdown_table

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"


def test_docs_tables_match_their_results() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/render_tables.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_a_hand_edited_number_fails_the_check(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    shutil.copyfile(PAGE, page)
    text = page.read_text()
    start = text.index("<!-- table:")
    number = re.compile(r"\d\.\d{4}").search(text, start)
    assert number is not None, "no generated number to edit"
    edited = text[: number.start()] + "0.9999" + text[number.end() :]
    assert edited != text
    page.write_text(edited)
    assert render_tables.main(["--check", "--docs", str(page)]) == 1
    assert render_tables.main(["--docs", str(page)]) == 0  # rendering restores it
    assert page.read_text() == text


def test_rendered_table_is_the_json_table_with_its_provenance(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    record = {
        "script": "benchmarks/bench_pretrained.py",
        "commit": "0" * 40,  # not in this repository: staleness unknown, said so
        "command": "python benchmarks/bench_pretrained.py",
        "date_utc": "2026-01-01 00:00 UTC",
        "wall_s": 125.0,
        "config_digest": "abc",
        "seeds": [0, 1],
        "machine_at_start": {"cores": 2, "load_average": [3.0, 2.0, 1.0], "gpu": None},
        "tables": {"t": {"columns": ["a", "b"], "rows": [["x", "0.5000"]]}},
    }
    (results / "demo.json").write_text(json.dumps(record))
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- table:demo/t -->\nold\n<!-- /table -->\nend\n")
    assert render_tables.main(["--check", "--docs", str(page), "--results", str(results)]) == 1
    assert render_tables.main(["--docs", str(page), "--results", str(results)]) == 0
    text = page.read_text()
    assert markdown_table(record["tables"]["t"]) in text
    assert "2.1 min" in text and "load average 3.0" in text and "no GPU" in text
    assert "unknown whether changed" in text
    assert text.startswith("intro\n") and text.endswith("<!-- /table -->\nend\n")
    missing = tmp_path / "missing.md"
    missing.write_text("<!-- table:demo/nope -->\n<!-- /table -->\n")
    assert render_tables.main(["--docs", str(missing), "--results", str(results)]) == 2


def test_provenance_records_the_printed_table_and_the_run(tmp_path: Path, capsys) -> None:
    from benchmarks.results_io import Provenance

    out = tmp_path / "demo.json"
    provenance = Provenance(out, "benchmarks/bench_demo.py", {"seed": 3}, [3], ["x", "--fast"])
    provenance.capture_printed_tables()
    print("heading")
    print("| a | b |\n|---|---|\n| 1 | 2 |")
    print("done")
    provenance.write(None, rows=[1, 2])
    assert "| 1 | 2 |" in capsys.readouterr().out  # still shown
    record = json.loads(out.read_text())
    assert record["tables"] == {"main": {"markdown": "| a | b |\n|---|---|\n| 1 | 2 |"}}
    assert record["command"] == "python benchmarks/bench_demo.py --fast"
    assert record["seeds"] == [3] and record["results"] == {"rows": [1, 2]}
    assert len(record["commit"]) == 40 and record["machine_at_start"]["cores"] >= 1
    assert record["wall_s"] >= 0 and len(record["machine_at_end"]["load_average"]) == 3


def test_a_clone_without_the_measured_commit_still_checks_the_numbers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    for path in results.glob("*.json"):  # as if measured at a commit this clone does not hold
        record = json.loads(path.read_text())
        record["commit"] = "f" * 40
        path.write_text(json.dumps(record))
    measured = json.loads((ROOT / "benchmarks/results/pretrained.json").read_text())["commit"]
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE.read_text().replace(f"`{measured[:10]}`", f"`{'f' * 10}`"))
    assert render_tables.main(["--check", "--docs", str(page), "--results", str(results)]) == 0
    number = re.compile(r"\d\.\d{4}").search(
        page.read_text(), page.read_text().index("<!-- table:")
    )
    assert number is not None
    edited = page.read_text()
    page.write_text(edited[: number.start()] + "0.9999" + edited[number.end() :])
    assert render_tables.main(["--check", "--docs", str(page), "--results", str(results)]) == 1
