"""torch and torchvision that do not match: one paragraph naming both versions, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hashing.runs.torch_versions import find_version_mismatch, matching_torchvision
from tests.helpers.runs import ROOT

FAILURE = "operator torchvision::nms does not exist"


def test_torchvision_lines_follow_torch() -> None:
    # the published pairs: torch 2.0 / torchvision 0.15, 2.5 / 0.20, 2.14 / 0.29
    assert [matching_torchvision(v) for v in ("2.0.1", "2.5.0+cpu", "2.14.1")] == [
        "0.15",
        "0.20",
        "0.29",
    ]
    assert matching_torchvision("1.13.1") is None


def test_only_the_operator_error_is_a_mismatch() -> None:
    assert find_version_mismatch(RuntimeError("CUDA out of memory")) is None
    assert find_version_mismatch(ValueError(FAILURE)) is None
    assert find_version_mismatch(RuntimeError(FAILURE)) is not None


def fake_torchvision(folder: Path, version: str) -> None:
    """A torchvision whose import fails as a build for another torch does, and its metadata."""
    (folder / "torchvision").mkdir(parents=True)
    (folder / "torchvision" / "__init__.py").write_text(f"raise RuntimeError({FAILURE!r})\n")
    info = folder / f"torchvision-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: torchvision\nVersion: {version}\n"
    )


def test_train_names_both_versions_and_the_fix(tmp_path: Path) -> None:
    fake_torchvision(tmp_path / "site", "0.28.0")
    from importlib.metadata import version

    torch_version = version("torch")
    release = torch_version.split("+")[0]
    env = {"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "hashing.train", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"torch {torch_version} and torchvision 0.28.0 do not match" in result.stderr
    assert f'pip install --force-reinstall "torch=={release}" "torchvision==' in result.stderr
