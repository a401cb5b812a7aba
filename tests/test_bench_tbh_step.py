"""benchmarks/bench_tbh_step.py: its analytic FLOP counts against torch's own counter, and the
fused Adam TBH now uses against the for-loop Adam it used before."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import bench_training
from benchmarks.bench_tbh_step import mlp_sizes, mlp_step_flops, reference_mlp, tbh_step_flops
from hashing.backbones.identity import Identity
from hashing.methods.tbh import TBH

SIZES = {"inputs": 24, "hidden": 16, "bits": 8, "continuous": 12}


def small_tbh(lambda_cls: float, fused: bool, seed: int = 0) -> TBH:
    torch.manual_seed(seed)
    return TBH(
        lambda_cls=lambda_cls,
        backbone=Identity([SIZES["inputs"]]),
        bits=SIZES["bits"],
        num_classes=3,
        hidden_features=SIZES["hidden"],
        continuous_features=SIZES["continuous"],
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3, eps=1e-7, fused=fused),
    )


def batch(seed: int = 0, size: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(size, SIZES["inputs"], generator=generator) * 3
    return x, torch.randint(0, 3, (size,), generator=generator)


@pytest.mark.parametrize("lambda_cls", [0.0, 1.0])
def test_tbh_step_flops_match_torch_flop_counter(lambda_cls: float) -> None:
    model = small_tbh(lambda_cls, fused=True)
    step = bench_training.plain_step(model, model.configure_optimizers())
    x, y = batch()
    with FlopCounterMode(display=False) as counter:
        step(x, y)
    # the supervised loss also backpropagates through the classifier: the count must differ
    expected = tbh_step_flops(x.shape[0], **SIZES, classes=3)
    if lambda_cls:
        expected += 2 * 2 * x.shape[0] * SIZES["bits"] * 3
    assert counter.get_total_flops() == expected


def test_mlp_step_flops_match_torch_flop_counter() -> None:
    sizes = mlp_sizes(**SIZES)
    net = reference_mlp(sizes)
    x, _ = batch()
    with FlopCounterMode(display=False) as counter:
        (0.5 * (net(x) - x).square().sum()).backward()
    assert counter.get_total_flops() == mlp_step_flops(x.shape[0], sizes)


def test_fused_adam_trains_tbh_as_the_for_loop_adam() -> None:
    """Same weights, same batches: the two Adams differ only in float rounding."""
    models = {fused: small_tbh(0.0, fused) for fused in (True, False)}
    start = [p.detach().clone() for p in models[True].parameters()]
    for model in models.values():
        step = bench_training.plain_step(model, model.configure_optimizers())
        for seed in range(5):
            step(*batch(seed))
    pairs = zip(models[True].parameters(), models[False].parameters(), start, strict=True)
    moved = 0
    for fused, loop, initial in pairs:
        update = (loop.detach() - initial).abs().max()
        moved += bool(update > 0)
        assert torch.allclose(fused, loop, rtol=0, atol=1e-3 * float(update) + 1e-7)
    assert moved > 10  # the comparison covers trained parameters, not frozen ones
