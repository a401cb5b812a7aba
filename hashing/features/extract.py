"""Encode every item of a dataset once through a frozen backbone and write a features file.

The file holds, per partition of the dataset (``train``, ``test``, ``database`` where it has
them; a dataset without partitions goes whole into ``train`` with an empty ``test``),
``<part>_x`` (N, D) features, ``<part>_y`` labels and, for image folders, ``<part>_files``
(paths relative to the root); plus ``classes`` and ``meta`` (the JSON content key). That is the
layout of ``../shared/data/cifar10_efficientnet_lite0_128.npz``, so ``data=features`` reads
both. Features are written only when complete, under a temporary name renamed at the end: an
interrupted extraction leaves no file, and a second call with the same inputs is a cache hit.

Every item is encoded (the pool, no split is drawn, so no per-class count is checked), or with
``per_class=N`` the first N items of every class in each partition (a quick try, or a measure of
the throughput). Progress shows from the first batch with the rate and the time left: a bar on
a terminal, a log line every ``every`` seconds elsewhere (a log file, a batch job).
"""

from __future__ import annotations

import json
import logging
import sys
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
from hashing.runs.errors import UserError

log = logging.getLogger(__name__)
DTYPES = ("float16", "float32")


def duration(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``; ``4000`` -> ``1 h 07 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Items done of ``total``: a tqdm bar on a terminal; otherwise a log line after the first
    batch and then every ``every`` seconds, each with the rate and the time left."""

    def __init__(self, total: int, enabled: bool = True, every: float = 30.0) -> None:
        self.total = total
        self.enabled = enabled
        self.every = every
        self.done = 0
        self.started = time.perf_counter()
        self.last_line = -float("inf")
        terminal = sys.stderr.isatty()
        self.bar = tqdm(total=total, unit="img", desc="features", smoothing=0.1,
                        disable=not (enabled and terminal))  # fmt: skip
        self.lines = enabled and not terminal

    def update(self, count: int) -> None:
        """``count`` more items are done."""
        self.done += count
        self.bar.update(count)
        now = time.perf_counter()
        if self.lines and (now - self.last_line >= self.every or self.done == self.total):
            self.last_line = now
            log.info("features: %s", self.status(now - self.started))

    def status(self, elapsed: float) -> str:
        """``1,200/60,000 images (2%), 35.1 img/s, 28 min 05 s left``."""
        rate = self.done / max(elapsed, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        share = 100 * self.done / max(self.total, 1)
        return (f"{self.done:,}/{self.total:,} images ({share:.0f}%), {rate:.1f} img/s, "
                f"{duration(left)} left")  # fmt: skip

    def close(self) -> None:
        """End the bar."""
        self.bar.close()


@torch.inference_mode()
def encode_pool(
    backbone: nn.Module,
    source: Any,
    transform: Transform,
    batch_size: int = 100,
    device: str = "cpu",
    dtype: str = "float16",
    progress: bool = True,
    items: np.ndarray | None = None,
) -> np.ndarray:
    """(N, out_features) features of the items of ``source`` (all, or the indices ``items``)
    in order, in eval mode; progress as :class:`Progress` reports it.

    A tensor source under a batchable transform (:func:`~hashing.data.base.is_batchable`,
    e.g. the plain ``scale``) is sliced and converted a batch at a time (no per-item calls);
    any other source is read item by item.
    """
    if dtype not in DTYPES:
        raise UserError(f"dtype={dtype!r} is invalid; expected one of {DTYPES}")
    if not isinstance(batch_size, int) or int(batch_size) < 1:
        raise UserError(f"batch_size={batch_size!r} is invalid: use a positive integer, e.g. 100")
    backbone = backbone.to(device).eval()
    order = np.arange(len(source)) if items is None else np.asarray(items, dtype=np.int64)
    count = len(order)
    features = np.empty((count, int(backbone.out_features)), dtype=dtype)
    batched = is_batchable(source, transform)
    progress_of = Progress(count, enabled=progress)
    for start in range(0, count, int(batch_size)):
        stop = min(count, start + int(batch_size))
        rows = order[start:stop]
        if batched:
            batch = transform(source[torch.from_numpy(rows)])
        else:
            batch = torch.stack([transform(source[int(i)]) for i in rows])
        features[start:stop] = backbone(batch.to(device)).float().cpu().numpy()
        progress_of.update(stop - start)
    progress_of.close()
    return features


def _parts(pool: Pool) -> dict[str, np.ndarray]:
    """The pool's partitions (train/test/database) in pool order, or all of it as ``train``."""
    if "train" in pool.groups and "test" in pool.groups:
        return {name: np.asarray(pool.groups[name]) for name in ("train", "test", "database")
                if name in pool.groups}  # fmt: skip
    return {"train": np.arange(len(pool.labels)), "test": np.zeros(0, np.int64)}


def first_per_class(pool: Pool, per_class: int | None) -> dict[str, np.ndarray]:
    """:func:`_parts`, each cut to its first ``per_class`` items of every class (all: None).
    A multi-label item counts for its first label."""
    parts = _parts(pool)
    if per_class is None:
        return parts
    if not isinstance(per_class, int) or per_class < 1:
        raise UserError(f"per_class={per_class!r} is invalid: use a positive integer or null")
    labels = pool.labels.cpu().numpy()
    classes = labels if labels.ndim == 1 else labels.argmax(1)
    cut = {}
    for name, members in parts.items():
        rank = np.zeros(len(members), np.int64)  # how many of its class came before it
        seen: dict[int, int] = {}
        for position, label in enumerate(classes[members].tolist()):
            rank[position] = seen.get(label, 0)
            seen[label] = rank[position] + 1
        cut[name] = members[rank < per_class]
    return cut


def write_features(
    path: Path,
    datamodule: RetrievalDataModule,
    features: np.ndarray,
    key: dict[str, Any],
    parts: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write the features file atomically (see the module docstring for its arrays).

    ``features`` holds the rows of ``parts`` (default: every partition of the pool) in order.
    """
    pool = datamodule.pool
    labels = pool.labels.cpu().numpy()
    paths = datamodule.relative_paths() if hasattr(datamodule, "relative_paths") else None
    arrays: dict[str, np.ndarray] = {"meta": np.str_(json.dumps(key, sort_keys=True))}
    parts = _parts(pool) if parts is None else parts
    offset = 0
    for name, members in parts.items():
        arrays[f"{name}_x"] = features[offset : offset + len(members)]
        offset += len(members)
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
    per_class: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The features file of (dataset, backbone) in ``directory``: reused if cached, else made.

    ``per_class``: only the first N items of every class in each partition (None: all).
    Returns the path and a report: ``cached`` (bool), ``images``, ``seconds``, ``images_per_s``.
    """
    pool = datamodule.load_pool()
    parts = first_per_class(pool, per_class)
    items = np.concatenate(list(parts.values()))
    key = feature_key(datamodule, pool, backbone, dtype)
    if per_class is not None:
        key["per_class"] = int(per_class)
    path = features_path(directory, key)
    report: dict[str, Any] = {"path": str(path), "images": len(items), "cached": True}
    if path.is_file():
        log.info("features cached: %s", path)
        return path, report
    transform = build_transform(datamodule.transform, train=False)
    log.info("encoding %s images (batches of %d) on %s", f"{len(items):,}", batch_size, device)
    started = time.perf_counter()
    features = encode_pool(
        backbone, pool.source, transform, batch_size, device, dtype, progress, items
    )
    seconds = time.perf_counter() - started
    write_features(path, datamodule, features, key, parts)
    report.update(cached=False, seconds=seconds, images_per_s=len(features) / max(seconds, 1e-9))
    log.info("wrote %s (%d images in %.1f s)", path, len(features), seconds)
    return path, report
