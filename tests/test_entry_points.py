"""The entry points stay cheap to start: ``--help`` and ``--cfg`` must not import the work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "entry", ["train", "eval", "export", "search", "serve", "features.__main__"]
)
def test_entry_points_import_neither_torch_nor_lightning(entry: str) -> None:
    # --help and --cfg answer before main() runs: whatever the entry module imports at its top
    # is what they cost (torch alone is ~2 s); the work is imported inside main()
    code = (
        f"import sys, hashing.{entry}; "
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'faiss') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
