"""`python -m hashing.train [overrides]`: train, test and report one run (or a sweep with -m)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from hashing import pipeline


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best validation mAP, the value sweepers optimise."""
    metrics = pipeline.train(cfg)
    return metrics.get("val/mAP_best")


if __name__ == "__main__":
    main()
