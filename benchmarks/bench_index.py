"""Search throughput and memory: faiss binary indexes vs plain numpy/torch brute force.

Random 64-bit codes (1,000,000 by default) are searched for the top 100 of each query with:
  faiss flat (raw)          ``IndexBinaryFlat.search``, faiss' own (unspecified) tie order
  HashIndex flat (exact)    the project's search: faiss' counting search, exact (distance, id)
  heap + range search       the previous exact search: heap top-(k+1), range search at ties
  numpy LUT                 XOR of the 8 bytes, popcount by a 256-entry table, exact top-k
  numpy bitwise_count       XOR of uint64 codes, ``np.bitwise_count``, exact top-k
  torch SWAR                XOR of int64 codes, popcount by shifts and masks, exact top-k
  HNSW                      ``IndexBinaryHNSW`` (approximate): build time, memory, recall@k
                            at several efSearch values
Every brute force returns the same exact (distance, id) top-k, checked against HashIndex flat.
Memory is the searchable structure's bytes (faiss: its serialised size; brute force: the code
array, plus per-query temporaries of a few times n bytes). recall@k compares with the exact
(distance, id) top-k by ids (a tie-aware variant, by distances, is in the JSON).
Single-threaded by default (``--threads``), so the ratios compare algorithms, not core counts.
Raw faiss and the exact searches are timed in ``--rounds`` interleaved rounds (median reported),
so a shared machine's load falls on both alike; the exact searches must return identical results.

  python benchmarks/bench_index.py                     # 1M codes, HNSW over 200k: minutes
  python benchmarks/bench_index.py --hnsw-n 1000000    # HNSW over all 1M (~10 min on 2 cores)
  python benchmarks/bench_index.py --n 100000          # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
import faiss  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.results_io import Provenance  # noqa: E402
from hashing.index import faiss_backend  # noqa: E402
from hashing.index.faiss_backend import FaissSpec  # noqa: E402
from hashing.index.packing import POPCOUNT_TABLE  # noqa: E402

M1, M2, M4, H01 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101


def exact_top_k(distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, ids) of the k smallest (distance, id): everything below the k-th distance,
    then the lowest ids at it (``flatnonzero`` yields ids ascending)."""
    kth = np.partition(distances, k - 1)[k - 1]
    below = np.flatnonzero(distances < kth)
    at = np.flatnonzero(distances == kth)[: k - len(below)]
    ids = np.concatenate([below, at])
    order = np.argsort(distances[ids], kind="stable")
    return distances[ids][order].astype(np.int32), ids[order]


def numpy_lut(database: np.ndarray) -> Callable[[np.ndarray, int], tuple]:
    def search(query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_top_k(POPCOUNT_TABLE[database ^ query].sum(axis=1, dtype=np.uint8), k)

    return search


def numpy_bitwise_count(database: np.ndarray) -> Callable[[np.ndarray, int], tuple]:
    words = database.view(np.uint64).ravel()

    def search(query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_top_k(np.bitwise_count(words ^ query.view(np.uint64)[0]), k)

    return search


def torch_swar(database: np.ndarray) -> Callable[[np.ndarray, int], tuple]:
    words = torch.from_numpy(database.view(np.int64).ravel().copy())
    m1, m2, m4, h01 = (torch.tensor(v, dtype=torch.int64) for v in (M1, M2, M4, H01))

    def popcount(x: torch.Tensor) -> torch.Tensor:
        # masks have a clear top bit, so arithmetic shifts behave like logical ones
        x = x - ((x >> 1) & m1)
        x = (x & m2) + ((x >> 2) & m2)
        x = (x + (x >> 4)) & m4
        return ((x * h01) >> 56) & 0xFF

    def search(query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = int(query.view(np.int64)[0])
        distances = popcount(words ^ q).to(torch.uint8).numpy()
        return exact_top_k(distances, k)

    return search


def time_queries(search: Callable, queries: np.ndarray, k: int) -> tuple[float, list]:
    """Queries per second of a one-query-at-a-time search, and its results."""
    started = time.perf_counter()
    results = [search(query, k) for query in queries]
    return len(queries) / (time.perf_counter() - started), results


def recall(approx_ids: np.ndarray, approx_d: np.ndarray, exact_d: np.ndarray, exact_ids) -> dict:
    """recall@k by ids (against the exact (distance, id) top-k) and tie-aware: per distance
    value, min(approximate, exact) result counts, so any of several items tied at the k-th
    distance counts as right (all closer items are in the exact top-k by definition)."""
    by_id, by_distance = 0, 0
    for row in range(len(exact_ids)):
        valid = approx_ids[row] >= 0
        by_id += len(set(approx_ids[row][valid]) & set(exact_ids[row]))
        found, expected = Counter(approx_d[row][valid].tolist()), Counter(exact_d[row].tolist())
        by_distance += sum(min(count, expected[value]) for value, count in found.items())
    total = exact_ids.size
    return {"recall_ids": by_id / total, "recall_tie_aware": by_distance / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database codes")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200, help="queries for faiss")
    parser.add_argument("--brute-queries", type=int, default=50, help="queries for brute force")
    parser.add_argument(
        "--hnsw-n",
        type=int,
        default=200_000,
        help="codes in the HNSW index (its build dominates the run: ~10x longer at 1M)",
    )
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "index.json")
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_index.py", args, [args.seed])
    provenance.capture_printed_tables()
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    database = rng.integers(0, 256, size=(args.n, 8), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(args.queries, 8), dtype=np.uint8)
    rows: list[dict] = []

    def add_row(method: str, qps: float, memory: int, **extra: object) -> None:
        rows.append({"method": method, "qps": qps, "memory_bytes": memory, **extra})

    started = time.perf_counter()
    flat = faiss_backend.build_index(database, FaissSpec(type="flat"))
    flat_build = time.perf_counter() - started
    flat_memory = faiss.serialize_index_binary(flat).nbytes
    raw = faiss.IndexBinaryFlat(8 * database.shape[1])  # faiss' defaults (heap search)
    raw.add(database)
    contenders: dict[str, Callable[[], tuple]] = {
        "raw": lambda: raw.search(queries, args.k),
        "exact": lambda: faiss_backend.search(flat, FaissSpec(type="flat"), queries, args.k),
        "heap": lambda: faiss_backend._search_flat_heap(flat, queries, args.k),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    answers: dict[str, tuple] = {}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            started = time.perf_counter()
            answers[name] = run()
            rates[name].append(len(queries) / (time.perf_counter() - started))
    raw_qps = float(np.median(rates["raw"]))
    (raw_d, raw_ids), (exact_d, exact_ids) = answers["raw"], answers["exact"]
    if not all(
        np.array_equal(a, b) for a, b in zip(answers["heap"], answers["exact"], strict=True)
    ):
        raise AssertionError("the counting search and heap + range search disagree")
    quality = recall(raw_ids, raw_d, exact_d, exact_ids)
    add_row(
        "faiss flat (raw tie order)",
        raw_qps,
        flat_memory,
        build_seconds=flat_build,
        exact=False,
        recall=quality["recall_ids"],
        recall_tie_aware=quality["recall_tie_aware"],
    )
    for method, name in (
        ("HashIndex flat (exact order)", "exact"),
        ("heap + range search (exact, before)", "heap"),
    ):
        qps = float(np.median(rates[name]))
        add_row(
            method,
            qps,
            flat_memory,
            build_seconds=flat_build,
            exact=True,
            recall=1.0,
            qps_rounds=rates[name],
        )
    rows[0]["qps_rounds"] = rates["raw"]

    brute = queries[: args.brute_queries]
    for name, factory in (
        ("numpy LUT", numpy_lut),
        ("numpy bitwise_count", numpy_bitwise_count),
        ("torch SWAR popcount", torch_swar),
    ):
        qps, results = time_queries(factory(database), brute, args.k)
        for row, (d, ids) in enumerate(results):
            if not (np.array_equal(ids, exact_ids[row]) and np.array_equal(d, exact_d[row])):
                raise AssertionError(f"{name} disagrees with HashIndex flat on query {row}")
        add_row(name, qps, database.nbytes, build_seconds=0.0, exact=True, recall=1.0)

    hnsw_n = min(args.hnsw_n, args.n)
    if hnsw_n < args.n:  # HNSW over the first hnsw_n codes, recall against flat over the same
        subset = faiss_backend.build_index(database[:hnsw_n], FaissSpec(type="flat"))
        exact_d, exact_ids = faiss_backend.search(subset, FaissSpec(), queries, args.k)
    spec = FaissSpec(type="hnsw", m=args.hnsw_m, ef_construction=args.ef_construction)
    started = time.perf_counter()
    hnsw = faiss_backend.build_index(database[:hnsw_n], spec)
    hnsw_build = time.perf_counter() - started
    hnsw_memory = faiss.serialize_index_binary(hnsw).nbytes
    for ef_search in args.ef_search:
        spec = FaissSpec(
            type="hnsw", m=args.hnsw_m, ef_construction=args.ef_construction, ef_search=ef_search
        )
        started = time.perf_counter()
        approx_d, approx_ids = faiss_backend.search(hnsw, spec, queries, args.k)
        qps = len(queries) / (time.perf_counter() - started)
        quality = recall(approx_ids, approx_d, exact_d, exact_ids)
        add_row(
            f"HNSW M={args.hnsw_m} efSearch={ef_search}, {hnsw_n:,} codes",
            qps,
            hnsw_memory,
            build_seconds=hnsw_build,
            exact=False,
            recall=quality["recall_ids"],
            recall_tie_aware=quality["recall_tie_aware"],
        )

    baseline = next(r["qps"] for r in rows if r["method"] == "numpy LUT")
    for row in rows:
        row["speedup_vs_numpy_lut"] = row["qps"] / baseline
        row["vs_raw_faiss"] = row["qps"] / raw_qps
    print(
        f"{args.n:,} random 64-bit codes, top-{args.k}, {args.threads} thread(s); "
        f"recall@{args.k} against the exact (distance, id) top-{args.k}"
    )
    print(
        "| method | queries/s | vs raw faiss | vs numpy LUT | memory (MB) | build (s) "
        "| recall (ids) | recall (tie-aware) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['method']} | {row['qps']:,.0f} | {row['vs_raw_faiss']:.2f}x | "
            f"{row['speedup_vs_numpy_lut']:.1f}x | "
            f"{row['memory_bytes'] / 1e6:.1f} | {row['build_seconds']:.1f} | "
            f"{row['recall']:.3f} | {row.get('recall_tie_aware', row['recall']):.3f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "n": args.n,
        "bits": 64,
        "k": args.k,
        "queries": args.queries,
        "brute_queries": args.brute_queries,
        "threads": args.threads,
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "hnsw": {"n": hnsw_n, "m": args.hnsw_m, "ef_construction": args.ef_construction},
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "rows": rows,
    }
    provenance.write(None, **payload)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
