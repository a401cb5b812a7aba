"""Class taxonomies: a tree over class names, its files and the relations the metrics read."""

from hashing.taxonomy.files import read_taxonomy, write_path_lines
from hashing.taxonomy.tree import ClassRelations, Taxonomy

__all__ = ["ClassRelations", "Taxonomy", "read_taxonomy", "write_path_lines"]
