"""Checks of a composed run config that must fail before any data is loaded or trained."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from hashing.runs.checkpoint_file import read_checkpoint
from hashing.runs.errors import UserError

TEST_CKPT_CHOICES = ("best", "last", None)


def check_run_config(cfg: DictConfig) -> None:
    """Raise UserError naming the key and the allowed values for a bad top-level value."""
    bits = cfg.get("bits")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits <= 0:
        raise UserError(
            f"bits={bits!r} is invalid: bits must be a positive integer, e.g. 16, 32, 64"
        )
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"seed={seed!r} is invalid: seed must be a non-negative integer")
    test_ckpt = cfg.get("test_ckpt", "best")
    if test_ckpt not in TEST_CKPT_CHOICES:
        raise UserError(f"test_ckpt={test_ckpt!r} is invalid: allowed values are best, last, null")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None:
        read_checkpoint(Path(ckpt_path), "ckpt_path", mmap=True)
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and max_epochs < 1:
        raise UserError(f"trainer.max_epochs={max_epochs} is invalid: use a positive integer or -1")


def check_bits_for_classes(bits: int, num_classes: int) -> None:
    """Every hashing method needs at least as many distinct codes as classes."""
    if num_classes > 2**bits:
        smallest = max(1, (num_classes - 1).bit_length())
        raise UserError(
            f"bits={bits} gives only {2**bits} distinct codes for {num_classes} classes: "
            f"use bits >= {smallest}"
        )
