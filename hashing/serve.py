"""`python -m hashing.serve index=<dir>`: an HTTP search service and web page over an index
folder (docs/serving.md)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from hashing.runs.errors import readable_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
@readable_errors()
def main(cfg: DictConfig) -> None:
    """Hydra entry point (the work is imported here, so ``--help`` stays fast)."""
    from hashing.service import run

    run.serve(cfg)


if __name__ == "__main__":
    main()
