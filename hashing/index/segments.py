"""Growth of an index folder without rewriting it: append-only segment files and a commit record.

An add writes its items as one new file ``segments/<sequence>.npz`` (packed codes, and labels,
paths and dataset indices where the index keeps them), flushed to disk, and then replaces
``commit.json`` atomically; a delete only replaces ``commit.json``, whose ``deleted`` list holds
the tombstoned ids. ``commit.json`` names every committed segment with its first id, item count,
size and SHA-256, so the folder's state is exactly what its commit record says: a crash before
the record is replaced leaves the previous state (an unnamed segment file is ignored and later
overwritten), a crash after it leaves the new one. Writers hold an exclusive lock on the folder
and refuse to commit over a record another process changed since they read it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashing.index.manifest import check_file, describe_files
from hashing.runs.atomic import atomic_write, fsync_file
from hashing.runs.errors import UserError

COMMIT = "commit.json"
SEGMENTS = "segments"
LOCK = ".lock"
#: arrays a segment file may hold (``packed`` always)
SEGMENT_ARRAYS = ("packed", "labels", "paths", "dataset_index")


@dataclass
class Commit:
    """The committed state beyond the exported base: segments in id order, tombstones."""

    base_count: int
    sequence: int = 0
    segments: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Items (deleted ones included) in base and segments."""
        return self.base_count + sum(int(entry["count"]) for entry in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``commit.json``."""
        return {
            "base_count": self.base_count,
            "sequence": self.sequence,
            "segments": self.segments,
            "deleted": sorted(self.deleted),
        }


def read_commit(folder: Path, base_count: int) -> Commit:
    """The folder's commit record (an empty one if it has none), checked against its base and
    its segment files."""
    path = folder / COMMIT
    if not path.is_file():
        return Commit(base_count)
    try:
        data = json.loads(path.read_text())
        commit = Commit(
            int(data["base_count"]),
            int(data["sequence"]),
            list(data["segments"]),
            [int(i) for i in data["deleted"]],
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path} is unreadable ({err}); the index folder is damaged") from err
    if commit.base_count != base_count:
        raise UserError(
            f"{path} continues an index of {commit.base_count} items but manifest.json holds "
            f"{base_count}: the folder mixes two exports; export the index again"
        )
    first = base_count
    for entry in commit.segments:
        if int(entry["first_id"]) != first:
            raise UserError(
                f"{path}: segment {entry['file']} starts at id {entry['first_id']}, "
                f"expected {first}; the index folder is damaged"
            )
        check_file(folder / entry["file"], entry)
        first += int(entry["count"])
    return commit


def read_segment(folder: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of one committed segment."""
    with np.load(folder / entry["file"], allow_pickle=False) as data:
        arrays = {name: data[name] for name in SEGMENT_ARRAYS if name in data.files}
    if len(arrays["packed"]) != int(entry["count"]):
        raise UserError(
            f"segment {entry['file']} holds {len(arrays['packed'])} items, "
            f"commit.json says {entry['count']}"
        )
    return arrays


def write_segment(
    folder: Path, commit: Commit, arrays: dict[str, np.ndarray | None]
) -> dict[str, Any]:
    """Write the next segment file (flushed to disk); returns its commit entry."""
    name = f"{SEGMENTS}/{commit.sequence + 1:08d}.npz"
    (folder / SEGMENTS).mkdir(exist_ok=True)
    present = {key: value for key, value in arrays.items() if value is not None}
    atomic_write(folder / name, lambda handle: np.savez(handle, **present))
    fsync_file(folder / SEGMENTS)
    entry = describe_files(folder, [name])[name]
    return {"file": name, "first_id": commit.count, "count": len(present["packed"]), **entry}


def write_commit(folder: Path, commit: Commit) -> None:
    """Replace ``commit.json`` atomically and durably: this is the moment a change happens."""
    text = json.dumps(commit.to_dict(), indent=1)
    atomic_write(folder / COMMIT, lambda handle: handle.write(text.encode()))
    fsync_file(folder)


@contextlib.contextmanager
def locked(folder: Path, sequence: int) -> Iterator[None]:
    """Hold the folder's writer lock; refuse when its commit moved past ``sequence`` (another
    process added or deleted since this one read the folder)."""
    with open(folder / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            path = folder / COMMIT
            on_disk = json.loads(path.read_text())["sequence"] if path.is_file() else 0
            if on_disk != sequence:
                raise UserError(
                    f"index {folder} was changed by another process (commit {on_disk}, this one "
                    f"read {sequence}); open it again before adding or deleting"
                )
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
