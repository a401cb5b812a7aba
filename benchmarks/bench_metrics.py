"""Benchmark exact mAP@k: ours vs torchmetrics RetrievalMAP vs a DeepHash-pytorch-style loop.

Random 64-bit codes with planted classes (10 classes; each code is its class prototype, or with
probability ``--confusion`` another class's, with each bit flipped with probability ``--flip``),
at 1,000 x 54,000 (cifar10) and 5,000 x 128,503 (imagenet100). Each measurement runs in its own
subprocess so peak memory (VmHWM after resetting it via /proc/self/clear_refs; ru_maxrss where
that is unavailable) belongs to that method alone. Baselines too slow or too big for the full
query set run on a query subset against the full database and are extrapolated linearly in
the number of queries (their cost is per query); the table says so.

    python benchmarks/bench_metrics.py   # both sizes -> benchmarks/results/metrics.json
    python benchmarks/bench_metrics.py --sizes small --reps 5

Wall time is reported (min over repetitions) together with process CPU time, since on a
shared machine other processes' load inflates wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
from benchmarks.results_io import Provenance  # noqa: E402

SIZES = {"small": (1000, 54000), "large": (5000, 128503)}


def planted_codes(
    num: int, bits: int, classes: int, flip: float, confusion: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """±1 codes (num, bits) float32 and labels (num,): noisy copies of per-class prototypes."""
    gen = torch.Generator().manual_seed(1234)
    prototypes = torch.randint(0, 2, (classes, bits), generator=gen).float() * 2 - 1
    gen.manual_seed(seed)
    labels = torch.randint(0, classes, (num,), generator=gen)
    source = labels.clone()
    confused = torch.rand(num, generator=gen) < confusion
    source[confused] = torch.randint(0, classes, (int(confused.sum()),), generator=gen)
    codes = prototypes[source]
    codes[torch.rand(num, bits, generator=gen) < flip] *= -1
    return codes, labels


def deephash_loop_map(qc, dc, ql, dl, top_k):
    """DeepHash-pytorch CalcTopMap, per query in numpy, with a stable argsort and no off-by-one."""
    qb, rb = qc.numpy().astype(np.float32), dc.numpy().astype(np.float32)
    classes = int(max(ql.max(), dl.max())) + 1
    q_onehot, r_onehot = np.eye(classes)[ql.numpy()], np.eye(classes)[dl.numpy()]
    bits = qb.shape[1]
    top_k = rb.shape[0] if top_k is None else top_k
    total = 0.0
    for i in range(qb.shape[0]):
        gnd = (q_onehot[i] @ r_onehot.T > 0).astype(np.float32)
        hamm = 0.5 * (bits - rb @ qb[i])
        ind = np.argsort(hamm, kind="stable")
        tgnd = gnd[ind][:top_k]
        tsum = int(tgnd.sum())
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)).reshape(-1) + 1.0
        total += float(np.mean(count / tindex))
    return total / qb.shape[0]


def torchmetrics_map(qc, dc, ql, dl, top_k):
    """torchmetrics RetrievalMAP on scores bits + 1 - d (positive, as it requires)."""
    from torchmetrics.retrieval import RetrievalMAP

    bits = qc.shape[1]
    scores = bits + 1 - (bits - qc @ dc.T) / 2
    target = ql[:, None] == dl[None, :]
    indexes = torch.arange(qc.shape[0])[:, None].expand_as(scores)
    metric = RetrievalMAP(top_k=top_k)
    metric.update(scores.flatten(), target.flatten(), indexes=indexes.flatten())
    return float(metric.compute())


def ours_map(qc, dc, ql, dl, top_k):
    from hashing.metrics import mean_average_precision

    return mean_average_precision(qc, dc, ql, dl, top_k)


def ours_both(qc, dc, ql, dl, top_k):
    from hashing.metrics import mean_average_precisions

    return mean_average_precisions(qc, dc, ql, dl, [1000, None])


METHODS = {
    "ours": ours_map,
    "ours_1000+ALL": ours_both,
    "torchmetrics": torchmetrics_map,
    "deephash_loop": deephash_loop_map,
}


def status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_child(spec: dict) -> dict:
    """Time one method on one size (in this fresh process) and measure its peak memory."""
    torch.manual_seed(0)
    nq, nd = spec["queries"], spec["database"]
    qc, ql = planted_codes(nq, 64, 10, spec["flip"], spec["confusion"], seed=1)
    dc, dl = planted_codes(nd, 64, 10, spec["flip"], spec["confusion"], seed=2)
    qc, ql = qc[: spec["run_queries"]], ql[: spec["run_queries"]]
    fn = METHODS[spec["method"]]
    top_k = spec["top_k"]
    fn(qc[:8], dc, ql[:8], dl, top_k)  # warm-up: imports, thread pools, allocator
    rss_before = status_mb("VmRSS")
    exact_peak = reset_peak()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds, cpu_seconds, value = [], [], None
    for _ in range(spec["reps"]):
        start, cpu_start = time.perf_counter(), time.process_time()
        value = fn(qc, dc, ql, dl, top_k)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    if exact_peak and rss_before is not None:
        peak = status_mb("VmHWM") - rss_before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - maxrss_before
    ours_on_same_queries = None
    if not spec["method"].startswith("ours"):
        ours_on_same_queries = ours_map(qc, dc, ql, dl, top_k)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mb": peak,
        "value": value,
        "ours_on_same_queries": ours_on_same_queries,
        "exact_peak": exact_peak,
    }


def measure(spec: dict) -> dict:
    """Run one measurement in a subprocess (fresh memory high-water mark)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "large"], choices=SIZES)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (min reported)")
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="what to run"
    )
    parser.add_argument("--tm-queries", type=int, default=200, help="torchmetrics query subset")
    parser.add_argument("--loop-queries", type=int, default=200, help="numpy loop query subset")
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--confusion", type=float, default=0.15)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/metrics.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    provenance = Provenance(args.out, "benchmarks/bench_metrics.py", args)
    provenance.capture_printed_tables()

    rows = []
    for size in args.sizes:
        nq, nd = SIZES[size]
        plan = [("ours", None, nq), ("ours", 1000, nq), ("ours_1000+ALL", None, nq)]
        if size == "small":
            plan += [
                ("torchmetrics", None, args.tm_queries),
                ("torchmetrics", 1000, args.tm_queries),
            ]
        plan += [
            ("deephash_loop", None, args.loop_queries),
            ("deephash_loop", 1000, args.loop_queries),
        ]
        plan = [p for p in plan if p[0] in args.methods]
        for method, top_k, run_queries in plan:
            reps = args.reps if method.startswith("ours") else 1
            spec = {
                "method": method,
                "top_k": top_k,
                "queries": nq,
                "database": nd,
                "run_queries": min(run_queries, nq),
                "reps": reps,
                "flip": args.flip,
                "confusion": args.confusion,
            }
            result = measure(spec)
            scale = nq / spec["run_queries"]
            row = {
                **spec,
                **result,
                "best_s": min(result["seconds"]),
                "full_s": min(result["seconds"]) * scale,
                "full_cpu_s": min(result["cpu_seconds"]) * scale,
                "extrapolated": scale != 1,
            }
            rows.append(row)
            print(
                f"{size:5s} {method:14s} k={'ALL' if top_k is None else top_k:>4} "
                f"{row['full_s']:9.3f}s (cpu {row['full_cpu_s']:8.3f}s) "
                f"peak {row['peak_mb']:8.1f} MB",
                flush=True,
            )

    def ours_time(size_q: int, top_k: int | None) -> float:
        found = [
            r["full_s"]
            for r in rows
            if r["method"] == "ours" and r["queries"] == size_q and r["top_k"] == top_k
        ]
        return found[0] if found else float("nan")

    print()
    header = (
        "| size | method | k | wall (s) | cpu (s) | x ours (wall) | peak MB | mAP | note |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    print(header)
    for r in rows:
        k = "ALL" if r["top_k"] is None else r["top_k"]
        ours = ours_time(r["queries"], r["top_k"])
        if isinstance(r["value"], dict):
            value = ", ".join(f"{v:.4f}" for v in r["value"].values())
            k = "1000+ALL"
        else:
            value = f"{r['value']:.4f}"
        if r["extrapolated"]:
            note = (
                f"{r['run_queries']} queries timed, x{r['queries'] / r['run_queries']:g}; "
                f"mAP/peak on those queries (ours there: {r['ours_on_same_queries']:.4f})"
            )
        else:
            note = f"min of {r['reps']}"
        print(
            f"| {r['queries']:,} x {r['database']:,} | {r['method']} | {k} | {r['full_s']:.3f} | "
            f"{r['full_cpu_s']:.3f} | {r['full_s'] / ours:.1f} | {r['peak_mb']:.0f} | {value} | "
            f"{note} |"
        )
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": load_average(),
        "machine": platform.machine(),
    }
    print(f"\n{meta}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    provenance.write(None, meta=meta, rows=rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
