"""Frozen-backbone feature files: encode a dataset once, train hashing methods on the file.

``python -m hashing.features data=<images> backbone=<network>`` writes a ``.npz`` that
``data=features`` reads (``train_x``/``train_y``/``test_x``/``test_y``, plus ``*_files`` and
``classes`` where the dataset has them), cached by content (:mod:`hashing.features.cache`).
"""

from hashing.features.cache import FEATURES_FORMAT, feature_key, features_path
from hashing.features.extract import encode_pool, extract_features, write_features

__all__ = [
    "FEATURES_FORMAT",
    "encode_pool",
    "extract_features",
    "feature_key",
    "features_path",
    "write_features",
]
