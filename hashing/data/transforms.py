"""Named transform presets applied to tensors (uint8 images (C, H, W) or float features).

A DataModule takes a ``transform`` preset name; each backbone config names the preset it wants
(``conf/backbone/*.yaml`` key ``transform``), which the data configs read through
``${oc.select:backbone.transform,null}``. ``null`` means "the dataset's default".

Presets:
  ``scale``      uint8 -> float in [0, 1]; floats pass through. No augmentation.
  ``crop_flip``  ``scale`` + (train only) random crop with 1/8-size zero padding and a
                 horizontal flip: the usual CIFAR recipe for a small CNN at native size.
  ``crop``       as ``crop_flip`` without the flip (digits must not be mirrored).
  ``imagenet``   ImageNet-pretrained backbones: train Resize(256) + RandomCrop(224) + flip,
                 eval Resize(256) + CenterCrop(224) (DeepHash-pytorch's recipe), grey images
                 repeated to 3 channels, ImageNet mean/std normalisation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

from hashing.runs.errors import UserError

Transform = Callable[[torch.Tensor], torch.Tensor]

PRESETS = ("scale", "crop_flip", "crop", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [0, 1]; float input is returned as float32 unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    """Repeat a single grey channel to RGB (ImageNet backbones expect 3 channels)."""
    return x.expand(3, *x.shape[1:]) if x.ndim == 3 and x.shape[0] == 1 else x


class _RandomPadCrop:
    """Zero-pad by size//8 then randomly crop back to the input size (optionally flip)."""

    def __init__(self, flip: bool) -> None:
        self.flip = flip

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = to_unit_float(x)
        if x.ndim != 3:
            return x
        h, w = x.shape[-2:]
        pad = max(1, min(h, w) // 8)
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        top = int(torch.randint(0, 2 * pad + 1, ()))
        left = int(torch.randint(0, 2 * pad + 1, ()))
        x = padded[:, top : top + h, left : left + w]
        if self.flip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x


def build_transform(preset: str, train: bool) -> Transform:
    """The callable for ``preset`` in train or eval mode; unknown names raise ValueError."""
    if preset == "scale":
        return to_unit_float
    if preset in ("crop_flip", "crop"):
        return _RandomPadCrop(flip=preset == "crop_flip") if train else to_unit_float
    if preset == "imagenet":
        crop = v2.RandomCrop(224) if train else v2.CenterCrop(224)
        steps: list[Transform] = [
            v2.Lambda(_three_channels),
            v2.Resize(256, antialias=True),
            crop,
        ]
        if train:
            steps.append(v2.RandomHorizontalFlip())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        return v2.Compose(steps)
    raise UserError(f"transform preset {preset!r} unknown; expected one of {PRESETS}")
