"""The retrieval picture callback: its table is the stable ranking, its PNG marks right/wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import WandbLogger

from hashing import pipeline
from hashing.callbacks import RetrievalEvaluation
from hashing.callbacks.retrieval_grid import RetrievalGrid, cell_titles, displayable
from tests.helpers.runs import compose_run


def run_untrained(
    root: Path, grid: RetrievalGrid, overrides: tuple[str, ...] = ()
) -> tuple[object, object]:
    """Test an untrained digits model (seed 3, 16 bits) with ``grid`` and the evaluation that
    hands it codes; returns the datamodule and the model."""
    cfg = compose_run("train", root / "run", root / "cache", ["bits=16", "seed=3", *overrides])
    pl.seed_everything(3)
    datamodule = pipeline.build_datamodule(cfg)
    model = pipeline.build_model(cfg, datamodule)
    trainer = pl.Trainer(
        accelerator="cpu",
        callbacks=[grid, RetrievalEvaluation(curves=False)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.test(model, datamodule=datamodule, verbose=False)
    return datamodule, model


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory) -> tuple[RetrievalGrid, Path, object, object]:
    """An untrained digits model tested with the grid and the evaluation that hands it codes."""
    root = tmp_path_factory.mktemp("grid")
    grid = RetrievalGrid(num_queries=5, top_k=10, seed=1, output_dir=root / "run")
    datamodule, model = run_untrained(root, grid)
    return grid, root / "run", datamodule, model


def test_table_is_the_stable_ranking(tested) -> None:
    grid, folder, datamodule, model = tested
    table = json.loads((folder / "retrieval_grid.json").read_text())
    assert table == grid.table and len(table) == 5
    queries, database = datamodule.dataset("query"), datamodule.dataset("database")
    with torch.no_grad():
        database_codes = model.encode(torch.stack([database[i][0] for i in range(len(database))]))
    database_labels = database.labels.tolist()
    assert len({entry["query"] for entry in table}) == 5
    for entry in table:
        x, label, _ = queries[entry["query"]]
        with torch.no_grad():
            code = model.encode(x[None])[0]
        differing = (database_codes != code).sum(dim=1).tolist()
        expected = sorted(zip(differing, range(len(database)), strict=True))[:10]
        assert entry["results"] == [j for _, j in expected]
        assert entry["distances"] == [d for d, _ in expected]
        assert entry["relevant"] == [database_labels[j] == int(label) for _, j in expected]


def count_pixels(image: np.ndarray, rgb: tuple[float, float, float]) -> int:
    target = np.asarray(rgb) * 255
    return int((np.abs(image[..., :3].astype(float) - target).max(axis=-1) < 12).sum())


def test_png_marks_relevant_green_and_wrong_red(tested) -> None:
    grid, folder, _, _ = tested
    image = np.asarray(Image.open(folder / "retrieval_grid.png").convert("RGB"))
    assert image.shape[1] > image.shape[0]  # 11 columns, 5 rows
    flags = [flag for entry in grid.table for flag in entry["relevant"]]
    green, red = count_pixels(image, (0.0, 0.75, 0.0)), count_pixels(image, (0.9, 0.0, 0.0))
    assert any(flags) and not all(flags)  # an untrained model: some right, some wrong
    # each bordered cell contributes about the same number of border pixels
    assert green > 0 and red > 0
    ratio = green / red
    expected = sum(flags) / (len(flags) - sum(flags))
    assert 0.8 * expected < ratio < 1.25 * expected


def test_wandb_logging_is_guarded(tmp_path: Path) -> None:
    class RecordingWandb(WandbLogger):
        def __init__(self, fail: bool) -> None:
            super().__init__(offline=True, save_dir=str(tmp_path))
            self.fail, self.logged = fail, []

        def log_image(self, key: str, images: list, **kwargs: object) -> None:
            if self.fail:
                raise RuntimeError("wandb is offline")
            self.logged.append((key, images))

    class Holder:
        def __init__(self) -> None:
            self.loggers = [RecordingWandb(fail=True), RecordingWandb(fail=False)]

    holder = Holder()
    RetrievalGrid._log_to_wandb(holder, tmp_path / "grid.png")  # type: ignore[arg-type]
    assert holder.loggers[1].logged == [("test/retrieval_grid", [str(tmp_path / "grid.png")])]


def test_displayable_scales_normalised_inputs_into_unit_range() -> None:
    normalised = torch.tensor([[[-2.0, 0.0], [1.0, 2.0]]]).expand(3, 2, 2)
    image = displayable(normalised)
    assert image.shape == (2, 2, 3) and image.min() == 0.0 and image.max() == 1.0
    assert displayable(torch.rand(1, 4, 4)).shape == (4, 4)
    assert displayable(torch.rand(4096)) is None
    with pytest.raises(ValueError, match="top_k"):
        RetrievalGrid(top_k=0)


def digit_hops(a: int, b: int) -> int:
    """Edges between two digits in the tree digit/{round: 0 6 8 9, straight: the rest}/d."""
    if a == b:
        return 0
    return 2 if (a in (0, 6, 8, 9)) == (b in (0, 6, 8, 9)) else 4


def test_with_a_taxonomy_each_miss_is_titled_with_its_hops(tmp_path: Path) -> None:
    tree = tmp_path / "digits.txt"
    tree.write_text(
        "".join(f"digit/{'round' if d in '0689' else 'straight'}/{d}\n" for d in "0123456789")
    )
    grid = RetrievalGrid(num_queries=6, top_k=10, seed=2, output_dir=tmp_path / "run")
    datamodule, _ = run_untrained(tmp_path, grid, (f"data.hierarchy={tree}",))
    table = json.loads((tmp_path / "run" / "retrieval_grid.json").read_text())
    queries, database = datamodule.dataset("query"), datamodule.dataset("database")
    hops_seen = set()
    for entry in table:
        query_label = int(queries[entry["query"]][1])
        expected = [digit_hops(query_label, int(database.labels[r])) for r in entry["results"]]
        assert entry["taxonomy_distances"] == expected
        assert [hop == 0 for hop in expected] == entry["relevant"]
        titles = cell_titles(entry)
        for title, distance, hop in zip(titles[1:], entry["distances"], expected, strict=True):
            assert title == (f"d={distance}" if hop == 0 else f"d={distance}, {hop} hops")
        hops_seen.update(expected)
    assert hops_seen == {0, 2, 4}  # an untrained model: hits, siblings and cousins all shown
    assert (tmp_path / "run" / "retrieval_grid.png").is_file()
    plain = {"query": 1, "results": [4, 5], "distances": [0, 3], "relevant": [True, False]}
    assert cell_titles(plain) == ["query 1", "d=0", "d=3"]  # no taxonomy: no hops
