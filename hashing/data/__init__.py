"""Retrieval DataModules: seeded per-class protocol splits and (x, y, idx) loaders."""

from hashing.data.base import Pool, RetrievalDataModule, SplitDataset
from hashing.data.digits import DigitsDataModule
from hashing.data.features import FeaturesDataModule
from hashing.data.folder import FolderDataModule
from hashing.data.imagelist import ImageListDataModule
from hashing.data.splits import Protocol, carve_fraction, draw_per_class, make_split
from hashing.data.torchvision_datasets import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    MNISTDataModule,
)
from hashing.data.transforms import PRESETS, build_transform

__all__ = [
    "PRESETS",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DigitsDataModule",
    "FeaturesDataModule",
    "FolderDataModule",
    "ImageListDataModule",
    "MNISTDataModule",
    "Pool",
    "Protocol",
    "RetrievalDataModule",
    "SplitDataset",
    "build_transform",
    "carve_fraction",
    "draw_per_class",
    "make_split",
]
