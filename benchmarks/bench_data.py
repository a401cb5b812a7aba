"""Data pipeline benchmark on the CIFAR-10 folder copy (cifar10_folder preset).

Measures the DataModule's setup time cold (decode 60,000 JPEGs into memory) and warm (from the
.npy cache), the loader alone (in-memory tensors vs. reading each JPEG per item), and one
training epoch of the small CNN (forward + backward + SGD step) over the fit split.

    python benchmarks/bench_data.py [--root ../shared/data/cifar10] [--batch-size 64]

Prints a table and writes benchmarks/results/data.json.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
import torch  # noqa: E402

from benchmarks.results_io import Provenance  # noqa: E402
from hashing.backbones.cnn import SmallCNN  # noqa: E402
from hashing.data.folder import FolderDataModule  # noqa: E402


def _setup(root: Path, work: Path, **kwargs: object) -> tuple[FolderDataModule, float]:
    start = time.perf_counter()
    dm = FolderDataModule(
        root,
        name="cifar10_folder",
        split_dir=work / "splits",
        cache_dir=work / "decoded",
        **kwargs,  # type: ignore[arg-type]
    )
    dm.setup("fit")
    return dm, time.perf_counter() - start


def _loader_rate(dm: FolderDataModule, limit: int | None = None) -> float:
    """Images per second of iterating the training loader (no model)."""
    seen, start = 0, time.perf_counter()
    for x, _, _ in dm.train_dataloader():
        seen += len(x)
        if limit is not None and seen >= limit:
            break
    return seen / (time.perf_counter() - start)


def _epoch_rate(dm: FolderDataModule) -> tuple[float, int]:
    """Images per second of one training epoch of SmallCNN + linear head (fwd + bwd + step)."""
    torch.manual_seed(0)
    net = SmallCNN(dm.input_shape)
    head = torch.nn.Linear(net.out_features, dm.num_classes)
    opt = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    seen, start = 0, time.perf_counter()
    for x, y, _ in dm.train_dataloader():
        loss = torch.nn.functional.cross_entropy(head(net(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(x)
    return seen / (time.perf_counter() - start), seen


def main() -> None:
    """Run the measurements, print a table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data" / "cifar10")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "data.json")
    args = parser.parse_args()
    provenance = Provenance(args.out, "benchmarks/bench_data.py", args)
    provenance.capture_printed_tables()
    if not args.root.is_dir():
        raise SystemExit(f"{args.root} does not exist; pass --root <CIFAR-10 folder tree>")
    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory(
        dir=ROOT / ".cache" if (ROOT / ".cache").is_dir() else None
    ) as tmp:
        work = Path(tmp)
        _, rows["setup_cold_s"] = _setup(args.root, work, batch_size=args.batch_size)
        dm, rows["setup_warm_s"] = _setup(args.root, work, batch_size=args.batch_size)
        rows["loader_in_memory_img_s"] = _loader_rate(dm)
        lazy, rows["setup_lazy_s"] = _setup(
            args.root, work, batch_size=args.batch_size, in_memory=False
        )
        rows["loader_jpeg_per_item_img_s"] = _loader_rate(lazy)
        rows["epoch_cnn_img_s"], fit = _epoch_rate(dm)
    result = {
        "dataset": "cifar10_folder (protocol cifar10, 60,000 images pooled)",
        "fit_images": fit,
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        **{k: round(v, 3) for k, v in rows.items()},
    }
    labels = {
        "setup_cold_s": "setup, cold (decode 60,000 JPEGs + split)   [s]",
        "setup_warm_s": "setup, warm (.npy cache + split file)       [s]",
        "setup_lazy_s": "setup, lazy (scan only, no decode)          [s]",
        "loader_in_memory_img_s": "loader only, decoded in memory         [img/s]",
        "loader_jpeg_per_item_img_s": "loader only, JPEG decoded per item     [img/s]",
        "epoch_cnn_img_s": "train epoch, SmallCNN fwd+bwd+step     [img/s]",
    }
    print(f"{'measure':<48} {'value':>10}")
    for key, label in labels.items():
        print(f"{label:<48} {rows[key]:>10.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    provenance.write(None, **result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
