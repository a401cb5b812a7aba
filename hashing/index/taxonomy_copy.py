"""The class taxonomy an index folder carries when its run's data had one (docs/serving.md).

Export copies the run's ``data.hierarchy`` file into the folder byte for byte (``taxonomy.txt``
or ``taxonomy.json``, by the source's format) and lists it in the manifest, so the served index
can say how far in the taxonomy each result's class lies from the query's without the run's
data at hand. Folders without one load as before (no taxonomy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hashing.taxonomy import ClassRelations, read_taxonomy

TEXT = "taxonomy.txt"
JSON = "taxonomy.json"


@dataclass(frozen=True)
class IndexTaxonomy:
    """A taxonomy file's bytes, its name in the index folder, and the index's classes in it."""

    file_name: str
    data: bytes
    relations: ClassRelations

    @classmethod
    def from_file(cls, path: str | Path, class_names: Sequence[str]) -> IndexTaxonomy:
        """Read ``path`` (text or JSON, docs/taxonomy.md) and place ``class_names`` in it; a class
        absent from it is a UserError naming the class."""
        path = Path(path)
        relations = ClassRelations(read_taxonomy(path), class_names)
        name = JSON if path.suffix.lower() == ".json" else TEXT
        return cls(name, path.read_bytes(), relations)

    @property
    def class_names(self) -> list[str]:
        """Each class index's name."""
        return self.relations.class_names

    def distance(self, a: int, b: int) -> int:
        """Edges between classes ``a`` and ``b`` through their lowest common ancestor."""
        return int(self.relations.distance[a, b])

    def write(self, folder: Path) -> str:
        """Write the file into ``folder`` (a staged index folder); returns its name."""
        (folder / self.file_name).write_bytes(self.data)
        return self.file_name
