"""MNIST, CIFAR-10 and CIFAR-100 through torchvision, held in memory as uint8 tensors.

The pool is the official train split followed by the official test split (70,000 / 60,000 /
60,000 items), so per-class protocols draw from all of it and ``official`` (``*-2``) uses the
two splits as given. Protocol names (docs/metrics.md#protocols): ``cifar10`` (disjoint: query,
train, database = the rest), ``cifar10-1`` (train drawn from the database), ``cifar10-2``
(official), and the same with the dataset's name (``mnist-1``, ``cifar100-2``, ...).

Per-class counts: MNIST and CIFAR-10 use the protocol's 100 queries and 500 training images a class
(MNIST's smallest class, 5, has 6,313 images). CIFAR-100 has 600 images a class, so its
defaults are scaled to keep the protocol's totals: 10 queries and 50 training images a class (1,000
queries, 5,000 training images, 54,000 database under ``cifar100``).

``download: true`` fetches through torchvision in :meth:`prepare_data` (online machines);
offline, ``root`` must already hold torchvision's layout (``<root>/MNIST/raw/...``,
``<root>/cifar-10-batches-py``, ``<root>/cifar-100-python``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.error import URLError
from urllib.parse import urlsplit

import numpy as np
import torch
from torchvision import datasets

from hashing.data.base import Pool, RetrievalDataModule, build_protocol
from hashing.data.splits import Protocol
from hashing.runs.errors import MissingFileError, UserError


class TorchvisionDataModule(RetrievalDataModule):
    """Shared logic of the torchvision-backed datasets (subclasses set the class vars)."""

    dataset_class: ClassVar[type]
    default_name: ClassVar[str]
    layout_hint: ClassVar[str]
    num_classes_: ClassVar[int]
    default_transform = "crop_flip"

    def __init__(
        self,
        root: str | Path,
        download: bool = False,
        protocol: str | None = None,
        query_per_class: int = 100,
        train_per_class: int = 500,
        name: str | None = None,
        **base_options: Any,
    ) -> None:
        name = name or self.default_name
        super().__init__(
            name=name,
            **base_options,
        )
        self.root = Path(root)
        self.download = bool(download)
        protocol = protocol or name
        self._proto = build_protocol(protocol, self.default_name, query_per_class, train_per_class)

    def _protocol(self) -> Protocol:
        return self._proto

    def prepare_data(self) -> None:
        """Download both official splits when ``download`` is true (rank 0 only); a machine
        that cannot reach the host gets a :class:`UserError` saying where to put the files."""
        if not self.download:
            return
        try:
            for train in (True, False):
                self.dataset_class(root=str(self.root), train=train, download=True)
        except (URLError, OSError, RuntimeError) as error:
            offline = isinstance(error, URLError | ConnectionError | TimeoutError) or (
                isinstance(error, RuntimeError) and str(error).startswith("Error downloading")
            )
            if not offline:
                raise
            raise UserError(self.offline_message(error)) from error

    def offline_message(self, error: BaseException) -> str:
        """What to do when the download host is out of reach (no network, a proxy, a firewall)."""
        url = getattr(self.dataset_class, "url", None) or self.dataset_class.mirrors[0]
        host = urlsplit(url).netloc
        reason = getattr(error, "reason", None) or str(error).strip().splitlines()[-1]
        reason = re.sub(r"^<urlopen error (.*)>$", r"\1", str(reason))  # MNIST's list of tries
        return (
            f"data.download=true, but this machine could not reach {host} to download "
            f"{self.name} ({reason}). Download it where there is network access (from {url}), "
            f"put the files under data.root={self.root} laid out as {self.layout_hint}, then "
            f"run with data.download=false"
        )

    def _open(self, train: bool) -> object:
        if not self.root.is_dir():
            raise MissingFileError(
                f"{self.name} root {self.root} does not exist; set download: true (online) or "
                f"point root at a copy laid out as {self.layout_hint}"
            )
        try:
            return self.dataset_class(root=str(self.root), train=train, download=False)
        except RuntimeError as err:
            hint = " (call prepare_data() first)" if self.download else " (download is false)"
            raise MissingFileError(
                f"{self.name} files not found under {self.root}{hint}; expected "
                f"{self.layout_hint} ({err})"
            ) from err

    @staticmethod
    def _images(data: object) -> torch.Tensor:
        """torchvision's stored array -> uint8 (N, C, H, W)."""
        array = torch.as_tensor(np.asarray(data))
        if array.ndim == 3:
            return array.unsqueeze(1).contiguous()
        return array.permute(0, 3, 1, 2).contiguous()

    def _load_pool(self) -> Pool:
        train, test = self._open(True), self._open(False)
        images = torch.cat([self._images(train.data), self._images(test.data)])  # type: ignore[attr-defined]
        labels = torch.cat(
            [torch.as_tensor(np.asarray(s.targets), dtype=torch.long) for s in (train, test)]  # type: ignore[attr-defined]
        )
        n_train = len(train)  # type: ignore[arg-type]
        groups = {"train": np.arange(n_train), "test": np.arange(n_train, len(labels))}
        return Pool(images, labels, self.num_classes_, groups)


class MNISTDataModule(TorchvisionDataModule):
    """MNIST (70,000 28x28 grey digits) as uint8 (1, 28, 28); defaults to protocol ``mnist``."""

    dataset_class = datasets.MNIST
    default_name = "mnist"
    layout_hint = "<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte"
    num_classes_ = 10
    default_transform = "crop"


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10 (60,000 32x32 colour images, 10 classes); defaults to protocol ``cifar10``."""

    dataset_class = datasets.CIFAR10
    default_name = "cifar10"
    layout_hint = "<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}"
    num_classes_ = 10


class CIFAR100DataModule(TorchvisionDataModule):
    """CIFAR-100 (60,000 32x32 images, 100 fine classes); 10 queries + 50 train per class."""

    dataset_class = datasets.CIFAR100
    default_name = "cifar100"
    layout_hint = "<root>/cifar-100-python/{train,test}"
    num_classes_ = 100

    def __init__(
        self,
        root: str | Path,
        query_per_class: int = 10,
        train_per_class: int = 50,
        **kwargs: object,
    ) -> None:
        super().__init__(
            root,
            query_per_class=query_per_class,
            train_per_class=train_per_class,
            **kwargs,  # type: ignore[arg-type]
        )
