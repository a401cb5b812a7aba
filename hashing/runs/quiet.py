"""Third-party console noise that says nothing about the run, filtered once per process.

:data:`NOISE` lists every dropped message, each by how it starts and where it comes from (a
logger, or Python's warnings), with why it says nothing here. Only these exact messages are
dropped: every other warning and log line still shows. Two of them are dropped in a resume only
(:func:`quiet_kept_logs`), where the folder they warn about is the run's own.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass

#: Lightning logs its info messages through these rank-zero loggers
LIGHTNING = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
)
#: faiss' loader logs which of its builds (AVX512, AVX2, generic) it tried and loaded
FAISS = ("faiss.loader",)


@dataclass(frozen=True)
class Noise:
    """One dropped message: a regular expression its start matches, the loggers that log it
    (empty: a Python warning) and whether it is dropped in a resume only."""

    start: str
    loggers: tuple[str, ...] = ()
    resume_only: bool = False


NOISE = (
    # Lightning's product tips (litlogger, litmodels)
    Noise(re.escape("💡 Tip:"), LIGHTNING),
    # the model summary callback we configure replaces Lightning's default, as intended
    Noise(re.escape("Trainer already configured with model summary callbacks"), LIGHTNING),
    # the last epoch line (callbacks/progress.py) says that max_epochs is reached
    Noise(re.escape("`Trainer.fit` stopped: `max_epochs="), LIGHTNING),
    # a deprecation inside Lightning's own pytree helper
    Noise(re.escape("`isinstance(treespec, LeafSpec)` is deprecated")),
    # a SLURM hint on machines that merely have `srun`
    Noise(re.escape("The `srun` command is available on your system but is not used")),
    # eval and ckpt_path= runs load a checkpoint into a trainer with other callbacks by design
    Noise(re.escape("Be aware that when using `ckpt_path`, callbacks used to create")),
    # ckpt_path=<other run> starts a new run in a new folder: its checkpoints go there
    Noise(re.escape("The dirpath has changed from ")),
    # TBH keeps a frozen backbone in eval mode on purpose (methods/tbh.py)
    Noise(r"Found \d+ module\(s\) in eval mode at the start of training"),
    # a long title in a small figure: the figure is still written, only less tightly laid out
    Noise(re.escape("Tight layout not applied")),
    # faiss falls back to its generic build by itself; which one loaded changes no result
    Noise(re.escape("Loading faiss"), FAISS),
    Noise(re.escape("Successfully loaded faiss"), FAISS),
    Noise(re.escape("Could not load library with "), FAISS),
    # a resume keeps the earlier CSV rows (runs/resume.py) and continues in its own folder
    Noise(r"Experiment logs directory .* exists and is not empty", resume_only=True),
    Noise(r"Checkpoint directory .* exists and is not empty", resume_only=True),
)


class DropMessages(logging.Filter):
    """Drops records whose message starts with a match of ``pattern``."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for a record whose message starts with a listed message."""
        return self.pattern.match(record.getMessage()) is None


def install(noise: tuple[Noise, ...]) -> None:
    """Filter ``noise`` from its loggers and from the warnings (idempotent)."""
    by_logger: dict[str, list[str]] = {}
    for item in noise:
        for name in item.loggers:
            by_logger.setdefault(name, []).append(item.start)
        if not item.loggers:
            warnings.filterwarnings("ignore", message=item.start)
    for name, starts in by_logger.items():
        logger = logging.getLogger(name)
        pattern = "|".join(f"(?:{start})" for start in starts)
        installed = [f.pattern.pattern for f in logger.filters if isinstance(f, DropMessages)]
        if pattern not in installed:
            logger.addFilter(DropMessages(pattern))


def quiet_libraries() -> None:
    """Drop the messages of :data:`NOISE` that say nothing in any run."""
    install(tuple(item for item in NOISE if not item.resume_only))


def quiet_kept_logs() -> None:
    """In a resume, drop also the warnings that the run's own folder holds logs and
    checkpoints: the resume keeps them."""
    install(NOISE)
