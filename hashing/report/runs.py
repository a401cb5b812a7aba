"""Find run folders and read what each one says about itself.

A run folder is one holding any of ``config_resolved.yaml``, ``metrics.json``, ``failed.json``,
``interrupted.json`` or ``.hydra/`` (a job that crashed before writing its config still has
Hydra's). Its status: ``ok`` (metrics.json), ``failed`` (failed.json), ``interrupted``
(interrupted.json: resume it) or ``incomplete`` (none: still running, or killed outright).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from hashing.runs.overrides import override_key, override_value
from hashing.runs.status import FAILED, INTERRUPTED, METRICS, RESOLVED_CONFIG

HYDRA_DIR = ".hydra"
MARKERS = (RESOLVED_CONFIG, METRICS, FAILED, INTERRUPTED, HYDRA_DIR)
STATUSES = ("ok", "failed", "interrupted", "incomplete")
#: overrides that say which cell a run is in (or nothing about the experiment at all);
#: every other override that varies between runs becomes the cell's "setting"
PLACEMENT_KEYS = ("method", "data", "bits", "seed", "resume", "ckpt_path", "fail_fast")
IGNORED_PREFIXES = ("paths.", "hydra.", "hydra/", "logger", "callbacks", "+callbacks")


@dataclass
class RunRecord:
    """One job: where it is, what it ran, how it ended and what it measured."""

    path: Path
    status: str
    method: str
    dataset: str
    bits: int | None
    seed: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    detail: str = ""
    setting: str = ""


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run (see the module docstring)."""
    return any((folder / name).exists() for name in MARKERS)


def run_config(folder: Path) -> Any:
    """A run folder's config: the resolved one, else Hydra's (a job that crashed before writing
    its own); {} when neither reads."""
    return (
        load_yaml(folder / RESOLVED_CONFIG) or load_yaml(folder / HYDRA_DIR / "config.yaml") or {}
    )


def is_training_job(config: Any) -> bool:
    """False for the config of an eval, export or search job (its ``task_name``): those are no
    training runs, and a report would count them as incomplete ones."""
    task = lookup(config, "task_name")
    return task == "train" if isinstance(task, str) else True


def find_run_configs(roots: Sequence[Path]) -> dict[Path, Any]:
    """Every training run folder at or under ``roots`` with its config, each read once (not
    descending into a run folder, and leaving out eval/export/search job folders), sorted."""
    found: dict[Path, Any] = {}
    for root in roots:
        if not root.is_dir():
            raise ValueError(f"{root} is not a folder: give sweep or run folders")
        stack = [root]
        while stack:
            folder = stack.pop()
            if is_run_folder(folder):
                config = run_config(folder)
                if is_training_job(config):
                    found[folder] = config
                continue
            stack.extend(child for child in folder.iterdir() if child.is_dir())
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def find_run_folders(roots: Sequence[Path]) -> list[Path]:
    """The folders of :func:`find_run_configs`."""
    return list(find_run_configs(roots))


def natural_key(path: Path) -> list[Any]:
    """Sort key where ``sweep/10`` comes after ``sweep/9``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def load_yaml(path: Path) -> Any:
    """A YAML file as plain containers (None when absent or unreadable)."""
    if not path.is_file():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception:
        return None


def load_json(path: Path) -> Any:
    """A JSON file (None when absent or unreadable)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def lookup(node: Any, dotted: str) -> Any:
    """``node["a"]["b"]`` for ``"a.b"``; None when any step is missing."""
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def as_int(value: Any) -> int | None:
    """An int from a config value (None when it is not one)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def class_dataset_name(target: Any) -> str | None:
    """``hashing.data.digits.DigitsDataModule`` -> ``digits``."""
    if not isinstance(target, str) or not target:
        return None
    name = target.rsplit(".", 1)[-1].removesuffix("DataModule")
    return name.lower() or None


def dataset_label(config: Any, choices: Mapping[str, Any]) -> str:
    """Dataset name, with the protocol when it says more than the name."""
    name = lookup(config, "data.name")
    if not isinstance(name, str) or not name or "${" in name:
        name = choices.get("data") or class_dataset_name(lookup(config, "data._target_"))
    name = str(name or "?")
    protocol = lookup(config, "data.protocol")
    if isinstance(protocol, str) and protocol and protocol != name and "${" not in protocol:
        return f"{name}:{protocol}"
    return name


def method_label(config: Any, choices: Mapping[str, Any]) -> str:
    """The method's name (``method.name``, else Hydra's group choice, else its class)."""
    name = lookup(config, "method.name")
    if isinstance(name, str) and name and "${" not in name:
        return name
    if choices.get("method"):
        return str(choices["method"])
    target = lookup(config, "method._target_")
    return target.rsplit(".", 1)[-1].lower() if isinstance(target, str) else "?"


def status_of(folder: Path, metrics: Any) -> tuple[str, str]:
    """(status, detail) of a run folder."""
    if isinstance(metrics, Mapping) and metrics:
        return "ok", ""
    failure = load_json(folder / FAILED)
    if failure is not None:
        return "failed", f"{failure.get('type', 'error')}: {failure.get('message', '')}".strip()
    interruption = load_json(folder / INTERRUPTED)
    if interruption is not None:
        return "interrupted", (
            f"{interruption.get('signal', 'signal')} at epoch {interruption.get('epoch')}; "
            f"resume: python -m hashing.train resume={folder}"
        )
    if (folder / FAILED).exists() or (folder / INTERRUPTED).exists():
        return "failed", "unreadable status marker"
    return "incomplete", "no metrics.json: still running, or killed without a marker"


def read_run(folder: Path, config: Any) -> RunRecord:
    """Read one run folder whose :func:`run_config` is ``config`` (never raises on missing or
    broken files)."""
    hydra = load_yaml(folder / HYDRA_DIR / "hydra.yaml") or {}
    choices = lookup(hydra, "hydra.runtime.choices") or {}
    overrides = load_yaml(folder / HYDRA_DIR / "overrides.yaml") or []
    overrides = [str(item) for item in overrides] if isinstance(overrides, list) else []
    metrics = load_json(folder / METRICS)
    status, detail = status_of(folder, metrics)
    bits = as_int(lookup(config, "bits"))
    seed = as_int(lookup(config, "seed"))
    return RunRecord(
        path=folder,
        status=status,
        method=method_label(config, choices),
        dataset=dataset_label(config, choices),
        bits=bits if bits is not None else as_int(override_value(overrides, "bits")),
        seed=seed if seed is not None else as_int(override_value(overrides, "seed")),
        metrics={
            key: float(value)
            for key, value in (metrics or {}).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
        overrides=overrides,
        detail=detail,
    )


def setting_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that may distinguish an ablation (placement and plumbing dropped)."""
    kept = []
    for item in overrides:
        key = override_key(item)
        if key in PLACEMENT_KEYS or key.startswith(IGNORED_PREFIXES):
            continue
        kept.append(item)
    return kept


def assign_settings(runs: Sequence[RunRecord]) -> None:
    """Set each run's ``setting``: its overrides that not every run shares (e.g. an ablated
    ``method.lambda_q=0``), so such runs form their own rows instead of mixing into others."""
    candidates = [set(setting_overrides(run.overrides)) for run in runs]
    common = set.intersection(*candidates) if candidates else set()
    for run, own in zip(runs, candidates, strict=True):
        run.setting = " ".join(sorted(own - common))


def collect_runs(roots: Sequence[str | Path]) -> list[RunRecord]:
    """Every run under ``roots``, read and with settings assigned; ValueError if none."""
    configs = find_run_configs([Path(root) for root in roots])
    if not configs:
        raise ValueError(
            f"no run folders under {[str(root) for root in roots]}: a run folder holds "
            "config_resolved.yaml, metrics.json, failed.json or .hydra/"
        )
    runs = [read_run(folder, config) for folder, config in configs.items()]
    assign_settings(runs)
    return runs
