"""The picture of docs/taxonomy.md: one query of a real run, its top results and how far each
miss sits in the taxonomy.

    python benchmarks/figure_taxonomy_example.py <run folder> [--out docs/img/taxonomy_query.png]
        [--top 10] [--names ../shared/data/tinyimagenet200_wordnet.json]

Rebuilds the run's data (its resolved config) and model (its latest kept checkpoint, the
best one under the default checkpointing), encodes the queries and the database, and picks a
query with at least three hits and three misses in its top ``--top`` whose misses lie at the
most distinct taxonomy distances (ties: the first such query), so the figure shows hits, near
misses and far ones. Each result is a bar as long as its taxonomy distance to the query (0 =
same class), labelled with its class, the lowest common ancestor and the Hamming distance; the
title gives that query's tax_dist, miss_tax_dist and ndcg_wup at ``--top``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from hashing.index.encoder import CodeEncoder, InputSpec  # noqa: E402
from hashing.metrics.functional.hamming import hamming_distance  # noqa: E402
from hashing.metrics.functional.taxonomy import stable_top_k, taxonomy_scores  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "taxonomy_query.png")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument(
        "--names",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "tinyimagenet200_wordnet.json",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = OmegaConf.load(args.run / "config_resolved.yaml")
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    checkpoints = sorted((args.run / "checkpoints").glob("epoch_*.ckpt"))
    encoder = CodeEncoder.from_checkpoint(checkpoints[-1], InputSpec.from_datamodule(datamodule))
    query_codes, query_y = encoder.encode_dataset(datamodule.dataset("query"))
    database_codes, database_y = encoder.encode_dataset(datamodule.dataset("database"))
    q, db = torch.from_numpy(query_codes).float(), torch.from_numpy(database_codes).float()
    qy, dy = torch.from_numpy(query_y).long(), torch.from_numpy(database_y).long()
    relations = datamodule.class_relations
    distance = torch.from_numpy(relations.distance)
    top = torch.cat([block for _, block in stable_top_k(q, db, args.top)])
    hops = distance[qy[:, None], dy[top]]
    variety = torch.tensor([len(set(row[row > 0].tolist())) for row in hops])
    hits = (hops == 0).sum(1)
    mixed = (hits >= 3) & (hits <= args.top - 3)
    pick = int(torch.argmax(variety + 100 * mixed))
    scores = taxonomy_scores(
        q[pick : pick + 1],
        db,
        qy[pick : pick + 1],
        dy,
        distance,
        torch.from_numpy(relations.wu_palmer),
        args.top,
    )[0]
    names = json.loads(args.names.read_text())["names"] if args.names.is_file() else {}
    classes = relations.class_names
    taxonomy = relations.taxonomy

    def label(index: int) -> str:
        wnid = classes[index]
        return names.get(wnid, wnid)

    def ancestor(a: int, b: int) -> str:
        path_a, path_b = taxonomy.path(classes[a]), taxonomy.path(classes[b])
        shared = [x for x, y in zip(path_a, path_b, strict=False) if x == y]
        return names.get(shared[-1], shared[-1])

    query_class = int(qy[pick])
    results = top[pick].tolist()
    hamming = hamming_distance(q[pick : pick + 1], db[results])[0].tolist()
    fig, ax = plt.subplots(figsize=(9, 0.45 * args.top + 1.6))
    for rank, (item, ham) in enumerate(zip(results, hamming, strict=True)):
        cls = int(dy[item])
        d = int(distance[query_class, cls])
        colour = "#2e7d32" if d == 0 else plt.cm.autumn_r(min(1.0, d / 14))
        ax.barh(rank, max(d, 0.15), color=colour)
        text = (
            f"{label(cls)}  (Hamming {ham})"
            if d == 0
            else (
                f"{label(cls)}: {d} hops, meet at '{ancestor(query_class, cls)}'  (Hamming {ham})"
            )
        )
        ax.text(max(d, 0.15) + 0.2, rank, text, va="center", fontsize=8)
    ax.set_yticks(range(len(results)), [f"#{r + 1}" for r in range(len(results))])
    ax.invert_yaxis()
    ax.set_xlim(0, float(hops[pick].max()) + 14)
    ax.set_xlabel(
        "taxonomy distance to the query's class (edges through the lowest common ancestor)"
    )
    run_name = f"{cfg.method.name} {cfg.bits} bits"
    ax.set_title(
        f"query of class '{label(query_class)}' ({run_name}): top {args.top}\n"
        f"tax_dist@{args.top} {scores[0]:.2f}, miss_tax_dist@{args.top} {scores[1]:.2f}, "
        f"ndcg_wup@{args.top} {scores[2]:.3f}",
        fontsize=9,
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"query {pick} (class {classes[query_class]}): wrote {args.out}")


if __name__ == "__main__":
    main()
