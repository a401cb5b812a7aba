"""Precomputed feature vectors (TBH's protocol: 4096-d VGG-16 fc7 of CIFAR-10;
docs/metrics.md#protocols, docs/methods.md#tbh).

One file (``.npz``, ``.mat`` v5 through scipy, ``.mat`` v7.3 and ``.h5``/``.hdf5`` through h5py)
holding features and labels for the training set and the queries, optionally the database
(when absent, database = train: TBH's 50,000 train = database, 10,000 test = queries).

Expected array names (case-insensitive; ``<role>`` and ``<kind>`` below):
  roles   train: ``train``, ``tr``, ``training``; queries: ``query``, ``test``, ``te``, ``tst``;
          database: ``database``, ``db``, ``retrieval``, ``base``
  features ``<role>_x``, ``x_<role>``, ``<role>_data``, ``<role>_features``, ``<role>_feats``,
          ``<role>_feat``, ``data_<role>``, ``feat_<role>``, ``x<role>``, ``<role>``
  labels  ``<role>_y``, ``y_<role>``, ``<role>_label(s)``, ``label(s)_<role>``, ``<role>_gnd``,
          ``gnd_<role>``, ``l_<role>``, ``y<role>``, ``<role>label(s)``
e.g. ``train_x``/``train_y``, ``test_data``/``test_label``, ``X_tr``/``L_tr``, ``xtrain``/``ytrain``
all match. ``arrays`` maps a role key (``train_x``,
``train_y``, ``query_x``, ``query_y``, ``database_x``, ``database_y``) to an explicit name.

Labels: class indices (N,) or (N, 1), one-hot or multi-hot (N, C). Class indices are remapped
to 0..C-1 over the sorted values present (MATLAB files are often 1-based); one-hot rows become
indices. MATLAB v7.3 arrays are stored column-major and come back transposed from h5py; they
are transposed back.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashing.data.base import Pool, RetrievalDataModule, build_protocol
from hashing.data.splits import Protocol
from hashing.runs.errors import MissingFileError, UserError

ROLES = {
    "train": ("train", "tr", "training"),
    "query": ("query", "test", "te", "tst"),
    "database": ("database", "db", "retrieval", "base"),
}
FEATURE_PATTERNS = (
    "{r}_x", "x_{r}", "{r}_data", "{r}_features", "{r}_feats", "{r}_feat", "data_{r}",
    "feat_{r}", "x{r}", "{r}",
)  # fmt: skip
LABEL_PATTERNS = (
    "{r}_y", "y_{r}", "{r}_label", "{r}_labels", "label_{r}", "labels_{r}", "{r}_gnd",
    "gnd_{r}", "l_{r}", "y{r}", "{r}label", "{r}labels",
)  # fmt: skip
ARRAY_KEYS = tuple(f"{role}_{kind}" for role in ROLES for kind in ("x", "y"))


def aliases(role: str, kind: str) -> tuple[str, ...]:
    """Lower-case array names accepted for a role (train/query/database) and kind (x/y)."""
    patterns = FEATURE_PATTERNS if kind == "x" else LABEL_PATTERNS
    return tuple(p.format(r=r) for r in ROLES[role] for p in patterns)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in a .npz/.mat/.h5 file by name (h5 names are the dataset's last path part)."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if suffix == ".mat":
        import h5py
        import scipy.io

        if h5py.is_hdf5(path):  # MATLAB v7.3 = HDF5, column-major: transpose back
            return {k: v.T for k, v in _read_h5(path).items()}
        data = scipy.io.loadmat(path)
        return {k: v for k, v in data.items() if not k.startswith("__")}
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path)
    raise UserError(f"features file {path} has suffix {suffix!r}; expected .npz, .mat, .h5")


def _read_h5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays: dict[str, np.ndarray] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
            arrays[name.rsplit("/", 1)[-1]] = obj[()]

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return arrays


def find_array(
    arrays: Mapping[str, np.ndarray], role: str, kind: str, explicit: str | None, path: Path
) -> np.ndarray | None:
    """The array for (role, kind): the explicit name if given, else the unique alias match."""
    if explicit is not None:
        if explicit not in arrays:
            raise UserError(f"{path} has no array {explicit!r}; it has {sorted(arrays)}")
        return arrays[explicit]
    names = set(aliases(role, kind))
    found = [k for k in arrays if k.lower() in names]
    if len(found) > 1:
        raise UserError(
            f"{path}: arrays {sorted(found)} all look like {role} {kind}; name one in "
            f"arrays.{role}_{kind}"
        )
    return arrays[found[0]] if found else None


def normalise_labels(parts: list[np.ndarray], path: Path) -> tuple[list[np.ndarray], int, bool]:
    """Labels of all parts -> (per-part arrays, num_classes, multi_label); see module doc."""
    shaped = [p.reshape(len(p)) if p.ndim == 2 and p.shape[1] == 1 else p for p in parts]
    ndims = {p.ndim for p in shaped}
    if ndims == {1}:
        classes = np.unique(np.concatenate(shaped))
        return [np.searchsorted(classes, p).astype(np.int64) for p in shaped], len(classes), False
    if ndims != {2} or len({p.shape[1] for p in shaped}) != 1:
        raise UserError(
            f"{path}: label arrays must all be (N,) indices or (N, C) multi-hot with one C; "
            f"got shapes {[p.shape for p in parts]}"
        )
    matrix = [(p > 0).astype(np.float32) for p in shaped]
    width = matrix[0].shape[1]
    if all((m.sum(1) == 1).all() for m in matrix):
        return [m.argmax(1).astype(np.int64) for m in matrix], width, False
    return matrix, width, True


def file_class_names(
    stored: Mapping[str, np.ndarray], raw_labels: list[np.ndarray], num_classes: int
) -> list[str]:
    """Names of the classes 0..C-1 from a ``classes`` array indexed by the stored label values
    (single-label files; ``[]`` when the file has none or it does not cover the values)."""
    names = stored.get("classes")
    if names is None or any(y.ndim != 1 and y.shape[1:] != (1,) for y in raw_labels):
        return []
    values = np.unique(np.concatenate([y.reshape(len(y)) for y in raw_labels]))
    names = np.asarray(names).reshape(-1)
    if len(values) != num_classes or values.min() < 0 or values.max() >= len(names):
        return []
    return [str(names[int(v)]) for v in values]


class FeaturesDataModule(RetrievalDataModule):
    """Feature vectors (N, D) as float32; ``input_shape`` = (D,).

    ``protocol: official`` (default) uses the file's own split (queries = test, database =
    database or train). A per-class protocol (``cifar10`` = disjoint, ``cifar10-1`` = from the
    database; docs/metrics.md#protocols) pools every array of the file (train, then test, then
    database) and draws ``query_per_class`` queries and ``train_per_class`` training items a class
    from it, as the image DataModules do: the features of an image folder then give the same
    protocol.
    """

    default_transform = "scale"

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        top_k: int | None = None,
        arrays: dict[str, str] | None = None,
        protocol: str = "official",
        query_per_class: int = 100,
        train_per_class: int = 500,
        batch_size: int = 256,
        eval_batch_size: int = 1024,
        **base_options: Any,
    ) -> None:
        self.path = Path(path)
        super().__init__(
            name=name or self.path.stem,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            **base_options,
        )
        unknown = sorted(set(arrays or {}) - set(ARRAY_KEYS))
        if unknown:
            raise UserError(f"arrays keys {unknown} unknown; expected some of {ARRAY_KEYS}")
        self.arrays = dict(arrays or {})
        #: class names from the file's ``classes`` array (indexed by label value), if any
        self.classes: list[str] = []
        self._proto = build_protocol(protocol, self.name, query_per_class, train_per_class, top_k)

    def _protocol(self) -> Protocol:
        return self._proto

    def _load_pool(self) -> Pool:
        if not self.path.is_file():
            raise MissingFileError(f"features file {self.path} does not exist")
        try:
            stored = read_arrays(self.path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            if isinstance(error, UserError):
                raise
            raise UserError(
                f"features file {self.path} is unreadable ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}): it is truncated or not "
                "a .npz/.mat/.h5 file; write it again (python -m hashing.features)"
            ) from error
        found: dict[str, np.ndarray | None] = {
            key: find_array(stored, *key.split("_"), self.arrays.get(key), self.path)
            for key in ARRAY_KEYS
        }
        missing = [k for k in ("train_x", "train_y", "query_x", "query_y") if found[k] is None]
        if (found["database_x"] is None) != (found["database_y"] is None):
            missing.append("database_y" if found["database_y"] is None else "database_x")
        if missing:
            shapes = {k: tuple(v.shape) for k, v in stored.items()}
            raise UserError(
                f"features file {self.path} lacks {missing}; it has {shapes}. Name them in "
                f"`arrays` (e.g. arrays.train_x: <name>) or see hashing/data/features.py"
            )
        roles = [r for r in ROLES if found[f"{r}_x"] is not None]
        feats = [np.asarray(found[f"{r}_x"], dtype=np.float32) for r in roles]
        dims = {f.shape[1:] for f in feats}
        if len(dims) != 1 or any(f.ndim != 2 for f in feats):
            shapes_found = [f.shape for f in feats]
            raise UserError(
                f"{self.path}: feature arrays must be (N, D) with one D; got {shapes_found}"
            )
        raw_labels = [np.asarray(found[f"{r}_y"]) for r in roles]
        labels, num_classes, _ = normalise_labels(raw_labels, self.path)
        for role, f, y in zip(roles, feats, labels, strict=True):
            if len(f) != len(y):
                raise UserError(
                    f"{self.path}: {role} has {len(f)} feature rows but {len(y)} labels"
                )
        self.classes = file_class_names(stored, raw_labels, num_classes)
        offsets = np.cumsum([0] + [len(f) for f in feats])
        groups = {r: np.arange(offsets[i], offsets[i + 1]) for i, r in enumerate(roles)}
        groups["test"] = groups.pop("query")
        return Pool(
            torch.from_numpy(np.concatenate(feats)),
            torch.from_numpy(np.concatenate(labels)),
            num_classes,
            groups,
        )
