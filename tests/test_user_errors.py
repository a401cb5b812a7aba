"""Bad input gives one short message naming the key or file, exit status 2, no traceback."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf
from PIL import Image

from hashing.backbones.mlp import MLP
from hashing.data.folder import FolderDataModule
from hashing.pipeline import build_datamodule
from hashing.runs.checkpoint_file import read_checkpoint
from hashing.runs.config_checks import check_run_config
from hashing.runs.errors import USAGE_EXIT_CODE, UserError, readable_errors, write_to_log_files
from hashing.runs.hydra_errors import unknown_key_message
from hashing.runs.quiet import quiet_libraries
from tests.helpers.runs import compose_run, run_train_cli


def failing(error: Exception) -> None:
    with readable_errors():
        raise error


def test_a_user_error_prints_one_paragraph_and_exits_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        failing(UserError("bits=0 is invalid: use 16, 32, 64"))
    assert stop.value.code == USAGE_EXIT_CODE
    err = capsys.readouterr().err
    assert err.startswith("error: bits=0 is invalid") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2
    # wrapped by Hydra's instantiate: still found
    with pytest.raises(SystemExit):
        try:
            raise UserError("data.root='x' does not exist")
        except UserError as cause:
            wrapped = InstantiationException("Error in call to target")
            wrapped.__cause__ = cause
            failing(wrapped)
    assert "data.root='x'" in capsys.readouterr().err


def test_a_missing_mandatory_value_names_the_key(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit), readable_errors():
        OmegaConf.create({"ckpt_path": "???"}).ckpt_path  # noqa: B018
    assert capsys.readouterr().err.startswith("error: ckpt_path is required")


def test_bugs_and_full_error_keep_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyError):
        failing(KeyError("a bug"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(UserError):
        failing(UserError("shown with its traceback"))


def test_bad_checkpoint_files_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(UserError, match=r"ckpt_path='.*notes.ckpt' is not a readable PyTorch"):
        read_checkpoint(text)
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "epoch": 0, "global_step": 0}, good)
    assert read_checkpoint(good)["epoch"] == 0
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(UserError, match="truncated"):
        read_checkpoint(truncated, mmap=True)
    plain = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), plain)
    with pytest.raises(UserError, match="not a Lightning checkpoint"):
        read_checkpoint(plain)
    with pytest.raises(UserError, match="is a folder"):
        read_checkpoint(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_a_text_checkpoint_fails_before_any_data(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("hello\n")
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", [f"ckpt_path={text}"])
    with pytest.raises(UserError, match="ckpt_path="):
        check_run_config(cfg)
    assert not (tmp_path / "cache").exists()


def test_cli_bad_checkpoint_is_a_short_message(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("hello\n")
    result = run_train_cli(
        [f"ckpt_path={text}"],
        timeout=300,
        env={**os.environ, "HASHING_ROOT": str(tmp_path), "HYDRA_FULL_ERROR": "0"},
    )
    assert result.returncode == USAGE_EXIT_CODE
    assert "Traceback" not in result.stderr
    assert f"ckpt_path='{text}' is not a readable PyTorch checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3
    # the run folder is marked failed and holds nothing that looks like a result
    [run] = list((tmp_path / "multirun_outputs" / "runs").glob("*/*"))
    assert (run / "failed.json").is_file() and not (run / "metrics.json").exists()
    assert "ckpt_path=" in (run / "train.log").read_text()


def write_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.jpg")


def folder_data(root: Path, tmp_path: Path, **options: object) -> FolderDataModule:
    return FolderDataModule(root, image_size=8, cache_dir=None, split_dir=tmp_path / "s", **options)


def test_folder_errors_name_the_file_class_and_keys(tmp_path: Path) -> None:
    write_images(tmp_path / "one" / "cat", 4)
    with pytest.raises(UserError, match=r"holds 1 class folder \(cat\).*at least 2"):
        folder_data(tmp_path / "one", tmp_path).setup()
    write_images(tmp_path / "small" / "cat", 6)
    write_images(tmp_path / "small" / "dog", 3)
    with pytest.raises(UserError) as small:
        folder_data(tmp_path / "small", tmp_path, query_per_class=2, train_per_class=2).setup()
    assert "'dog' has 3" in str(small.value) and "'cat'" not in str(small.value)
    assert "data.query_per_class" in str(small.value) and "data.train_per_class" in str(small.value)
    broken = tmp_path / "small" / "cat" / "2.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    data = folder_data(tmp_path / "small", tmp_path, query_per_class=1, train_per_class=2)
    with pytest.raises(UserError, match=f"cannot read image {broken}"):
        data.setup()


def test_a_missing_data_folder_is_a_user_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    cfg = compose_run(
        "train", tmp_path / "run", tmp_path / "cache", ["data=folder", f"data.root={missing}"]
    )
    with pytest.raises(UserError, match=str(missing)):
        build_datamodule(cfg)


def test_only_the_users_errors_lose_their_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ValueError or OSError that no check raised for the user is a bug: it keeps its type
    (and so its traceback); the project's own messages become one paragraph."""
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", ["data=digits"])

    def bug(self: object) -> None:
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("hashing.data.digits.DigitsDataModule._load_pool", bug)
    with pytest.raises(ValueError, match="broadcast") as raised:
        build_datamodule(cfg)
    assert not isinstance(raised.value, UserError)

    def lost(self: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("hashing.data.digits.DigitsDataModule._load_pool", lost)
    with pytest.raises(OSError, match="Input/output"):
        build_datamodule(cfg)
    bad = compose_run(
        "train", tmp_path / "run", tmp_path / "cache", ["data=digits", "data.val_fraction=2"]
    )
    with pytest.raises(UserError, match=r"val_fraction must be in \(0, 1\), got 2"):
        build_datamodule(bad)


def test_an_unknown_key_names_the_closest_one(tmp_path: Path) -> None:
    result = run_train_cli(
        ["trainer.max_epochz=3", f"hydra.run.dir={tmp_path / 'run'}"],
        timeout=120,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )
    assert result.returncode == USAGE_EXIT_CODE, result.stderr
    assert result.stderr.startswith(
        "error: trainer.max_epochz=3: trainer has no key 'max_epochz'; did you mean "
        "trainer.max_epochs (now 30)? Write trainer.max_epochs=3"
    )
    assert "+trainer.max_epochz" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # refused before the run folder was made
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache")
    message = unknown_key_message("trainr.max_epochs", "3", cfg)
    assert "the config has no 'trainr'; did you mean trainer.max_epochs (now" in message
    message = unknown_key_message("data.zzz", "1", cfg)
    assert "data has no key 'zzz'; its keys are " in message
    listed = message.split("its keys are ", 1)[1].split(" (", 1)[0].split(", ")
    assert {"_target_", "protocol", "batch_size", "split_seed"} <= set(listed)
    assert "zzz" not in listed


def test_mlp_refuses_image_sized_inputs() -> None:
    with pytest.raises(UserError, match=r"38\.5 M weights.*backbone=resnet18"):
        MLP((3, 224, 224), hidden_dims=[256])
    assert MLP((3, 32, 32)).out_features == 256
    assert MLP((3, 224, 224), hidden_dims=[2], max_input_features=None).out_features == 2


def test_quiet_drops_only_the_listed_noise(caplog: pytest.LogCaptureFixture) -> None:
    quiet_libraries()
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        rank_zero.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        rank_zero.info("Trainer already configured with model summary callbacks: [...]")
        rank_zero.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
    with warnings.catch_warnings(record=True) as caught:
        quiet_libraries()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", stacklevel=1)
        warnings.warn("a real warning", stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real warning"]


def test_log_files_get_text_that_the_console_already_shows(tmp_path: Path) -> None:
    handler = logging.FileHandler(tmp_path / "train.log")
    logging.getLogger().addHandler(handler)
    try:
        write_to_log_files("┃ mAP ┃ 0.88 ┃")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert "┃ mAP ┃ 0.88 ┃" in (tmp_path / "train.log").read_text()


def test_a_method_bug_keeps_its_traceback_and_a_bad_value_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashing import pipeline
    from hashing.methods.center_hashing import CenterHashing

    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", ["method=mds", "bits=4"])
    datamodule = pipeline.build_datamodule(cfg)
    with pytest.raises(UserError, match=r"bits=4 is invalid for method 'mds'"):
        pipeline.build_model(cfg, datamodule)

    def broken_init(self: CenterHashing, *args: object, **kwargs: object) -> None:
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(CenterHashing, "__init__", broken_init)
    cfg = compose_run("train", tmp_path / "run2", tmp_path / "cache", ["method=mds"])
    with pytest.raises(Exception) as caught:
        pipeline.build_model(cfg, datamodule)
    assert not isinstance(caught.value, UserError)
    assert "an internal inconsistency" in str(caught.value)
