"""Input errors that Hydra meets before the job runs, answered as the project's own are.

* An override of a key that does not exist (``trainer.max_epochz=3``): Hydra answers "Could not
  override 'trainer.max_epochz'. To append to your config use +trainer.max_epochz=3", advice
  that then fails later (the Trainer gets an argument it does not take). The message names the
  closest existing key (with its current value) and the override to write instead.
* A run folder that cannot be made or written (full, read-only, forbidden): Hydra shows a
  traceback; the message is the project's storage paragraph naming the folder
  (:func:`~hashing.runs.errors.storage_error`).

:func:`readable_hydra_errors` wraps an entry point's ``main()`` and the two Hydra steps that
meet these errors (applying the overrides, starting the job): one paragraph, exit status 2 as
for every other input error. Nothing changes when all is well.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from hydra.errors import CompactHydraException, ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from hashing.runs.errors import USAGE_EXIT_CODE, storage_error

#: how many keys of the parent node a message lists when no key is close (a data node lists
#: the 13 keys every dataset shares, conf/data/base/loader.yaml, before its own)
LISTED_KEYS = 16


def dotted_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Every key of a config as a dotted path, nodes and leaves alike (lists not entered)."""
    if not isinstance(node, DictConfig):
        return
    for key in node:
        path = f"{prefix}{key}"
        yield path
        child = node._get_node(key)  # the node itself: no interpolation is resolved
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            yield from dotted_keys(child, f"{path}.")


def unknown_key_message(key: str, value_text: str, cfg: DictConfig) -> str:
    """The paragraph for an override of ``key`` that ``cfg`` does not have."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
    if isinstance(node, DictConfig):  # a misspelt last part: compare it with its siblings
        siblings = [str(k) for k in node]
        close = [
            f"{parent}.{k}" if parent else k for k in difflib.get_close_matches(name, siblings)
        ]
    else:  # a misspelt parent: compare whole keys of the same depth
        siblings = []
        depth = key.count(".")
        close = difflib.get_close_matches(
            key, [k for k in dotted_keys(cfg) if k.count(".") == depth]
        )
    if not isinstance(node, DictConfig):
        where = f"the config has no {parent!r}"
    else:
        where = f"{parent} has no key {name!r}" if parent else f"the config has no key {name!r}"
    if close:
        best = close[0]
        current = OmegaConf.select(cfg, best, throw_on_resolution_failure=False)
        shown = "" if isinstance(current, DictConfig) else f" (now {current!r})"
        advice = f"did you mean {best}{shown}? Write {best}={value_text}"
    elif siblings:
        listed = ", ".join(siblings[:LISTED_KEYS])
        advice = f"its keys are {listed}{', ...' if len(siblings) > LISTED_KEYS else ''}"
    else:
        advice = "check the spelling"
    return (
        f"{key}={value_text}: {where}; {advice} (a leading '+' adds a new key: only for one "
        f"that the code reading {parent or 'the config'} takes but the config does not list)"
    )


class HydraErrors:
    """Context manager: while active, Hydra's input errors are answered as the module docstring
    says and the command exits with status 2."""

    def __init__(self) -> None:
        self.hinted = False
        self._apply_overrides: Any = None
        self._run_job: Any = None

    def __enter__(self) -> HydraErrors:
        from hydra._internal import hydra as hydra_app
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        self._apply_overrides = ConfigLoaderImpl.__dict__.get("_apply_overrides_to_config")
        if isinstance(self._apply_overrides, staticmethod):  # Hydra 1.3's layout; else as is
            ConfigLoaderImpl._apply_overrides_to_config = staticmethod(self._apply)  # type: ignore[method-assign]
        self._run_job = getattr(hydra_app, "run_job", None)
        if self._run_job is not None:
            hydra_app.run_job = self._start_job  # type: ignore[assignment]
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        from hydra._internal import hydra as hydra_app
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        if isinstance(self._apply_overrides, staticmethod):
            ConfigLoaderImpl._apply_overrides_to_config = self._apply_overrides  # type: ignore[method-assign]
        if self._run_job is not None:
            hydra_app.run_job = self._run_job  # type: ignore[assignment]
        if self.hinted and isinstance(error, SystemExit) and error.code == 1:
            raise SystemExit(USAGE_EXIT_CODE) from None
        return False

    def _apply(self, overrides: list[Any], cfg: DictConfig) -> None:
        try:
            self._apply_overrides.__func__(overrides, cfg)
        except ConfigCompositionException as error:
            if not isinstance(error.__cause__, ConfigAttributeError | ConfigKeyError):
                raise
            failed = next(
                (o for o in overrides if f"'{o.key_or_group}'" in str(error)),
                None,
            )
            if failed is None or failed.is_add() or failed.is_force_add():
                raise
            self.hinted = True
            value_text = (failed.input_line or "").split("=", 1)[-1]
            message = unknown_key_message(failed.key_or_group, value_text, cfg)
            raise ConfigCompositionException(f"error: {message}") from None

    def _start_job(self, *args: Any, **kwargs: Any) -> Any:
        """Hydra's ``run_job``: its own I/O (making the run folder, saving ``.hydra/``) raises;
        the task's errors come back inside its result."""
        try:
            return self._run_job(*args, **kwargs)
        except OSError as error:
            config = kwargs.get("config")
            folder = OmegaConf.select(config, "hydra.run.dir") if config is not None else None
            storage = storage_error(error, folder)
            if storage is None:
                raise
            self.hinted = True
            raise CompactHydraException(f"error: {storage}") from None


def readable_hydra_errors() -> HydraErrors:
    """Wrap an entry point's ``main()``: ``with readable_hydra_errors(): main()``."""
    return HydraErrors()
