"""TBH's training step: where the time goes, and the step against a plain PyTorch loop.

On the real features (``experiment=tbh_fc7`` with ``data.path``, batch 400, validation off) one
run measures, in ``--repeats`` interleaved rounds per thread count (median ms per iteration; an
iteration is one batch, i.e. both optimisers' steps):

  framework      ``Trainer.fit`` as ``hashing.train`` builds it (callbacks, logger, checkpoints);
  lightning      ``Trainer(barebones=True).fit`` on the same model and loader;
  plain          a plain loop of the same TBH model: ``step_losses``, two backward passes, two
                 optimiser steps (``benchmarks/bench_training.py``'s loops, reused);
  *_unfused      the framework and the plain loop with ``method.optimizer.fused=false``, the
                 for-loop Adam TBH used before (the speed-up of the fused Adam, same run);
  mlp            the reference: a plain loop of a ``nn.Sequential`` MLP of the same layer sizes
                 (D -> H -> M+L -> L -> H -> D, one reconstruction loss, one fused Adam).

Every loop trains ``--iterations`` batches (the same batches, in the framework loader's order).
FLOPs per iteration are counted analytically (:func:`tbh_step_flops`, :func:`mlp_step_flops`,
matrix products only; checked against ``torch.utils.flop_counter`` here and in
``tests/test_bench_tbh_step.py``), so each loop's achieved GFLOP/s is shown. A profile of the
framework's training step (``torch.profiler``) splits its time by part: the network's own layers,
the code graph and GCN, the discriminators, the rest of the losses, the backward pass, the
optimisers, the NaN guard (``check_finite_update``), the per-epoch diagnostics
(``code_gradients``), and the rest of the step; each part into matrix products and other ops.
Finally the fused and the for-loop Adam are compared numerically: the same iterations from the
same weights, largest relative weight difference.

  python benchmarks/bench_tbh_step.py                      # threads 1 and 2, 3 rounds
  python benchmarks/bench_tbh_step.py --threads 1 --repeats 1 --iterations 10
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
import torch  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks import bench_training  # noqa: E402
from benchmarks.results_io import Provenance  # noqa: E402
from hashing import pipeline  # noqa: E402

FEATURES = bench_training.FEATURES
OVERRIDES = ["experiment=tbh_fc7", "trainer.max_steps=-1"]
UNFUSED = ["method.optimizer.fused=false"]
#: (loop name, Loop, extra overrides), in the order of a round
LOOPS = ("framework", "framework_unfused", "lightning", "plain", "plain_unfused", "mlp")
#: profiler labels of the step's parts, innermost wins; ops outside every label are "step: rest"
PARTS = (
    "network",
    "graph/GCN",
    "discriminators",
    "losses (rest)",
    "backward",
    "optimisers",
    "NaN guard",
    "diagnostics",
)
MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::addmv"}


def tbh_step_flops(
    batch: int, inputs: int, hidden: int, bits: int, continuous: int, classes: int = 0
) -> int:
    """Matrix-product FLOPs of one TBH iteration (forward, actor and critic backward).

    Forward: the linear layers, the code graph's two ``B x M x B`` products, the GCN's
    ``B x B x L`` product, the four discriminator calls (prior and encoded, code and continuous)
    and the classifier (built even when unused). Actor backward (into the actor's parameters
    only): every actor layer's weight gradient, every input gradient but the encoder's (its input
    needs none), both operands of the graph products, the encoded samples through the
    discriminators. Critic backward: the discriminators' weight gradients.
    """
    b, d, h, m, l_ = batch, inputs, hidden, bits, continuous
    layers = d * h + h * m + h * l_ + l_ * l_ + l_ * h + h * d
    forward = (
        2 * b * layers + 4 * b * b * m + 2 * b * b * l_ + 4 * b * (m + l_) + 2 * b * m * classes
    )
    actor = 2 * b * layers + 2 * b * (layers - d * h) + 8 * b * b * m + 4 * b * b * l_
    actor += 2 * b * (m + l_)
    critic = 4 * b * (m + l_)
    return forward + actor + critic


def mlp_sizes(inputs: int, hidden: int, bits: int, continuous: int) -> list[int]:
    """The reference MLP's widths: TBH's layers in a chain, D -> H -> M+L -> L -> H -> D."""
    return [inputs, hidden, bits + continuous, continuous, hidden, inputs]


def mlp_step_flops(batch: int, sizes: list[int]) -> int:
    """Matrix-product FLOPs of one MLP iteration: forward, weight gradients, input gradients of
    every layer but the first."""
    products = [a * c for a, c in itertools.pairwise(sizes)]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def reference_mlp(sizes: list[int]) -> nn.Sequential:
    """ReLU after the hidden layers, sigmoid after the bottlenecks, ReLU output, like TBH."""
    acts = [nn.ReLU, nn.Sigmoid, nn.Sigmoid, nn.ReLU, nn.ReLU]
    layers: list[nn.Module] = []
    for (a, c), act in zip(itertools.pairwise(sizes), acts, strict=True):
        layers += [nn.Linear(a, c), act()]
    return nn.Sequential(*layers)


def shape_of(model: Any) -> dict[str, int]:
    """Batch-free sizes of a TBH module: inputs D, hidden H, bits M, continuous L, classes C."""
    net = model.twin_bottleneck
    classes = 0 if net.classifier is None else int(net.classifier.out_features)
    return {
        "inputs": int(net.in_features),
        "hidden": int(net.encoder.fc.out_features),
        "bits": int(net.bits),
        "continuous": int(net.continuous_bottleneck.fc.out_features),
        "classes": classes,
    }


def mlp_loop(cfg: DictConfig, folder: Path) -> tuple[float, int, nn.Module]:
    """Seconds of a plain loop of the reference MLP over the same batches, items, the MLP."""
    datamodule, model, _ = bench_training.build(cfg, folder)
    shape = shape_of(model)
    net = reference_mlp(
        mlp_sizes(shape["inputs"], shape["hidden"], shape["bits"], shape["continuous"])
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1e-7, fused=True)
    epochs = int(cfg.trainer.max_epochs)
    started = time.perf_counter()
    for batches in bench_training.epoch_batches(
        datamodule, epochs, bench_training.batch_limit(cfg)
    ):
        for x, _ in batches:
            loss = 0.5 * (net(x) - x).square().sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started, 0, net


RUNNERS: dict[str, tuple[bench_training.Loop, list[str]]] = {
    "framework": (bench_training.framework, []),
    "framework_unfused": (bench_training.framework, UNFUSED),
    "lightning": (bench_training.lightning, []),
    "plain": (bench_training.plain_loop, []),
    "plain_unfused": (bench_training.plain_loop, UNFUSED),
    "mlp": (mlp_loop, []),
}


def case_config(
    features: Path, bits: int, iterations: int, folder: Path, extra: list[str]
) -> DictConfig:
    """``experiment=tbh_fc7`` on ``features`` for one epoch of ``iterations`` batches."""
    overrides = [
        *OVERRIDES,
        f"data.path={features}",
        f"bits={bits}",
        f"+trainer.limit_train_batches={iterations}",
        *extra,
    ]
    return bench_training.compose_case(overrides, 1, folder)


@contextlib.contextmanager
def labelled(owner: Any, name: str, label: str) -> Iterator[None]:
    """Run ``owner.name`` inside ``record_function(label)`` while the context is open."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function(label):
            return original(*args, **kwargs)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def step_labels() -> contextlib.ExitStack:
    """Profiler labels on the parts of TBH's training step (undone when the stack closes)."""
    from hashing.methods import tbh as tbh_module
    from hashing.tbh import graph, losses, networks

    stack = contextlib.ExitStack()
    for owner, name, label in (
        (tbh_module.TBH, "training_step", "step"),
        (networks.Encoder, "forward", "network"),
        (networks.BinaryBottleneck, "forward", "network"),
        (networks.ContinuousBottleneck, "forward", "network"),
        (networks.Decoder, "forward", "network"),
        (networks, "code_adjacency", "graph/GCN"),
        (graph.GraphConvolution, "forward", "graph/GCN"),
        (networks.Discriminator, "forward", "discriminators"),
        (tbh_module, "tbh_losses", "losses (rest)"),
        (losses, "critic_loss", "losses (rest)"),
        (tbh_module.TBH, "manual_backward", "backward"),
        (torch.optim.Adam, "step", "optimisers"),
        (tbh_module, "check_finite_update", "NaN guard"),
        (tbh_module.TBH, "code_gradients", "diagnostics"),
    ):
        stack.enter_context(labelled(owner, name, label))
    return stack


def part_of(event: Any) -> str | None:
    """The innermost label above a profiler event; "step: rest" inside the step, None outside."""
    node = event.cpu_parent
    inside_step = False
    while node is not None:
        if node.name in PARTS:
            return node.name
        inside_step = inside_step or node.name == "step"
        node = node.cpu_parent
    return "step: rest" if inside_step else None


def profile_framework(
    features: Path, bits: int, iterations: int, threads: int, folder: Path
) -> dict[str, Any]:
    """Milliseconds per iteration of each part of the framework's step, matmul and other ops."""
    torch.set_num_threads(threads)
    cfg = case_config(features, bits, iterations, folder, [])
    datamodule, model, trainer = bench_training.build(cfg, folder)
    with step_labels(), profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.fit(model, datamodule=datamodule)
    parts: dict[str, dict[str, float]] = {}
    for event in prof.events():
        part = part_of(event)
        if part is None or event.name in (*PARTS, "step") or event.name.startswith("Optimizer."):
            continue
        kind = "matmul" if event.name in MATMULS else "other"
        cell = parts.setdefault(part, {"matmul": 0.0, "other": 0.0})
        cell[kind] += event.self_cpu_time_total / 1000 / iterations
    return parts


def measured_flops(features: Path, bits: int, folder: Path) -> dict[str, int]:
    """``torch.utils.flop_counter``'s count of one plain-loop TBH iteration and one MLP one."""
    cfg = case_config(features, bits, 1, folder, [])
    datamodule, model, _ = bench_training.build(cfg, folder)
    optimizers = model.configure_optimizers()
    step = bench_training.plain_step(model, optimizers)
    (batches,) = bench_training.epoch_batches(datamodule, 1, 1)
    x, y = next(batches)
    with FlopCounterMode(display=False) as tbh_counter:
        step(x, y)
    shape = shape_of(model)
    net = reference_mlp(
        mlp_sizes(shape["inputs"], shape["hidden"], shape["bits"], shape["continuous"])
    )
    with FlopCounterMode(display=False) as mlp_counter:
        (0.5 * (net(x) - x).square().sum()).backward()
    return {
        "tbh": int(tbh_counter.get_total_flops()),
        "mlp": int(mlp_counter.get_total_flops()),
        "batch": int(x.shape[0]),
        **shape,
    }


def trained(cfg: DictConfig, folder: Path, nudge: bool = False) -> tuple[list, list]:
    """Initial and trained parameters of the plain loop (``--adam-iterations`` batches);
    ``nudge`` moves every initial weight by one float32 ulp first (a rounding-size change)."""
    datamodule, model, _ = bench_training.build(cfg, folder)
    if nudge:
        with torch.no_grad():
            for param in model.parameters():
                param.copy_(torch.nextafter(param, torch.full_like(param, math.inf)))
    initial = [p.detach().clone() for p in model.parameters()]
    step = bench_training.plain_step(model, model.configure_optimizers())
    model.train()
    for batches in bench_training.epoch_batches(datamodule, 1, bench_training.batch_limit(cfg)):
        for x, y in batches:
            step(x, y)
    return initial, [p.detach().clone() for p in model.parameters()]


def relative_differences(a: list, b: list, initial: list) -> dict[str, float]:
    """Largest ``|a - b| / max|b|`` over the parameters, and ``|a - b| / max|b - initial|``
    (against the update the training made)."""
    weight, update = 0.0, 0.0
    for x, y, start in zip(a, b, initial, strict=True):
        difference = (x - y).abs().max()
        weight = max(weight, float(difference / y.abs().max().clamp_min(1e-30)))
        moved = (y - start).abs().max()
        if moved > 0:
            update = max(update, float(difference / moved))
    return {"max_relative_weight": weight, "max_relative_update": update}


def adam_difference(features: Path, bits: int, iterations: list[int], folder: Path) -> list:
    """Fused against for-loop Adam from the same weights over the same batches, beside the
    for-loop Adam against itself from weights one ulp apart: TBH's binary codes turn a
    rounding-size difference into a larger one, so the second is the yardstick for the first."""
    rows = []
    for count in iterations:
        runs = {}
        for name, extra, nudge in (
            ("fused", [], False),
            ("loop", UNFUSED, False),
            ("loop_nudged", UNFUSED, True),
        ):
            sub = folder / f"{name}{count}"
            runs[name] = trained(case_config(features, bits, count, sub, extra), sub, nudge)
        initial, loop = runs["loop"]
        rows.append(
            {
                "iterations": count,
                "fused_vs_loop": relative_differences(runs["fused"][1], loop, initial),
                "nudged_vs_loop": relative_differences(runs["loop_nudged"][1], loop, initial),
            }
        )
    return rows


def timing_rounds(args: argparse.Namespace, folder: Path) -> dict[int, dict[str, list[float]]]:
    """Milliseconds per iteration of every loop, per thread count, ``--repeats`` rounds."""
    ms: dict[int, dict[str, list[float]]] = {t: {k: [] for k in args.loops} for t in args.threads}
    for repeat in range(args.repeats):
        for threads in args.threads:
            torch.set_num_threads(threads)
            for kind in args.loops:
                run, extra = RUNNERS[kind]
                sub = folder / f"{kind}_{threads}_{repeat}"
                cfg = case_config(args.features, args.bits, args.iterations, sub, extra)
                seconds, _, model = run(cfg, sub)
                if kind.startswith(("framework", "lightning")):
                    assert model.global_step == 2 * args.iterations, model.global_step
                ms[threads][kind].append(1000 * seconds / args.iterations)
                print(f"round {repeat} threads {threads} {kind}: {ms[threads][kind][-1]:.1f} ms")
    return ms


def timing_table(
    ms: dict[int, dict[str, list[float]]], flops: dict[str, int]
) -> tuple[list[dict[str, Any]], str]:
    """Rows (one per thread count and loop) and their markdown table."""
    rows = []
    lines = [
        "| threads | loop | ms / iteration | vs plain TBH loop | vs MLP | GFLOP / iteration "
        "| GFLOP/s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for threads, loops in ms.items():
        median = {kind: statistics.median(values) for kind, values in loops.items()}
        for kind, value in median.items():
            work = flops["mlp" if kind == "mlp" else "tbh"]
            row = {
                "threads": threads,
                "loop": kind,
                "ms_per_iteration": value,
                "rounds_ms": loops[kind],
                "vs_plain": value / median["plain"] if "plain" in median else None,
                "vs_mlp": value / median["mlp"] if "mlp" in median else None,
                "gflop_per_iteration": work / 1e9,
                "gflop_per_s": work / 1e9 / (value / 1000),
            }
            rows.append(row)
            ratio = "" if row["vs_plain"] is None else f"{row['vs_plain']:.2f}x"
            vs_mlp = "" if row["vs_mlp"] is None else f"{row['vs_mlp']:.2f}x"
            lines.append(
                f"| {threads} | {kind} | {value:.1f} | {ratio} | {vs_mlp} | "
                f"{work / 1e9:.2f} | {row['gflop_per_s']:.0f} |"
            )
    return rows, "\n".join(lines)


def speedups(ms: dict[int, dict[str, list[float]]]) -> tuple[list[dict[str, Any]], str]:
    """The fused Adam's speed-up (for-loop / fused, same run) for the framework and the loop."""
    rows = []
    lines = [
        "| threads | loop | for-loop Adam (ms) | fused Adam (ms) | speed-up |",
        "|---:|---|---:|---:|---:|",
    ]
    for threads, loops in ms.items():
        for kind in ("framework", "plain"):
            if kind not in loops or f"{kind}_unfused" not in loops:
                continue
            fused = statistics.median(loops[kind])
            unfused = statistics.median(loops[f"{kind}_unfused"])
            rows.append(
                {"threads": threads, "loop": kind, "unfused_ms": unfused, "fused_ms": fused}
            )
            lines.append(
                f"| {threads} | {kind} | {unfused:.1f} | {fused:.1f} | {unfused / fused:.2f}x |"
            )
    return rows, "\n".join(lines)


def breakdown_table(profiles: dict[int, dict[str, dict[str, float]]]) -> str:
    """Markdown: ms per iteration of each part, matmul + other, per thread count."""
    order = [*PARTS, "step: rest"]
    head = " | ".join(f"{t} thread(s): matmul | other" for t in profiles)
    lines = [f"| part | {head} |", "|---|" + "---:|---:|" * len(profiles)]
    for part in order:
        cells = []
        for parts in profiles.values():
            cell = parts.get(part, {"matmul": 0.0, "other": 0.0})
            cells += [f"{cell['matmul']:.1f}", f"{cell['other']:.1f}"]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    totals = []
    for parts in profiles.values():
        totals += [
            f"{sum(c['matmul'] for c in parts.values()):.1f}",
            f"{sum(c['other'] for c in parts.values()):.1f}",
        ]
    lines.append("| **step total** | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=40, help="batches per timed loop")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--loops", nargs="+", default=list(LOOPS), choices=list(LOOPS))
    parser.add_argument("--profile-iterations", type=int, default=20)
    parser.add_argument("--adam-iterations", type=int, nargs="+", default=[5, 20])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "tbh_step.json"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.features.is_file():
        sys.exit(f"--features {args.features} is not a file: pass the 1280-d CIFAR-10 features")
    provenance = Provenance(args.out, "benchmarks/bench_tbh_step.py", args)
    provenance.capture_printed_tables()
    pipeline.setup_process()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        counted = measured_flops(args.features, args.bits, folder / "flops")
        batch, shape = counted["batch"], {k: counted[k] for k in ("inputs", "hidden", "bits")}
        analytic = {
            "tbh": tbh_step_flops(
                batch, **shape, continuous=counted["continuous"], classes=counted["classes"]
            ),
            "mlp": mlp_step_flops(batch, mlp_sizes(**shape, continuous=counted["continuous"])),
        }
        print(f"FLOPs / iteration: analytic {analytic}, flop_counter {counted}")
        ms = timing_rounds(args, folder / "timing")
        profiles = {
            t: profile_framework(
                args.features, args.bits, args.profile_iterations, t, folder / f"profile{t}"
            )
            for t in args.threads
        }
        adam = adam_difference(args.features, args.bits, args.adam_iterations, folder / "adam")
    rows, timing = timing_table(ms, analytic)
    speed_rows, speed = speedups(ms)
    breakdown = breakdown_table(profiles)
    print(f"\nTBH step, batch {batch}, {args.bits} bits, median of {args.repeats} rounds")
    print(timing)
    print("\nfused Adam against the for-loop Adam TBH used before (same run)")
    print(speed)
    print(
        f"\nwhere the framework's step goes (ms / iteration, {args.profile_iterations} iterations)"
    )
    print(breakdown)
    print("\nfused vs for-loop Adam (same weights, same batches), and for-loop Adam from weights")
    print("one ulp apart: largest relative difference of the weights and of the updates")
    adam_lines = [
        "| iterations | fused vs for-loop: weights | updates | one ulp apart: weights | updates |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in adam:
        fused, nudged = row["fused_vs_loop"], row["nudged_vs_loop"]
        adam_lines.append(
            f"| {row['iterations']} | {fused['max_relative_weight']:.1e} | "
            f"{fused['max_relative_update']:.1e} | {nudged['max_relative_weight']:.1e} | "
            f"{nudged['max_relative_update']:.1e} |"
        )
    numerics = "\n".join(adam_lines)
    print(numerics)
    notes = [
        "ms per iteration: one batch of 400 = both optimisers' steps; median of interleaved "
        "rounds.",
        "GFLOP: matrix products only, analytic (checked against torch.utils.flop_counter).",
    ]
    tables = {
        "timing": {"markdown": timing, "notes": notes},
        "adam": {"markdown": speed, "notes": []},
        "adam_numerics": {"markdown": numerics, "notes": []},
        "breakdown": {
            "markdown": breakdown,
            "notes": [
                "torch.profiler self time of the framework's training step, by the innermost part "
                "it ran in. The diagnostics run on an epoch's first batch only: here once in the "
                "profiled iterations, once in 112 in a tbh_fc7 epoch."
            ],
        },
    }
    provenance.write(
        tables,
        flops={"analytic": analytic, "flop_counter": counted},
        rows=rows,
        adam_speedups=speed_rows,
        profiles={str(t): p for t, p in profiles.items()},
        adam_numerics=adam,
    )
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
