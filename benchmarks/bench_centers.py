"""Benchmark hash-center generation: CSQ, MDS and SHC (stage 2) time, distances, fit.

Run from the project root:  python -m benchmarks.bench_centers [--threads 1] [--out PATH]
Writes a table to stdout and JSON to benchmarks/results/centers.json (git-ignored).

SHC needs a class similarity; the benchmark plants one: max(2, C/10) groups of consecutive
classes, the indicator of "same group" passed through stage 1's row normalisation (s ~ 1 inside
a group, ~ 0 across, like a real S); every method's fit loss is measured against it.
``within``/``across`` are the mean center distances inside and across groups. SHC's time is
stage 2 alone, started from the MDS centers timed in the row above it (SHC's end-to-end time =
MDS + SHC); ``shc`` is the reference solver, ``shc+bt`` the reference with ``backtrack=True``,
``shc_ls`` the local search (the default solver). Torch and BLAS threads are limited to
``--threads`` (default 1: on a loaded 2-core machine two-thread kernels were several times slower).
"""

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
from benchmarks.results_io import Provenance  # noqa: E402
from hashing.centers import (  # noqa: E402
    center_statistics,
    csq_centers,
    mds_centers,
    normalise_similarity,
    pairwise_hamming,
    required_min_distance,
    semantic_centers,
    similarity_fit_loss,
)

POINTS = ((10, 16), (10, 64), (100, 64), (1000, 128))


def class_groups(num_classes: int) -> torch.Tensor:
    """Group id per class: ``max(2, C // 10)`` groups of consecutive classes."""
    groups = max(2, num_classes // 10)
    return torch.arange(num_classes) * groups // num_classes


def planted_similarity(num_classes: int) -> torch.Tensor:
    """Row-normalised indicator of "same group" (see :func:`class_groups`)."""
    group = class_groups(num_classes)
    return normalise_similarity((group[:, None] == group[None, :]).to(torch.float64))


def within_across(centers: torch.Tensor) -> tuple[float, float]:
    """Mean Hamming distance between centers of the same group and of different groups."""
    num_classes = centers.shape[0]
    group = class_groups(num_classes)
    dist = pairwise_hamming(centers).to(torch.float64)
    same = (group[:, None] == group[None, :]) & ~torch.eye(num_classes, dtype=torch.bool)
    return float(dist[same].mean()), float(dist[group[:, None] != group[None, :]].mean())


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Result of ``fn()`` and its wall time in seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run_point(num_classes: int, bits: int, seed: int) -> list[dict[str, Any]]:
    """Benchmark rows (one per method) for one (C, q) point."""
    d = required_min_distance(bits, num_classes)
    sim = planted_similarity(num_classes)
    rows = []
    csq, t_csq = _timed(lambda: csq_centers(num_classes, bits, seed=seed, strict=False))
    mds, t_mds = _timed(lambda: mds_centers(num_classes, bits, seed=seed))
    ref = {"seed": seed, "init": mds, "solver": "reference"}
    (shc, info), t_shc = _timed(lambda: semantic_centers(sim, bits, **ref))
    (shc_bt, info_bt), t_bt = _timed(lambda: semantic_centers(sim, bits, **ref, backtrack=True))
    (shc_ls, info_ls), t_ls = _timed(
        lambda: semantic_centers(sim, bits, seed=seed, init=mds, solver="local_search")
    )
    results = (
        ("csq", csq, t_csq, None),
        ("mds", mds, t_mds, None),
        ("shc", shc, t_shc, info),
        ("shc+bt", shc_bt, t_bt, info_bt),
        ("shc_ls", shc_ls, t_ls, info_ls),
    )
    for method, centers, seconds, shc_info in results:
        stats = center_statistics(centers)
        within, across = within_across(centers)
        rows.append(
            {
                "method": method,
                "num_classes": num_classes,
                "bits": bits,
                "seconds": seconds,
                "required_d": d,
                "min_distance": stats["min"],
                "mean_distance": stats["mean"],
                "var_distance": stats["var"],
                "fit_loss": similarity_fit_loss(sim, centers),
                "meets_bound": stats["min"] >= d,
                "within_group": within,
                "across_group": across,
                "accepted_updates": None if shc_info is None else shc_info["accepted_updates"],
            }
        )
    return rows


def main() -> None:
    """Parse arguments, run all points, print the table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "centers.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_centers.py", args, [args.seed])
    provenance.capture_printed_tables()
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        rows = [row for c, q in POINTS for row in run_point(c, q, args.seed)]
    header = f"| {'method':6} | {'C':>5} | {'q':>4} | {'time s':>7} | {'d':>3} | {'min':>4} | "
    header += f"{'mean':>6} | {'var':>6} | {'fit':>7} | {'within':>6} | {'across':>6} |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for r in rows:
        print(
            f"| {r['method']:6} | {r['num_classes']:5d} | {r['bits']:4d} | {r['seconds']:7.3f} | "
            f"{r['required_d']:3d} | {r['min_distance']:4.0f} | {r['mean_distance']:6.2f} | "
            f"{r['var_distance']:6.2f} | {r['fit_loss']:7.4f} | {r['within_group']:6.2f} | "
            f"{r['across_group']:6.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"threads": args.threads, "seed": args.seed, "machine": platform.platform()}
    provenance.write(None, meta=meta, rows=rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
