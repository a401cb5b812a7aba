"""Content keys of feature files: a file is reused only for identical inputs.

The key covers everything the features depend on: the dataset (DataModule class, name, pool
size, a digest of the labels, of the items themselves and of the dataset's own partitions), the
backbone (architecture, weights digest, input size, preprocessing) and the eval transform.
Change any of them and the file name changes, so a stale file is never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from hashing.data.base import Pool, RetrievalDataModule
from hashing.data.images import ImageFileSource, file_list_key
from hashing.digests import (
    arrays_digest,
    cache_key,
    labels_digest,
    state_dict_digest,
    tensor_digest,
)

#: bump when the file's layout or the encoding loop changes what a file holds
FEATURES_FORMAT = 1


def source_digest(source: Any) -> str:
    """Digest of a pool's items: tensor bytes, the file list (paths, sizes, mtimes) or, for
    any other source, its items read once."""
    if isinstance(source, torch.Tensor):
        return tensor_digest(source)
    if isinstance(source, ImageFileSource):
        return file_list_key(source.paths, source.image_size, source.mode)
    return arrays_digest(source[index] for index in range(len(source)))


def backbone_identity(backbone: nn.Module) -> dict[str, Any]:
    """The backbone's own identity if it has one, else its class and a digest of its weights."""
    if hasattr(backbone, "identity"):
        return dict(backbone.identity())
    return {"class": type(backbone).__qualname__, "weights_sha256": state_dict_digest(backbone)}


def feature_key(
    datamodule: RetrievalDataModule, pool: Pool, backbone: nn.Module, dtype: str
) -> dict[str, Any]:
    """Everything a features file depends on, as a JSON-able mapping."""
    return {
        "format": FEATURES_FORMAT,
        "dataset": {
            "class": type(datamodule).__qualname__,
            "name": datamodule.name,
            "size": len(pool.labels),
            "labels_sha1": labels_digest(pool.labels),
            "items_digest": source_digest(pool.source),
            "groups": {name: len(members) for name, members in sorted(pool.groups.items())},
        },
        "transform": datamodule.transform,
        "backbone": backbone_identity(backbone),
        "dtype": dtype,
    }


def key_digest(key: dict[str, Any]) -> str:
    """Short :func:`~hashing.digests.cache_key` of a key (part of the file name)."""
    return cache_key(key)[:16]


def features_path(directory: str | Path, key: dict[str, Any]) -> Path:
    """``<directory>/<dataset>__<model>__<digest>.npz`` for a key."""
    model = key["backbone"].get("model") or key["backbone"].get("class", "backbone")
    size = key["backbone"].get("image_size")
    model = f"{model}_{size}" if size else model
    return Path(directory) / f"{key['dataset']['name']}__{model}__{key_digest(key)}.npz"
