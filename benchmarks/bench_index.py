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

``--scale`` instead measures every index kind (flat, mih, ivf, hnsw) at 1M, 10M and 100M codes
drawn like trained codes (``--classes`` class centers, each bit flipped with probability
``--noise``: :mod:`benchmarks.trained_like_codes`): queries/s, recall@k against the exact flat
(distance, id) order, index bytes and build time, and the flat scan's bytes read per second as a
ratio of one thread's memory read bandwidth measured in the same run. A size or kind that would
not fit in memory, over ``--<kind>-max`` codes, or past the ``--budget`` seconds (projected from
the last size) is skipped and listed with its reason. Writes ``results/index_scale.json``.

  python benchmarks/bench_index.py --scale             # ~10 min on the loaded 2-core machine
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

from benchmarks.results_io import Provenance, markdown_table  # noqa: E402
from benchmarks.trained_like_codes import clustered_codes  # noqa: E402
from hashing.index import faiss_backend  # noqa: E402
from hashing.index.faiss_backend import FaissSpec  # noqa: E402
from hashing.index.packing import POPCOUNT_TABLE  # noqa: E402

SCRIPT = "benchmarks/bench_index.py"
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


def available_bytes() -> int:
    """The kernel's estimate of memory available without swapping (MemAvailable)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def memory_bandwidth(nbytes: int = 512 * 2**20, repeats: int = 3) -> dict[str, float]:
    """One thread's memory bandwidth in GB/s, best of ``repeats``: ``read`` (an OR reduction
    over an array far larger than the caches, the flat scan's access pattern) and ``copy``
    (bytes read + written by ``np.copyto``)."""
    source = np.random.default_rng(0).integers(0, 2**63, nbytes // 8, dtype=np.uint64)
    target = np.empty_like(source)
    read, copy = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        np.bitwise_or.reduce(source)
        read.append(nbytes / (time.perf_counter() - started) / 1e9)
        started = time.perf_counter()
        np.copyto(target, source)
        copy.append(2 * nbytes / (time.perf_counter() - started) / 1e9)
    return {"read_gb_s": max(read), "copy_gb_s": max(copy), "array_bytes": nbytes}


def scale_specs(args: argparse.Namespace) -> list[tuple[str, FaissSpec, list[FaissSpec]]]:
    """(label, spec to build, specs to search it with) for every approximate kind."""
    mih = FaissSpec(type="mih", nhash=args.mih_nhash, nflip=args.mih_nflip)
    ivf = [FaissSpec(type="ivf", nlist=args.nlist, nprobe=p) for p in args.nprobe]
    hnsw = [
        FaissSpec(type="hnsw", m=args.hnsw_m, ef_construction=args.ef_construction, ef_search=e)
        for e in args.ef_search
    ]
    return [("mih", mih, [mih]), ("ivf", ivf[0], ivf), ("hnsw", hnsw[0], hnsw)]


def describe(spec: FaissSpec) -> str:
    if spec.type == "mih":
        return f"mih nhash={spec.nhash} nflip={spec.nflip}"
    if spec.type == "ivf":
        return f"ivf nlist={spec.nlist} nprobe={spec.nprobe}"
    if spec.type == "hnsw":
        return f"hnsw M={spec.m} efSearch={spec.ef_search}"
    return "flat (exact)"


def timed_search(
    index: faiss.IndexBinary, spec: FaissSpec, queries: np.ndarray, k: int, least: float = 0.5
) -> tuple[float, tuple]:
    """Queries/s of ``faiss_backend.search``, repeated until ``least`` seconds have passed (a
    fast index answers the queries in milliseconds, too short to time on a loaded machine)."""
    calls, started = 0, time.perf_counter()
    while True:
        answer = faiss_backend.search(index, spec, queries, k)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= least:
            return calls * len(queries) / elapsed, answer


def run_scale(args: argparse.Namespace, provenance: Provenance) -> None:
    """``--scale``: every index kind at 1M, 10M and (memory and time allowing) 100M codes."""
    begun = time.perf_counter()
    load_before = os.getloadavg()
    bandwidth = memory_bandwidth()
    print(
        f"one thread's memory bandwidth: read {bandwidth['read_gb_s']:.1f} GB/s, copy "
        f"{bandwidth['copy_gb_s']:.1f} GB/s; load average {load_before[0]:.1f}"
    )
    rows: list[dict] = []
    skipped: list[dict] = []
    cost: dict[str, float] = {}  # seconds per code of each kind's build + search, last size

    def remaining() -> float:
        return args.budget - (time.perf_counter() - begun)

    def skip(n: int, kind: str, reason: str) -> None:
        skipped.append({"n": n, "kind": kind, "reason": reason})
        print(f"  {n:,} codes, {kind}: skipped, {reason}")

    for n in args.scale_sizes:
        need = 3 * n * 8 + n * 4  # codes, the flat index's copy, its serialisation, labels
        if need > 0.6 * available_bytes():
            skip(n, "all", f"needs ~{need / 2**30:.1f} GiB, {available_bytes() / 2**30:.1f} free")
            continue
        projected = cost.get("flat", 0.0) * n
        if projected > remaining():
            skip(n, "all", f"flat projected {projected:.0f} s > {remaining():.0f} s left")
            continue
        started = time.perf_counter()
        packed, _ = clustered_codes(n + args.queries, args.classes, args.noise, args.seed)
        database, queries = packed[:n], packed[n:]
        generate = time.perf_counter() - started
        started = time.perf_counter()
        flat = faiss_backend.build_index(database, FaissSpec(type="flat"))
        build = time.perf_counter() - started
        flat_qps, (exact_d, exact_ids) = timed_search(flat, FaissSpec(), queries, args.k)
        single = queries[: args.single_queries]
        single_seconds = sum(
            1 / timed_search(flat, FaissSpec(), q[None], args.k)[0] for q in single
        )
        single_qps = len(single) / single_seconds
        scan = n * 8 * flat_qps / 1e9
        single_scan = n * 8 * single_qps / 1e9
        rows.append(
            {
                "n": n,
                "kind": "flat",
                "method": "flat (exact)",
                "qps": flat_qps,
                "qps_one_query_a_call": single_qps,
                "recall_ids": 1.0,
                "recall_tie_aware": 1.0,
                "memory_bytes": int(flat.ntotal * flat.code_size),
                "build_seconds": build,
                "scan_gb_s": scan,
                "scan_vs_read_bandwidth": scan / bandwidth["read_gb_s"],
                "single_scan_gb_s": single_scan,
                "single_scan_vs_read_bandwidth": single_scan / bandwidth["read_gb_s"],
            }
        )
        cost["flat"] = (time.perf_counter() - started + generate) / n
        print(f"  {n:,} codes: generated in {generate:.1f} s, flat {flat_qps:,.1f} queries/s")
        del flat
        for kind, build_spec, search_specs in scale_specs(args):
            if n > args.kind_max.get(kind, n):
                guess = f": ~{cost[kind] * n:.0f} s projected" if kind in cost else ""
                skip(n, kind, f"over --{kind}-max={args.kind_max[kind]:,} (build + search{guess})")
                continue
            projected = cost.get(kind, 0.0) * n * (1.2 if kind == "hnsw" else 1.0)
            if projected > remaining():
                skip(
                    n,
                    kind,
                    f"build + search projected {projected:.0f} s > {remaining():.0f} s left",
                )
                continue
            started = time.perf_counter()
            index = faiss_backend.build_index(database, build_spec)
            build = time.perf_counter() - started
            memory = faiss.serialize_index_binary(index).nbytes
            for spec in search_specs:
                qps, (approx_d, approx_ids) = timed_search(index, spec, queries, args.k)
                quality = recall(approx_ids, approx_d, exact_d, exact_ids)
                rows.append(
                    {
                        "n": n,
                        "kind": kind,
                        "method": describe(spec),
                        "qps": qps,
                        **quality,
                        "memory_bytes": memory,
                        "build_seconds": build,
                        "settings": spec.to_dict(),
                    }
                )
                print(
                    f"  {n:,} codes, {describe(spec)}: {qps:,.1f} queries/s, "
                    f"recall {quality['recall_ids']:.3f}"
                )
            cost[kind] = (time.perf_counter() - started) / n
            del index
        del packed, database, queries
    for row in rows:
        flat_row = next(r for r in rows if r["n"] == row["n"] and r["kind"] == "flat")
        row["vs_flat"] = row["qps"] / flat_row["qps"]
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - begun
    print(
        f"\n64-bit codes around {args.classes} class centers, {args.noise:.0%} bit noise; "
        f"{args.queries} queries, top-{args.k}, {args.threads} thread(s); load average "
        f"{load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} cores; {elapsed:.0f} s"
    )
    kinds = {
        "columns": [
            "codes", "index", "queries/s", "vs flat", f"recall@{args.k} (ids)",
            f"recall@{args.k} (tie-aware)", "memory (MB)", "build (s)",
        ],
        "rows": [
            [
                f"{row['n']:,}", row["method"], f"{row['qps']:,.1f}", f"{row['vs_flat']:.2f}x",
                f"{row['recall_ids']:.3f}", f"{row['recall_tie_aware']:.3f}",
                f"{row['memory_bytes'] / 1e6:,.1f}", f"{row['build_seconds']:.1f}",
            ]
            for row in rows
        ],
    }  # fmt: skip
    flat_scan = {
        "columns": [
            "codes", f"scan GB/s ({args.queries} queries a call)", "of read bandwidth",
            "scan GB/s (one query a call)", "of read bandwidth",
        ],
        "rows": [
            [
                f"{row['n']:,}", f"{row['scan_gb_s']:.1f}", f"{row['scan_vs_read_bandwidth']:.2f}x",
                f"{row['single_scan_gb_s']:.1f}",
                f"{row['single_scan_vs_read_bandwidth']:.2f}x",
            ]
            for row in rows
            if row["kind"] == "flat"
        ],
        "notes": [
            f"one thread's memory read bandwidth {bandwidth['read_gb_s']:.1f} GB/s, copy "
            f"{bandwidth['copy_gb_s']:.1f} GB/s (read + written), measured in the same run"
        ],
    }  # fmt: skip
    skips = {
        "columns": ["codes", "index", "skipped because"],
        "rows": [[f"{e['n']:,}", e["kind"], e["reason"]] for e in skipped],
    }
    tables = {"kinds": kinds, "flat_scan": flat_scan, "skipped": skips}
    for name, table in tables.items():
        print(f"\n{name}:\n{markdown_table(table)}")
    print(*flat_scan["notes"], sep="\n")
    out = provenance.write(
        tables,
        bits=64, k=args.k, queries=args.queries, threads=args.threads, classes=args.classes,
        noise=round(args.noise * 256) / 256, sizes=args.scale_sizes, budget_seconds=args.budget,
        elapsed_seconds=elapsed, load_average_before=load_before, load_average_after=load_after,
        memory_bandwidth=bandwidth, memory_bytes=os.sysconf("SC_PAGE_SIZE")
        * os.sysconf("SC_PHYS_PAGES"), faiss=faiss.__version__, numpy=np.__version__,
        rows=rows, skipped=skipped,
    )  # fmt: skip
    print(f"written {out}")


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
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: results/)")
    scale = parser.add_argument_group("--scale: every index kind on codes drawn like trained ones")
    scale.add_argument("--scale", action="store_true")
    scale.add_argument(
        "--scale-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000]
    )
    scale.add_argument("--scale-queries", type=int, default=50)
    scale.add_argument("--single-queries", type=int, default=5, help="flat, one query a call")
    scale.add_argument("--classes", type=int, default=100, help="class centers")
    scale.add_argument("--noise", type=float, default=0.1, help="per-bit flip probability")
    scale.add_argument("--budget", type=float, default=840, help="seconds; later sizes skip")
    scale.add_argument("--mih-nhash", type=int, default=4)
    scale.add_argument("--mih-nflip", type=int, default=1)
    scale.add_argument("--nlist", type=int, default=1024)
    scale.add_argument("--nprobe", type=int, nargs="+", default=[16, 64])
    for kind, most in (("mih", 100_000_000), ("ivf", 100_000_000), ("hnsw", 1_000_000)):
        scale.add_argument(f"--{kind}-max", type=int, default=most, help="codes at most")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    if args.scale:
        args.queries = args.scale_queries
        args.kind_max = {kind: getattr(args, f"{kind}_max") for kind in ("mih", "ivf", "hnsw")}
        run_scale(args, Provenance(args.out or "index_scale", SCRIPT, args, [args.seed]))
        return
    args.out = args.out or ROOT / "benchmarks" / "results" / "index.json"
    provenance = Provenance(args.out, SCRIPT, args, [args.seed])
    provenance.capture_printed_tables()
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
