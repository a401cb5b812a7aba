"""SHC stage 2 alone: the reference solver (column / row of S) vs the local search, same S.

For every class-similarity file given (``similarity.pt`` of SHC runs, e.g. those that
``bench_shc_solvers.py`` leaves in its work folder) and a planted 100-class / 20-group S, and
every code length: fit loss of the MDS start and of each solver, Spearman(s_ij, h_i·h_j),
accepted updates, whether the centers equal the start, and seconds (the local search's as a
ratio to the reference's, measured in the same run). Also ``||S - S^T|| / ||S||``.

    python benchmarks/bench_shc_stage2.py [--similarity PATH ...] [--bits 16 32 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.results_io import Provenance  # noqa: E402
from hashing.centers import mds_centers, semantic_centers  # noqa: E402
from hashing.centers.quality import center_quality  # noqa: E402
from hashing.centers.semantic import asymmetry  # noqa: E402

SOLVERS = {
    "reference (column)": {"solver": "reference", "similarity_axis": "column"},
    "reference (row)": {"solver": "reference", "similarity_axis": "row"},
    "local_search": {"solver": "local_search"},
}


def planted(num_classes: int = 100, groups: int = 20) -> torch.Tensor:
    """0.8 inside a group, -0.6 across, 1 on the diagonal."""
    group = torch.arange(num_classes) % groups
    sim = torch.where(group[:, None] == group[None, :], 0.8, -0.6).to(torch.float64)
    sim.fill_diagonal_(1.0)
    return sim


def one(name: str, sim: torch.Tensor, bits: int, seed: int) -> list[dict[str, Any]]:
    """Every solver on one (S, bits) from the same MDS start."""
    start = mds_centers(sim.shape[0], bits, seed=seed)
    rows = [{"S": name, "bits": bits, "solver": "MDS start", **center_quality(sim, start)}]
    for label, settings in SOLVERS.items():
        began = time.perf_counter()
        centers, info = semantic_centers(sim, bits, seed=seed, init=start, **settings)
        seconds = time.perf_counter() - began
        rows.append(
            {
                "S": name,
                "bits": bits,
                "solver": label,
                **center_quality(sim, centers),
                "accepted_updates": info["accepted_updates"],
                "equals_start": info["equals_start"],
                "seconds": seconds,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--similarity", nargs="*", type=Path, default=[])
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "shc_stage2.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_shc_stage2.py", args, [args.seed])
    provenance.capture_printed_tables()
    torch.set_num_threads(1)
    sims = {"planted 100/20": planted()}
    for path in args.similarity:
        sims[str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)] = torch.load(
            path, weights_only=True
        )
    rows: list[dict[str, Any]] = []
    for name, sim in sims.items():
        print(f"{name}: C = {sim.shape[0]}, ||S - S^T|| / ||S|| = {asymmetry(sim):.3f}")
        for bits in args.bits:
            rows += one(name, sim, bits, args.seed)
    lines = [
        "| S | bits | solver | fit loss | Spearman | accepted | = start | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        spearman = "-" if r["spearman"] is None else f"{r['spearman']:.3f}"
        lines.append(
            f"| {r['S']} | {r['bits']} | {r['solver']} | {r['fit_loss']:.4f} | {spearman} | "
            f"{r.get('accepted_updates', '-')} | {r.get('equals_start', '-')} | "
            f"{r.get('seconds', float('nan')):.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "rows": rows,
        "asymmetry": {name: asymmetry(sim) for name, sim in sims.items()},
        "markdown": table,
        "settings": {k: str(v) for k, v in vars(args).items()},
    }
    provenance.write(None, **payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
