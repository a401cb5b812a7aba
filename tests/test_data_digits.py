"""DigitsDataModule: shapes, loaders, split cache, export, and the contract's properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from hashing.data.digits import DigitsDataModule


def _dm(tmp_path: Path, **kwargs: object) -> DigitsDataModule:
    dm = DigitsDataModule(split_dir=tmp_path / "splits", **kwargs)  # type: ignore[arg-type]
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_properties_and_split_sizes(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    assert dm.num_classes == 10 and not dm.multi_label and dm.protocol_k is None
    assert dm.input_shape == (1, 8, 8) and dm.name == "digits"
    sizes = dm.describe()
    assert sizes["query"] == 200 and sizes["train"] == 800
    assert sizes["database"] == 1797 - 200
    assert sizes["val_query"] == 80 and sizes["fit"] == 720
    split = dm.split
    assert set(split["train"].tolist()) <= set(split["database"].tolist())
    assert not set(split["train"].tolist()) & set(split["query"].tolist())
    assert torch.bincount(dm.train_labels(), minlength=10).tolist() == [72] * 10


def test_items_are_the_sklearn_images(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    bunch = load_digits()
    x, y, idx = next(iter(dm.test_dataloader()[0]))
    assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    pool_index = dm.split["query"][int(idx[3])]
    expected = torch.from_numpy(bunch.images[pool_index] / 16.0).float()
    assert torch.allclose(x[3, 0], expected)
    assert int(y[3]) == int(bunch.target[pool_index])
    assert torch.equal(idx, torch.arange(len(idx)))


def test_loaders_cover_their_splits(tmp_path: Path) -> None:
    dm = _dm(tmp_path, batch_size=50, eval_batch_size=100)
    seen = torch.cat([idx for _, _, idx in dm.train_dataloader()])
    assert sorted(seen.tolist()) == list(range(720))
    assert not torch.equal(seen, torch.arange(720))  # shuffled
    val_q, val_db = dm.val_dataloader()
    assert sum(len(b[0]) for b in val_q) == 80
    assert sum(len(b[0]) for b in val_db) == 720
    query, database = dm.test_dataloader()
    assert sum(len(b[0]) for b in query) == 200
    assert sum(len(b[0]) for b in database) == 1597


def test_train_order_follows_the_seed_unless_shuffle_seed_is_given(tmp_path: Path) -> None:
    def order(**options: int) -> torch.Tensor:
        return torch.cat([i for *_, i in _dm(tmp_path, **options).train_dataloader()])

    assert torch.equal(order(seed=5), order(seed=5))
    assert not torch.equal(order(seed=5), order(seed=6))
    assert torch.equal(order(seed=5, shuffle_seed=9), order(seed=6, shuffle_seed=9))
    assert torch.equal(order(seed=9), order(seed=6, shuffle_seed=9))


def test_split_file_saved_and_reused(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    path = dm.split_path
    assert path is not None and path.exists()
    # Overwrite the saved queries with another valid set: a reload must use the file's split.
    with np.load(path) as saved:
        arrays = {k: saved[k] for k in saved.files}
    other = DigitsDataModule(split_seed=7)
    other.setup()
    for key in ("query", "train", "database", "val_query", "fit"):
        arrays[key] = other.split[key]
    np.savez(path, **arrays)
    reloaded = _dm(tmp_path)
    assert np.array_equal(reloaded.split["query"], other.split["query"])
    assert not np.array_equal(reloaded.split["query"], dm.split["query"])


def test_seed_changes_split_and_file(tmp_path: Path) -> None:
    a, b = _dm(tmp_path, split_seed=0), _dm(tmp_path, split_seed=1)
    assert a.split_path != b.split_path
    assert not np.array_equal(a.split["query"], b.split["query"])
    again = DigitsDataModule(split_seed=0)  # no split_dir: drawn fresh, must match the file
    again.setup()
    assert np.array_equal(again.split["query"], a.split["query"])


def test_split_file_for_other_data_is_refused(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    with np.load(dm.split_path) as saved:
        arrays = {k: saved[k] for k in saved.files}
    arrays["pool_size"] = np.int64(1000)
    np.savez(dm.split_path, **arrays)
    with pytest.raises(ValueError, match="1000 items"):
        _dm(tmp_path)


def test_setup_is_idempotent(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    split = dm.split
    dm.setup("test")
    assert dm.split is split


def test_export_splits(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    out = dm.export_splits(tmp_path / "run")
    with np.load(out) as saved:
        assert np.array_equal(saved["query"], dm.split["query"])
    assert [p.name for p in (tmp_path / "run").iterdir()] == [out.name]
    fresh = DigitsDataModule()
    fresh.setup()
    assert fresh.export_splits(tmp_path / "run2").exists()


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        _dm(tmp_path)
    assert list((tmp_path / "splits").iterdir()) == []


def test_bad_values_fail_early() -> None:
    with pytest.raises(ValueError, match="protocol 'cifar10-2'"):
        DigitsDataModule(protocol="cifar10-2")
    with pytest.raises(ValueError, match="val_fraction"):
        DigitsDataModule(val_fraction=0.0)
    with pytest.raises(ValueError, match="transform preset 'nope'"):
        DigitsDataModule(transform="nope")
    with pytest.raises(ValueError, match="class 0 has"):
        DigitsDataModule(query_per_class=100, train_per_class=100).setup()


def test_digits_config_instantiates(tmp_path: Path) -> None:
    import hydra

    from tests.helpers.runs import compose_run

    cfg = compose_run("train", tmp_path / "run", tmp_path, ["data=digits"])
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, DigitsDataModule) and dm.transform == "scale"
    dm.setup()
    assert dm.split_path is not None and dm.split_path.parent == tmp_path / "splits"


def test_worker_loader_options(tmp_path: Path) -> None:
    dm = _dm(tmp_path, num_workers=1, batch_size=100)
    loader = dm.train_dataloader()
    assert loader.persistent_workers and loader.num_workers == 1
    assert loader.pin_memory == torch.cuda.is_available()
    assert sum(len(x) for x, _, _ in loader) == 720
    assert not _dm(tmp_path).train_dataloader().persistent_workers
    assert DigitsDataModule(pin_memory=True).pin_memory
