"""Config composition: every group option composes, bad values fail early and clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict

from hashing.runs.config_checks import check_bits_for_classes, check_run_config

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["data", "method", "backbone", "trainer", "logger", "callbacks", "experiment", "debug"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_group_option_composes(group: str, option: str) -> None:
    cfg = compose_train([f"{group}={option}", "paths.output_dir=/tmp/x"])
    OmegaConf.resolve(cfg)
    assert cfg.bits > 0
    if group in ("data", "method", "backbone", "trainer"):
        assert "_target_" in cfg[group]


def test_bits_is_one_top_level_key_read_everywhere() -> None:
    cfg = compose_train(["bits=48", "paths.output_dir=/tmp/x"])
    assert cfg.bits == 48
    assert "bits" not in cfg.method and "bits" not in cfg.backbone


def test_unknown_group_option_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_train(["method=nope"])
    message = str(info.value.__cause__ or info.value)
    assert "nope" in message and "csq" in message


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("bits=0", "bits=0"),
        ("bits=-8", "bits=-8"),
        ("bits=3.5", "bits=3.5"),
        ("seed=-1", "seed=-1"),
        ("test_ckpt=worst", "test_ckpt='worst'"),
        ("ckpt_path=/no/such.ckpt", "ckpt_path='/no/such.ckpt'"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0"),
    ],
)
def test_bad_values_fail_with_key_and_allowed_values(override: str, fragment: str) -> None:
    cfg = compose_train([override, "paths.output_dir=/tmp/x"])
    with pytest.raises(ValueError) as info:
        check_run_config(cfg)
    assert fragment in str(info.value)


def test_more_classes_than_codes_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"bits=3 gives only 8 distinct codes .* bits >= 4"):
        check_bits_for_classes(3, 10)
    check_bits_for_classes(4, 16)
