"""Helpers for tests that run the training pipeline in-process on tiny settings."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_run(
    config_name: str, output_dir: Path, cache_dir: Path, overrides: list[str] = ()
) -> DictConfig:
    """Compose a config as Hydra would for a run in ``output_dir`` (HydraConfig set)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name=config_name,
            overrides=[
                f"paths.output_dir={output_dir}",
                f"paths.cache_dir={cache_dir}",
                f"hydra.run.dir={output_dir}",
                "callbacks.progress_bar.refresh_rate=0",
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
