"""Hand a finished run folder's results to the loggers that keep more than metric streams."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from pytorch_lightning.loggers import Logger


@runtime_checkable
class RunFolderLogger(Protocol):
    """A logger that publishes a run folder's files (metrics, curves, center statistics)."""

    def log_run_folder(self, output_dir: Path) -> None:
        """Publish what the run wrote into ``output_dir`` and close the logger's run."""


def publish_run_folder(loggers: Sequence[Logger], output_dir: Path) -> None:
    """Call ``log_run_folder`` on every logger that has it (others log through Lightning)."""
    for logger in loggers:
        if isinstance(logger, RunFolderLogger):
            logger.log_run_folder(output_dir)
