"""A trained model as a code encoder: checkpoint -> model, image files or tensors -> ±1 codes.

The model is rebuilt from the resolved run config stored in its checkpoint (no DataModule
needed: the input shape comes from an :class:`InputSpec`, the class count from the
checkpoint's hyperparameters), so an index can be searched on a machine without the
training data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2.functional import resize

from hashing.data.transforms import build_transform
from hashing.digests import state_dict_digest
from hashing.index.image_files import read_image
from hashing.methods.base import HashingModule
from hashing.pipeline import build_model, run_config_of
from hashing.runs.checkpoint_file import read_checkpoint

#: eval transforms that keep the image size: a file is resized to the model's input size
#: before them (the others, e.g. ``imagenet``, resize and crop themselves)
SIZE_KEEPING_PRESETS = ("scale", "crop", "crop_flip")

log = logging.getLogger(__name__)


#: PIL modes of single-channel images
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
_warned: set[str] = set()


def warn_once(kind: str, message: str) -> None:
    """Log ``message`` the first time a conversion of this ``kind`` happens in the process."""
    if kind not in _warned:
        _warned.add(kind)
        log.warning("%s (further such images are converted without a warning)", message)


def check_channels(path: str | Path, mode: str | None) -> None:
    """Warn when an image file's channels differ from the model's (it is converted).

    Opening the file for its mode costs a second open per image, so it stops once the
    warning has fired (it is logged once a process anyway)."""
    if mode is None or "channels" in _warned:
        return
    try:
        with Image.open(path) as image:
            native = image.mode
    except OSError:
        return  # read_image reports unreadable files
    if (mode == "L") != (native in GRAY_MODES):
        wanted = "grayscale" if mode == "L" else "RGB"
        warn_once(
            "channels",
            f"image {path} is {native} but the model was trained on {wanted} images: converted",
        )


@dataclass(frozen=True)
class InputSpec:
    """What the model takes and how an image file becomes that.

    Args:
        shape: one input's shape after the transform, e.g. (1, 8, 8) or (3, 224, 224).
        transform: the eval transform preset (:mod:`hashing.data.transforms`).
        image_size: square size images are decoded to before the transform (as the dataset
            did), or None: resize to ``shape`` for size-keeping presets, else leave as is.
        mode: PIL mode "L" or "RGB"; None when inputs are not images (feature vectors).
    """

    shape: tuple[int, ...]
    transform: str
    image_size: int | None = None
    mode: str | None = None

    @classmethod
    def from_datamodule(cls, datamodule: pl.LightningDataModule) -> InputSpec:
        """The spec a set-up RetrievalDataModule implies."""
        shape = tuple(int(s) for s in datamodule.input_shape)
        mode = getattr(datamodule, "mode", None)
        if mode not in ("L", "RGB"):
            mode = {1: "L", 3: "RGB"}.get(shape[0]) if len(shape) == 3 else None
        size = getattr(datamodule, "image_size", None)
        return cls(shape, str(datamodule.transform), None if size is None else int(size), mode)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> InputSpec:
        """Spec from the manifest's ``input`` entry."""
        size = values.get("image_size")
        return cls(
            tuple(int(s) for s in values["shape"]),
            str(values["transform"]),
            None if size is None else int(size),
            values.get("mode"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the manifest."""
        return {
            "shape": list(self.shape),
            "transform": self.transform,
            "image_size": self.image_size,
            "mode": self.mode,
        }

    def prepare(self, path: str | Path) -> Tensor:
        """Read one image file and transform it into a model input of ``shape``."""
        if self.mode is None:
            raise ValueError(
                f"this model takes inputs of shape {self.shape}, not images: pass codes or "
                f"input tensors instead of image files"
            )
        check_channels(path, self.mode)
        image = read_image(path, self.mode, self.image_size)
        if (
            self.image_size is None
            and self.transform in SIZE_KEEPING_PRESETS
            and tuple(image.shape[1:]) != self.shape[1:]
        ):
            warn_once(
                "size",
                f"image {path} is {image.shape[1]}x{image.shape[2]} px but the model was "
                f"trained on {self.shape[1]}x{self.shape[2]}: resized (codes of resized images "
                "may retrieve worse)",
            )
            image = resize(image, list(self.shape[1:]), antialias=True)
        x = build_transform(self.transform, train=False)(image)
        if tuple(x.shape) != self.shape:
            raise ValueError(
                f"image {path} became an input of shape {tuple(x.shape)}; the model takes "
                f"{self.shape} (transform {self.transform!r}, image_size {self.image_size})"
            )
        return x


class _FileDataset(Dataset):
    """Image files prepared by an :class:`InputSpec`, for batched encoding."""

    def __init__(self, paths: Sequence[str], spec: InputSpec) -> None:
        self.paths = list(paths)
        self.spec = spec

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        return self.spec.prepare(self.paths[index])


class CodeEncoder:
    """Encodes model inputs, image files or a dataset split with a trained hashing model."""

    def __init__(
        self,
        model: HashingModule,
        input_spec: InputSpec,
        config: Mapping[str, Any],
        checkpoint: str | Path | None = None,
        batch_size: int = 256,
        num_workers: int = 0,
        device: str = "cpu",
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.to(device).eval()
        self.input_spec = input_spec
        self.config = dict(config)
        self.checkpoint = None if checkpoint is None else Path(checkpoint).resolve()
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.device = torch.device(device)
        self._weights_digest: str | None = None

    @classmethod
    def from_checkpoint(
        cls, ckpt_path: str | Path, input_spec: InputSpec, **options: Any
    ) -> CodeEncoder:
        """Rebuild the model of a ``hashing.train`` checkpoint for inputs of ``input_spec``."""
        checkpoint = read_checkpoint(ckpt_path, "ckpt_path")
        run_cfg = run_config_of(checkpoint, ckpt_path)
        hparams = checkpoint.get("hyper_parameters", {})
        if "num_classes" not in hparams:
            raise ValueError(f"{ckpt_path} lacks hyper_parameters.num_classes; cannot rebuild it")
        shape_source = SimpleNamespace(
            input_shape=input_spec.shape,
            num_classes=int(hparams["num_classes"]),
            multi_label=bool(hparams.get("multi_label", False)),
        )
        model = build_model(run_cfg, shape_source)  # type: ignore[arg-type]
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
        config = OmegaConf.to_container(run_cfg, resolve=True)
        return cls(model, input_spec, config, checkpoint=ckpt_path, **options)  # type: ignore[arg-type]

    @property
    def bits(self) -> int:
        """Code length of the model."""
        return int(self.model.bits)

    @property
    def weights_digest(self) -> str:
        """SHA-256 of the model's weights (computed once)."""
        if self._weights_digest is None:
            self._weights_digest = state_dict_digest(self.model)
        return self._weights_digest

    @torch.no_grad()
    def encode_inputs(self, inputs: Tensor) -> np.ndarray:
        """±1 int8 codes (N, bits) of a tensor of model inputs (N, *shape)."""
        if tuple(inputs.shape[1:]) != self.input_spec.shape:
            raise ValueError(
                f"inputs have shape {tuple(inputs.shape)}; the model takes (N, "
                f"{', '.join(map(str, self.input_spec.shape))})"
            )
        parts = [
            self.model.encode(inputs[start : start + self.batch_size].to(self.device))
            for start in range(0, len(inputs), self.batch_size)
        ]
        return self._as_codes(parts)

    @torch.no_grad()
    def encode_files(self, paths: Sequence[str]) -> np.ndarray:
        """±1 int8 codes (N, bits) of image files, read and transformed by the input spec."""
        loader = DataLoader(
            _FileDataset(paths, self.input_spec),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
        )
        return self._as_codes([self.model.encode(x.to(self.device)) for x in loader])

    @torch.no_grad()
    def encode_dataset(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """±1 int8 codes and labels of a split dataset yielding (x, y, idx), in idx order."""
        loader = DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers)
        codes, labels, order = [], [], []
        for x, y, idx in loader:
            codes.append(self.model.encode(x.to(self.device)))
            labels.append(y)
            order.append(idx)
        positions = torch.cat(order).argsort()
        return self._as_codes(codes)[positions.numpy()], torch.cat(labels)[positions].numpy()

    def _as_codes(self, parts: list[Tensor]) -> np.ndarray:
        if not parts:
            return np.zeros((0, self.bits), np.int8)
        return torch.cat(parts).to(torch.int8).cpu().numpy()
