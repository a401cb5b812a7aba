"""`python -m hashing.eval ckpt_path=<ckpt>`: recompute a run's test metrics from its checkpoint."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from hashing.runs.errors import readable_errors
from hashing.runs.hydra_errors import readable_hydra_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
@readable_errors()
def main(cfg: DictConfig) -> None:
    """Hydra entry point (imports the work here, so ``--help`` stays fast)."""
    from hashing import pipeline

    pipeline.evaluate(cfg)


if __name__ == "__main__":
    with readable_hydra_errors():
        main()
