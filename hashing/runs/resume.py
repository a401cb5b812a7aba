"""``python -m hashing.train resume=<run dir>``: continue a run in its own folder.

The command line is rewritten before Hydra composes (:func:`expand_command_line`): the run's
own overrides (``<run dir>/.hydra/overrides.yaml``, what Hydra saved when the run started, for a
sweep's job its share of the sweep) come first, then whatever else was given, then
``hydra.run.dir=<run dir>``, so the config is composed exactly as the first time and every path
(checkpoints, logs, wandb) points into the same folder. An override that would make it another
run (a key outside :data:`RESUMABLE_CHANGES` set to another value than the run's) is refused
there, before Hydra writes anything into the folder. The pipeline then fits from
``<run dir>/checkpoints/last.ckpt`` (:func:`resume_checkpoint`): Lightning restores weights,
optimiser, scheduler, loop counters, the train loader's position
(:mod:`hashing.data.resumable`), callbacks' states (ModelCheckpoint's best-k tracking,
:class:`hashing.callbacks.rng_state.RNGState`), and the wandb logger reuses the run id kept in
the folder. ``ckpt_path=`` (a new run from a checkpoint) is refused when the checkpoint already
holds ``trainer.max_epochs`` epochs. Users read docs/resume.md.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

if TYPE_CHECKING:  # Lightning is imported where it is used: the command line expands without it
    from hydra.core.override_parser.types import Override
    from pytorch_lightning.loggers import Logger

from hashing.runs.checkpoint_file import read_checkpoint
from hashing.runs.errors import UserError
from hashing.runs.overrides import (
    override_key,
    override_value,
    parse_overrides,
    split_command_line,
)
from hashing.runs.quiet import quiet_kept_logs
from hashing.runs.status import FAILED, INTERRUPTED, METRICS, RESOLVED_CONFIG

log = logging.getLogger(__name__)

CHECKPOINT = Path("checkpoints") / "last.ckpt"
OVERRIDES = Path(".hydra") / "overrides.yaml"
HYDRA_CONFIG = Path(".hydra") / "hydra.yaml"
#: keys that legitimately differ between the first attempt and a resume
VOLATILE_KEYS = ("resume", "ckpt_path")
#: what a resume may change (a key, or everything under it): how long the run trains, where
#: files and caches live, what is logged and shown, how evaluation batches are loaded. Every
#: other key (model, method, bits, data and its split, seed, optimiser, callbacks) would make
#: the resumed run another run than the one its folder holds: refused (docs/resume.md).
RESUMABLE_CHANGES = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "callbacks.progress_bar",
    "logger",
    "paths",
    "data.num_workers",
    "data.pin_memory",
    "data.eval_batch_size",
    "test",
    "test_ckpt",
    "tags",
    "fail_fast",
    "hydra",
)
#: the value of a key that the run's saved config does not have
NOT_SET = "(not set)"


def check_run_dir(run_dir: Path) -> None:
    """ValueError unless ``run_dir`` is a run folder written by ``hashing.train``."""
    if not run_dir.is_dir():
        raise UserError(f"resume={str(run_dir)!r} is not a folder: give a run folder to resume")
    if not (run_dir / RESOLVED_CONFIG).is_file():
        raise UserError(
            f"resume={str(run_dir)!r} holds no {RESOLVED_CONFIG}: it is not a run folder of "
            "hashing.train (a sweep folder holds one run folder per job: 0/, 1/, ...)"
        )


def may_change_on_resume(key: str) -> bool:
    """True when a resume may set ``key`` (or config group ``key``) to another value."""
    return key in VOLATILE_KEYS or any(
        key == safe or key.startswith((f"{safe}.", f"{safe}/")) for safe in RESUMABLE_CHANGES
    )


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


def resume_dir(overrides: Sequence[str]) -> Path | None:
    """The run folder the last ``resume=`` override names (checked to be one), or None."""
    value = override_value(overrides, "resume")
    if value is None:
        return None
    run_dir = Path(str(value))
    check_run_dir(run_dir)
    return run_dir


def expand_command_line(args: Sequence[str]) -> list[str]:
    """Expand ``resume=<run dir>`` into the run's overrides plus ``hydra.run.dir=<run dir>``.

    Other overrides are kept and win over the stored overrides of the same key; one that would
    change the run (:func:`check_resume_overrides`) is refused before anything is written.
    Without ``resume=`` the arguments come back unchanged.
    """
    multirun, overrides = split_command_line(args)
    run_dir = resume_dir(overrides)
    if run_dir is None:
        return list(args)
    if multirun:
        raise UserError("resume= continues one run: resume a sweep's jobs one at a time")
    extra = [
        override
        for override in parse_overrides(overrides)
        if override.key_or_group not in VOLATILE_KEYS
    ]
    stored = run_overrides(run_dir)
    check_resume_overrides(run_dir, stored, extra)
    extra_keys = {override.key_or_group for override in extra}
    kept = [item for item in stored if override_key(item) not in extra_keys]
    given = [arg for arg in args if override_key(arg) != "resume"]
    expanded = [*kept, *given, f"resume={quoted(str(run_dir))}"]
    if "hydra.run.dir" not in extra_keys:
        expanded.append(f"hydra.run.dir={quoted(str(run_dir))}")
    return expanded


def saved_value(run_dir: Path, stored: Sequence[str], key: str) -> Any:
    """What the run had for ``key``: its own override, else its config group choice (Hydra's
    ``.hydra/hydra.yaml``), else the value in its ``config_resolved.yaml`` (:data:`NOT_SET`
    where it has none)."""
    if any(override_key(item) == key for item in stored):
        return override_value(stored, key)
    hydra_file = run_dir / HYDRA_CONFIG
    if hydra_file.is_file():
        choices = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.choices")
        if choices is not None and key in choices:
            return choices[key]
    saved = OmegaConf.load(run_dir / RESOLVED_CONFIG)
    value = OmegaConf.select(saved, key, default=NOT_SET)
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def refusal(run_dir: Path, key: str, before: Any, now: Any) -> UserError:
    """The message that refuses changing ``key`` from ``before`` to ``now`` on a resume."""
    return UserError(
        f"resume={run_dir} would change {key} from {before!r} to {now!r}: a resume continues "
        f"the same training in the same folder, so it may change only "
        f"{', '.join(RESUMABLE_CHANGES)} (docs/resume.md). Nothing was written. To train with "
        f"{key}={now}, start a new run without resume= (it gets its own folder)."
    )


def check_resume_overrides(run_dir: Path, stored: Sequence[str], extra: Sequence[Override]) -> None:
    """UserError for the first override in ``extra`` that changes a key a resume may not
    change (:data:`RESUMABLE_CHANGES`); one that repeats the run's own value is accepted."""
    for override in extra:
        key = override.key_or_group
        if may_change_on_resume(key):
            continue
        now = NOT_SET if override.is_delete() else override.value()
        before = saved_value(run_dir, stored, key)
        if before != now:
            raise refusal(run_dir, key, before, now)


def resume_checkpoint(cfg: DictConfig) -> tuple[str | None, int | None]:
    """The checkpoint ``fit`` starts from and, for ``resume``, the epochs it holds.

    For ``resume`` the run's ``last.ckpt``, read once here (a check, and its epoch count for
    :func:`finished_run`); else ``(cfg.ckpt_path, None)`` (None = from scratch). Checks that a
    resumed run writes into its folder.
    """
    resume = cfg.get("resume")
    if resume is None:
        if cfg.get("ckpt_path") is not None and cfg.get("train", True):
            check_epochs_left(str(cfg.ckpt_path), cfg.trainer.get("max_epochs"))
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
    check_config_changes(cfg, run_dir)
    return str(checkpoint), done


def check_config_changes(cfg: DictConfig, run_dir: Path) -> None:
    """UserError when the composed config changes a value of the run's saved config that a
    resume may not change, counting only changes that do not follow from changed
    :data:`RESUMABLE_CHANGES` keys (a cosine schedule's ``T_max: ${trainer.max_epochs}`` follows
    a larger ``trainer.max_epochs``); the command line was checked already, this covers runs
    composed in-process. Accepted changes are logged."""
    changes = config_changes(cfg, run_dir)
    probe = copy.deepcopy(cfg)
    with open_dict(probe):
        for key, (before, _) in changes.items():
            if may_change_on_resume(key) and key != "paths.output_dir":
                OmegaConf.update(probe, key, before)
    for key, (before, now) in config_changes(probe, run_dir).items():
        if before is not None and now is not None and not may_change_on_resume(key):
            raise refusal(run_dir, key, before, now)
    for key, (before, now) in changes.items():
        log.warning("resume: %s was %r, is now %r", key, before, now)


def check_epochs_left(ckpt_path: str, max_epochs: int | None) -> None:
    """UserError when a ``ckpt_path`` checkpoint already holds ``trainer.max_epochs`` epochs:
    Lightning would train none and the run would only test that checkpoint."""
    if max_epochs is None or int(max_epochs) < 0:
        return
    done = epochs_trained(read_checkpoint(ckpt_path, "ckpt_path", mmap=True))
    if done < int(max_epochs):
        return
    path = Path(ckpt_path)
    run_dir = path.parent.parent if path.parent.name == CHECKPOINT.parent.name else None
    resume_hint = f"resume={run_dir}" if run_dir is not None else "resume=<its run folder>"
    raise UserError(
        f"ckpt_path={ckpt_path} already holds {done} trained epoch{'' if done == 1 else 's'} "
        f"and trainer.max_epochs="
        f"{max_epochs}: this run would train 0 epochs and only test that checkpoint. To train "
        f"on from it, raise trainer.max_epochs (epochs count on from the checkpoint's, e.g. "
        f"trainer.max_epochs={done + 10}); to continue that run in its own folder, use "
        f"{resume_hint}; to only evaluate it, use python -m hashing.eval ckpt_path={ckpt_path}"
    )


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


def resumed_max_epochs(run_dir: Path, overrides: Sequence[str]) -> int | None:
    """``trainer.max_epochs`` a resume would run with: the last one in ``overrides``, else the
    run's.

    Only a ``trainer.max_epochs=`` override is seen: one that changes it another way (a config
    group such as ``trainer=...`` or ``experiment=...``) is not, and the run's saved value is used.
    """
    value = override_value(overrides, "trainer.max_epochs")
    if value is None:
        saved = OmegaConf.load(run_dir / RESOLVED_CONFIG)
        value = OmegaConf.select(saved, "trainer.max_epochs", default=None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"trainer.max_epochs={value!r} is invalid: use a positive integer")
    return value


def finished_run_from_command_line(args: Sequence[str]) -> str | None:
    """:func:`finished_run` for ``resume=<run dir>`` on the command line, before Hydra writes
    anything into the folder; None without ``resume=`` or when the run is to be continued."""
    _, overrides = split_command_line(args)
    run_dir = resume_dir(overrides)
    if run_dir is None or not (run_dir / CHECKPOINT).is_file():
        return None
    return finished_run(run_dir, resumed_max_epochs(run_dir, overrides))


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
