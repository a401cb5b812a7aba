"""`python -m hashing.train [overrides]`: train, test and report one run (or a sweep with -m).

`python -m hashing.train resume=<run dir>` continues an interrupted run in its folder (see
:mod:`hashing.runs.resume`). In a sweep a failing job records ``failed.json`` in its folder and the
sweep goes on (``fail_fast=true`` stops it instead; a single run always stops).

The pipeline (Lightning, torch and the rest) is imported inside :func:`main`, so ``--help`` and
``--cfg job`` answer without importing it.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from hashing.runs.errors import readable_errors
from hashing.runs.hydra_errors import readable_hydra_errors
from hashing.runs.resume import expand_command_line, finished_run_from_command_line
from hashing.runs.status import record_failures


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@readable_errors()
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best validation mAP, the value sweepers optimise
    (None for a failed job)."""
    from hashing import pipeline
    from hashing.loggers.wandb_run import finish_active_run

    metrics = record_failures(pipeline.train, cfg)
    if metrics is None:
        finish_active_run(exit_code=1)
        return None
    return metrics.get("val/mAP_best")


if __name__ == "__main__":
    with readable_errors():
        # a refused override stops here, before Hydra writes into the run folder
        expanded = expand_command_line(sys.argv[1:])
        finished = finished_run_from_command_line(sys.argv[1:])
        if finished is not None:
            print(finished)
            sys.exit(0)
        sys.argv[1:] = expanded
    with readable_hydra_errors():
        main()
