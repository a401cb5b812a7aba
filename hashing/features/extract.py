"""Encode every item of a dataset once through a frozen backbone and write a features file.

The file holds, per partition of the dataset (``train``, ``test``, ``database`` where it has
them; a dataset without partitions goes whole into ``train`` with an empty ``test``),
``<part>_x`` (N, D) features, ``<part>_y`` labels and, for image folders, ``<part>_files``
(paths relative to the root); plus ``classes`` and ``meta`` (the JSON content key). That is the
layout of ``../shared/data/cifar10_efficientnet_lite0_128.npz``, so ``data=features`` reads
both. Features are written only when complete, under a temporary name renamed at the end: an
interrupted extraction leaves no file, and a second call with the same inputs is a cache hit.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashing.data.base import Pool, RetrievalDataModule, is_batchable
from hashing.data.transforms import Transform, build_transform
from hashing.features.cache import feature_key, features_path
from hashing.runs.atomic import atomic_write

log = logging.getLogger(__name__)
DTYPES = ("float16", "float32")


@torch.inference_mode()
def encode_pool(
    backbone: nn.Module,
    source: Any,
    transform: Transform,
    batch_size: int = 100,
    device: str = "cpu",
    dtype: str = "float16",
    progress: bool = True,
) -> np.ndarray:
    """(N, out_features) features of every item of ``source`` in order, in eval mode.

    A tensor source under a batchable transform (:func:`~hashing.data.base.is_batchable`,
    e.g. the plain ``scale``) is sliced and converted a batch at a time (no per-item calls);
    any other source is read item by item.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is invalid; expected one of {DTYPES}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    backbone = backbone.to(device).eval()
    count = len(source)
    features = np.empty((count, int(backbone.out_features)), dtype=dtype)
    batched = is_batchable(source, transform)
    bar = tqdm(total=count, unit="img", desc="features", disable=not progress, smoothing=0.1)
    for start in range(0, count, int(batch_size)):
        stop = min(count, start + int(batch_size))
        if batched:
            batch = transform(source[start:stop])
        else:
            batch = torch.stack([transform(source[i]) for i in range(start, stop)])
        features[start:stop] = backbone(batch.to(device)).float().cpu().numpy()
        bar.update(stop - start)
    bar.close()
    return features


def _parts(pool: Pool) -> dict[str, np.ndarray]:
    """The pool's partitions (train/test/database) in pool order, or all of it as ``train``."""
    if "train" in pool.groups and "test" in pool.groups:
        return {name: np.asarray(pool.groups[name]) for name in ("train", "test", "database")
                if name in pool.groups}  # fmt: skip
    return {"train": np.arange(len(pool.labels)), "test": np.zeros(0, np.int64)}


def write_features(
    path: Path,
    datamodule: RetrievalDataModule,
    features: np.ndarray,
    key: dict[str, Any],
) -> Path:
    """Write the features file atomically (see the module docstring for its arrays)."""
    pool = datamodule.pool
    labels = pool.labels.cpu().numpy()
    paths = datamodule.relative_paths() if hasattr(datamodule, "relative_paths") else None
    arrays: dict[str, np.ndarray] = {"meta": np.str_(json.dumps(key, sort_keys=True))}
    for name, members in _parts(pool).items():
        arrays[f"{name}_x"] = features[members]
        arrays[f"{name}_y"] = labels[members]
        if paths:
            arrays[f"{name}_files"] = np.asarray([paths[i] for i in members], dtype=np.str_)
    classes = getattr(datamodule, "classes", None)
    if classes:
        arrays["classes"] = np.asarray(classes, dtype=np.str_)
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def extract_features(
    datamodule: RetrievalDataModule,
    backbone: nn.Module,
    directory: str | Path,
    batch_size: int = 100,
    device: str = "cpu",
    dtype: str = "float16",
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """The features file of (dataset, backbone) in ``directory``: reused if cached, else made.

    Returns the path and a report: ``cached`` (bool), ``images``, ``seconds``, ``images_per_s``.
    """
    datamodule.setup()
    pool = datamodule.pool
    key = feature_key(datamodule, pool, backbone, dtype)
    path = features_path(directory, key)
    report: dict[str, Any] = {"path": str(path), "images": len(pool.labels), "cached": True}
    if path.is_file():
        log.info("features cached: %s", path)
        return path, report
    transform = build_transform(datamodule.transform, train=False)
    started = time.perf_counter()
    features = encode_pool(backbone, pool.source, transform, batch_size, device, dtype, progress)
    seconds = time.perf_counter() - started
    write_features(path, datamodule, features, key)
    report.update(cached=False, seconds=seconds, images_per_s=len(features) / max(seconds, 1e-9))
    log.info("wrote %s (%d images in %.1f s)", path, len(features), seconds)
    return path, report
