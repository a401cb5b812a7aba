"""WordNet 3.0 hypernym paths for ImageNet-derived classes, read offline from ``data.noun``.

ImageNet's class ids (``n01443537``) are WordNet 3.0 noun synset offsets with an ``n`` in
front. Debian's ``wordnet-base`` package (``apt-get install wordnet-base``) installs the
database as ``/usr/share/wordnet/data.noun``; each synset line there reads

    <offset> <lex_filenum> <ss_type> <w_cnt hex> [<word> <lex_id>]... <p_cnt> [<ptr> <offset>
    <pos> <source/target>]... | <gloss>

A class's path follows each synset's *first* hypernym pointer (``@``, or ``@i`` for an
instance) up to the root ``entity`` (n00001740): WordNet is a graph where a few synsets have
two hypernyms, a taxonomy file needs one tree. This is how ``tinyimagenet200_wordnet.json`` in
the shared data was made.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hashing.runs.errors import UserError

DEFAULT_DATA_NOUN = Path("/usr/share/wordnet/data.noun")
HYPERNYMS = ("@", "@i")


def wnid(offset: str) -> str:
    """``00001740`` -> ``n00001740``."""
    return f"n{int(offset):08d}"


def read_data_noun(path: str | Path) -> dict[str, str]:
    """The first hypernym of every noun synset in a ``data.noun`` file, by wnid."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"WordNet noun database {path} not found; install it (Debian/Ubuntu: apt-get "
            f"install wordnet-base) or pass its data.noun with --data-noun"
        )
    parents: dict[str, str] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("  ") or not line.strip():
                continue  # the licence header lines start with two spaces
            fields = line.split(" | ", 1)[0].split()
            node = wnid(fields[0])
            words = int(fields[3], 16)
            at = 4 + 2 * words
            pointers = int(fields[at])
            for p in range(pointers):
                symbol, target, pos = fields[at + 1 + 4 * p : at + 4 + 4 * p]
                if symbol in HYPERNYMS and pos == "n":
                    parents[node] = wnid(target)
                    break
    return parents


def hypernym_paths(classes: Iterable[str], parents: dict[str, str]) -> list[list[str]]:
    """``[entity, ..., class]`` for each wnid in ``classes``, in order."""
    known = set(parents) | set(parents.values())
    paths = []
    for name in classes:
        if name not in known:
            raise UserError(
                f"class {name!r} is not a WordNet 3.0 noun synset (expected an id like "
                f"n01443537 present in data.noun)"
            )
        path = [name]
        while path[-1] in parents:
            if len(path) > 100:
                raise UserError(f"WordNet hypernyms of {name!r} do not reach a root")
            path.append(parents[path[-1]])
        paths.append(path[::-1])
    return paths


def read_class_ids(path: str | Path) -> list[str]:
    """Class ids from a ``wnids.txt``-style file (one a line) or an ``.npz``'s ``classes``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class list {path} does not exist")
    if path.suffix.lower() == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            if "classes" not in data.files:
                raise UserError(f"{path} has no 'classes' array; it has {sorted(data.files)}")
            return [str(c) for c in data["classes"]]
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
