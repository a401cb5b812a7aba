"""Transform presets: value ranges, shapes, and that augmentation only happens in training."""

from __future__ import annotations

import pytest
import torch

from hashing.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform


def _image(channels: int = 3, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (channels, size, size), dtype=torch.uint8)


def test_scale() -> None:
    x = _image()
    out = build_transform("scale", train=True)(x)
    assert out.dtype == torch.float32 and torch.allclose(out * 255, x.float())
    features = torch.randn(7)
    assert torch.equal(build_transform("scale", train=False)(features), features)


def test_crop_flip_train_only() -> None:
    x = _image()
    assert torch.equal(build_transform("crop_flip", train=False)(x), x.float() / 255)
    torch.manual_seed(0)
    train = build_transform("crop_flip", train=True)
    outs = [train(x) for _ in range(20)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    assert any(not torch.equal(o, x.float() / 255) for o in outs)
    # Every output is a shifted (possibly mirrored) window of the zero-padded image.
    padded = torch.nn.functional.pad(x.float() / 255, (4, 4, 4, 4))
    for out in outs:
        windows = [
            padded[:, t : t + 32, s : s + 32] for t in range(9) for s in range(9)
        ]  # fmt: skip
        assert any(torch.equal(out, w) or torch.equal(out, w.flip(-1)) for w in windows)


def test_crop_never_flips() -> None:
    x = _image(1, 16)
    padded = torch.nn.functional.pad(x.float() / 255, (2, 2, 2, 2))
    train = build_transform("crop", train=True)
    for _ in range(20):
        out = train(x)
        windows = [padded[:, t : t + 16, s : s + 16] for t in range(5) for s in range(5)]
        assert any(torch.equal(out, w) for w in windows)


def test_imagenet_eval_normalises_and_crops() -> None:
    x = torch.full((1, 32, 32), 128, dtype=torch.uint8)
    out = build_transform("imagenet", train=False)(x)
    assert out.shape == (3, 224, 224)
    for c in range(3):
        expected = (128 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(out[c], torch.full((224, 224), expected), atol=1e-4)
    assert build_transform("imagenet", train=True)(_image(3, 40)).shape == (3, 224, 224)


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="transform preset 'resnet'"):
        build_transform("resnet", train=True)
