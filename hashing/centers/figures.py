"""Figures for inspecting hash centers: similarity heatmap, distance-vs-similarity scatter.

Uses matplotlib's object API with the Agg canvas (no pyplot global state, no display needed),
so it is safe inside training runs and tests.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashing.centers.statistics import pairwise_hamming
from hashing.runs.atomic import atomic_write


def _save(fig: Figure, path: str | os.PathLike[str], dpi: int) -> Path:
    """Render ``fig`` to a PNG at ``path`` (parents created, written atomically)."""
    FigureCanvasAgg(fig)
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi))


def similarity_heatmap(
    similarity: torch.Tensor,
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    title: str = "Class similarity",
    dpi: int = 100,
) -> Path:
    """Heatmap of the (C, C) similarity matrix with class names on both axes; returns the path."""
    sim = similarity.detach().to(torch.float64).cpu().numpy()
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be square (C, C), got shape {sim.shape}")
    num_classes = sim.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} entries, similarity has {num_classes}")
    size = min(4.0 + 0.12 * num_classes, 24.0)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    image = ax.imshow(sim, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    font = max(2.0, min(9.0, 400.0 / num_classes))
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, labels=names, rotation=90, fontsize=font)
    ax.set_yticks(ticks, labels=names, fontsize=font)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path, dpi)


def distance_similarity_scatter(
    centers: torch.Tensor,
    similarity: torch.Tensor,
    path: str | os.PathLike[str],
    title: str = "Center distance vs class similarity",
    dpi: int = 100,
) -> dict[str, np.ndarray]:
    """Scatter of Hamming distance against similarity, one point per class pair ``i < j``.

    The similarity of a pair is ``(s_ij + s_ji) / 2`` (stage 1's row normalisation leaves ``S``
    slightly asymmetric). Returns the plotted arrays: ``pairs`` (P, 2), ``similarity`` (P,),
    ``distance`` (P,).
    """
    num_classes = centers.shape[0]
    if tuple(similarity.shape) != (num_classes, num_classes):
        raise ValueError(
            f"similarity must be ({num_classes}, {num_classes}) to match centers, "
            f"got {tuple(similarity.shape)}"
        )
    iu = torch.triu_indices(num_classes, num_classes, offset=1)
    sim = similarity.detach().to(torch.float64).cpu()
    pair_sim = ((sim + sim.T) / 2)[iu[0], iu[1]].numpy()
    pair_dist = pairwise_hamming(centers.detach().cpu())[iu[0], iu[1]].numpy()
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    ax.scatter(pair_sim, pair_dist, s=6, alpha=0.5)
    ax.set_xlabel("class similarity $(s_{ij} + s_{ji})/2$")
    ax.set_ylabel("Hamming distance between centers")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path, dpi)
    return {"pairs": iu.T.numpy(), "similarity": pair_sim, "distance": pair_dist}
