"""Flat search at every size: HashIndex's exact flat search against raw faiss IndexBinaryFlat.

For each database size (``--sizes``) and query count (``--queries``), random 64-bit codes are
searched for their top ``--k`` by raw ``IndexBinaryFlat.search`` (faiss' defaults, its own tie
order) and by ``faiss_backend.search`` on the index ``HashIndex`` builds (exact (distance, id)
order), in ``--rounds`` interleaved rounds on one thread; the median queries/s of each and their
ratio are reported (goal: >= 0.9x everywhere). Both must return the same distances.

  python benchmarks/bench_flat.py                                   # 10k..10M x 10..1000
  python benchmarks/bench_flat.py --sizes 10000 300000 --queries 300 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.results_io import Provenance  # noqa: E402
from hashing.index import faiss_backend  # noqa: E402
from hashing.index.faiss_backend import FaissSpec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000, 1_000_000, 10_000_000]
    )
    parser.add_argument("--queries", type=int, nargs="+", default=[10, 300, 1000])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_flat.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_flat.py", args)
    provenance.capture_printed_tables()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    rows = []
    print("| codes | queries | raw faiss q/s | HashIndex flat q/s | ratio | mode |")
    print("|---:|---:|---:|---:|---:|---|")
    for n in args.sizes:
        database = rng.integers(0, 256, size=(n, 8), dtype=np.uint8)
        raw = faiss.IndexBinaryFlat(64)
        raw.add(database)
        ours = faiss_backend.build_index(database, FaissSpec())
        for count in args.queries:
            queries = rng.integers(0, 256, size=(count, 8), dtype=np.uint8)
            times: dict[str, list[float]] = {"raw": [], "ours": []}
            searches = {
                "raw": lambda raw=raw, queries=queries: raw.search(queries, args.k),
                "ours": lambda ours=ours, queries=queries: faiss_backend.search(
                    ours, FaissSpec(), queries, args.k
                ),
            }
            began = time.perf_counter()
            raw_d, _ = searches["raw"]()  # also a warm-up of each
            our_d, _ = searches["ours"]()
            # repeat small searches so that one timed sample lasts >= 50 ms
            repeats = max(1, int(0.05 / max(time.perf_counter() - began, 1e-6)))
            for _ in range(args.rounds):
                for name, search in searches.items():
                    began = time.perf_counter()
                    for _ in range(repeats):
                        search()
                    times[name].append((time.perf_counter() - began) / repeats)
            if not np.array_equal(np.sort(raw_d, axis=1), our_d):
                raise AssertionError(f"distances differ at {n} codes, {count} queries")
            raw_qps = count / float(np.median(times["raw"]))
            our_qps = count / float(np.median(times["ours"]))
            mode = "heap" if ours.use_heap else "counting"
            rows.append(
                {
                    "codes": n,
                    "queries": count,
                    "raw_qps": raw_qps,
                    "hashindex_qps": our_qps,
                    "ratio": our_qps / raw_qps,
                    "mode": mode,
                }
            )
            print(
                f"| {n:,} | {count} | {raw_qps:,.0f} | {our_qps:,.0f} | "
                f"{our_qps / raw_qps:.2f}x | {mode} |",
                flush=True,
            )
    path = provenance.write(None, k=args.k, rounds=args.rounds, rows=rows, faiss=faiss.__version__)
    print(f"wrote {path}; lowest ratio {min(r['ratio'] for r in rows):.2f}x (goal >= 0.9x)")


if __name__ == "__main__":
    main()
