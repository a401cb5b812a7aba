"""Every conf/data and conf/backbone preset composes with Hydra and builds what it names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
BACKBONES = sorted(p.stem for p in (CONF / "backbone").glob("*.yaml"))


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A config tree with only this part's groups and a minimal primary config."""
    root = tmp_path / "conf"
    for group in ("data", "backbone"):
        shutil.copytree(CONF / group, root / group)
    project = Path(__file__).resolve().parents[1]
    (root / "primary.yaml").write_text(
        "defaults:\n  - data: digits\n  - backbone: mlp\n  - _self_\n"
        f"paths:\n  root_dir: {project}\n  data_dir: {tmp_path}/data\n"
        f"  shared_data_dir: {project.parent}/shared/data\n  cache_dir: {tmp_path}/cache\n"
    )
    return root


def _compose(conf_dir: Path, overrides: list[str]) -> OmegaConf:
    with initialize_config_dir(str(conf_dir), version_base=None):
        return compose("primary", overrides=overrides)


def test_presets_exist() -> None:
    assert {"digits", "mnist", "cifar10", "cifar100", "cifar10_folder", "folder"} <= set(DATA)
    assert {"imagelist", "nuswide_21", "coco", "imagenet100", "features"} <= set(DATA)
    assert {"mlp", "cnn", "alexnet", "vgg16", "resnet18", "resnet34", "resnet50"} < set(BACKBONES)
    assert "efficientnet_lite0" in BACKBONES


@pytest.mark.parametrize("data", DATA)
def test_data_presets_compose(conf_dir: Path, data: str) -> None:
    cfg = _compose(conf_dir, [f"data={data}", "backbone=resnet18"])
    assert cfg.data._target_.startswith("hashing.data.")
    assert cfg.data.split_dir == f"{cfg.paths.cache_dir}/splits"
    assert cfg.data.transform == "imagenet"  # read from the backbone
    if data not in ("folder", "imagelist"):  # the generic ones require root
        OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)


def test_list_presets_top_k(conf_dir: Path) -> None:
    ks = {d: _compose(conf_dir, [f"data={d}"]).data.top_k for d in ("nuswide_21", "coco")}
    assert ks == {"nuswide_21": 5000, "coco": 5000}
    assert _compose(conf_dir, ["data=imagenet100"]).data.top_k == 1000


def test_cifar10_folder_preset(conf_dir: Path) -> None:
    cfg = _compose(conf_dir, ["data=cifar10_folder", "backbone=cnn"])
    assert cfg.data.root.endswith("shared/data/cifar10") and cfg.data.protocol == "cifar10"
    assert cfg.data.image_size == 32 and cfg.data.in_memory
    dm = instantiate(cfg.data)
    assert dm.name == "cifar10_folder" and dm.transform == "crop_flip"
    assert (dm.protocol.query_per_class, dm.protocol.train_per_class) == (100, 500)


def test_digits_with_mlp_end_to_end(conf_dir: Path) -> None:
    cfg = _compose(conf_dir, [])
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    net = instantiate(cfg.backbone, input_shape=dm.input_shape)
    x, _, _ = next(iter(dm.train_dataloader()))
    assert net(x).shape == (len(x), net.out_features)


@pytest.mark.parametrize("backbone", ["mlp", "cnn", "resnet18"])
def test_backbones_instantiate(conf_dir: Path, backbone: str) -> None:
    cfg = _compose(conf_dir, [f"backbone={backbone}", "backbone.pretrained=false"]
                   if backbone == "resnet18" else [f"backbone={backbone}"])  # fmt: skip
    net = instantiate(cfg.backbone, input_shape=(3, 32, 32))
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, net.out_features)


def test_mnist_shared_preset(conf_dir: Path, shared_data: Path) -> None:
    cfg = _compose(conf_dir, ["data=mnist_shared", "backbone=cnn"])
    dm = instantiate(cfg.data)
    dm.setup()
    assert dm.input_shape == (1, 28, 28) and dm.transform == "crop"
