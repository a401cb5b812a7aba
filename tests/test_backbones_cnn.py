"""SmallCNN: shapes for several input sizes, a learning sanity check, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from hashing.backbones.cnn import SmallCNN


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (1, 8, 8), (3, 1, 1)])
def test_shapes(shape: tuple[int, int, int]) -> None:
    net = SmallCNN(shape)
    assert net.out_features == 256
    assert net(torch.randn(4, *shape)).shape == (4, 256)


def test_without_head() -> None:
    net = SmallCNN((3, 16, 16), channels=(8, 16), convs_per_block=2, hidden_dim=None)
    assert net.out_features == 16 and net(torch.randn(2, 3, 16, 16)).shape == (2, 16)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16]


def test_it_can_fit_a_tiny_problem() -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 3, 16, 16)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    net = SmallCNN((3, 16, 16), channels=(8, 16), hidden_dim=16)
    head = torch.nn.Linear(net.out_features, 2)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(head(net(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2


def test_bad_values() -> None:
    with pytest.raises(ValueError, match=r"image input .*\(4096,\)"):
        SmallCNN((4096,))
    with pytest.raises(ValueError, match="dropout"):
        SmallCNN((3, 8, 8), dropout=1.5)


def test_channels_last_gives_the_same_function() -> None:
    torch.manual_seed(0)
    nhwc = SmallCNN((3, 16, 16), channels=(8, 16), channels_last=True).eval()
    nchw = SmallCNN((3, 16, 16), channels=(8, 16), channels_last=False).eval()
    nchw.load_state_dict(nhwc.state_dict())
    x = torch.randn(3, 3, 16, 16)
    assert torch.allclose(nhwc(x), nchw(x), atol=1e-5)
