"""Content keys of feature files: a file is reused only for identical inputs.

The key covers everything the features depend on: the dataset (DataModule class, name, pool
size, a digest of the labels, of the items themselves and of the dataset's own partitions), the
backbone (architecture, weights digest, input size, preprocessing) and the eval transform.
Change any of them and the file name changes, so a stale file is never read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hashing.data.base import Pool, RetrievalDataModule, labels_digest
from hashing.data.images import ImageFileSource, file_list_key

#: bump when the file's layout or the encoding loop changes what a file holds
FEATURES_FORMAT = 1


def source_digest(source: Any) -> str:
    """SHA-1 of a pool's items: tensor bytes, or the file list (paths, sizes, mtimes)."""
    if isinstance(source, torch.Tensor):
        array = np.ascontiguousarray(source.cpu().numpy())
        digest = hashlib.sha1(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array.reshape(-1).view(np.uint8)))
        return digest.hexdigest()
    if isinstance(source, ImageFileSource):
        return file_list_key(source.paths, source.image_size, source.mode)
    digest = hashlib.sha1(str(len(source)).encode())
    for index in range(len(source)):  # any other source: its items, read once
        digest.update(np.ascontiguousarray(source[index].cpu().numpy()).tobytes())
    return digest.hexdigest()


def backbone_identity(backbone: nn.Module) -> dict[str, Any]:
    """The backbone's own identity if it has one, else its class and a digest of its weights."""
    if hasattr(backbone, "identity"):
        return dict(backbone.identity())
    from hashing.index.encoder import weights_digest

    return {"class": type(backbone).__qualname__, "weights_sha256": weights_digest(backbone)}


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
            "items_sha1": source_digest(pool.source),
            "groups": {name: len(members) for name, members in sorted(pool.groups.items())},
        },
        "transform": datamodule.transform,
        "backbone": backbone_identity(backbone),
        "dtype": dtype,
    }


def key_digest(key: dict[str, Any]) -> str:
    """Short SHA-1 of a key (part of the file name)."""
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def features_path(directory: str | Path, key: dict[str, Any]) -> Path:
    """``<directory>/<dataset>__<model>__<digest>.npz`` for a key."""
    model = key["backbone"].get("model") or key["backbone"].get("class", "backbone")
    size = key["backbone"].get("image_size")
    model = f"{model}_{size}" if size else model
    return Path(directory) / f"{key['dataset']['name']}__{model}__{key_digest(key)}.npz"
