"""The index folder's manifest: what the folder holds, and checks that it is whole and fits.

``manifest.json`` is written last into the staged folder and names every file with its size
and SHA-256, the code length, the item count and the format version, so a truncated or
modified folder, a folder of another code length, or one made by another model is refused at
load time with a message saying which.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hashing.digests import file_sha256
from hashing.runs.errors import UserError

FORMAT = "hashing-index"
FORMAT_VERSION = 2
#: versions this code reads: 1 is 2 without additions or deletions (no commit.json)
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
CODES = "codes.npy"
LABELS = "labels.npy"
DATASET_INDEX = "dataset_index.npy"
PATHS = "paths.txt"
CONFIG = "config.yaml"
FAISS = "faiss.index"
#: run-config keys that say where a run lived or how it was driven (bookkeeping), not what
#: model it made: left out of the identity digest so a resumed run or a moved checkpoint still
#: matches its index
LOCATION_KEYS = (
    "paths", "ckpt_path", "task_name", "tags", "logger", "hydra",
    "resume", "fail_fast", "test", "test_ckpt",
)  # fmt: skip


def describe_files(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes": size, "sha256": digest}}`` of the given files in ``folder``."""
    return {
        name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
        for name in names
    }


def model_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved run config that defines the model (location keys dropped)."""
    return {key: value for key, value in config.items() if key not in LOCATION_KEYS}


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 of the model-defining config, over canonical JSON."""
    canonical = json.dumps(model_identity(config), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened to dotted keys (lists kept whole)."""
    if not isinstance(config, Mapping):
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_differences(
    stored: Mapping[str, Any], other: Mapping[str, Any], show: int = 6
) -> list[str]:
    """Up to ``show`` lines ``key: stored vs other`` where two model configs differ."""
    left, right = flatten(model_identity(stored)), flatten(model_identity(other))
    missing = object()
    lines = []
    for key in sorted(set(left) | set(right)):
        a, b = left.get(key, missing), right.get(key, missing)
        if a != b:
            shown = ["<absent>" if value is missing else repr(value) for value in (a, b)]
            lines.append(f"{key}: {shown[0]} (index) vs {shown[1]} (model)")
    return lines[:show] + ([f"... {len(lines) - show} more"] if len(lines) > show else [])


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest after checking format, version and that every file is whole."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise UserError(f"index folder {folder} does not exist")
    if not path.is_file():
        raise UserError(
            f"{folder} has no {MANIFEST}: it is not an index folder, or an export into it did "
            f"not finish (export writes the manifest last)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(
            f"{path} is unreadable or truncated ({err}); export the index again"
        ) from err
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a {FORMAT} manifest (format={manifest.get('format')!r})")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise UserError(
            f"{folder} has index format version {manifest.get('format_version')!r}; this code "
            f"reads version {FORMAT_VERSION}: export the index again"
        )
    for name, expected in manifest.get("files", {}).items():
        check_file(folder / name, expected)
    return manifest


def check_file(path: Path, expected: Mapping[str, Any]) -> None:
    """Raise ValueError when ``path`` is missing, of another size, or of another checksum."""
    if not path.is_file():
        raise UserError(f"index file {path} is missing: the folder is incomplete")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise UserError(
            f"index file {path} has {size} bytes but the manifest says {expected['bytes']}: "
            f"the folder is truncated or was modified; export the index again"
        )
    if file_sha256(path) != expected["sha256"]:
        raise UserError(
            f"index file {path} does not match the manifest's SHA-256: it was modified or "
            f"corrupted; export the index again"
        )
