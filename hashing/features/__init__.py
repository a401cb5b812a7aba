"""Frozen-backbone feature files: encode a dataset once, train hashing methods on the file.

``python -m hashing.features data=<images> backbone=<network>`` writes a ``.npz`` that
``data=features`` reads (``train_x``/``train_y``/``test_x``/``test_y``, plus ``*_files`` and
``classes`` where the dataset has them), cached by content (:mod:`hashing.features.cache`).
The names below are imported on first use, so the command's ``--help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
EXPORTS = {
    "FEATURES_FORMAT": "hashing.features.cache",
    "feature_key": "hashing.features.cache",
    "features_path": "hashing.features.cache",
    "encode_pool": "hashing.features.extract",
    "extract_features": "hashing.features.extract",
    "write_features": "hashing.features.extract",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
