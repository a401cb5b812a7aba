"""Write a folder all at once: build it under a temporary name beside the target, then rename.

An export or an ``add`` that is interrupted (exception, Ctrl-C, a killed process) leaves the
previous folder as it was (or no folder at all) plus at most a hidden ``.<name>.*.partial``
folder, never a half-written index under the target name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hashing.runs.atomic import current_umask, fsync_file, naming_target


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; on success its files are fsynced and it replaces
    ``target`` (which must not exist unless ``overwrite``); on failure it is removed and
    ``target`` is left untouched."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists; choose another folder or pass overwrite=true"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    )
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders
    try:
        with naming_target(target):  # a full disk's OSError then names the folder
            yield staging
            for path in staging.rglob("*"):
                if path.is_file():
                    fsync_file(path)
            replace_folder(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def replace_folder(source: Path, target: Path) -> None:
    """Move folder ``source`` to ``target``, replacing an existing ``target`` folder.

    ``os.replace`` cannot replace a non-empty folder, so an existing target is first renamed
    aside, then ``source`` is renamed in, then the old one is deleted; if the second rename
    fails the old folder is moved back.
    """
    if not target.exists():
        os.rename(source, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(source, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside)
