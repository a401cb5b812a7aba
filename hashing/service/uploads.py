"""Uploads checked before anything decodes them: request size, image format, pixel count.

A request body beyond ``serve.max_upload_bytes`` is refused (413) while it streams in; an
upload that is not an image (415) or whose header announces more than
``serve.max_image_pixels`` pixels (413, a decompression bomb) is refused from its header alone,
before any decoder allocates its pixels.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashing.runs.atomic import atomic_write

#: file suffix of each PIL format an upload may have
SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
            "TIFF": ".tif", "PPM": ".ppm"}  # fmt: skip


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413, by its Content-Length or,
    when it streams without one, as soon as it grows past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def message(self, size: int | str) -> str:
        return f"request body of {size} bytes exceeds serve.max_upload_bytes={self.max_bytes}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"detail": self.message(int(length))}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self.message(f"more than {received}"))
            return message

        await self.app(scope, limited, send)


def check_image(data: bytes, max_pixels: int, name: str = "upload") -> str:
    """The PIL format of an uploaded image, after refusing a non-image or a too large one."""
    if not data:
        raise HTTPException(400, f"{name} is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            kind = image.format
            if width * height > max_pixels:
                raise HTTPException(
                    413,
                    f"{name} is {width}x{height} pixels, more than serve.max_image_pixels="
                    f"{max_pixels}",
                )
            image.verify()
    except Image.DecompressionBombError as err:
        raise HTTPException(413, f"{name} is refused as a decompression bomb: {err}") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise HTTPException(415, f"{name} is not a readable image: {err}") from err
    if kind not in SUFFIXES:
        raise HTTPException(415, f"{name} is a {kind} image; accepted: {', '.join(SUFFIXES)}")
    return kind


@contextlib.contextmanager
def image_file(data: bytes, max_pixels: int, name: str = "upload") -> Iterator[Path]:
    """A checked upload as a temporary image file (decoded like any indexed file), removed after."""
    suffix = SUFFIXES[check_image(data, max_pixels, name)]
    descriptor, path = tempfile.mkstemp(prefix="hashing-query-", suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        yield Path(path)
    finally:
        os.unlink(path)


def store_image(data: bytes, folder: Path, max_pixels: int, name: str = "upload") -> Path:
    """A checked upload kept as ``folder/<sha256>.<suffix>`` (flushed to disk: it must outlive
    the add that names it), the same bytes always at the same path."""
    suffix = SUFFIXES[check_image(data, max_pixels, name)]
    path = folder / f"{hashlib.sha256(data).hexdigest()}{suffix}"
    if not path.is_file():
        atomic_write(path, lambda handle: handle.write(data))
    return path


def form_files(form: Any, field: str) -> list[Any]:
    """The uploaded files of a multipart ``field`` (a form may hold several under one name)."""
    return [value for value in form.getlist(field) if hasattr(value, "read")]
