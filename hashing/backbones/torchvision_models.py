"""torchvision AlexNet / VGG-16 / ResNet-18/34/50 as feature extractors (classifier removed).

Features are what the hashing literature takes: AlexNet and VGG-16 up to fc7 (4096-d, after
its ReLU and dropout), ResNets after global average pooling (512 / 2048-d). ``pretrained``
loads ImageNet weights through torchvision's weights API; nothing is ever downloaded at run
time: the weight file must already sit where torchvision looks for it,
``torch.hub.get_dir()/checkpoints/<file name of the weights URL>`` (``$TORCH_HOME/hub/
checkpoints`` when TORCH_HOME is set, else ``~/.cache/torch/hub/checkpoints``), otherwise the
constructor fails at once with the URL and the path. These backbones want the ``imagenet``
transform preset (224 px crops, ImageNet normalisation); their configs say so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models

from hashing.runs.errors import MissingFileError, UserError

ARCHS = ("alexnet", "vgg16", "resnet18", "resnet34", "resnet50")


def weights_path(arch: str, weights: str) -> tuple[models.WeightsEnum, Path]:
    """torchvision's weights entry and the local file it loads from (no network)."""
    if arch not in ARCHS:
        raise UserError(f"arch {arch!r} unknown; expected one of {ARCHS}")
    enum = models.get_model_weights(arch)
    try:
        entry = enum[weights]
    except KeyError as err:
        names = [w.name for w in enum] + ["DEFAULT"]
        raise UserError(f"weights {weights!r} unknown for {arch}; expected one of {names}") from err
    filename = os.path.basename(urlparse(entry.url).path)
    return entry, Path(torch.hub.get_dir()) / "checkpoints" / filename


def require_cached_weights(arch: str, weights: str) -> models.WeightsEnum:
    """The weights entry, after checking its file is cached; else FileNotFoundError saying
    where to put it (checked before torchvision is called, so no download is attempted)."""
    entry, path = weights_path(arch, weights)
    if not path.is_file():
        raise MissingFileError(
            f"pretrained {arch} weights ({entry}) are not cached and this project never "
            f"downloads at run time. torchvision looks for {path} "
            f"(torch.hub.get_dir()/checkpoints/<filename>; set TORCH_HOME to move it). On a "
            f"machine with internet: download {entry.url} and copy the file to that path, or "
            f"set pretrained: false"
        )
    return entry


class TorchvisionBackbone(nn.Module):
    """A torchvision classifier without its last layer; ``out_features`` is the feature size."""

    def __init__(
        self,
        arch: str,
        input_shape: Sequence[int],
        pretrained: bool = False,
        weights: str = "IMAGENET1K_V1",
        transform: str | None = "imagenet",
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise UserError(f"arch {arch!r} unknown; expected one of {ARCHS}")
        if len(input_shape) != 3 or int(input_shape[0]) != 3:
            raise UserError(
                f"{arch} needs RGB images (3, H, W), got input_shape {tuple(input_shape)}; use "
                f"the 'imagenet' transform preset (it repeats grey images to 3 channels)"
            )
        self.arch = arch
        self.input_shape = tuple(int(d) for d in input_shape)
        self.transform = transform
        entry = require_cached_weights(arch, weights) if pretrained else None
        model = models.get_model(arch, weights=entry)
        if arch.startswith("resnet"):
            self.out_features = int(model.fc.in_features)
            model.fc = nn.Identity()
            self.body: nn.Module = model
        else:
            head = list(model.classifier.children())[:-1]
            self.out_features = int(model.classifier[-1].in_features)
            self.body = nn.Sequential(model.features, model.avgpool, nn.Flatten(), *head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, out_features)."""
        return self.body(x)
