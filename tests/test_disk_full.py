"""A full, read-only or forbidden folder: every file whole or not at all, one paragraph, exit 2.

Tested twice: by injecting ``ENOSPC`` into the project's writes (runs everywhere) and on a real
300 KB tmpfs (needs root and mount; skipped with the reason otherwise).
"""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
import torch
import yaml

from hashing import pipeline
from hashing.index.staging import staged_folder
from hashing.runs import atomic
from hashing.runs.atomic import atomic_write, write_json_atomic
from hashing.runs.errors import USAGE_EXIT_CODE, StorageError, readable_errors, storage_error
from hashing.runs.status import FAILED, record_failures
from tests.helpers.runs import compose_run, run_entry_point

FAST = ["debug=fast", "bits=32"]


class FullDisk:
    """A file on a disk with ``budget`` bytes left: a write that does not fit writes what fits,
    then fails as a full disk does (``write()`` names no file); the file's bytes are then given
    back (the writer deletes a failed file, which frees its space)."""

    def __init__(self, handle: IO[bytes], budget: list[int]) -> None:
        self.handle = handle
        self.budget = budget
        self.written = 0

    def write(self, data: Any) -> int:
        data = bytes(data)
        if len(data) > self.budget[0]:
            self.handle.write(data[: self.budget[0]])
            self.budget[0] += self.written
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget[0] -= len(data)
        self.written += len(data)
        return self.handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


@pytest.fixture
def disk_of(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``disk_of(n)``: from now on the project's file writes share ``n`` bytes of space."""

    def fill(size: int) -> None:
        budget = [size]
        real_open = open

        def limited_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(path, mode, *args, **kwargs)
            return FullDisk(handle, budget) if "w" in mode else handle

        monkeypatch.setattr(atomic, "open", limited_open, raising=False)

    return fill


def every_file_is_whole(folder: Path) -> list[Path]:
    """Open every file under ``folder`` as its kind; returns them (fails on a partial one)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        assert not path.name.endswith((".tmp", ".partial")), f"left behind: {path}"
        if path.suffix in (".ckpt", ".pt"):
            torch.load(path, map_location="cpu", weights_only=False)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npz":
            with np.load(path) as data:
                [data[key] for key in data.files]
        elif path.suffix == ".yaml":
            yaml.safe_load(path.read_text())
    return files


def run_and_report(cfg: Any) -> None:
    """The body of ``hashing.train``'s entry point (record the failure, report it)."""
    with readable_errors():
        record_failures(pipeline.train, cfg)


def test_a_failed_write_leaves_the_old_file_or_none(tmp_path: Path, disk_of: Any) -> None:
    kept = write_json_atomic(tmp_path / "metrics.json", {"mAP": 0.5})
    disk_of(10)
    with pytest.raises(OSError) as raised:
        write_json_atomic(kept, {"mAP": 0.75, "padding": "x" * 100})
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(kept)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.npz", lambda handle: np.savez(handle, x=np.zeros(100)))
    assert json.loads(kept.read_text()) == {"mAP": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "no space is left"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission is denied"),
        (errno.EDQUOT, "quota"),
    ],
)
def test_storage_errors_name_the_folder(tmp_path: Path, code: int, words: str) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    message = str(storage_error(OSError(code, "reason", str(target))))
    assert message.startswith("cannot ") and f" {tmp_path / 'checkpoints'}: " in message
    assert words in message and "paths.cache_dir" in message and "hydra.run.dir" in message
    # without a file name the caller's folder is named
    assert str(tmp_path) in str(storage_error(OSError(code, "reason"), tmp_path))
    assert storage_error(OSError(errno.ENOENT, "missing", str(target))) is None
    assert storage_error(ValueError("not storage")) is None


def test_a_full_disk_while_checkpointing_stops_the_run_cleanly(
    tmp_path: Path, disk_of: Any, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    cfg = compose_run("train", run, tmp_path / "cache", FAST)
    disk_of(100_000)  # the split (30 KB) and the centers fit, a checkpoint (~300 KB) does not
    with pytest.raises(SystemExit) as stop:
        run_and_report(cfg)
    assert stop.value.code == USAGE_EXIT_CODE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"error: cannot write in {run / 'checkpoints'}: no space is left")
    assert len(err.strip().splitlines()) == 2
    files = every_file_is_whole(run)
    assert not list((run / "checkpoints").glob("*.ckpt")), "a checkpoint was left under its name"
    failure = json.loads((run / FAILED).read_text())
    assert failure["type"] == "OSError" and "No space left" in failure["message"]
    assert run / FAILED in files and not (run / "metrics.json").exists()


def test_a_marker_that_cannot_be_written_is_not_a_second_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", FAST)

    def read_only(*args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(pipeline, "check_run_config", read_only)
    monkeypatch.setattr("hashing.runs.status.write_failure", read_only)
    with pytest.raises(StorageError, match=f"cannot write in {tmp_path / 'run'}: its file"):
        record_failures(pipeline.train, cfg)
    with pytest.raises(SystemExit) as stop:
        run_and_report(cfg)
    assert stop.value.code == USAGE_EXIT_CODE
    assert "read-only" in capsys.readouterr().err


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 300 KB tmpfs mounted at ``tmp_path/small`` (skips where mount is not permitted)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_run_on_a_full_tmpfs_leaves_only_whole_files(
    tmp_path: Path, small_tmpfs: Path, capsys: pytest.CaptureFixture
) -> None:
    run = small_tmpfs / "run"
    cfg = compose_run("train", run, tmp_path / "cache", FAST)
    with pytest.raises(SystemExit) as stop:
        run_and_report(cfg)
    assert stop.value.code == USAGE_EXIT_CODE
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no space is left on its device" in err
    assert f"cannot write in {run}" in err
    every_file_is_whole(run)
    assert not list((run / "checkpoints").glob("*.ckpt"))
    assert (run / FAILED).is_file()


def test_a_run_folder_hydra_cannot_make_is_one_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Hydra makes the run folder before the job starts: a read-only disk there is answered
    like the project's own writes (no Hydra traceback, exit 2)."""
    run = tmp_path / "readonly" / "run"
    real_mkdir = Path.mkdir

    def read_only(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == run:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    code = run_entry_point("hashing.train", [f"hydra.run.dir={run}"], monkeypatch)
    assert code == USAGE_EXIT_CODE
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write in {run.parent}: its file system is read-only")
    assert "Traceback" not in err


def test_an_index_folder_that_does_not_fit_is_not_left_behind(tmp_path: Path) -> None:
    target = tmp_path / "index"
    with pytest.raises(OSError) as raised, staged_folder(target) as stage:
        (stage / "codes.npy").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")  # the next write found it full
    assert raised.value.filename == str(target)
    assert storage_error(raised.value) is not None
    assert list(tmp_path.iterdir()) == []
