"""Start-up: ``--help``, ``import hashing.pipeline`` and the default run against ``import torch``.

Each command runs as a fresh process, in ``--repeats`` interleaved rounds (median reported), so
the load of a shared machine falls on all of them alike; the baseline is ``python -c "import
torch"`` measured in the same rounds, and each row gives its wall time and CPU time (user +
system of the process) as a ratio to it. CPU time is the steadier figure on a loaded machine.

  python benchmarks/bench_startup.py                 # 3 rounds
  python benchmarks/bench_startup.py --repeats 5
  python benchmarks/bench_startup.py --before /tmp/main   # also another checkout, interleaved
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
from benchmarks.results_io import Provenance  # noqa: E402


def commands(run_dir: Path) -> dict[str, list[str]]:
    """The measured commands (run from a project root)."""
    python = sys.executable
    return {
        'python -c "import torch"': [python, "-c", "import torch"],
        "python -m hashing.train --help": [python, "-m", "hashing.train", "--help"],
        'python -c "import hashing.pipeline"': [python, "-c", "import hashing.pipeline"],
        "python -m hashing.train (default run)": [
            python,
            "-m",
            "hashing.train",
            f"hydra.run.dir={run_dir}",
            "callbacks.progress_bar.refresh_rate=0",
        ],
    }


def timed(command: list[str], root: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``command`` in ``root``; a failure raises."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=root, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout (e.g. main, unpacked by `git archive`) timed in the same rounds",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json"
    )
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_startup.py", args)
    provenance.capture_printed_tables()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            checkouts = [(ROOT, "")] + ([(args.before, " [before]")] if args.before else [])
            for root, label in checkouts:
                run_dir = Path(tmp) / f"run{repeat}{label.strip(' []')}"
                for name, command in commands(run_dir).items():
                    if label and "import torch" in name:
                        continue
                    seconds, cpu_seconds = timed(command, root)
                    wall.setdefault(name + label, []).append(seconds)
                    cpu.setdefault(name + label, []).append(cpu_seconds)
            load.append(os.getloadavg()[0])
    names = list(wall)
    base_wall, base_cpu = float(np.median(wall[names[0]])), float(np.median(cpu[names[0]]))
    rows = [
        {
            "command": name,
            "wall_s": float(np.median(wall[name])),
            "cpu_s": float(np.median(cpu[name])),
            "wall_vs_import_torch": float(np.median(wall[name])) / base_wall,
            "cpu_vs_import_torch": float(np.median(cpu[name])) / base_cpu,
            "wall_rounds": wall[name],
            "cpu_rounds": cpu[name],
        }
        for name in names
    ]
    print(
        f"start-up, median of {args.repeats} interleaved rounds; load average (1 min) "
        f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores"
    )
    print("| command | wall (s) | vs import torch | CPU (s) | vs import torch |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| `{row['command']}` | {row['wall_s']:.1f} | {row['wall_vs_import_torch']:.1f}x | "
            f"{row['cpu_s']:.1f} | {row['cpu_vs_import_torch']:.1f}x |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "repeats": args.repeats,
        "load_average_1min": load,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "rows": rows,
    }
    provenance.write(None, **payload)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
