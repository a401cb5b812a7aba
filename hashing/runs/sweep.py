"""The end of a sweep: where its jobs are, which ones failed, and the command that compares them.

A sweep's failing job records ``failed.json`` and the sweep goes on (:mod:`hashing.runs.status`),
so the launcher sees every job return. :class:`SweepSummary`, a Hydra callback, reads the job
folders once the sweep has ended, prints the sweep folder, each job without metrics (its folder,
its own overrides and why) and the ``hashing.report`` command, and exits with status 1 when a job
has no metrics: a script or CI that runs the sweep sees the failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

#: exit status of a sweep in which a job has no metrics
FAILED_SWEEP_EXIT_CODE = 1


def own_overrides(overrides: Sequence[str], shared: set[str]) -> str:
    """A job's overrides that not every job of the sweep has (what tells it apart)."""
    return " ".join(item for item in overrides if item not in shared)


def sweep_summary(sweep_dir: Path) -> tuple[str, int]:
    """(text, number of jobs without metrics) for the sweep in ``sweep_dir``."""
    from hashing.report.runs import collect_runs  # the report's reading of run folders

    try:
        runs = collect_runs([sweep_dir])
    except ValueError:
        runs = []
    report = f"compare the jobs: python -m hashing.report {sweep_dir}"
    if not runs:
        return f"sweep: no job folder in {sweep_dir}", 0
    shared = set.intersection(*(set(run.overrides) for run in runs))
    missing = [run for run in runs if run.status != "ok"]
    lines = [f"sweep: {len(runs) - len(missing)} of {len(runs)} jobs finished, in {sweep_dir}"]
    if missing:
        lines.append(f"{len(missing)} job(s) without metrics:")
        for run in missing:
            detail = run.detail.splitlines()[0] if run.detail else ""
            setting = own_overrides(run.overrides, shared)
            lines.append(f"  {run.path} [{setting}] {run.status}: {detail}".rstrip())
    lines.append(report)
    return "\n".join(lines), len(missing)


class SweepSummary(Callback):
    """Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``) that ends a sweep with
    its summary, and with exit status 1 when a job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the summary; exit 1 when a job has no metrics."""
        text, missing = sweep_summary(Path(config.hydra.sweep.dir))
        print(text, flush=True)
        if missing:
            raise SystemExit(FAILED_SWEEP_EXIT_CODE)
