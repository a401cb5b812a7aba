"""Helpers for tests that run the training pipeline on tiny settings: in-process or as the CLI."""

from __future__ import annotations

import hashlib
import logging
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def compose_run(
    config_name: str, output_dir: Path, cache_dir: Path, overrides: list[str] = ()
) -> DictConfig:
    """Compose a config as Hydra would for a run in ``output_dir`` (HydraConfig set)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name=config_name,
            overrides=[
                f"paths.output_dir={output_dir}",
                f"paths.cache_dir={cache_dir}",
                f"hydra.run.dir={output_dir}",
                "callbacks.progress_bar.refresh_rate=0",
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path: equal before and after means
    nothing was written, renamed, added or removed."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def train_command(*args: str) -> list[str]:
    """``python -m hashing.train <args>`` as an argument list."""
    return [sys.executable, "-m", "hashing.train", *args]


def run_train_cli(
    args: list[str], timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m hashing.train <args>`` from the repository root, its output captured."""
    return subprocess.run(
        train_command(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def sweep_args(sweep: Path, cache_dir: Path, overrides: list[str]) -> list[str]:
    """The arguments of ``python -m hashing.train -m <overrides>`` into ``sweep``."""
    return [
        "-m",
        *overrides,
        "callbacks.progress_bar.refresh_rate=0",
        f"hydra.sweep.dir={sweep}",
        f"paths.cache_dir={cache_dir}",
    ]


def run_sweep_cli(
    sweep: Path,
    cache_dir: Path,
    overrides: list[str],
    timeout: int = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m hashing.train -m <overrides>`` into ``sweep``, as a user starts a sweep."""
    return run_train_cli(sweep_args(sweep, cache_dir, overrides), timeout, env)


def run_entry_point(module: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``python -m <module> <args>`` in-process (a subprocess costs ~10 s of imports); its exit
    status. The root logger's handlers (Hydra configures them) are put back afterwards."""
    monkeypatch.setattr(sys, "argv", [module, *args])
    handlers, level = logging.root.handlers[:], logging.root.level
    try:
        runpy.run_module(module, run_name="__main__")
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    finally:
        logging.root.handlers, logging.root.level = handlers, level
    return 0
