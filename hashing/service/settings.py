"""The service's settings (``serve`` in conf/serve.yaml) and the checks made before it binds."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashing.runs.errors import UserError

#: environment variable holding the token when serve.token is not set
TOKEN_VARIABLE = "HASHING_SERVE_TOKEN"
LOCAL_NAMES = ("localhost", "ip6-localhost")


@dataclass(frozen=True)
class ServeSettings:
    """Where the service listens, who may change the index, and how large requests may be."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_bytes: int = 10 * 2**20
    max_image_pixels: int = 25_000_000
    max_k: int = 1000
    max_batch: int = 10_000
    upload_dir: Path | None = None
    thumbnail_size: int = 96
    log_level: str = "info"

    @classmethod
    def from_mapping(cls, values: dict[str, Any], index_dir: Path) -> ServeSettings:
        """Settings from the ``serve`` config, the token from the environment when unset."""
        token = values.get("token") or os.environ.get(TOKEN_VARIABLE) or None
        upload_dir = values.get("upload_dir")
        settings = cls(
            host=str(values.get("host", cls.host)),
            port=int(values.get("port", cls.port)),
            token=None if token is None else str(token),
            max_upload_bytes=int(values.get("max_upload_bytes", cls.max_upload_bytes)),
            max_image_pixels=int(values.get("max_image_pixels", cls.max_image_pixels)),
            max_k=int(values.get("max_k", cls.max_k)),
            max_batch=int(values.get("max_batch", cls.max_batch)),
            upload_dir=Path(upload_dir) if upload_dir else index_dir / "uploads",
            thumbnail_size=int(values.get("thumbnail_size", cls.thumbnail_size)),
            log_level=str(values.get("log_level", cls.log_level)),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that would expose the index or make no sense, before binding."""
        for name in ("max_upload_bytes", "max_image_pixels", "max_k", "max_batch"):
            if getattr(self, name) < 1:
                raise UserError(f"serve.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.port < 65536:
            raise UserError(f"serve.port must be in 0..65535, got {self.port}")
        if not is_local(self.host) and not self.token:
            raise UserError(
                f"serve.host={self.host} accepts connections from other machines, which may "
                f"then add and delete items: set serve.token=<secret> (or the environment "
                f"variable {TOKEN_VARIABLE}), or serve on serve.host=127.0.0.1"
            )


def is_local(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (reachable from this machine only)."""
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
