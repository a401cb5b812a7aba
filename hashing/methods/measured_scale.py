"""A scalar a method measures once, on its first training batch, and keeps for good.

It lives in a buffer of the owning module, so checkpoints carry it and a resumed run never
re-measures it, and in a host-side float equal to the buffer, so training steps read it without
a device sync. Supervised TBH's relative classification weight is one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class MeasuredScale:
    """Buffer ``owner.<name>`` (NaN until measured) with its value mirrored on the host.

    Args:
        owner: the module that holds the buffer.
        name: the buffer's name in the owner's state dict.
        legacy_value: the value a checkpoint saved before the buffer existed stands for.
    """

    def __init__(self, owner: nn.Module, name: str, legacy_value: float) -> None:
        owner.register_buffer(name, torch.tensor(float("nan")))
        owner.register_load_state_dict_post_hook(self._mirror)
        self.name = name
        self.legacy_value = legacy_value
        self.value = float("nan")

    @property
    def measured(self) -> bool:
        """Whether the value has been measured (or loaded)."""
        return not math.isnan(self.value)

    def store(self, owner: nn.Module, value: float) -> None:
        """Fill the buffer; mirror it rounded to the buffer's precision (what a resume loads)."""
        buffer = getattr(owner, self.name)
        buffer.fill_(value)
        self.value = float(torch.tensor(value, dtype=buffer.dtype))

    def upgrade(self, state_dict: dict[str, Any]) -> None:
        """Give a checkpoint's state dict from before the buffer existed its legacy value."""
        if state_dict and self.name not in state_dict:
            state_dict[self.name] = torch.tensor(self.legacy_value)

    def _mirror(self, owner: nn.Module, incompatible_keys: Any) -> None:
        self.value = float(getattr(owner, self.name))
