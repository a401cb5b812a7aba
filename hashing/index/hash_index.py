"""HashIndex: bit-packed codes + item metadata + a faiss binary index, saved as one folder.

Folder layout (format version 2):
  manifest.json      format, version, bits, count, files with sizes and SHA-256, model identity,
                     input spec, faiss parameters, where the items came from (written last)
  codes.npy          uint8 (N, ceil(bits / 8)) packed codes (:mod:`hashing.index.packing`)
  labels.npy         (N,) int64 class indices or (N, C) uint8 multi-hot, when known
  paths.txt          one image path a line, when items came from files
  dataset_index.npy  (N,) int64 index of each item in its dataset, when it came from a split
  config.yaml        the resolved run config of the model that made the codes
  taxonomy.txt|.json the run's class taxonomy, when its data had one (:mod:`.taxonomy_copy`)
  faiss.index        the faiss binary index over codes.npy
  segments/, commit.json   items added and ids deleted since (:mod:`hashing.index.segments`)

An item's id is its row: 0..N-1 in export order (for a dataset split, the item's index within
the split, as in the evaluation), new items get the next ids, and a deleted id is never reused.
Searches return ids ordered by (Hamming distance, id). Queries say what they are with
:class:`~hashing.index.queries.Query`. An index may be searched from many threads while one
adds or deletes: each search sees the index before or after a change, never part of one.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from torch import Tensor

from hashing.index import faiss_backend, manifest, segments
from hashing.index.encoder import CodeEncoder, InputSpec
from hashing.index.faiss_backend import FaissSpec
from hashing.index.image_files import ImageList
from hashing.index.packing import check_packed, pack_codes, packed_width, unpack_codes
from hashing.index.queries import ImageSource, Query, as_query
from hashing.index.rwlock import ReadWriteLock
from hashing.index.segments import Commit
from hashing.index.staging import staged_folder
from hashing.index.taxonomy_copy import IndexTaxonomy
from hashing.runs.errors import UserError

Items = Query | ImageSource | Tensor | np.ndarray


class ItemNotFound(UserError):
    """An item id that the index does not hold (never added, or deleted)."""


@dataclass
class SearchResult:
    """Top-k of each query: ``ids`` (Q, k) int64 and ``distances`` (Q, k) int32, rows ordered
    by (distance, id); -1 marks a slot an approximate index left empty."""

    ids: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, query: int) -> list[tuple[int, int]]:
        """``[(id, distance), ...]`` of one query, without empty slots."""
        return [
            (int(i), int(d))
            for i, d in zip(self.ids[query], self.distances[query], strict=True)
            if i >= 0
        ]


class HashIndex:
    """Searchable collection of hash codes; see the module docstring for the folder format.

    Build with :meth:`from_codes` (or ``python -m hashing.export``), persist with :meth:`save`,
    reopen with :meth:`load`, query with :meth:`search`, grow with :meth:`add`.
    """

    def __init__(
        self,
        packed: np.ndarray,
        bits: int,
        *,
        spec: FaissSpec | None = None,
        faiss_index: Any = None,
        labels: np.ndarray | None = None,
        num_classes: int | None = None,
        classes: list[str] | None = None,
        paths: list[str] | None = None,
        dataset_index: np.ndarray | None = None,
        config: Mapping[str, Any] | None = None,
        model: Mapping[str, Any] | None = None,
        input_spec: InputSpec | None = None,
        source: Mapping[str, Any] | None = None,
        directory: Path | None = None,
        taxonomy: IndexTaxonomy | None = None,
    ) -> None:
        check_packed(packed, bits)
        self.bits = int(bits)
        self.packed = packed
        self.spec = spec or FaissSpec()
        self.faiss_index = (
            faiss_index if faiss_index is not None else faiss_backend.build_index(packed, self.spec)
        )
        self.labels = labels
        self.num_classes = num_classes
        self.classes = classes
        self.paths = paths
        self.dataset_index = dataset_index
        self.config = dict(config) if config is not None else None
        self.model = dict(model) if model is not None else None
        self.input_spec = input_spec
        self.source = dict(source) if source is not None else {}
        self.directory = directory
        self.taxonomy = taxonomy
        self.deleted = np.zeros(0, np.int64)  # sorted tombstoned ids
        self.commit = Commit(len(packed))  # what the folder on disk holds beyond its base
        self._encoder: CodeEncoder | None = None
        self._encoder_options: dict[str, Any] = {}
        self._lock = ReadWriteLock()  # searches share it; a change in memory holds it alone
        self._writer = threading.Lock()  # one add or delete at a time, disk write included
        self._check_consistent()

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_codes(
        cls,
        codes: Tensor | np.ndarray,
        *,
        labels: Tensor | np.ndarray | None = None,
        num_classes: int | None = None,
        classes: list[str] | None = None,
        paths: Sequence[str] | None = None,
        dataset_index: np.ndarray | None = None,
        spec: FaissSpec | None = None,
        encoder: CodeEncoder | None = None,
        source: Mapping[str, Any] | None = None,
        taxonomy: IndexTaxonomy | None = None,
    ) -> HashIndex:
        """An index over ±1 codes (N, bits); ``encoder`` records the model that made them,
        ``taxonomy`` the class tree its labels live in."""
        packed = pack_codes(codes)
        bits = int(codes.shape[1])
        if encoder is not None and encoder.bits != bits:
            raise ValueError(f"codes have {bits} bits but the encoder makes {encoder.bits}")
        label_array = _as_labels(labels)
        index = cls(
            packed,
            bits,
            spec=spec,
            labels=label_array,
            num_classes=num_classes
            if num_classes is not None
            else _count_classes(label_array, classes),
            classes=list(classes) if classes is not None else None,
            paths=list(paths) if paths is not None else None,
            dataset_index=None if dataset_index is None else np.asarray(dataset_index, np.int64),
            source=source,
            taxonomy=taxonomy,
        )
        if encoder is not None:
            index.config = dict(encoder.config)
            index.model = {
                "checkpoint": str(encoder.checkpoint) if encoder.checkpoint else None,
                "weights_sha256": encoder.weights_digest,
                "config_sha256": manifest.config_digest(encoder.config),
            }
            index.input_spec = encoder.input_spec
            index._encoder = encoder
        return index

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        bits: int | None = None,
        config: Mapping[str, Any] | None = None,
        ckpt_path: str | os.PathLike[str] | None = None,
        encoder: CodeEncoder | None = None,
        **encoder_options: Any,
    ) -> HashIndex:
        """Open an index folder, refusing a truncated or modified one.

        Args:
            bits: the code length the caller expects (refused if the index holds another).
            config: a resolved run config the index must have been made with.
            ckpt_path: a checkpoint to encode queries with; it must be the model that made
                the index (same bits, same config, same weights). Default: the checkpoint
                recorded at export, loaded when images are first searched or added.
            encoder: an already-built encoder to use instead (checked the same way).
            encoder_options: ``batch_size``, ``num_workers``, ``device`` of the encoder.
        """
        folder = Path(directory)
        meta = manifest.read_manifest(folder)
        stored_bits, count = int(meta["bits"]), int(meta["count"])
        if bits is not None and int(bits) != stored_bits:
            raise ValueError(
                f"index {folder} holds {stored_bits}-bit codes, not the {bits}-bit codes asked "
                f"for: it was exported from a model of another code length"
            )
        files = meta["files"]
        packed = np.load(folder / manifest.CODES, allow_pickle=False)
        if packed.shape != (count, packed_width(stored_bits)):
            raise ValueError(
                f"{folder / manifest.CODES} has shape {packed.shape}; the manifest says "
                f"{count} codes of {stored_bits} bits ({packed_width(stored_bits)} bytes each)"
            )
        labels = np.load(folder / manifest.LABELS) if manifest.LABELS in files else None
        dataset_index = (
            np.load(folder / manifest.DATASET_INDEX) if manifest.DATASET_INDEX in files else None
        )
        paths = None
        if manifest.PATHS in files:
            text = (folder / manifest.PATHS).read_text(encoding="utf-8")
            paths = text.split("\n")[:-1] if text else []
        config_data = None
        if manifest.CONFIG in files:
            config_data = yaml.safe_load((folder / manifest.CONFIG).read_text(encoding="utf-8"))
        faiss_index = faiss_backend.read_index(folder / manifest.FAISS)
        label_info = meta.get("labels") or {}
        taxonomy = None
        if meta.get("taxonomy"):
            taxonomy = IndexTaxonomy.from_file(
                folder / meta["taxonomy"], label_info.get("classes") or []
            )
        index = cls(
            packed,
            stored_bits,
            spec=FaissSpec.from_mapping(meta["faiss"]),
            faiss_index=faiss_index,
            labels=labels,
            num_classes=label_info.get("num_classes"),
            classes=label_info.get("classes"),
            paths=paths,
            dataset_index=dataset_index,
            config=config_data,
            model=meta.get("model"),
            input_spec=InputSpec.from_mapping(meta["input"]) if meta.get("input") else None,
            source=meta.get("source"),
            directory=folder,
            taxonomy=taxonomy,
        )
        commit = segments.read_commit(folder, count)
        for entry in commit.segments:
            arrays = segments.read_segment(folder, entry)
            paths_array = arrays.get("paths")
            index._append(
                arrays["packed"],
                arrays.get("labels"),
                None if paths_array is None else paths_array.tolist(),
                arrays.get("dataset_index"),
            )
        index.deleted = np.asarray(commit.deleted, np.int64)
        index.commit = commit
        if config is not None:
            index.check_config(config)
        if ckpt_path is not None:
            if index.input_spec is None:
                raise ValueError(
                    f"index {folder} records no model input spec (it was built from codes), "
                    f"so it cannot encode images with {ckpt_path}"
                )
            encoder = CodeEncoder.from_checkpoint(ckpt_path, index.input_spec, **encoder_options)
        if encoder is not None:
            index.attach(encoder)
        index._encoder_options = dict(encoder_options)
        return index

    def _check_consistent(self) -> None:
        count = len(self.packed)
        if self.faiss_index.ntotal != count:
            raise ValueError(
                f"faiss index holds {self.faiss_index.ntotal} codes but there are {count}: the "
                f"index folder is inconsistent; export it again"
            )
        if self.faiss_index.d != 8 * packed_width(self.bits):
            raise ValueError(
                f"faiss index has dimension {self.faiss_index.d}; {self.bits}-bit codes pad to "
                f"{8 * packed_width(self.bits)}"
            )
        for name, values in (
            ("labels", self.labels),
            ("paths", self.paths),
            ("dataset_index", self.dataset_index),
        ):
            if values is not None and len(values) != count:
                raise ValueError(f"index has {count} codes but {len(values)} {name}")
        if self.taxonomy is not None and (
            self.labels is None
            or self.labels.ndim != 1
            or self.classes != self.taxonomy.class_names
        ):
            raise ValueError(
                "an index with a taxonomy needs single-class labels and the class names the "
                "taxonomy places (classes=)"
            )

    # --- model identity ----------------------------------------------------------------------
    def check_config(self, config: Mapping[str, Any]) -> None:
        """Raise UserError when ``config`` is not the run config the index was made with."""
        if self.config is None:
            raise UserError("this index records no model config (it was built from codes)")
        if manifest.config_digest(config) != manifest.config_digest(self.config):
            differences = "\n  ".join(manifest.config_differences(self.config, config))
            raise UserError(
                f"index {self.directory or ''} was exported from a model with another config; "
                f"its codes are not comparable with this model's:\n  {differences}"
            )

    def attach(self, encoder: CodeEncoder) -> None:
        """Use ``encoder`` for image queries after checking it is the model of this index."""
        if encoder.bits != self.bits:
            raise UserError(
                f"index {self.directory or ''} holds {self.bits}-bit codes but the model "
                f"{encoder.checkpoint or ''} makes {encoder.bits}-bit codes"
            )
        if self.config is not None:
            self.check_config(encoder.config)
        stored = (self.model or {}).get("weights_sha256")
        if stored is not None and stored != encoder.weights_digest:
            raise UserError(
                f"index {self.directory or ''} was exported with other weights of the same "
                f"config ({(self.model or {}).get('checkpoint')}), not {encoder.checkpoint}: "
                f"another epoch's checkpoint gives other codes; use the exported checkpoint"
            )
        self._encoder = encoder
        if self.input_spec is None:
            self.input_spec = encoder.input_spec

    @property
    def encoder(self) -> CodeEncoder:
        """The model that encodes image queries (loaded from the recorded checkpoint on demand)."""
        if self._encoder is None:
            checkpoint = (self.model or {}).get("checkpoint")
            if checkpoint is None or self.input_spec is None:
                raise UserError(
                    "this index records no model: search it with codes, or load it with "
                    "ckpt_path=<the checkpoint that made it>"
                )
            if not Path(checkpoint).is_file():
                raise UserError(
                    f"the index's model checkpoint {checkpoint} does not exist here; load the "
                    f"index with ckpt_path=<a copy of that checkpoint>"
                )
            self.attach(
                CodeEncoder.from_checkpoint(checkpoint, self.input_spec, **self._encoder_options)
            )
        assert self._encoder is not None
        return self._encoder

    # --- queries -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.packed)

    @property
    def codes(self) -> np.ndarray:
        """All codes as ±1 int8 (N, bits)."""
        return unpack_codes(self.packed, self.bits)

    @property
    def live_count(self) -> int:
        """Items that searches can return (deleted ones excluded)."""
        return len(self) - len(self.deleted)

    def packed_codes(self, query: Query) -> np.ndarray:
        """Packed codes of a query (or of new items), by its kind."""
        if query.kind == "images":
            return pack_codes(self.encoder.encode_files(query.value.paths))
        if query.kind == "codes":
            if query.value.shape[1] != self.bits:
                raise UserError(
                    f"codes have {query.value.shape[1]} bits; this index holds "
                    f"{self.bits}-bit codes"
                )
            return pack_codes(query.value)
        if query.kind == "packed":
            check_packed(query.value, self.bits)
            return query.value
        if query.kind == "ids":
            for item_id in query.value:
                self.check_id(int(item_id))
            return self.packed[query.value]
        return pack_codes(self.encoder.encode_inputs(query.value))

    def encode(self, items: Items) -> np.ndarray:
        """Packed codes of queries or new items given as a :class:`Query` or a bare value
        (:func:`~hashing.index.queries.as_query` says how a bare value is read)."""
        return self.packed_codes(as_query(items, self.bits))

    def search(self, queries: Items, k: int = 10) -> SearchResult:
        """Top-``k`` live items of each query by Hamming distance, ties by id (exact for flat).

        Deleted items are skipped by asking faiss for ``k`` + (number deleted) and dropping
        them, which keeps the (distance, id) order of the rest.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        packed = self.encode(queries)
        with self._lock.reading():
            deleted = self.deleted
            wanted = min(int(k), len(self) - len(deleted))
            distances, ids = faiss_backend.search(
                self.faiss_index, self.spec, packed, int(k) + len(deleted)
            )
        if len(deleted):
            order = np.argsort(np.isin(ids, deleted), axis=1, kind="stable")[:, :wanted]
            distances = np.take_along_axis(distances, order, axis=1)
            ids = np.take_along_axis(ids, order, axis=1)
        return SearchResult(ids=ids, distances=distances)

    def check_id(self, item_id: int) -> None:
        """Raise :class:`ItemNotFound` unless ``item_id`` is a live item of this index."""
        if not 0 <= item_id < len(self):
            raise ItemNotFound(f"item id {item_id} outside 0..{len(self) - 1}")
        position = np.searchsorted(self.deleted, item_id)
        if position < len(self.deleted) and self.deleted[position] == item_id:
            raise ItemNotFound(f"item {item_id} was deleted")

    def item(self, item_id: int) -> dict[str, Any]:
        """What the index knows about one item: id, and path, label, dataset index if stored."""
        if not 0 <= item_id < len(self):
            raise ItemNotFound(f"item id {item_id} outside 0..{len(self) - 1}")
        record: dict[str, Any] = {"id": int(item_id)}
        if self.paths is not None and self.paths[item_id]:
            record["path"] = self.paths[item_id]
        if self.dataset_index is not None and self.dataset_index[item_id] >= 0:
            record["dataset_index"] = int(self.dataset_index[item_id])
        if self.labels is not None:
            label = self.labels[item_id]
            if label.ndim == 0:
                record["label"] = int(label)
                if self.classes is not None:
                    record["class"] = self.classes[int(label)]
            else:
                record["labels"] = np.flatnonzero(label).tolist()
        return record

    def records(self, result: SearchResult) -> list[list[dict[str, Any]]]:
        """Per query, its results as dicts: rank, distance and :meth:`item`'s fields."""
        return [
            [
                {"rank": rank, "distance": distance, **self.item(item_id)}
                for rank, (item_id, distance) in enumerate(result.row(query), start=1)
            ]
            for query in range(len(result))
        ]

    # --- growth and persistence ----------------------------------------------------------------
    def add(
        self,
        items: Items,
        *,
        labels: Tensor | np.ndarray | None = None,
        paths: Sequence[str] | None = None,
        dataset_index: np.ndarray | None = None,
        persist: bool = True,
    ) -> np.ndarray:
        """Append items (encoding only them) and return their ids.

        Items are a :class:`Query` or what :meth:`encode` takes. Image folders / list files
        bring their own paths and labels. An index with labels needs labels for new items too.
        With ``persist`` and a folder, the items are written as one new segment and committed
        before they become searchable (:mod:`hashing.index.segments`): when this returns they
        are on disk, and if it fails the index, in memory and on disk, is as before.
        """
        query = as_query(items, self.bits)
        if query.kind == "images":
            images: ImageList = query.value
            paths = images.paths if paths is None else paths
            if labels is None and images.labels is not None and self.labels is not None:
                labels = self._map_classes(images)
            self._check_new_labels(_as_labels(labels), len(images.paths))  # before encoding
        packed = self.packed_codes(query)
        new = len(packed)
        new_labels = self._check_new_labels(_as_labels(labels), new)
        for name, values in (("paths", paths), ("dataset_index", dataset_index)):
            if values is not None and len(values) != new:
                raise ValueError(f"{new} items to add but {len(values)} {name}")
        if paths is not None and any("\n" in str(path) for path in paths):
            raise ValueError("an item path contains a newline; it cannot be stored")
        path_list = None if paths is None else [str(path) for path in paths]
        extra = None if dataset_index is None else np.asarray(dataset_index, np.int64)
        with self._writer:
            count = len(self)
            if persist and self.directory is not None:
                arrays = {
                    "packed": packed,
                    "labels": new_labels,
                    "paths": None if path_list is None else np.asarray(path_list, dtype=str),
                    "dataset_index": extra,
                }
                with segments.locked(self.directory, self.commit.sequence):
                    entry = segments.write_segment(self.directory, self.commit, arrays)
                    commit = Commit(
                        self.commit.base_count,
                        self.commit.sequence + 1,
                        [*self.commit.segments, entry],
                        self.deleted.tolist(),
                    )
                    segments.write_commit(self.directory, commit)
                self.commit = commit
            self._append(packed, new_labels, path_list, extra)
        return np.arange(count, count + new, dtype=np.int64)

    def delete(self, ids: Sequence[int] | np.ndarray, *, persist: bool = True) -> None:
        """Tombstone items: searches no longer return them; their ids are never reused.

        Raises :class:`ItemNotFound` (deleting nothing) when an id is not a live item.
        """
        targets = np.unique(np.asarray(ids, np.int64))
        with self._writer:
            for item_id in targets:
                self.check_id(int(item_id))
            deleted = np.union1d(self.deleted, targets)
            if persist and self.directory is not None:
                with segments.locked(self.directory, self.commit.sequence):
                    commit = Commit(
                        self.commit.base_count,
                        self.commit.sequence + 1,
                        list(self.commit.segments),
                        deleted.tolist(),
                    )
                    segments.write_commit(self.directory, commit)
                self.commit = commit
            with self._lock.writing():
                self.deleted = deleted

    def _append(
        self,
        packed: np.ndarray,
        labels: np.ndarray | None,
        paths: list[str] | None,
        dataset_index: np.ndarray | None,
    ) -> None:
        """Add checked items to the in-memory index, all at once for concurrent searches."""
        count, new = len(self), len(packed)
        all_paths = self.paths
        if paths is not None or self.paths is not None:
            all_paths = (self.paths or [""] * count) + (paths if paths else [""] * new)
        all_dataset_index = self.dataset_index
        if dataset_index is not None or self.dataset_index is not None:
            old = self.dataset_index if self.dataset_index is not None else np.full(count, -1)
            extra = np.full(new, -1) if dataset_index is None else dataset_index
            all_dataset_index = np.concatenate([old, extra]).astype(np.int64)
        all_labels = self.labels
        if self.labels is not None:
            if labels is None:
                raise UserError("a segment of this labelled index holds no labels")
            all_labels = np.concatenate([self.labels, labels.astype(self.labels.dtype)])
        with self._lock.writing():
            self.faiss_index.add(packed)
            faiss_backend.configure(self.faiss_index)  # its search mode follows its size
            self.packed = np.concatenate([self.packed, packed])
            self.labels, self.paths, self.dataset_index = all_labels, all_paths, all_dataset_index
        self._check_consistent()

    def _map_classes(self, images: ImageList) -> np.ndarray:
        """Class-folder labels of new images, renumbered to this index's class names."""
        assert images.labels is not None
        if images.classes is None:
            return images.labels
        if self.classes is None:
            raise ValueError(
                "this index records no class names, so class sub-folders cannot be mapped to "
                "its labels: pass labels= for the new images"
            )
        unknown = sorted(set(images.classes) - set(self.classes))
        if unknown:
            raise ValueError(
                f"class folders {unknown} are not classes of this index {self.classes}"
            )
        mapping = np.asarray([self.classes.index(name) for name in images.classes])
        return mapping[images.labels]

    def _check_new_labels(self, labels: np.ndarray | None, new: int) -> np.ndarray | None:
        """``labels`` of ``new`` items after checking they fit this index's labels."""
        if self.labels is None:
            if labels is not None:
                raise ValueError("this index holds no labels; add items without labels")
            return None
        if labels is None:
            raise ValueError("this index holds labels: pass labels for the new items")
        if len(labels) != new or labels.shape[1:] != self.labels.shape[1:]:
            raise ValueError(
                f"new labels have shape {labels.shape}; expected ({new}, "
                f"{', '.join(map(str, self.labels.shape[1:]))}) like the index's"
            )
        if (
            labels.ndim == 1
            and self.num_classes is not None
            and len(labels)
            and (labels.min() < 0 or labels.max() >= self.num_classes)
        ):
            raise ValueError(f"labels must be class indices in 0..{self.num_classes - 1}")
        return labels.astype(self.labels.dtype)

    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the index folder atomically (staged, then renamed into place)."""
        target = Path(directory)
        if (
            overwrite
            and target.is_dir()
            and any(target.iterdir())
            and not (target / manifest.MANIFEST).is_file()
        ):
            raise ValueError(f"{target} is not an index folder; refusing to overwrite it")
        with self._writer, staged_folder(target, overwrite=overwrite) as stage:
            self._write(stage)
            commit = Commit(len(self), 0, [], self.deleted.tolist())
            if len(self.deleted):
                segments.write_commit(stage, commit)
        self.directory, self.commit = target, commit
        return target

    def _write(self, stage: Path) -> None:
        np.save(stage / manifest.CODES, self.packed)
        names = [manifest.CODES]
        if self.labels is not None:
            np.save(stage / manifest.LABELS, self.labels)
            names.append(manifest.LABELS)
        if self.dataset_index is not None:
            np.save(stage / manifest.DATASET_INDEX, self.dataset_index)
            names.append(manifest.DATASET_INDEX)
        if self.paths is not None:
            if any("\n" in path for path in self.paths):
                raise ValueError("an item path contains a newline; it cannot be stored")
            text = "".join(f"{path}\n" for path in self.paths)
            (stage / manifest.PATHS).write_text(text, encoding="utf-8")
            names.append(manifest.PATHS)
        if self.config is not None:
            text = yaml.safe_dump(self.config, sort_keys=False)
            (stage / manifest.CONFIG).write_text(text, encoding="utf-8")
            names.append(manifest.CONFIG)
        if self.taxonomy is not None:
            names.append(self.taxonomy.write(stage))
        faiss_backend.write_index(self.faiss_index, stage / manifest.FAISS)
        names.append(manifest.FAISS)
        content = {
            "format": manifest.FORMAT,
            "format_version": manifest.FORMAT_VERSION,
            "bits": self.bits,
            "padded_bits": 8 * packed_width(self.bits),
            "count": len(self),
            "packing": "numpy.packbits, big bit order, bit 1 = +1, zero padding bits",
            "codes_sha256": manifest.file_sha256(stage / manifest.CODES),
            "labels": self._label_info(),
            "taxonomy": self.taxonomy.file_name if self.taxonomy is not None else None,
            "model": self.model,
            "input": self.input_spec.to_dict() if self.input_spec is not None else None,
            "faiss": self.spec.to_dict(),
            "source": self.source,
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "files": manifest.describe_files(stage, names),
        }
        (stage / manifest.MANIFEST).write_text(json.dumps(content, indent=2))

    def _label_info(self) -> dict[str, Any] | None:
        if self.labels is None:
            return None
        return {
            "kind": "single" if self.labels.ndim == 1 else "multi",
            "num_classes": self.num_classes,
            "classes": self.classes,
        }


def _as_labels(labels: Tensor | np.ndarray | None) -> np.ndarray | None:
    """Labels as numpy: class indices int64 (N,) or multi-hot uint8 (N, C)."""
    if labels is None:
        return None
    array = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if array.ndim == 1:
        return array.astype(np.int64)
    if array.ndim == 2:
        return (array > 0).astype(np.uint8)
    raise ValueError(f"labels must be (N,) class indices or (N, C) multi-hot, got {array.shape}")


def _count_classes(labels: np.ndarray | None, classes: list[str] | None) -> int | None:
    if labels is None:
        return None
    if classes is not None:
        return len(classes)
    if labels.ndim == 2:
        return int(labels.shape[1])
    return int(labels.max()) + 1 if len(labels) else None
