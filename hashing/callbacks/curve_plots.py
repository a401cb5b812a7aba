"""Write the PR-by-radius and P@k curves as PNG figures and JSON data (and to wandb if used)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashing.metrics.functional.report import RetrievalReport
from hashing.runs.atomic import atomic_write, write_text_atomic


def curve_data(report: RetrievalReport, curve_ks: list[int]) -> dict[str, Any]:
    """The curves (and the headline numbers) as plain JSON-serialisable lists."""
    curve = report.radius_curve
    return {
        "num_queries": report.num_queries,
        "num_database": report.num_database,
        "bits": report.bits,
        "pr_curve": {
            "radius": curve.radius.tolist(),
            "precision": curve.precision.tolist(),
            "recall": curve.recall.tolist(),
            "retrieved_fraction": curve.retrieved_fraction.tolist(),
        },
        "precision_at_k": {
            "k": list(curve_ks),
            "precision": [report.precision_at_k[k] for k in curve_ks],
        },
        "mAP": {"ALL" if k is None else str(k): v for k, v in report.map_at_k.items()},
        "mAP_tie_aware": {
            "ALL" if k is None else str(k): v for k, v in report.tie_aware_map_at_k.items()
        },
    }


def write_curves(data: dict[str, Any], folder: Path, title: str) -> dict[str, Path]:
    """Save ``pr_curve.png``, ``precision_at_k.png`` and ``curves.json`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "curves.json",
        "pr_curve": folder / "pr_curve.png",
        "precision_at_k": folder / "precision_at_k.png",
    }
    write_text_atomic(paths["json"], json.dumps(data, indent=2))

    pr = data["pr_curve"]
    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)  # Agg canvas: no display and no change to pyplot's global backend
    ax = fig.subplots()
    ax.plot(pr["recall"], pr["precision"], marker="o", markersize=3)
    for r, x, y in zip(pr["radius"], pr["recall"], pr["precision"], strict=True):
        if r <= 4 or r == pr["radius"][-1]:
            ax.annotate(str(r), (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set(xlabel="recall", ylabel="precision", title=f"{title}: PR by Hamming radius")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(paths["pr_curve"], lambda handle: fig.savefig(handle, format="png", dpi=120))

    pk = data["precision_at_k"]
    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)  # Agg canvas: no display and no change to pyplot's global backend
    ax = fig.subplots()
    ax.plot(pk["k"], pk["precision"], marker="o", markersize=3)
    ax.set_xscale("log")
    ax.set(xlabel="k (returned items)", ylabel="precision@k", title=f"{title}: P@k")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(paths["precision_at_k"], lambda handle: fig.savefig(handle, format="png", dpi=120))
    return paths


def log_curves_to_wandb(
    logger: Any, data: dict[str, Any], paths: dict[str, Path], prefix: str
) -> None:
    """Log the curves to a WandbLogger as line plots and images; no-op without wandb."""
    try:
        import wandb
    except ImportError:
        return
    pr = data["pr_curve"]
    pk = data["precision_at_k"]
    pr_table = wandb.Table(
        columns=["radius", "recall", "precision"],
        data=[list(row) for row in zip(pr["radius"], pr["recall"], pr["precision"], strict=True)],
    )
    pk_table = wandb.Table(
        columns=["k", "precision"],
        data=[list(row) for row in zip(pk["k"], pk["precision"], strict=True)],
    )
    logger.experiment.log(
        {
            f"{prefix}/pr_curve": wandb.plot.line(
                pr_table, "recall", "precision", title="PR by Hamming radius"
            ),
            f"{prefix}/precision_at_k_curve": wandb.plot.line(
                pk_table, "k", "precision", title="precision@k"
            ),
            f"{prefix}/pr_curve_image": wandb.Image(str(paths["pr_curve"])),
            f"{prefix}/precision_at_k_image": wandb.Image(str(paths["precision_at_k"])),
        }
    )
