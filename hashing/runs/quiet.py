"""Third-party console noise that says nothing about the run, filtered once per process.

Lightning's product tips ("💡 Tip: ... litlogger / litmodels"), its note that the model summary
callback we configure replaces its default, a deprecation inside Lightning's own pytree helper
and its SLURM hint on machines that merely have ``srun`` are dropped; in a resume, so is the CSV
logger's warning that earlier logs will be deleted (the resume keeps them). Only these exact
messages are: every other warning and log line still shows.
"""

from __future__ import annotations

import logging
import re
import warnings

#: starts of Lightning info messages (logged through its rank-zero logger) that are dropped
LIGHTNING_INFO_NOISE = (
    "💡 Tip:",
    "Trainer already configured with model summary callbacks",
)
#: starts of third-party warning messages that are dropped
WARNING_NOISE = (
    "`isinstance(treespec, LeafSpec)` is deprecated",
    "The `srun` command is available on your system but is not used",
)
#: CSVLogger's warning on a folder with logs, untrue in a resume (which keeps the old rows)
KEPT_LOGS_WARNING = "Experiment logs directory .* exists and is not empty"
RANK_ZERO_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
)


class DropMessages(logging.Filter):
    """Drops records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for a record that starts with a listed prefix."""
        return not record.getMessage().startswith(self.prefixes)


def quiet_libraries() -> None:
    """Install the filters (idempotent)."""
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(item, DropMessages) for item in logger.filters):
            logger.addFilter(DropMessages(LIGHTNING_INFO_NOISE))
    for prefix in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=re.escape(prefix))


def quiet_kept_logs() -> None:
    """Drop the CSV logger's warning that earlier log files will be deleted (in a resume)."""
    warnings.filterwarnings("ignore", message=KEPT_LOGS_WARNING)
