"""`python -m hashing.search index=<dir> query=<image|folder|list> | codes=[...] | ids=[...]`: top-k
of each query as JSON lines."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from hashing.runs.errors import readable_errors
from hashing.runs.hydra_errors import readable_hydra_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="search")
@readable_errors()
def main(cfg: DictConfig) -> None:
    """Hydra entry point; results go to stdout, logs to stderr (the work is imported here, so
    ``--help`` stays fast)."""
    from hashing.index import jobs

    jobs.search(cfg)


if __name__ == "__main__":
    with readable_hydra_errors():
        main()
