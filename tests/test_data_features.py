"""FeaturesDataModule: .npz / .mat v5 / .mat v7.3 / .h5 files, aliases, labels, errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from hashing.data.features import FeaturesDataModule, aliases
from hashing.runs.errors import UserError


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_x": rng.normal(size=(40, 6)).astype(np.float32),
        "train_y": np.arange(40) % 4 + 1,  # 1-based, as MATLAB files often are
        "test_x": rng.normal(size=(8, 6)).astype(np.float32),
        "test_y": np.arange(8) % 4 + 1,
    }


def _dm(path: Path, tmp_path: Path, **kwargs: object) -> FeaturesDataModule:
    dm = FeaturesDataModule(path, split_dir=tmp_path / "splits", **kwargs)  # type: ignore[arg-type]
    dm.setup()
    return dm


def _check(dm: FeaturesDataModule, arrays: dict[str, np.ndarray]) -> None:
    assert dm.input_shape == (6,) and dm.num_classes == 4 and not dm.multi_label
    assert dm.describe()["query"] == 8 and dm.describe()["database"] == 40
    x, y, idx = dm.dataset("query")[3]
    row = int(dm.split["query"][3]) - len(arrays["train_x"])  # pool = train rows, then test
    assert np.array_equal(np.sort(dm.split["query"]), np.arange(40, 48))  # the test rows
    assert torch.allclose(x, torch.from_numpy(arrays["test_x"][row]))
    assert int(y) == int(arrays["test_y"][row]) - 1 and idx == 3
    fit = dm.split["fit"]
    assert torch.equal(dm.train_labels(), torch.from_numpy(arrays["train_y"][fit] - 1))


def test_npz(tmp_path: Path) -> None:
    arrays = _arrays()
    np.savez(tmp_path / "f.npz", **arrays)
    dm = _dm(tmp_path / "f.npz", tmp_path)
    _check(dm, arrays)
    assert dm.name == "f" and dm.protocol_k is None


def test_mat_v5_with_matlab_names(tmp_path: Path) -> None:
    arrays = _arrays()
    mat = {
        "X_tr": arrays["train_x"],
        "L_tr": arrays["train_y"][:, None],  # MATLAB column vector (N, 1)
        "X_te": arrays["test_x"],
        "L_te": arrays["test_y"][:, None],
    }
    scipy.io.savemat(tmp_path / "f.mat", mat)
    _check(_dm(tmp_path / "f.mat", tmp_path), arrays)


def test_mat_v73_is_transposed_back(tmp_path: Path) -> None:
    arrays = _arrays()
    path = tmp_path / "f73.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:
        for key, value in arrays.items():
            handle[key] = np.asarray(value).T  # MATLAB writes column-major
    with open(path, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116))
    _check(_dm(path, tmp_path), arrays)


def test_h5_with_database_and_multilabel(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "f.h5"
    labels = (rng.random((30, 5)) < 0.4).astype(np.uint8)
    labels[:, 0] = 1  # at least one label each; several for most
    with h5py.File(path, "w") as handle:
        group = handle.create_group("features")
        group["train_data"] = rng.normal(size=(10, 3))
        group["train_label"] = labels[:10]
        group["query_data"] = rng.normal(size=(5, 3))
        group["query_label"] = labels[10:15]
        group["db_data"] = rng.normal(size=(15, 3))
        group["db_label"] = labels[15:]
    dm = _dm(path, tmp_path, top_k=7)
    assert dm.multi_label and dm.num_classes == 5 and dm.protocol_k == 7
    assert dm.describe()["database"] == 15 and dm.describe()["query"] == 5
    database = dm.split["database"] - 15  # pool = train, query, database rows
    assert np.array_equal(np.sort(database), np.arange(15))
    assert torch.equal(
        dm.dataset("database").labels, torch.from_numpy(labels[15:][database]).float()
    )


def test_one_hot_labels_become_indices(tmp_path: Path) -> None:
    arrays = _arrays()
    for key in ("train_y", "test_y"):
        arrays[key] = np.eye(4)[arrays[key] - 1]
    np.savez(tmp_path / "f.npz", **arrays)
    dm = _dm(tmp_path / "f.npz", tmp_path)
    assert not dm.multi_label and dm.train_labels().dtype == torch.long


def test_explicit_array_names(tmp_path: Path) -> None:
    arrays = _arrays()
    np.savez(tmp_path / "f.npz", a=arrays["train_x"], b=arrays["train_y"], c=arrays["test_x"],
             d=arrays["test_y"])  # fmt: skip
    names = {"train_x": "a", "train_y": "b", "query_x": "c", "query_y": "d"}
    _check(_dm(tmp_path / "f.npz", tmp_path, arrays=names), arrays)


def test_missing_arrays_listed(tmp_path: Path) -> None:
    arrays = _arrays()
    np.savez(tmp_path / "f.npz", train_x=arrays["train_x"], train_y=arrays["train_y"], junk=[1])
    with pytest.raises(ValueError, match=r"lacks \['query_x', 'query_y'\]; it has .*junk"):
        _dm(tmp_path / "f.npz", tmp_path)
    assert not (tmp_path / "splits").exists()


def test_other_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"none\.npz does not exist"):
        _dm(tmp_path / "none.npz", tmp_path)
    (tmp_path / "f.csv").write_text("1,2")
    with pytest.raises(ValueError, match=r"suffix '\.csv'"):
        _dm(tmp_path / "f.csv", tmp_path)
    arrays = _arrays()
    np.savez(tmp_path / "two.npz", **arrays, x_train=arrays["train_x"])
    with pytest.raises(ValueError, match="all look like train x"):
        _dm(tmp_path / "two.npz", tmp_path)
    arrays["test_y"] = arrays["test_y"][:5]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(ValueError, match="query has 8 feature rows but 5 labels"):
        _dm(tmp_path / "short.npz", tmp_path)
    with pytest.raises(ValueError, match="arrays keys"):
        FeaturesDataModule(tmp_path / "f.npz", arrays={"train_features": "a"})


def test_alias_table_has_common_names() -> None:
    assert {"train_x", "x_train", "train_data", "xtrain", "x_tr"} <= set(aliases("train", "x"))
    assert {"test_label", "l_te", "y_test", "query_labels"} <= set(aliases("query", "y"))
    assert {"db_x", "database_data"} <= set(aliases("database", "x"))


def test_each_file_gets_its_own_split_and_a_clash_names_the_key(tmp_path: Path) -> None:
    """data=features names a file's data after the file, so a second file never meets the
    first one's split; two files forced to share a name are told which key to change."""
    from hashing.pipeline import build_datamodule
    from tests.helpers.runs import compose_run

    first, second = tmp_path / "cats.npz", tmp_path / "dogs.npz"
    np.savez(first, **_arrays(0))
    bigger = _arrays(1)
    bigger["train_x"], bigger["train_y"] = bigger["train_x"][:20], bigger["train_y"][:20]
    np.savez(second, **bigger)
    modules = []
    for path in (first, second):
        cfg = compose_run(
            "train", tmp_path / "run", tmp_path / "cache", ["data=features", f"data.path={path}"]
        )
        modules.append(build_datamodule(cfg))
    assert [m.name for m in modules] == ["cats", "dogs"]
    assert modules[0].split_path != modules[1].split_path
    assert modules[1].describe()["database"] == 20
    shared = compose_run(
        "train",
        tmp_path / "run",
        tmp_path / "cache",
        ["data=features", f"data.path={second}", "data.name=cats"],
    )
    with pytest.raises(UserError, match=r"named by data.name: give this data its own"):
        build_datamodule(shared)
