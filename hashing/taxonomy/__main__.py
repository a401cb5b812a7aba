"""``python -m hashing.taxonomy``: write a taxonomy file for ``data.hierarchy`` (docs/taxonomy.md).

    python -m hashing.taxonomy wordnet <wnids.txt | features.npz> <out.txt>
        [--data-noun /usr/share/wordnet/data.noun]

reads WordNet 3.0 offline (Debian's ``wordnet-base``) and writes one ``entity/.../<wnid>`` line
per class; ``check <file> [<classes>]`` reads a taxonomy and reports its size, depth and, with
a class list, whether every class is in it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hashing.runs.errors import readable_errors
from hashing.taxonomy.files import read_taxonomy, write_path_lines
from hashing.taxonomy.wordnet import (
    DEFAULT_DATA_NOUN,
    hypernym_paths,
    read_class_ids,
    read_data_noun,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hashing.taxonomy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    wordnet = commands.add_parser("wordnet", help="WordNet 3.0 paths of ImageNet class ids")
    wordnet.add_argument("classes", help="wnids.txt (one id a line) or an .npz with 'classes'")
    wordnet.add_argument("out", help="taxonomy file to write (text format)")
    wordnet.add_argument("--data-noun", default=str(DEFAULT_DATA_NOUN))
    check = commands.add_parser("check", help="read a taxonomy file and summarise it")
    check.add_argument("file")
    check.add_argument("classes", nargs="?", help="optional class list to look up")
    return parser.parse_args(argv)


@readable_errors()
def main(argv: Sequence[str] | None = None) -> None:
    """Run one sub-command; a bad file or class is a one-line error (exit 2)."""
    args = parse_args(argv)
    if args.command == "wordnet":
        classes = read_class_ids(args.classes)
        parents = read_data_noun(args.data_noun)
        paths = hypernym_paths(classes, parents)
        header = (
            f"WordNet 3.0 hypernym paths (first hypernym) of the {len(classes)} classes of "
            f"{args.classes}\nread from {args.data_noun}; one line per class: root/.../class"
        )
        write_path_lines(paths, args.out, header)
        depths = [len(p) for p in paths]
        print(f"wrote {args.out}: {len(paths)} classes, depth {min(depths)}-{max(depths)}")
        return
    taxonomy = read_taxonomy(args.file)
    print(f"{args.file}: {len(taxonomy.nodes)} nodes, root {taxonomy.root!r}")
    if args.classes:
        classes = read_class_ids(args.classes)
        taxonomy.require(classes)
        print(f"all {len(classes)} classes of {args.classes} are in it")


if __name__ == "__main__":
    main(sys.argv[1:])
