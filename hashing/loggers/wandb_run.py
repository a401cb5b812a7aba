"""Weights & Biases logging for hashing runs: one wandb run per run folder, resumable.

- The run id is kept in ``<run folder>/wandb_run_id``: a resumed run (``resume=<run dir>``)
  continues the same wandb run (``resume="allow"``).
- group: the sweep, i.e. ``<date>/<time>`` of the sweep folder holding the job (a folder with
  Hydra's ``multirun.yaml``), or ``single`` for a single run; tags and job type come from the
  config (conf/logger/wandb.yaml). The resolved config is logged by the pipeline.
- At the end of a run :meth:`HashingWandbLogger.log_run_folder` puts ``metrics.json`` and
  ``center_stats.json`` (when the method wrote one) into the run summary, uploads them with the
  resolved config and the curve data (``curves/*.json``), and finishes the wandb run so that the
  next job of a sweep running in the same process starts its own.
- ``WANDB_MODE=offline`` (or ``offline: true``) writes everything under
  ``<run folder>/wandb/offline-run-*``; ``wandb sync <run folder>/wandb/offline-run-*`` uploads it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from hashing.runs.atomic import atomic_write
from hashing.runs.errors import UserError

log = logging.getLogger(__name__)

RUN_ID_FILE = "wandb_run_id"
SWEEP_MARKER = "multirun.yaml"
SINGLE_RUN_GROUP = "single"
#: run-folder files uploaded at the end of a run (besides curves/*.json)
RUN_FILES = ("config_resolved.yaml", "metrics.json", "center_stats.json")


def persistent_run_id(run_dir: Path) -> str:
    """The wandb run id kept in ``run_dir`` (created and saved on first use)."""
    path = run_dir / RUN_ID_FILE
    if path.is_file():
        run_id = path.read_text().strip()
        if run_id:
            return run_id
    from wandb.sdk.lib.runid import generate_id

    run_id = generate_id()
    atomic_write(path, lambda handle: handle.write(run_id.encode()))
    return run_id


def sweep_group(run_dir: Path) -> str:
    """``<date>/<time>`` of the sweep folder a job folder sits in; ``single`` otherwise."""
    sweep = run_dir.resolve().parent
    if (sweep / SWEEP_MARKER).is_file():
        return f"{sweep.parent.name}/{sweep.name}"
    return SINGLE_RUN_GROUP


def flat_numbers(node: Any, prefix: str) -> Iterator[tuple[str, float]]:
    """``prefix/key/...`` -> number for every numeric leaf of nested JSON (lists skipped)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from flat_numbers(value, f"{prefix}/{key}")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield prefix, float(node)


def finish_active_run(exit_code: int) -> None:
    """Finish the process's active wandb run, if any (a failed job's, before the next job)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.run.finish(exit_code=exit_code)


class HashingWandbLogger(WandbLogger):
    """WandbLogger with a persistent run id, the sweep as group, and run-folder publishing.

    Args:
        save_dir: the run folder (wandb files go to ``<save_dir>/wandb``).
        project: wandb project.
        name: display name of the run.
        group: wandb group; None = the sweep (see :func:`sweep_group`).
        tags: tags from the config (method, bits, dataset); ``extra_tags`` are appended.
        job_type: wandb job type.
        offline: write locally only (as ``WANDB_MODE=offline``).
        id: fixed run id; None = the one kept in the run folder.
        **kwargs: WandbLogger / ``wandb.init`` arguments.
    """

    def __init__(
        self,
        save_dir: str | Path,
        project: str = "hashing",
        name: str | None = None,
        group: str | None = None,
        tags: Sequence[Any] = (),
        extra_tags: Sequence[Any] = (),
        job_type: str = "train",
        offline: bool = False,
        id: str | None = None,
        **kwargs: Any,
    ) -> None:
        run_dir = Path(save_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        # only rank 0 logs (and owns the id file); DDP ranks started by Lightning know their
        # rank from the environment before the process group exists
        run_id = id or (persistent_run_id(run_dir) if rank_zero_only.rank == 0 else None)
        # a run left open in this process (a failed sweep job) would be reused by WandbLogger
        finish_active_run(exit_code=1)
        all_tags = list(dict.fromkeys(str(tag) for tag in (*tags, *extra_tags)))
        too_long = [tag for tag in all_tags if len(tag) > 64]
        if too_long:
            raise ValueError(f"wandb tags must be at most 64 characters: {too_long}")
        super().__init__(
            name=name,
            save_dir=str(run_dir),
            project=project,
            id=run_id,
            offline=offline,
            group=group or sweep_group(run_dir),
            tags=all_tags,
            job_type=job_type,
            **kwargs,
        )
        self.run_dir = run_dir
        # Lightning passes anonymous=None, which wandb warns about on every run
        self._wandb_init.pop("anonymous", None)

    @property
    def experiment(self) -> Any:
        """The wandb run; a missing login is reported with what to do instead of a traceback."""
        from wandb.errors import UsageError

        try:
            return super().experiment
        except UsageError as error:
            raise UserError(
                f"logger=wandb could not start a run ({error}): log in with `wandb login` (or "
                "set WANDB_API_KEY), or log offline with WANDB_MODE=offline (or "
                "logger.wandb.offline=true) and upload later with `wandb sync <run folder>/wandb`"
            ) from error

    def log_run_folder(self, output_dir: Path) -> None:
        """Summary, files and curve data of the finished run; then finish the wandb run."""
        run = self.experiment
        summary: dict[str, float] = {}
        metrics_path = output_dir / "metrics.json"
        if metrics_path.is_file():
            summary.update(json.loads(metrics_path.read_text()))
        stats_path = output_dir / "center_stats.json"
        if stats_path.is_file():
            summary.update(dict(flat_numbers(json.loads(stats_path.read_text()), "centers")))
        if summary:
            run.summary.update(summary)
        files = [output_dir / name for name in RUN_FILES]
        files += sorted((output_dir / "curves").glob("*.json"))
        # copied into the wandb run's files folder first: saving a file from outside it makes
        # wandb symlink it and warn, once a file, to "call wandb.save again"
        files_root = Path(run.dir)
        for path in files:
            if path.is_file():
                target = files_root / path.relative_to(output_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                run.save(str(target), base_path=str(files_root), policy="now")
        run.finish()
        log.info("wandb run %s finished (%s)", run.id, self.run_dir)
