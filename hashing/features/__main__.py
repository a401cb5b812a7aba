"""`python -m hashing.features data=<images> backbone=<network>`: write (or find) a features file.

python -m hashing.features data=cifar10_folder backbone=efficientnet_lite0
python -m hashing.train data=features data.path=<printed path> backbone=identity
"""

from __future__ import annotations

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from hashing.features.extract import extract_features


def run(cfg: DictConfig) -> dict:
    """Set up the data, build the (frozen) backbone, extract or reuse; returns the report."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    backbone = instantiate(cfg.backbone, input_shape=tuple(datamodule.input_shape))
    path, report = extract_features(
        datamodule,
        backbone,
        cfg.out_dir,
        batch_size=int(cfg.batch_size),
        device=str(cfg.device),
        dtype=str(cfg.dtype),
        progress=bool(cfg.progress),
    )
    state = "cached" if report["cached"] else f"{report['images_per_s']:.1f} img/s"
    print(f"features ({report['images']} images, {state}): {path}")
    print(f"use: python -m hashing.train data=features data.path={path} backbone=identity")
    return report


@hydra.main(version_base="1.3", config_path="../../conf", config_name="features")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    run(cfg)


if __name__ == "__main__":
    main()
