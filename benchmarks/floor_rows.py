"""The rows every method benchmark shows beside the learned methods: the training-free floors
(LSH, PCA-sign, ITQ; :func:`hashing.baselines.fit_projection`, the same functions as
``method=lsh|pcah|itq``) and the ceiling (exact Euclidean k-NN on the float features).

Each is fitted on the training features and scored on the same queries and database as the
methods, with the same AP kernel, so a table reads what learning bought over a training-free
code of the same length and how far the codes stay from the features they came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

#: (row label, projection) of the training-free floors, in table order
FLOORS = (("LSH", "lsh"), ("PCA-sign", "pcah"), ("ITQ", "itq"))
CEILING = "float k-NN (ceiling)"


def code_scores(
    query_codes: Tensor,
    database_codes: Tensor,
    query_labels: Tensor,
    database_labels: Tensor,
    top_ks: Sequence[int | None] = (100, 1000, None),
) -> dict[str, float]:
    """``mAP@k`` for each of ``top_ks`` (``mAP@ALL`` for None) and ``mAP@ALL_tie_aware``."""
    from hashing.metrics import evaluate_retrieval

    report = evaluate_retrieval(
        query_codes, database_codes, query_labels, database_labels, top_ks=tuple(top_ks)
    )
    scores = {f"mAP@{k or 'ALL'}": float(report.map_at_k[k]) for k in top_ks}
    scores["mAP@ALL_tie_aware"] = float(report.tie_aware_map_at_k[None])
    return scores


def floor_codes(
    train: Tensor, query: Tensor, database: Tensor, projection: str, bits: int, seed: int
) -> tuple[Tensor, Tensor]:
    """±1 codes of ``query`` and ``database`` features under the ``projection`` floor fitted on
    ``train`` features."""
    from hashing.baselines import fit_projection, projection_codes

    mean, weights = fit_projection(projection, train, bits, seed)
    return projection_codes(query, mean, weights), projection_codes(database, mean, weights)


def floor_scores(
    train: Tensor,
    query: tuple[Tensor, Tensor],
    database: tuple[Tensor, Tensor],
    projection: str,
    bits: int,
    seed: int,
    top_ks: Sequence[int | None] = (100, 1000, None),
) -> dict[str, float]:
    """Scores of one training-free code fitted on ``train`` features; ``query`` and
    ``database`` are (features, labels)."""
    query_codes, database_codes = floor_codes(train, query[0], database[0], projection, bits, seed)
    return code_scores(query_codes, database_codes, query[1], database[1], top_ks)


def floor_rows(
    train: Tensor,
    query: tuple[Tensor, Tensor],
    database: tuple[Tensor, Tensor],
    bits: Sequence[int],
    seeds: Sequence[int],
    top_ks: Sequence[int | None] = (100, 1000, None),
) -> list[dict[str, Any]]:
    """One row per (floor, bits): ``{"method", "bits", "seeds", "values": {metric: [per
    seed]}}``. PCA-sign has no randomness: it is computed once (its first seed)."""
    rows = []
    for label, projection in FLOORS:
        for length in bits:
            used = list(seeds[:1]) if projection == "pcah" else list(seeds)
            values: dict[str, list[float]] = {}
            for seed in used:
                scores = floor_scores(train, query, database, projection, length, seed, top_ks)
                for name, value in scores.items():
                    values.setdefault(name, []).append(value)
            rows.append({"method": label, "bits": length, "seeds": used, "values": values})
    return rows


def ceiling_row(
    query: tuple[Tensor, Tensor],
    database: tuple[Tensor, Tensor],
    top_ks: Sequence[int | None] = (100, 1000, None),
) -> dict[str, Any]:
    """Exact Euclidean k-NN on the float features, scored with the codes' AP kernel (no ties:
    the tie-aware value is the plain one)."""
    from hashing.baselines import float_average_precision

    ap = float_average_precision(query[0], database[0], query[1], database[1], tuple(top_ks))
    values = {f"mAP@{k or 'ALL'}": [float(v)] for k, v in zip(top_ks, ap.mean(0), strict=True)}
    values["mAP@ALL_tie_aware"] = list(values["mAP@ALL"])
    width = int(query[0].shape[1])
    return {"method": CEILING, "bits": 32 * width, "seeds": [], "values": values}


def split_features(datamodule: Any, keys: Sequence[str] = ("fit", "query", "database")) -> dict:
    """``{split: (inputs flattened to (N, D) float32, labels)}`` of a set-up datamodule (eval
    transforms): what the floors and the ceiling see when a benchmark has no backbone features."""
    import torch
    from torch.utils.data import DataLoader

    features = {}
    for key in keys:
        items = datamodule.dataset(key)
        loader = DataLoader(items, batch_size=1024)
        inputs = torch.cat([batch[0].flatten(1).float() for batch in loader])
        features[key] = (inputs, items.labels)
    return features


def reference_rows(
    datamodule: Any,
    bits: Sequence[int],
    seeds: Sequence[int],
    top_ks: Sequence[int | None] = (100, 1000, None),
) -> list[dict[str, Any]]:
    """The floors (fitted on the ``fit`` split) and the ceiling on a datamodule's flattened
    inputs, scored on its test queries and database."""
    data = split_features(datamodule)
    rows = floor_rows(data["fit"][0], data["query"], data["database"], bits, seeds, top_ks)
    return [*rows, ceiling_row(data["query"], data["database"], top_ks)]


def datamodule_of(overrides: Sequence[str], split_dir: Any) -> Any:
    """The set-up datamodule that ``python -m hashing.train <overrides>`` would build (its
    split cached in ``split_dir``)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    root = Path(__file__).resolve().parents[1]
    data_only = [o for o in overrides if not o.startswith(("backbone", "method", "trainer"))]
    with initialize_config_dir(str(root / "conf"), version_base=None):
        cfg = compose("train", overrides=[*data_only, f"paths.root_dir={root}"])
    datamodule = instantiate(cfg.data, split_dir=str(split_dir))
    datamodule.setup()
    return datamodule
