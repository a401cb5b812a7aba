"""The retrieval picture: a few test queries, each with its top-k results, right and wrong marked.

At test time the callback receives the codes that ``test_step`` returned (dataloader 0 =
queries, 1 = database; gathered across ranks and de-duplicated) from the retrieval evaluation,
which owns them (:class:`hashing.callbacks.RetrievalEvaluation`), ranks the
database for a seeded sample of queries by (Hamming distance, database index) as the evaluation does
(docs/metrics.md#tie-handling), and writes ``retrieval_grid.png`` (one row per query: the query,
then its results with green borders where relevant, red where not) and ``retrieval_grid.json`` (the
same table) into the run folder. With a class taxonomy (``data.hierarchy``, docs/taxonomy.md)
every result also carries the taxonomy distance of its class to the query's (the table's
``taxonomy_distances``), and a miss's title says it (``d=5, 4 hops``: Hamming distance 5, its
class 4 edges from the query's in the tree). With a WandbLogger active the PNG is also logged as
``test/retrieval_grid``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from hashing.metrics.functional.hamming import hamming_distance
from hashing.metrics.functional.ranking import stable_order
from hashing.metrics.functional.relevance import relevance
from hashing.runs.atomic import atomic_write, write_text_atomic

log = logging.getLogger(__name__)

RELEVANT_COLOR = (0.0, 0.75, 0.0)
WRONG_COLOR = (0.9, 0.0, 0.0)
QUERY_COLOR = (0.1, 0.1, 0.1)


def retrieval_table(
    query_codes: Tensor,
    query_labels: Tensor,
    database_codes: Tensor,
    database_labels: Tensor,
    query_rows: Tensor,
    top_k: int,
    class_distance: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Top-``k`` database rows of each chosen query row: ids, distances and relevance flags,
    and with ``class_distance`` (C, C: the taxonomy distance of two classes; class-index
    labels) each result's ``taxonomy_distances`` to the query's class.

    Rows are positions in the (index-sorted) splits; ranking by distance, ties by row.
    """
    chosen = query_codes[query_rows]
    distances = hamming_distance(chosen, database_codes).to(torch.int64)
    order = stable_order(distances)[:, :top_k]
    relevant = relevance(query_labels[query_rows], database_labels)
    table = []
    for position, row in enumerate(query_rows.tolist()):
        results = order[position]
        table.append(
            {
                "query": int(row),
                "results": results.tolist(),
                "distances": distances[position, results].tolist(),
                "relevant": relevant[position, results].tolist(),
            }
        )
        if class_distance is not None:
            query_class = int(query_labels[row])
            table[-1]["taxonomy_distances"] = [
                int(class_distance[query_class, int(database_labels[r])]) for r in results
            ]
    return table


def cell_titles(entry: dict[str, Any]) -> list[str]:
    """The titles of one grid row: ``query <id>``, then ``d=<Hamming distance>`` per result,
    with ``, <n> hops`` (its class's taxonomy distance to the query's) on a miss when the
    table has taxonomy distances."""
    hops = entry.get("taxonomy_distances") or [None] * len(entry["results"])
    titles = [f"query {entry['query']}"]
    for distance, good, hop in zip(entry["distances"], entry["relevant"], hops, strict=True):
        titles.append(f"d={distance}" + ("" if good or hop is None else f", {hop} hops"))
    return titles


def displayable(x: Tensor) -> np.ndarray | None:
    """An input as an image for imshow: (H, W) grey or (H, W, 3) in [0, 1]; None if not one.

    Normalised inputs (e.g. ImageNet mean/std) are min-max scaled back into [0, 1].
    """
    x = x.detach().cpu().to(torch.float32)
    if x.ndim == 3 and x.shape[0] in (1, 3):
        x = x.permute(1, 2, 0)
    elif x.ndim != 2:
        return None
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        x = (x - low) / max(high - low, 1e-12)
    image = x.numpy()
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


#: pixels a grid cell's image is scaled up to (at least; by an integer factor, nearest)
CELL_PIXELS = 64
TITLE_PIXELS = 14


def _cell(image: np.ndarray, scale: int) -> np.ndarray:
    """An image in [0, 1] as uint8 RGB, scaled up ``scale`` times (nearest neighbour)."""
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    pixels = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    return pixels.repeat(scale, axis=0).repeat(scale, axis=1)


def draw_grid(
    table: list[dict[str, Any]],
    query_images: list[np.ndarray],
    database_images: dict[int, np.ndarray],
    path: Path,
) -> None:
    """One row per query: the query then its results, bordered green (relevant) or red,
    titled by :func:`cell_titles`.

    Drawn as one mosaic with Pillow (a figure of one axes per cell took seconds to lay out).
    """
    from PIL import Image, ImageDraw, ImageFont

    height = max(image.shape[0] for image in (*query_images, *database_images.values()))
    width = max(image.shape[1] for image in (*query_images, *database_images.values()))
    scale = max(1, -(-CELL_PIXELS // max(height, width)))
    border = max(2, CELL_PIXELS // 16)
    cell_h, cell_w = scale * height + 2 * border, scale * width + 2 * border
    step_h, step_w = cell_h + TITLE_PIXELS + border, cell_w + border
    columns = 1 + max(len(entry["results"]) for entry in table)
    canvas = np.full((step_h * len(table) + border, step_w * columns + border, 3), 255, np.uint8)
    titles = []
    for row, entry in enumerate(table):
        names = cell_titles(entry)
        cells = [(query_images[row], QUERY_COLOR, names[0], border // 2)]
        for result, good, title in zip(entry["results"], entry["relevant"], names[1:], strict=True):
            color = RELEVANT_COLOR if good else WRONG_COLOR
            cells.append((database_images[result], color, title, border))
        for column, (image, color, title, thickness) in enumerate(cells):
            top, left = row * step_h + TITLE_PIXELS + border, column * step_w + border
            box = canvas[top : top + cell_h, left : left + cell_w]
            box[:] = 255
            inner = box[
                border - thickness : cell_h - border + thickness,
                border - thickness : cell_w - border + thickness,
            ]
            inner[:] = np.rint(np.asarray(color) * 255).astype(np.uint8)
            pixels = _cell(image, scale)
            box[border : border + pixels.shape[0], border : border + pixels.shape[1]] = pixels
            titles.append((left + cell_w // 2, top - 2, title))
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=TITLE_PIXELS - 3)
    for x, y, title in titles:
        draw.text((x, y), title, fill=(0, 0, 0), font=font, anchor="ms")
    atomic_write(path, lambda handle: picture.save(handle, format="PNG"))


class RetrievalGrid(pl.Callback):
    """Writes the retrieval picture of a seeded sample of test queries.

    Args:
        num_queries: queries shown (rows); fewer if the query split is smaller.
        top_k: results per query (columns after the query).
        seed: seed of the query sample.
        output_dir: where the PNG and JSON go (default: the trainer's log folder).
        filename: file name stem of the PNG and JSON.
    """

    def __init__(
        self,
        num_queries: int = 8,
        top_k: int = 10,
        seed: int = 0,
        output_dir: str | Path | None = None,
        filename: str = "retrieval_grid",
    ) -> None:
        for name, value in (("num_queries", num_queries), ("top_k", top_k)):
            if int(value) < 1:
                raise ValueError(f"retrieval_grid.{name} must be >= 1, got {value}")
        self.num_queries = int(num_queries)
        self.top_k = int(top_k)
        self.seed = int(seed)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.filename = filename
        self.table: list[dict[str, Any]] | None = None
        self._received = False

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """No codes received yet in this test run."""
        self._received = False

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Say why there is no picture when no evaluation handed over the codes."""
        if not self._received:
            log.warning(
                "retrieval grid: no codes were handed over; it needs the retrieval_evaluation "
                "callback, which gathers them"
            )

    def on_retrieval_codes(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        stage: str,
        splits: Mapping[str, Tensor],
    ) -> None:
        """Rank, draw and save (rank zero) the test codes the evaluation gathered."""
        if stage != "test":
            return
        self._received = True
        query_codes, query_labels, query_index = (
            splits[f"query_{part}"] for part in ("codes", "labels", "index")
        )
        database_codes, database_labels, database_index = (
            splits[f"database_{part}"] for part in ("codes", "labels", "index")
        )
        if not trainer.is_global_zero:
            return
        generator = torch.Generator().manual_seed(self.seed)
        count = min(self.num_queries, len(query_index))
        rows = torch.randperm(len(query_index), generator=generator)[:count].sort().values
        top_k = min(self.top_k, len(database_index))
        relations = None
        if query_labels.ndim == 1:  # a taxonomy relates single-label classes only
            relations = getattr(getattr(trainer, "datamodule", None), "class_relations", None)
        table = retrieval_table(
            query_codes.cpu(),
            query_labels.cpu(),
            database_codes.cpu(),
            database_labels.cpu(),
            rows,
            top_k,
            None if relations is None else relations.distance,
        )
        for entry in table:  # rows -> the items' indices within their splits
            entry["query"] = int(query_index[entry["query"]])
            entry["results"] = [int(database_index[r]) for r in entry["results"]]
        self.table = table
        folder = self.output_dir or Path(trainer.log_dir or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / f"{self.filename}.json", json.dumps(table, indent=1))
        path = self._draw(trainer, table, folder / f"{self.filename}.png")
        if path is not None:
            self._log_to_wandb(trainer, path)

    def _draw(self, trainer: pl.Trainer, table: list[dict[str, Any]], path: Path) -> Path | None:
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "dataset"):
            log.warning("retrieval grid: no datamodule with dataset(); no picture drawn")
            return None
        queries, database = datamodule.dataset("query"), datamodule.dataset("database")
        query_images = [displayable(queries[entry["query"]][0]) for entry in table]
        needed = {r for entry in table for r in entry["results"]}
        database_images = {r: displayable(database[r][0]) for r in needed}
        if any(image is None for image in (*query_images, *database_images.values())):
            log.warning("retrieval grid: inputs are not images; only the JSON table is written")
            return None
        draw_grid(table, query_images, database_images, path)  # type: ignore[arg-type]
        log.info("retrieval grid written to %s", path)
        return path

    @staticmethod
    def _log_to_wandb(trainer: pl.Trainer, path: Path) -> None:
        """Log the PNG to every active WandbLogger; a failure (offline, no wandb) only warns."""
        try:
            from pytorch_lightning.loggers import WandbLogger
        except ImportError:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                try:
                    logger.log_image(key="test/retrieval_grid", images=[str(path)])
                except Exception as err:  # a picture must never fail a finished test run
                    log.warning("retrieval grid: could not log to wandb (%s)", err)
