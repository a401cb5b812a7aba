"""The work behind ``python -m hashing.serve``: open the index, check the settings, serve."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from PIL import Image

from hashing.index.jobs import open_index
from hashing.service.settings import ServeSettings

log = logging.getLogger(__name__)


def serve(cfg: DictConfig) -> None:
    """Serve ``cfg.index`` on ``serve.host:serve.port`` until interrupted."""
    import uvicorn

    from hashing.service.app import create_app

    values = OmegaConf.to_container(cfg.serve, resolve=True)
    settings = ServeSettings.from_mapping(values, Path(cfg.index))  # type: ignore[arg-type]
    index = open_index(cfg)
    if (index.model or {}).get("checkpoint") and index.input_spec is not None:
        _ = index.encoder  # a missing or mismatched model fails now, not at the first upload
    # PIL refuses (DecompressionBombError) images far beyond the limit before decoding them
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    log.info(
        "serving %d items of %s on http://%s:%d/ (%s)",
        index.live_count,
        cfg.index,
        settings.host,
        settings.port,
        "token required to change items" if settings.token else "no token",
    )
    uvicorn.run(
        create_app(index, settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )
