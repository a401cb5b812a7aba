"""`python -m hashing.features data=<images> backbone=<network>`: write (or find) a features file.

    python -m hashing.features data=cifar10_folder backbone=efficientnet_lite0
    python -m hashing.train data=features data.path=<printed path> backbone=identity

Every image of the dataset is encoded once (``per_class=N`` takes the first N of each class);
see ``docs/features.md`` for how long a full extraction takes. As with ``hashing.train``, a bad
value gets one paragraph and exit status 2, and Ctrl-C stops with status 130 leaving no file.
The work (torch, the backbone) is imported inside :func:`main`, so ``--help`` answers at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from hashing.runs.errors import as_user_error, readable_errors
from hashing.runs.hydra_errors import readable_hydra_errors

log = logging.getLogger(__name__)


def use_line(path: Path) -> str:
    """The training command that reads the features file at ``path``."""
    return f"python -m hashing.train data=features data.path={path} backbone=identity"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Read the data's pool, build the (frozen) backbone, extract or reuse; returns the report."""
    from hydra.utils import instantiate

    from hashing.features.extract import extract_features
    from hashing.runs.quiet import quiet_libraries
    from hashing.runs.stopping import stop_on_signal

    quiet_libraries()
    data_name = cfg.data.get("name") or cfg.data.get("_target_", "?").rsplit(".", 1)[-1]
    log.info("reading %s, then encoding it with backbone %s", data_name, cfg.backbone._target_)
    with stop_on_signal("reading the images") as stage:
        with as_user_error(f"data ({cfg.data.get('_target_', '?')})"):
            datamodule = instantiate(cfg.data)
            datamodule.load_pool()
        with as_user_error("backbone", (ImportError,)):
            backbone = instantiate(cfg.backbone, input_shape=tuple(datamodule.input_shape))
        stage.doing = "extracting features"
        stage.resume = "run the same command again (decoded images are cached)"
        path, report = extract_features(
            datamodule,
            backbone,
            cfg.out_dir,
            batch_size=cfg.batch_size,
            device=str(cfg.device),
            dtype=str(cfg.dtype),
            progress=bool(cfg.progress),
            per_class=cfg.get("per_class"),
        )
    state = "cached" if report["cached"] else f"{report['images_per_s']:.1f} img/s"
    print(f"features ({report['images']} images, {state}): {path}")
    print(f"use: {use_line(path)}")
    return report


@hydra.main(version_base="1.3", config_path="../../conf", config_name="features")
@readable_errors()
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    run(cfg)


if __name__ == "__main__":
    with readable_hydra_errors():
        main()
