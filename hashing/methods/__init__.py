"""Hashing methods as LightningModules on one shared base."""

from hashing.methods.base import HashingModule, binarize

__all__ = ["HashingModule", "binarize"]
