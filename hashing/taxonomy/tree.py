"""A class taxonomy (one rooted tree) and the two class relations read off it (docs/taxonomy.md).

* ``distance(a, b)``: edges on the path from ``a`` up to their lowest common ancestor and down
  to ``b`` (0 for the same class);
* ``wu_palmer(a, b)``: ``2 depth(lca) / (depth(a) + depth(b))`` with the root at depth 1
  (WordNet's convention, as NLTK's ``wup_similarity``): 1 for the same class, small for classes
  that meet only near the root.

A :class:`Taxonomy` is built from parent links; :meth:`Taxonomy.from_paths` takes one
root-to-node path per line of the file (see :mod:`hashing.taxonomy.files`). Every check a
hand-written file can fail (a node with two parents, a cycle, two roots, a class absent) is a
:class:`~hashing.runs.errors.UserError` naming the node.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from hashing.runs.errors import UserError


class Taxonomy:
    """A rooted tree over named nodes, given by each non-root node's parent.

    Args:
        parents: node -> its parent (the root has none and is not a key).
        nodes: every node (the root included); default: the keys and values of ``parents``.
        source: where the tree came from, for messages (a file path).
    """

    def __init__(
        self,
        parents: Mapping[str, str],
        nodes: Iterable[str] | None = None,
        source: str = "the taxonomy",
    ) -> None:
        self.source = source
        self.parents = dict(parents)
        names = set(nodes or ()) | set(self.parents) | set(self.parents.values())
        roots = sorted(name for name in names if name not in self.parents)
        self._check_acyclic()
        if len(roots) != 1:
            if not roots:
                raise UserError(f"{source} has no root (every node has a parent)")
            examples = ", ".join(repr(r) for r in roots[:5])
            raise UserError(
                f"{source} has {len(roots)} roots ({examples}); a taxonomy is one tree: give "
                f"every path the same first node (e.g. prefix each line with 'root/')"
            )
        self.root = roots[0]
        self.nodes = sorted(names)
        self._depth: dict[str, int] = {self.root: 1}
        for name in self.nodes:
            self.depth(name)

    def _check_acyclic(self) -> None:
        """Raise a UserError naming a node whose chain of parents comes back to itself."""
        settled: set[str] = set()
        for start in self.parents:
            chain: list[str] = []
            seen: set[str] = set()
            node: str | None = start
            while node is not None and node not in settled:
                if node in seen:
                    loop = [*chain[chain.index(node) :], node]
                    raise UserError(
                        f"{self.source} has a cycle through class {node!r}: "
                        f"{' -> '.join(loop)}; every node needs a path up to one root"
                    )
                seen.add(node)
                chain.append(node)
                node = self.parents.get(node)
            settled.update(chain)

    @classmethod
    def from_paths(cls, paths: Iterable[Sequence[str]], source: str = "the taxonomy") -> Taxonomy:
        """A tree from root-to-node paths (``[root, ..., node]``); paths may share prefixes.

        A node given two different parents (``a/x/c`` and ``b/y/c``) is refused by name.
        """
        parents: dict[str, str] = {}
        nodes: set[str] = set()
        for path in paths:
            path = [str(part) for part in path]
            if not path:
                continue
            if len(set(path)) != len(path):
                repeated = next(p for i, p in enumerate(path) if p in path[:i])
                raise UserError(
                    f"{source} has a cycle through class {repeated!r}: it appears twice on the "
                    f"path {'/'.join(path)}"
                )
            nodes.update(path)
            for parent, child in itertools.pairwise(path):
                known = parents.get(child)
                if known is not None and known != parent:
                    raise UserError(
                        f"{source} gives class {child!r} two parents ({known!r} and {parent!r}); "
                        f"a taxonomy is a tree: keep one path per class"
                    )
                parents[child] = parent
        if not nodes:
            raise UserError(f"{source} names no classes")
        return cls(parents, nodes, source)

    def depth(self, node: str) -> int:
        """Nodes on the path from the root to ``node`` (the root has depth 1)."""
        if node not in self._depth:
            chain = [node]
            while chain[-1] not in self._depth:
                chain.append(self.parents[chain[-1]])
            base = self._depth[chain[-1]]
            for offset, name in enumerate(reversed(chain[:-1]), start=1):
                self._depth[name] = base + offset
        return self._depth[node]

    def path(self, node: str) -> list[str]:
        """``[root, ..., node]``."""
        self.require([node])
        out = [node]
        while out[-1] != self.root:
            out.append(self.parents[out[-1]])
        return out[::-1]

    def require(self, classes: Iterable[str]) -> None:
        """Raise a UserError naming the classes that are not nodes of the tree."""
        present = set(self.nodes)
        missing = [str(c) for c in classes if str(c) not in present]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
            raise UserError(
                f"class {shown}{more} of the dataset is missing from {self.source}: add a line "
                f"with its path from the root (root/.../{missing[0]})"
            )

    def lca_depths(self, classes: Sequence[str]) -> np.ndarray:
        """(C, C) int64 depth of the lowest common ancestor of every pair of ``classes``."""
        self.require(classes)
        paths = [self.path(str(c)) for c in classes]
        size = len(paths)
        out = np.zeros((size, size), dtype=np.int64)
        for i in range(size):
            for j in range(i, size):
                a, b = paths[i], paths[j]
                shared = 0
                for x, y in zip(a, b, strict=False):
                    if x != y:
                        break
                    shared += 1
                out[i, j] = out[j, i] = shared
        return out

    def relations(self, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(distance, wu_palmer): two (C, C) matrices over ``classes`` in the given order.

        ``distance`` int64 edges through the lowest common ancestor; ``wu_palmer`` float64.
        """
        lca = self.lca_depths(classes)
        depths = np.array([self.depth(str(c)) for c in classes], dtype=np.int64)
        total = depths[:, None] + depths[None, :]
        distance = total - 2 * lca
        return distance, 2.0 * lca / total


class ClassRelations:
    """A dataset's classes (indices ``0..C-1``) placed in a taxonomy: the matrices the metrics
    and SHC's taxonomy similarity read, and the names they came from."""

    def __init__(self, taxonomy: Taxonomy, class_names: Sequence[str]) -> None:
        self.taxonomy = taxonomy
        self.class_names = [str(name) for name in class_names]
        self.distance, self.wu_palmer = taxonomy.relations(self.class_names)

    @property
    def num_classes(self) -> int:
        """Number of dataset classes."""
        return len(self.class_names)
