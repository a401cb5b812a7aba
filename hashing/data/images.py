"""Image files -> uint8 tensors: lazy per-item reading, or decode once and cache as ``.npy``.

Small images (CIFAR-sized JPEG trees) are decoded once with a process pool into one uint8
array (N, C, H, W) kept in memory, and that array is cached in ``cache_dir`` under a key made
from the file list (paths, sizes, modification times) and the decode options, so the second
setup is one ``np.load`` instead of 60,000 JPEG decodes. Large images (ImageNet,
COCO, NUS-WIDE) stay on disk and are read per item in the loader's workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2.functional import resize

from hashing.runs.atomic import atomic_path
from hashing.runs.errors import MissingFileError, UserError

log = logging.getLogger(__name__)

DECODER = "torchvision-decode_image-v1"  # part of the cache key: a new decoder, a new cache
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def check_files_exist(paths: Sequence[Path], what: str, show: int = 5) -> None:
    """Raise FileNotFoundError counting the missing ``paths`` and showing the first few."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        first = "\n  ".join(str(p) for p in missing[:show])
        raise MissingFileError(
            f"{len(missing)} of {len(paths)} image files listed by {what} do not exist; "
            f"first {min(show, len(missing))}:\n  {first}"
        )


def read_image(path: str | os.PathLike[str], image_size: int | None, mode: str) -> np.ndarray:
    """One image as uint8 (C, H, W) in ``mode`` (RGB/L), resized to a square if asked.

    JPEG/PNG/WEBP/GIF go through torchvision's decoder (libjpeg-turbo: ~4x faster than PIL on
    32 px JPEGs here); anything else (BMP, TIFF, ...) through PIL.
    """
    with open(path, "rb") as handle:
        data = torch.frombuffer(bytearray(handle.read()), dtype=torch.uint8)
    read_mode = ImageReadMode.GRAY if mode == "L" else ImageReadMode.RGB
    try:
        image = decode_image(data, mode=read_mode)
    except RuntimeError:
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert(mode), dtype=np.uint8)
        except (OSError, ValueError) as error:  # PIL: unidentified, truncated, corrupt
            raise UserError(
                f"cannot read image {path}: {error}; replace or remove the file"
            ) from error
        image = torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    if image_size is not None and tuple(image.shape[1:]) != (image_size, image_size):
        image = resize(image, [image_size, image_size], antialias=True)
    return np.ascontiguousarray(image.numpy())


def _read_chunk(paths: list[str], image_size: int | None, mode: str) -> np.ndarray:
    """Decode a chunk of images into one array (worker side of :func:`decode_images`)."""
    arrays = [read_image(p, image_size, mode) for p in paths]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = next(p for p, a in zip(paths, arrays, strict=True) if a.shape != arrays[0].shape)
        raise UserError(
            f"images differ in size ({sorted(shapes)}; e.g. {first}); set image_size to "
            f"decode them all to one square size"
        )
    return np.stack(arrays)


def decode_images(
    paths: Sequence[str | os.PathLike[str]],
    image_size: int | None = None,
    mode: str = "RGB",
    workers: int | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Decode every image into one uint8 array (N, C, H, W) using a process pool."""
    names = [os.fspath(p) for p in paths]
    chunks = [names[i : i + chunk] for i in range(0, len(names), chunk)]
    workers = min(len(chunks), workers if workers is not None else os.cpu_count() or 1)
    if workers <= 1:
        parts = [_read_chunk(c, image_size, mode) for c in chunks]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(
                pool.map(_read_chunk, chunks, [image_size] * len(chunks), [mode] * len(chunks))
            )
    shapes = {p.shape[1:] for p in parts}
    if len(shapes) > 1:
        raise UserError(
            f"images differ in size ({sorted(shapes)}); set image_size to decode them all to "
            f"one square size"
        )
    return np.concatenate(parts) if parts else np.zeros((0, 3, 0, 0), np.uint8)


def file_list_key(paths: Sequence[str | os.PathLike[str]], *options: object) -> str:
    """Cache key of a file list: SHA-1 over paths, sizes, mtimes and decode options."""
    digest = hashlib.sha1(repr(options).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.fspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cached_decode(
    paths: Sequence[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str] | None,
    image_size: int | None = None,
    mode: str = "RGB",
    workers: int | None = None,
) -> torch.Tensor:
    """Decoded images as a uint8 tensor (N, C, H, W), from ``cache_dir`` when cached there.

    The cache file is written atomically, so an interrupted decode leaves no file behind.
    ``cache_dir=None`` decodes without caching.
    """
    if cache_dir is None:
        return torch.from_numpy(decode_images(paths, image_size, mode, workers))
    key = file_list_key(paths, DECODER, image_size, mode, len(paths))
    target = Path(cache_dir) / f"images-{key}.npy"
    if target.exists():
        try:
            array = np.load(target, allow_pickle=False)
            if array.dtype == np.uint8 and array.ndim == 4 and len(array) == len(paths):
                return torch.from_numpy(array)
        except (OSError, ValueError):
            pass  # unreadable cache: decode again and overwrite it below
    log.info("decoding %s images once into %s (later runs read it)", f"{len(paths):,}", target)
    array = decode_images(paths, image_size, mode, workers)
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)
    return torch.from_numpy(array)


class ImageFileSource:
    """Lazy item source: ``source[i]`` reads image i from disk as uint8 (C, H, W)."""

    def __init__(
        self, paths: Sequence[str | os.PathLike[str]], image_size: int | None, mode: str = "RGB"
    ) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.image_size = image_size
        self.mode = mode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(read_image(self.paths[index], self.image_size, self.mode))


def image_source(
    paths: Sequence[str | os.PathLike[str]],
    in_memory: bool,
    image_size: int | None,
    cache_dir: str | os.PathLike[str] | None,
    mode: str = "RGB",
    workers: int | None = None,
) -> torch.Tensor | ImageFileSource:
    """Decoded uint8 tensor (``in_memory``) or a lazy per-item reader over ``paths``."""
    if in_memory:
        return cached_decode(paths, cache_dir, image_size, mode, workers)
    return ImageFileSource(paths, image_size, mode)
