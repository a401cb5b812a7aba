"""Carry the global random number generators' states through checkpoints.

Lightning does not save them, so a resumed run would draw other dropout masks and random
augmentations (main-process data loading) than the uninterrupted run. The states are captured
when a checkpoint is written and put back at ``on_train_start`` of the resumed fit: after the
model was rebuilt and the first training iterator created, just before the next batch, which is
where the interrupted run was when it saved.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


class RNGState(pl.Callback):
    """Saves torch (CPU and CUDA), numpy and Python RNG states; restores them on resume."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The states now (called while a checkpoint is written)."""
        kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
        # plain tensors and numbers only, so the checkpoint still loads with weights_only=True
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "kind": str(kind),
                "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                "position": int(position),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached_gaussian),
            },
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the checkpoint's states until training starts."""
        self._pending = dict(state_dict)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Put the checkpoint's states back (only when resuming)."""
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        saved = state["numpy"]
        np.random.set_state(
            (
                saved["kind"],
                saved["keys"].numpy().astype(np.uint32),
                saved["position"],
                saved["has_gauss"],
                saved["cached_gaussian"],
            )
        )
        random.setstate(state["python"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
