"""PNG figures of a report: mAP against bits per method, and PR curves at one bit length.

mAP-vs-bits panels span mAP 0 to 1 with the std over seeds as error bars: an axis fitted to the
values would make a difference within the noise (0.9188 vs 0.9173) look like a cliff.

PR curves come from the data the evaluation callback writes into each run folder
(``curves/curves.json``: precision and recall by Hamming radius 0..bits); a run without it is
left out of the figure. Curves of one (method, setting) are averaged over seeds radius by
radius. Figures use matplotlib's Agg canvas directly (no pyplot, no display needed).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashing.report.runs import RunRecord, load_json
from hashing.report.table import HEADLINE, Cell, short
from hashing.runs.atomic import atomic_write

CURVES = Path("curves") / "curves.json"


def slug(text: str) -> str:
    """A file-name-safe version of a label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def series_label(method: str, setting: str) -> str:
    """Legend label of a (method, setting) line."""
    return f"{method} [{setting}]" if setting else method


def plot_map_vs_bits(cells: Sequence[Cell], out_dir: Path) -> list[Path]:
    """One figure per dataset (:func:`map_vs_bits_figure`), written as PNG into ``out_dir``."""
    by_dataset: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.bits is not None and cell.finished:
            by_dataset[cell.dataset].append(cell)
    written = []
    for dataset, group in sorted(by_dataset.items()):
        path = out_dir / f"map_vs_bits_{slug(dataset)}.png"
        figure = map_vs_bits_figure(dataset, group)
        atomic_write(path, lambda handle, fig=figure: fig.savefig(handle, format="png", dpi=120))
        written.append(path)
    return written


def map_vs_bits_figure(dataset: str, group: Sequence[Cell]) -> Figure:
    """A panel per headline metric, a line per (method, setting) with the std over seeds as
    error bars; the y axis spans 0 to 1, so that a difference of 0.002 looks like one."""
    fig = Figure(figsize=(4.2 * len(HEADLINE), 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(HEADLINE), squeeze=False)[0]
    lines: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in group:
        lines[cell.method, cell.setting].append(cell)
    for ax, metric in zip(axes, HEADLINE, strict=True):
        for (method, setting), series in sorted(lines.items()):
            points = sorted(
                (cell.bits, *cell.mean_std(metric))
                for cell in series
                if cell.mean_std(metric)[0] is not None
            )
            if not points:
                continue
            bits = [point[0] for point in points]
            means = [point[1] for point in points]
            stds = [point[2] or 0.0 for point in points]
            ax.errorbar(
                bits, means, yerr=stds, marker="o", capsize=3,
                label=series_label(method, setting),
            )  # fmt: skip
        ax.set(xlabel="bits", ylabel=short(metric), title=f"{dataset}: {short(metric)}")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(sorted({cell.bits for cell in group if cell.bits is not None}))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def mean_curve(curves: Sequence[dict]) -> tuple[list[float], list[float]] | None:
    """Seed-averaged (recall, precision) by radius; None when the radii do not agree."""
    radii = [tuple(curve["radius"]) for curve in curves]
    if len(set(radii)) != 1:
        return None
    count = len(curves)
    recall = [sum(values) / count for values in zip(*(c["recall"] for c in curves), strict=True)]
    precision = [
        sum(values) / count for values in zip(*(c["precision"] for c in curves), strict=True)
    ]
    return recall, precision


def run_curve(run: RunRecord) -> dict | None:
    """The PR-by-radius curve a finished run wrote (None when it wrote none)."""
    data = load_json(run.path / CURVES)
    if not isinstance(data, dict):
        return None
    curve = data.get("pr_curve")
    if not isinstance(curve, dict) or not {"radius", "precision", "recall"} <= set(curve):
        return None
    return curve


def pr_bits_for(runs: Sequence[RunRecord], requested: int | None) -> int | None:
    """The bit length to plot: the requested one, else the largest one that has curves."""
    available = sorted({run.bits for run in runs if run.bits is not None and run_curve(run)})
    if requested is not None:
        return requested if requested in available else None
    return available[-1] if available else None


def plot_pr_curves(runs: Sequence[RunRecord], out_dir: Path, bits: int | None = None) -> list[Path]:
    """One figure per dataset with a PR curve (by Hamming radius) per (method, setting)."""
    finished = [run for run in runs if run.status == "ok"]
    written = []
    for dataset in sorted({run.dataset for run in finished}):
        in_dataset = [run for run in finished if run.dataset == dataset]
        chosen = pr_bits_for(in_dataset, bits)
        if chosen is None:
            continue
        curves: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for run in in_dataset:
            curve = run_curve(run) if run.bits == chosen else None
            if curve is not None:
                curves[run.method, run.setting].append(curve)
        fig = Figure(figsize=(5.5, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for (method, setting), group in sorted(curves.items()):
            averaged = mean_curve(group)
            if averaged is None:
                continue
            ax.plot(*averaged, marker="o", markersize=3, label=series_label(method, setting))
        ax.set(
            xlabel="recall",
            ylabel="precision",
            title=f"{dataset}, {chosen} bits: PR by Hamming radius",
            xlim=(0, 1.02),
            ylim=(0, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"pr_curves_{slug(dataset)}_{chosen}bits.png"
        atomic_write(path, lambda handle, fig=fig: fig.savefig(handle, format="png", dpi=120))
        written.append(path)
    return written
