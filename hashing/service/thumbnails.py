"""Thumbnails of indexed items by id, for the web page: from the item's image file, or, for items
exported from a dataset split, from that split's input (the run's data must be available)."""

from __future__ import annotations

import functools
import io
import logging
import threading
from typing import Any

import numpy as np
from PIL import Image

from hashing.index.hash_index import HashIndex

log = logging.getLogger(__name__)


class Thumbnails:
    """PNG thumbnails of an index's items, at most ``size`` pixels a side."""

    def __init__(self, index: HashIndex, size: int, max_pixels: int) -> None:
        self.index = index
        self.size = size
        self.max_pixels = max_pixels
        self._dataset: Any = None
        self._dataset_failed = False
        self._lock = threading.Lock()

    def png(self, item_id: int) -> bytes | None:
        """The thumbnail of a live item, or None when no image of it is at hand."""
        self.index.check_id(item_id)
        return self._render(item_id)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one Thumbnails per served index)
    def _render(self, item_id: int) -> bytes | None:
        record = self.index.item(item_id)
        path = record.get("path")
        pixels = self._from_split(item_id) if path is None else self._from_file(path)
        return None if pixels is None else self._encode(pixels)

    def _from_file(self, path: str) -> np.ndarray | None:
        try:
            with Image.open(path) as image:
                if image.width * image.height > self.max_pixels:
                    return None
                return np.asarray(image.convert("RGB"))
        except (OSError, Image.DecompressionBombError) as err:
            log.warning("no thumbnail of %s: %s", path, err)
            return None

    def _from_split(self, item_id: int) -> np.ndarray | None:
        source = self.index.source
        if source.get("kind") != "split" or item_id >= self.index.commit.base_count:
            return None
        dataset = self._split_dataset(str(source["split"]))
        if dataset is None:
            return None
        from hashing.callbacks.retrieval_grid import displayable

        image = displayable(dataset[item_id][0])
        if image is None:
            return None
        return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)

    def _split_dataset(self, split: str) -> Any:
        """The exported split of the run's data, built once (None when it is not here)."""
        with self._lock:
            if self._dataset is None and not self._dataset_failed and self.index.config:
                from omegaconf import OmegaConf

                from hashing.pipeline import build_datamodule

                try:
                    datamodule = build_datamodule(OmegaConf.create(self.index.config))
                    self._dataset = datamodule.dataset(split)
                except (ValueError, OSError) as err:
                    self._dataset_failed = True
                    log.warning("the run's data is not available for thumbnails: %s", err)
            return self._dataset

    def _encode(self, pixels: np.ndarray) -> bytes:
        image = Image.fromarray(pixels)
        scale = self.size / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        smooth = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST
        buffer = io.BytesIO()
        image.resize(size, smooth).save(buffer, format="PNG")
        return buffer.getvalue()
