"""Taxonomy files: ``data.hierarchy=<file>`` (docs/taxonomy.md).

Two formats, told apart by the suffix:

* text (any suffix but ``.json``), written by hand: one line per class, its path of ancestors
  from the root down to the class, parts separated by ``/``::

      # comments and blank lines are ignored
      products/furniture/chair
      products/furniture/table
      products/kitchen/cup

  Lines may share prefixes; intermediate nodes need no line of their own. A name holds no
  ``/`` and no line break; spaces inside a name are kept, around it stripped.
* JSON (``.json``): ``{"classes": [{"path": [root, ..., class], ...}, ...]}``, the format of
  ``tinyimagenet200_wordnet.json`` (its ``wnid``/``name`` keys are read if present, ignored
  otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from hashing.runs.atomic import atomic_write
from hashing.runs.errors import UserError
from hashing.taxonomy.tree import Taxonomy

SEPARATOR = "/"


def parse_path_lines(text: str, source: str) -> list[list[str]]:
    """The root-to-class paths of a text taxonomy (see the module doc)."""
    paths = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split(SEPARATOR)]
        if any(not part for part in parts):
            raise UserError(
                f"{source} line {number} ({line!r}) has an empty name between '/'; write "
                f"root/.../class"
            )
        paths.append(parts)
    return paths


def parse_json(text: str, source: str) -> list[list[str]]:
    """The root-to-class paths of a JSON taxonomy (``classes[*].path``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{source} is not valid JSON ({error})") from error
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UserError(
            f'{source} needs a "classes" list of {{"path": [root, ..., class]}} entries'
        )
    paths = []
    for position, entry in enumerate(entries):
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
            raise UserError(
                f'{source} classes[{position}] has no "path" list of names (got {entry!r:.80})'
            )
        paths.append(path)
    return paths


def read_taxonomy(path: str | Path) -> Taxonomy:
    """The taxonomy in ``path`` (text or JSON, by suffix); a UserError names what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"data.hierarchy={path} does not exist; give a taxonomy file (docs/taxonomy.md)"
        )
    text = path.read_text(encoding="utf-8")
    source = f"taxonomy file {path}"
    parse = parse_json if path.suffix.lower() == ".json" else parse_path_lines
    return Taxonomy.from_paths(parse(text, source), source=source)


def format_path_lines(paths: Iterable[Sequence[str]], header: str = "") -> str:
    """Text-format content of ``paths`` (one line each), ``header`` lines as comments."""
    lines = [f"# {line}" for line in header.splitlines()]
    for path in paths:
        bad = [part for part in path if SEPARATOR in part or "\n" in part or not part.strip()]
        if bad:
            raise ValueError(f"taxonomy names may not contain '/' or line breaks: {bad[0]!r}")
        lines.append(SEPARATOR.join(path))
    return "\n".join(lines) + "\n"


def write_path_lines(paths: Iterable[Sequence[str]], target: str | Path, header: str = "") -> None:
    """Write ``paths`` as a text taxonomy, whole or not at all."""
    data = format_path_lines(paths, header).encode("utf-8")
    atomic_write(Path(target), lambda handle: handle.write(data))
