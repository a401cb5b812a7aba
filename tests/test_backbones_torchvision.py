"""torchvision backbones: feature sizes, and offline pretrained weights (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import models

from hashing.backbones.torchvision_models import (
    TorchvisionBackbone,
    require_cached_weights,
    weights_path,
)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TORCH_HOME in a temp dir, and any download attempt fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path


@pytest.mark.parametrize(("arch", "size"), [("alexnet", 4096), ("resnet18", 512)])
def test_feature_sizes(arch: str, size: int) -> None:
    net = TorchvisionBackbone(arch, (3, 64, 64), pretrained=False).eval()
    assert net.out_features == size
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, size)


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "size"), [("vgg16", 4096), ("resnet34", 512), ("resnet50", 2048)])
def test_feature_sizes_large(arch: str, size: int) -> None:
    net = TorchvisionBackbone(arch, (3, 64, 64), pretrained=False).eval()
    assert net.out_features == size and net(torch.zeros(1, 3, 64, 64)).shape == (1, size)


def test_resnet_features_are_pre_classifier() -> None:
    torch.manual_seed(0)
    reference = models.resnet18().eval()
    net = TorchvisionBackbone("resnet18", (3, 32, 32)).eval()
    net.body.load_state_dict({k: v for k, v in reference.state_dict().items() if "fc" not in k})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = reference(x)
        assert torch.allclose(reference.fc(net(x)), logits, atol=1e-5)


def test_missing_weights_fail_before_any_download(torch_home: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        TorchvisionBackbone("resnet18", (3, 32, 32), pretrained=True)
    expected = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert str(expected) in str(info.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in str(info.value)


def test_cached_weights_are_loaded(torch_home: Path) -> None:
    _, path = weights_path("resnet18", "IMAGENET1K_V1")
    assert path == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.manual_seed(1)
    stored = models.resnet18().state_dict()
    torch.save(stored, path)
    net = TorchvisionBackbone("resnet18", (3, 32, 32), pretrained=True)
    assert torch.equal(net.body.conv1.weight, stored["conv1.weight"])
    assert require_cached_weights("resnet18", "IMAGENET1K_V1").name == "IMAGENET1K_V1"


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="arch 'resnet101'"):
        TorchvisionBackbone("resnet101", (3, 32, 32))
    with pytest.raises(ValueError, match=r"RGB images .*\(1, 28, 28\)"):
        TorchvisionBackbone("resnet18", (1, 28, 28))
    with pytest.raises(ValueError, match="weights 'IMAGENET9K'"):
        weights_path("resnet18", "IMAGENET9K")
