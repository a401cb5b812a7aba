"""A torch.Generator whose state travels in checkpoints, so a resumed run draws what an
uninterrupted one would (TBH's priors and stochastic thresholds)."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor


class CheckpointedGenerator:
    """A generator seeded ``seed + rank`` on first use, or restored from a checkpoint's state.

    Args:
        key: the checkpoint entry that holds the state.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self._generator: torch.Generator | None = None
        self._pending_state: Tensor | None = None

    def get(self, device: torch.device, seed: int, step: int) -> torch.Generator:
        """The generator on ``device``; ``step`` reseeds it if a saved state does not fit."""
        if self._generator is None or self._generator.device != device:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
            if self._pending_state is not None:
                try:
                    generator.set_state(self._pending_state)
                except RuntimeError:
                    rank_zero_warn(
                        "the checkpoint's generator state does not fit this device; it is "
                        "reseeded, so this resume is not draw-for-draw exact"
                    )
                    generator.manual_seed(seed + step)
                self._pending_state = None
            self._generator = generator
        return self._generator

    def save(self, checkpoint: dict[str, Any]) -> None:
        """Store the state under ``key`` once the generator has been used."""
        if self._generator is not None:
            checkpoint[self.key] = self._generator.get_state()

    def load(self, checkpoint: dict[str, Any]) -> None:
        """Restore the stored state at the next :meth:`get`."""
        state = checkpoint.get(self.key)
        if state is not None:
            self._pending_state = state.cpu()
            self._generator = None
