"""Figures: valid PNGs of sensible size; the scatter's data match a loop."""

import struct
from pathlib import Path

import pytest
import torch

from hashing.centers import mds_centers
from hashing.centers.figures import distance_similarity_scatter, similarity_heatmap


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG signature + IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _similarity(num_classes: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(num_classes)
    sim = 2 * torch.rand(num_classes, num_classes, generator=g, dtype=torch.float64) - 1
    sim.fill_diagonal_(1.0)
    return sim


def test_heatmap_png(tmp_path: Path) -> None:
    names = [f"class_{i}" for i in range(12)]
    path = similarity_heatmap(_similarity(12), tmp_path / "sub" / "s.png", class_names=names)
    width, height = _png_size(path)
    assert 300 <= width <= 2600 and 300 <= height <= 2600
    assert path.stat().st_size > 5_000


def test_heatmap_rejects_wrong_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="class_names has 2"):
        similarity_heatmap(_similarity(3), tmp_path / "s.png", class_names=["a", "b"])


def test_scatter_data_match_loop(tmp_path: Path) -> None:
    centers = mds_centers(10, 16)
    sim = _similarity(10)
    data = distance_similarity_scatter(centers, sim, tmp_path / "scatter.png")
    width, height = _png_size(tmp_path / "scatter.png")
    assert (width, height) == (600, 450)
    expected = []
    for i in range(10):
        for j in range(i + 1, 10):
            dist = int((centers[i] != centers[j]).sum())
            expected.append((i, j, (float(sim[i, j]) + float(sim[j, i])) / 2, dist))
    assert [tuple(p) for p in data["pairs"].tolist()] == [(i, j) for i, j, _, _ in expected]
    assert data["similarity"].tolist() == pytest.approx([e[2] for e in expected])
    assert data["distance"].tolist() == [e[3] for e in expected]


def test_scatter_shape_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="to match centers"):
        distance_similarity_scatter(mds_centers(10, 16), _similarity(9), tmp_path / "x.png")
