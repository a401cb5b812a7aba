"""The run's seed sets the batch order; an explicit data.shuffle_seed wins over it.

The order is pinned to an independent computation (docs/resume.md): epoch ``e`` visits the fit
split in ``torch.randperm(n)`` order drawn from a generator seeded with numpy's
``SeedSequence([seed, e])`` (its first 64-bit word, shifted right by one). A refactoring of the
loader must keep these batches bit for bit: runs started before it resume on the same batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hashing import pipeline
from tests.helpers.runs import compose_run

BATCH = 64  # digits' data.batch_size


def expected_order(seed: int, epoch: int, items: int) -> torch.Tensor:
    """Epoch ``epoch``'s order of ``items`` fit items under order seed ``seed``, computed here."""
    word = np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]
    generator = torch.Generator().manual_seed(int(word) >> 1)
    return torch.randperm(items, generator=generator)


def epoch_positions(tmp_path: Path, overrides: list[str], epoch: int) -> torch.Tensor:
    """Fit-split positions of every batch of ``epoch``, from the loader the pipeline builds."""
    run = tmp_path / "_".join(o.replace("=", "").replace("+", "") for o in overrides)
    run.mkdir(exist_ok=True)
    cfg = compose_run("train", run, tmp_path / "cache", overrides)
    datamodule, _, _ = pipeline.build_run(cfg, run)
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return torch.cat([idx for *_, idx in loader])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("epoch", [0, 3])
def test_order_is_the_documented_permutation_of_seed_and_epoch(
    tmp_path: Path, seed: int, epoch: int
) -> None:
    got = epoch_positions(tmp_path, [f"seed={seed}"], epoch)
    assert torch.equal(got, expected_order(seed, epoch, len(got)))


def test_different_seeds_give_different_first_batches(tmp_path: Path) -> None:
    firsts = [epoch_positions(tmp_path, [f"seed={seed}"], 0)[:BATCH] for seed in (0, 1, 2)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not torch.equal(firsts[a], firsts[b]), (a, b)
    # the split is data.split_seed's: the same items, visited in another order
    assert sorted(epoch_positions(tmp_path, ["seed=1"], 0).tolist()) == list(range(720))


def test_explicit_shuffle_seed_wins_over_the_run_seed(tmp_path: Path) -> None:
    one = epoch_positions(tmp_path, ["seed=0", "+data.shuffle_seed=7"], 1)
    other = epoch_positions(tmp_path, ["seed=1", "+data.shuffle_seed=7"], 1)
    assert torch.equal(one, other)
    assert torch.equal(one, expected_order(7, 1, len(one)))


def test_same_seed_gives_identical_runs(tmp_path: Path) -> None:
    overrides = ["bits=16", "seed=3", "trainer.max_epochs=1", "trainer.deterministic=true"]
    cache = tmp_path / "cache"
    first = pipeline.train(compose_run("train", tmp_path / "a", cache, overrides))
    again = pipeline.train(compose_run("train", tmp_path / "b", cache, overrides))
    assert first == again
    weights = [
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for run in (tmp_path / "a", tmp_path / "b")
    ]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
