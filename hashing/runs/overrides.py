"""Command-line overrides read with Hydra's own parser (``key=value``, ``+key``, ``~key``, quotes).

``resume=<run dir>`` rewrites the command line before Hydra composes it, and ``hashing.report``
reads the overrides a run folder saved; both ask Hydra's grammar what an override sets instead of
splitting strings, so quoted values, ``+``/``++``/``~`` prefixes and ``group@package`` keys mean
what they mean to Hydra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException

from hashing.runs.errors import UserError

_PARSER = OverridesParser.create()


def parse_override(item: str) -> Override:
    """Hydra's parse of one override; a syntax error becomes a :class:`UserError`."""
    try:
        [override] = _PARSER.parse_overrides([item])
    except OverrideParseException as error:
        raise UserError(f"override {item!r} is not valid Hydra syntax: {error}") from error
    return override


def parse_overrides(items: Iterable[str]) -> list[Override]:
    """:func:`parse_override` of each item."""
    return [parse_override(item) for item in items]


def override_key(item: str) -> str:
    """The key or config group an override sets (``+a.b=1`` -> ``a.b``); a string Hydra cannot
    parse is its own key (a saved file is read, never rejected, by the report)."""
    try:
        return parse_override(item).key_or_group
    except UserError:
        return item


def override_value(items: Iterable[str], key: str) -> Any:
    """The value the last override of ``key`` sets, as Hydra parses it (``16`` -> 16, quotes
    removed); None when none sets it (or it sets null, or deletes the key)."""
    value = None
    for item in items:
        try:
            override = parse_override(item)
        except UserError:
            continue
        if override.key_or_group == key and not override.is_delete():
            value = override.value()
    return value


def split_command_line(args: Sequence[str]) -> tuple[bool, list[str]]:
    """(multirun?, the overrides) of a ``hashing.train`` command line, as Hydra's own argument
    parser splits it from its flags (``-m``, ``--cfg job``, ``-cn name``, ...)."""
    from hydra._internal.utils import get_args_parser

    parsed, _ = get_args_parser().parse_known_intermixed_args(list(args))
    return bool(parsed.multirun), [str(item) for item in parsed.overrides]
