"""The model summary at the start of fit, without the columns Lightning cannot fill.

Lightning's RichModelSummary prints a FLOPs column and a ``Total FLOPs: 0`` line whenever the
model has no ``example_input_array`` (ours have none: the input shape comes from the data), and
six lines of totals; :class:`CompactModelSummary` keeps the table (FLOPs only when measured) and
one line of totals.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import RichModelSummary
from pytorch_lightning.utilities.model_summary import get_human_readable_count


class CompactModelSummary(RichModelSummary):
    """RichModelSummary (same arguments) with FLOPs shown only when counted."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        """Print the layer table and ``params: 24.9 K (24.9 K trainable) · 0.1 MB``."""
        from rich import get_console
        from rich.table import Table

        columns = [
            (name, values) for name, values in summary_data if total_flops or name != "FLOPs"
        ]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            justify = "right" if name in ("Params", "FLOPs") else "left"
            table.add_column(name, justify=justify, style="dim" if name == " " else None)
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        totals = (
            f"params: {get_human_readable_count(int(total_parameters))} "
            f"({get_human_readable_count(int(trainable_parameters))} trainable) · "
            f"{model_size:.1f} MB"
        )
        if total_flops:
            totals += f" · FLOPs: {get_human_readable_count(int(total_flops))}"
        console.print(totals)
