"""``python -m hashing.train resume=<run dir>``: continue a run in its own folder.

The command line is rewritten before Hydra composes (:func:`expand_command_line`): the run's
own overrides (``<run dir>/.hydra/overrides.yaml``, what Hydra saved when the run started, for a
sweep's job its share of the sweep) come first, then whatever else was given, then
``hydra.run.dir=<run dir>``, so the config is composed exactly as the first time and every path
(checkpoints, logs, wandb) points into the same folder. The pipeline then fits from
``<run dir>/checkpoints/last.ckpt`` (:func:`resume_checkpoint`): Lightning restores weights,
optimiser, scheduler, loop counters, the train loader's position
(:mod:`hashing.data.resumable`), callbacks' states (ModelCheckpoint's best-k tracking,
:class:`hashing.callbacks.rng_state.RNGState`), and the wandb logger reuses the run id kept in
the folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:  # Lightning is imported where it is used: the command line expands without it
    from pytorch_lightning.loggers import Logger

from hashing.runs.checkpoint_file import read_checkpoint
from hashing.runs.errors import UserError
from hashing.runs.quiet import quiet_kept_logs
from hashing.runs.status import FAILED, INTERRUPTED, METRICS, RESOLVED_CONFIG

log = logging.getLogger(__name__)

CHECKPOINT = Path("checkpoints") / "last.ckpt"
OVERRIDES = Path(".hydra") / "overrides.yaml"
#: keys that legitimately differ between the first attempt and a resume
VOLATILE_KEYS = ("resume", "ckpt_path")


def check_run_dir(run_dir: Path) -> None:
    """ValueError unless ``run_dir`` is a run folder written by ``hashing.train``."""
    if not run_dir.is_dir():
        raise UserError(f"resume={str(run_dir)!r} is not a folder: give a run folder to resume")
    if not (run_dir / RESOLVED_CONFIG).is_file():
        raise UserError(
            f"resume={str(run_dir)!r} holds no {RESOLVED_CONFIG}: it is not a run folder of "
            "hashing.train (a sweep folder holds one run folder per job: 0/, 1/, ...)"
        )


def override_key(override: str) -> str:
    """``+a.b=1`` -> ``a.b``; the key an override sets."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(overrides: Iterable[str], key: str) -> str | None:
    """The value a ``key=value`` override sets (last one wins; None when none sets it)."""
    value = None
    for item in overrides:
        if "=" in item and override_key(item) == key:
            value = item.split("=", 1)[1]
    return value


def run_overrides(run_dir: Path) -> list[str]:
    """The overrides the run was started with (resume/ckpt_path dropped)."""
    path = run_dir / OVERRIDES
    if not path.is_file():
        raise UserError(
            f"{path} does not exist: the run's command line is unknown (it was not started by "
            f"`python -m hashing.train`); compose its config yourself with hydra.run.dir={run_dir} "
            f"and resume={run_dir}"
        )
    stored = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(stored, list):
        raise UserError(f"{path} is not a list of overrides")
    return [str(item) for item in stored if override_key(str(item)) not in VOLATILE_KEYS]


def quoted(value: str) -> str:
    """A Hydra override value that keeps spaces and special characters."""
    if "'" in value:
        raise UserError(f"path {value!r} contains a quote (') that Hydra cannot take")
    return f"'{value}'"


def resume_arguments(args: Sequence[str]) -> list[str]:
    """The ``resume=<run dir>`` arguments of a command line."""
    return [arg for arg in args if arg.startswith(("resume=", "+resume="))]


def resume_dir(given: Sequence[str]) -> Path:
    """The run folder the last ``resume=`` argument names, checked to be one."""
    run_dir = Path(given[-1].split("=", 1)[1].strip("'\""))
    check_run_dir(run_dir)
    return run_dir


def expand_command_line(args: Sequence[str]) -> list[str]:
    """Expand ``resume=<run dir>`` into the run's overrides plus ``hydra.run.dir=<run dir>``.

    Other arguments are kept and win over the stored overrides of the same key. Without
    ``resume=`` the arguments come back unchanged.
    """
    given = resume_arguments(args)
    if not given:
        return list(args)
    if any(arg in ("-m", "--multirun") for arg in args):
        raise UserError("resume= continues one run: resume a sweep's jobs one at a time")
    run_dir = resume_dir(given)
    extra = [arg for arg in args if arg not in given]
    extra_keys = {override_key(arg) for arg in extra if "=" in arg and not arg.startswith("-")}
    stored = [item for item in run_overrides(run_dir) if override_key(item) not in extra_keys]
    expanded = [*stored, *extra, f"resume={quoted(str(run_dir))}"]
    if "hydra.run.dir" not in extra_keys:
        expanded.append(f"hydra.run.dir={quoted(str(run_dir))}")
    return expanded


def resume_checkpoint(cfg: DictConfig) -> tuple[str | None, int | None]:
    """The checkpoint ``fit`` starts from and, for ``resume``, the epochs it holds.

    For ``resume`` the run's ``last.ckpt``, read once here (a check, and its epoch count for
    :func:`finished_run`); else ``(cfg.ckpt_path, None)`` (None = from scratch). Checks that a
    resumed run writes into its folder.
    """
    resume = cfg.get("resume")
    if resume is None:
        return cfg.get("ckpt_path"), None
    if cfg.get("ckpt_path") is not None:
        raise UserError(
            f"resume={resume!r} and ckpt_path={cfg.ckpt_path!r} both given: resume continues a "
            "run in its folder, ckpt_path starts a new run from a checkpoint; choose one"
        )
    run_dir = Path(resume)
    check_run_dir(run_dir)
    output_dir = Path(cfg.paths.output_dir)
    if output_dir.resolve() != run_dir.resolve():
        raise UserError(
            f"resume={resume!r} but this run writes to {output_dir}: a resumed run continues in "
            f"its own folder; use `python -m hashing.train resume={resume}` (which sets "
            "hydra.run.dir) or set hydra.run.dir to the run folder"
        )
    checkpoint = run_dir / CHECKPOINT
    if not checkpoint.is_file():
        raise UserError(
            f"{checkpoint} does not exist: the run stopped before its first checkpoint, so "
            "there is nothing to resume; start it again"
        )
    # a truncated one fails here, before any data is built
    done = epochs_trained(read_checkpoint(checkpoint, "resume", mmap=True))
    for key, (before, now) in config_changes(cfg, run_dir).items():
        log.warning("resume: %s was %r, is now %r", key, before, now)
    return str(checkpoint), done


def epochs_trained(checkpoint: Mapping[str, Any]) -> int:
    """Complete epochs in a Lightning checkpoint (an epoch stopped mid-way does not count)."""
    fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
    at_epoch_end = bool(fit_loop.get("epoch_loop.batch_progress", {}).get("is_last_batch"))
    return int(checkpoint.get("epoch", 0)) + int(at_epoch_end)


def finished_run(run_dir: Path, max_epochs: int | None, done: int | None = None) -> str | None:
    """A message when ``run_dir`` is a finished run that ``max_epochs`` would not extend, else
    None (resume it).

    Finished: it was tested (``metrics.json``) and holds no interruption or failure marker.
    Resuming it would re-run its end and rewrite its files, so it is left alone, unless a
    larger ``trainer.max_epochs`` than the epochs in ``last.ckpt`` (``done``, read from the
    file only when not given and the markers say finished) asks to train it longer.
    """
    if not (run_dir / METRICS).is_file() or any(
        (run_dir / name).exists() for name in (INTERRUPTED, FAILED)
    ):
        return None
    if done is None:
        done = epochs_trained(read_checkpoint(run_dir / CHECKPOINT, "resume", mmap=True))
    if max_epochs is not None and max_epochs > done:
        return None
    return (
        f"{run_dir} is a finished run ({done} epochs, tested: {run_dir / METRICS}); nothing "
        f"to resume and nothing was changed. To train it longer, pass a larger "
        f"trainer.max_epochs: python -m hashing.train resume={run_dir} "
        f"trainer.max_epochs={done + 10}"
    )


def resumed_max_epochs(run_dir: Path, args: Sequence[str]) -> int | None:
    """``trainer.max_epochs`` a resume would run with: the last one in ``args``, else the run's.

    Only a literal ``trainer.max_epochs=`` override is seen: one that changes it another way (a
    config group such as ``trainer=...`` or ``experiment=...``) is not, and the run's saved value
    is used.
    """
    value = override_value(args, "trainer.max_epochs")
    if value is None:
        saved = OmegaConf.load(run_dir / RESOLVED_CONFIG)
        value = OmegaConf.select(saved, "trainer.max_epochs", default=None)
    try:
        return None if value is None or str(value) == "null" else int(value)
    except ValueError as error:
        raise UserError(
            f"trainer.max_epochs={value!r} is invalid: use a positive integer"
        ) from error


def finished_run_from_command_line(args: Sequence[str]) -> str | None:
    """:func:`finished_run` for ``resume=<run dir>`` on the command line, before Hydra writes
    anything into the folder; None without ``resume=`` or when the run is to be continued."""
    given = resume_arguments(args)
    if not given:
        return None
    run_dir = resume_dir(given)
    if not (run_dir / CHECKPOINT).is_file():
        return None
    return finished_run(run_dir, resumed_max_epochs(run_dir, args))


def flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) pairs of a nested mapping/list."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from flatten(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from flatten(value, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), node


def config_changes(cfg: DictConfig, run_dir: Path) -> dict[str, tuple[Any, Any]]:
    """Keys whose resolved value differs from the run's saved ``config_resolved.yaml``
    (paths compared after mapping the old run folder onto the new spelling of it)."""
    saved = OmegaConf.to_container(OmegaConf.load(run_dir / RESOLVED_CONFIG))
    current = OmegaConf.to_container(cfg, resolve=True)
    old_dir = str(saved.get("paths", {}).get("output_dir", "")) if isinstance(saved, dict) else ""
    new_dir = str(cfg.paths.output_dir)

    def normalise(value: Any) -> Any:
        if isinstance(value, str) and old_dir and value.startswith(old_dir):
            return new_dir + value[len(old_dir) :]
        return value

    before = {key: normalise(value) for key, value in flatten(saved)}
    now = dict(flatten(current))
    changes = {}
    for key in sorted(set(before) | set(now)):
        if key.split(".", 1)[0] in VOLATILE_KEYS:
            continue
        if before.get(key) != now.get(key):
            changes[key] = (before.get(key), now.get(key))
    return changes


def keep_csv_history(loggers: Sequence[Logger]) -> None:
    """Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts: keep the
    first attempt's rows by renaming the file to ``metrics.part<N>.csv`` beside it (and drops
    its warning that previous log files will be deleted: they are kept)."""
    from pytorch_lightning.loggers import CSVLogger

    quiet_kept_logs()
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        current = Path(logger.log_dir) / "metrics.csv"
        if not current.is_file():
            continue
        part = 1
        while (current.parent / f"metrics.part{part}.csv").exists():
            part += 1
        current.rename(current.parent / f"metrics.part{part}.csv")
