"""Retrieval DataModules: seeded per-class protocol splits and (x, y, idx) loaders."""

from hashing.data.base import Pool, RetrievalDataModule, SplitDataset
from hashing.data.digits import DigitsDataModule
from hashing.data.splits import Protocol, carve_fraction, draw_per_class, make_split

__all__ = [
    "DigitsDataModule",
    "Pool",
    "Protocol",
    "RetrievalDataModule",
    "SplitDataset",
    "carve_fraction",
    "draw_per_class",
    "make_split",
]
