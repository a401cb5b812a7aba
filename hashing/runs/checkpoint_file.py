"""Reading a checkpoint a user named, checked before anything else is built.

``torch.load`` on a wrong file fails with third-party text (a text file gives ``IndexError: pop
from empty list``, a truncated one a zip-reader error) and, left to Lightning, only after the
data and the centers were built; :func:`read_checkpoint` turns each case into a
:class:`~hashing.runs.errors.UserError` that names the key and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hashing.runs.errors import UserError

#: what every checkpoint Lightning writes holds (and a model needs)
REQUIRED_KEYS = ("state_dict",)


def first_sentence(error: BaseException, limit: int = 100) -> str:
    """The start of a third-party error message, enough to tell one failure from another."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.split(". ")[0].split(", please")[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_checkpoint(path: str | Path, key: str = "ckpt_path", mmap: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict; UserError naming ``key`` when it is missing, not
    a file, unreadable (truncated, not a PyTorch file) or not a Lightning checkpoint.

    ``mmap=True`` maps tensors instead of reading them (a cheap check of a large file: its zip
    directory, at the end, is read either way, so a truncated file still fails).
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{key}={str(path)!r} is a folder: give a .ckpt file inside it")
    if not path.is_file():
        raise UserError(f"{key}={str(path)!r} does not exist: give a Lightning .ckpt file")
    import torch  # here, not at the top: the entry points' --help must not import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as error:
        raise UserError(
            f"{key}={str(path)!r} is not a readable PyTorch checkpoint (truncated, or another "
            f"kind of file; torch.load: {first_sentence(error)}): give a .ckpt file written by "
            "hashing.train"
        ) from error
    if not isinstance(checkpoint, dict) or any(k not in checkpoint for k in REQUIRED_KEYS):
        raise UserError(
            f"{key}={str(path)!r} is a PyTorch file but not a Lightning checkpoint (no "
            f"{', '.join(REQUIRED_KEYS)}): give a .ckpt file written by hashing.train"
        )
    return checkpoint
