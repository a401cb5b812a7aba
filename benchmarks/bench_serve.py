"""Load on the search service: concurrent HTTP clients against an index of 1M codes.

An index of ``--n`` 64-bit codes drawn like trained codes (``--classes`` random class centers,
each bit of an item flipped with probability ``--noise``) is saved and served by
``python -m hashing.serve`` in a child process on a free localhost port. Each phase runs for
``--seconds``:

  in-process   ``--clients`` threads call ``HashIndex.search`` (one code query a call, k) on the
               same folder loaded in this process: the baseline
  service      ``--clients`` clients, each on its own keep-alive connection, POST /search with
               ``{"code": <hex>, "k": k}`` for the same queries
  mixed        the same searching clients, plus one client adding batches of ``--batch`` copies
               of a fresh code (POST /items) and one watcher searching for the batch in flight

Reported: requests/s, p50/p99 latency, errors (must be 0); the service's searches/s as a ratio
of in-process (goal >= 0.8x for code queries). After the mixed run every acknowledged id must be
found (in the server's answers and in the folder reopened from disk, with its code), and no
search may have seen part of a batch: the watcher's count of a batch's copies at distance 0 is
always 0 or ``--batch``. The service process runs with one OpenMP thread, as the in-process
baseline does, so both use one core per concurrent search. Prints a table and writes JSON.

  python benchmarks/bench_serve.py                         # 1M codes, 16 clients, 10 s phases
  python benchmarks/bench_serve.py --n 100000 --seconds 3  # a quick look
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.results_io import Provenance  # noqa: E402
from benchmarks.trained_like_codes import BITS, clustered_codes  # noqa: E402
from hashing.index import HashIndex, Query  # noqa: E402
from hashing.service.process import ServerProcess  # noqa: E402


def percentile_ms(latencies: list[float], q: float) -> float:
    return float(np.percentile(latencies, q) * 1000) if latencies else float("nan")


def run_clients(
    clients: int, seconds: float, request: Callable[[int, int], None]
) -> dict[str, Any]:
    """``clients`` threads calling ``request(client, i)`` for ``seconds``; rate and latencies."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    stop = time.perf_counter() + seconds + 1e9  # set when all have started

    def loop(client: int) -> None:
        start.wait()
        i = 0
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                request(client, i)
            except Exception as err:  # counted and reported, never hidden
                errors.append(f"{type(err).__name__}: {err}")
            latencies[client].append(time.perf_counter() - began)
            i += 1

    threads = [threading.Thread(target=loop, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    stop = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    flat = [value for values in latencies for value in values]
    return {
        "requests": len(flat),
        "per_second": len(flat) / wall,
        "p50_ms": percentile_ms(flat, 50),
        "p99_ms": percentile_ms(flat, 99),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": wall,
    }


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.connection.request(
            "POST", path, json.dumps(body), {"Content-Type": "application/json"}
        )
        answer = self.connection.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path} answered {answer.status}: {data[:200]!r}")
        return json.loads(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_serve.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_serve.py", args)
    provenance.capture_printed_tables()
    faiss.omp_set_num_threads(1)

    packed, labels = clustered_codes(args.n + args.queries, args.classes, args.noise, args.seed)
    queries = packed[args.n :]
    hex_queries = [bytes(row).hex() for row in queries]
    folder = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    HashIndex(packed[: args.n], BITS, labels=labels[: args.n], num_classes=args.classes).save(
        folder / "index"
    )
    index = HashIndex.load(folder / "index")
    print(f"index of {args.n:,} codes in {folder / 'index'}; {args.clients} clients, "
          f"{args.seconds:g} s a phase, k={args.k}")  # fmt: skip

    rows: list[dict[str, Any]] = []

    def in_process(client: int, i: int) -> None:
        q = (client * 7919 + i) % len(queries)
        index.search(Query.packed(queries[q : q + 1]), k=args.k)

    rows.append({"phase": "in-process", **run_clients(args.clients, args.seconds, in_process)})

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    overrides = ["serve.log_level=warning", f"serve.max_batch={max(args.batch, 1)}"]
    server = ServerProcess(folder / "index", folder / "logs", overrides, env=env).start()
    try:
        connections = [Client(server.port) for _ in range(args.clients + 2)]
        # the service answers the same items as in-process search (spot check, then timed)
        for q in range(0, len(queries), max(1, len(queries) // 20)):
            answer = connections[0].post("/search", {"code": hex_queries[q], "k": args.k})
            expected = index.search(Query.packed(queries[q : q + 1]), k=args.k).row(0)
            got = [(r["id"], r["distance"]) for r in answer["results"]]
            if got != expected:
                raise AssertionError(f"service and HashIndex disagree on query {q}")

        def over_http(client: int, i: int) -> None:
            q = (client * 7919 + i) % len(queries)
            connections[client].post("/search", {"code": hex_queries[q], "k": args.k})

        rows.append({"phase": "service", **run_clients(args.clients, args.seconds, over_http)})

        acknowledged: dict[int, str] = {}
        in_flight: list[str] = []
        seen_counts: list[int] = []
        stop = threading.Event()
        rng = np.random.default_rng(args.seed + 1)
        adder_errors: list[str] = []

        def add_batches() -> None:
            client = connections[args.clients]
            while not stop.is_set():
                code = bytes(np.packbits(rng.random(BITS) < 0.5)).hex()
                in_flight.append(code)
                body = {"codes": [code] * args.batch, "labels": [0] * args.batch}
                try:
                    ids = client.post("/items", body)["ids"]
                except Exception as err:
                    adder_errors.append(str(err))
                    return
                for item in ids:
                    acknowledged[item] = code

        def watch() -> None:
            client = connections[args.clients + 1]
            while not stop.is_set():
                if not in_flight:
                    time.sleep(0.001)
                    continue
                body = {"code": in_flight[-1], "k": 2 * args.batch}
                results = client.post("/search", body)["results"]
                seen_counts.append(sum(1 for r in results if r["distance"] == 0))

        helpers = [threading.Thread(target=add_batches), threading.Thread(target=watch)]
        for helper in helpers:
            helper.start()
        mixed = run_clients(args.clients, args.seconds, over_http)
        stop.set()
        for helper in helpers:
            helper.join()
        partial = [count for count in seen_counts if count not in (0, args.batch)]
        codes_by_id = sorted(acknowledged.items())
        missing = 0
        for start in range(0, len(codes_by_id), args.batch):
            code = codes_by_id[start][1]
            answer = connections[0].post("/search", {"code": code, "k": 2 * args.batch})
            found = {r["id"] for r in answer["results"] if r["distance"] == 0}
            batch_ids = {i for i, _ in codes_by_id[start : start + args.batch]}
            missing += len(batch_ids - found)
        rows.append(
            {
                "phase": "mixed",
                **mixed,
                "adds": len(acknowledged) // args.batch,
                "added_items": len(acknowledged),
                "adder_errors": len(adder_errors),
                "watched_searches": len(seen_counts),
                "partial_batches_seen": len(partial),
                "acknowledged_missing": missing,
            }
        )
    finally:
        server.stop()
    reopened = HashIndex.load(folder / "index")
    ids = np.asarray([item for item, _ in codes_by_id], np.int64)
    stored = [bytes(row).hex() for row in reopened.packed[ids]] if len(ids) else []
    on_disk_ok = len(reopened) == args.n + len(ids) and stored == [c for _, c in codes_by_id]
    rows[-1]["acknowledged_on_disk"] = bool(on_disk_ok)

    base = rows[0]["per_second"]
    for row in rows:
        row["vs_in_process"] = row["per_second"] / base
    print(
        f"\n{'phase':<11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs in-proc':>10}"
    )
    for row in rows:
        print(
            f"{row['phase']:<11} {row['per_second']:>9.0f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['errors']:>7d} {row['vs_in_process']:>9.2f}x"
        )
    mixed_row = rows[-1]
    print(
        f"\nmixed: {mixed_row['adds']} adds of {args.batch} acknowledged; "
        f"{mixed_row['acknowledged_missing']} acknowledged items missing from searches; "
        f"on disk after stop: {'all' if on_disk_ok else 'NOT all'}; "
        f"{mixed_row['watched_searches']} watcher searches, "
        f"{mixed_row['partial_batches_seen']} saw part of a batch"
    )
    ratio = rows[1]["vs_in_process"]
    print(f"service / in-process searches/s: {ratio:.2f}x (goal >= 0.8x)")

    path = provenance.write(None, rows=rows, faiss=faiss.__version__)
    print(f"wrote {path}")
    failures = [row["phase"] for row in rows if row["errors"]]
    if failures or mixed_row["partial_batches_seen"] or mixed_row["acknowledged_missing"]:
        sys.exit(f"errors in {failures}, or a partial batch seen, or an acknowledged add missing")
    if not on_disk_ok:
        sys.exit("acknowledged adds missing from the reopened folder")


if __name__ == "__main__":
    main()
