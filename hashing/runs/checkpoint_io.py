"""Checkpoints written whole or not at all, in their own folder.

Lightning's ``TorchCheckpointIO`` serialises into memory, then writes the bytes to the final
name (through fsspec): a full disk leaves a truncated ``epoch_000.ckpt`` or ``last.ckpt`` that
a resume or a test then fails to read. :class:`AtomicCheckpointIO` serialises in memory as
Lightning does, then writes local checkpoints through :func:`~hashing.runs.atomic.atomic_write`
(a temporary file beside the target, fsync, ``os.replace``). Every checkpoint of a training run
(ModelCheckpoint's, ``last.ckpt``, the interrupt checkpoint) goes through it:
:func:`hashing.pipeline.build_trainer` installs it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.types import _PATH

from hashing.runs.atomic import atomic_write


def is_local(path: _PATH) -> bool:
    """Whether ``path`` is a local file path (not ``s3://...`` or another fsspec URL)."""
    return "://" not in str(path) or str(path).startswith("file://")


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local writes are atomic; remote URLs go to Lightning's own."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` (see the module docstring)."""
        if storage_options is not None or not is_local(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()  # serialised first: a failed write is then a plain OSError
        torch.save(checkpoint, buffer)
        target = Path(str(path).removeprefix("file://"))
        atomic_write(target, lambda handle: handle.write(buffer.getbuffer()))
