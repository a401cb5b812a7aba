"""faiss binary indexes over packed codes: built by config, searched in (distance, id) order.

``flat`` (``IndexBinaryFlat``) is exact, and :func:`search` makes its order exact too. faiss'
default (heap) search does not promise which of several items tied at the k-th distance it
returns, nor their order; its counting search (``use_heap = False``, ``hammings_knn_mc``) scans
the codes in id order and keeps, per distance, the first k ids it meets, so its top-k is the k
smallest (distance, id) pairs in that order, in one scan and faster than the heap. That is
the ranking of docs/metrics.md#tie-handling (ties by database index ascending). The counting search
holds (bits + 1) * k ids per query of a block; where that exceeds :data:`COUNTING_BYTES` even for
one query (k in the hundreds of thousands), the heap search is re-sorted by (distance, id) and a
query whose k-th and (k+1)-th distances tie gets all items up to that distance by a range search
instead. From :data:`HEAP_FROM` codes up, the counting search is slower than faiss' heap search
(0.73-0.93x at 100k-1M codes, k=100), and a flat index uses the heap search instead: it, too,
scans the codes in id order, and replaces its heap's top, the largest (distance, id) pair held,
only by a strictly smaller distance, so it keeps exactly the k smallest (distance, id) pairs; only
their order within one distance is unspecified, and :func:`sort_results` sets it. The tests
check both modes against a brute force on codes full of ties.
A flat index is searched by several threads at once (the service), so its search mode is set
when it is built, read or grown (:func:`configure`) and never toggled around a search; the rare
heap fallback takes :data:`MODE_LOCK` exclusively while it switches the mode.
``mih`` (``IndexBinaryMultiHash``, multi-index hashing: the code cut into ``nhash`` substrings,
each a hash table probed up to ``nflip`` bit flips away), ``hnsw`` (``IndexBinaryHNSW``) and
``ivf`` (``IndexBinaryIVF``) are approximate indexes for large collections; their results are
sorted by (distance, id) but which items tie in is theirs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashing.index.rwlock import ReadWriteLock
from hashing.runs.errors import UserError
from hashing.runs.quiet import quiet_libraries

quiet_libraries()  # before faiss loads: its loader logs which of its builds it tried
import faiss  # noqa: E402
import numpy as np  # noqa: E402

INDEX_TYPES = ("flat", "hnsw", "ivf", "mih")
#: queries per faiss range search when resolving ties (bounds the memory of tied results)
RANGE_CHUNK = 64
#: memory budget of faiss' counting search (its per-query buckets of ids, for a query block)
COUNTING_BYTES = 64 * 2**20
#: queries per block of faiss' counting search: more queries share each pass over a block of the
#: database (faiss' default of 32 ran at 0.74-0.81x of its heap search at 300k-1M codes, 256 at
#: 0.91-1.03x; benchmarks/bench_index.py)
QUERY_BATCH = 256
#: a flat index of at least this many codes searches with faiss' heap search (see above)
HEAP_FROM = 100_000
#: smallest value of each integer setting (default 1): HNSW needs two neighbours per node to
#: link its graph, MIH may probe exact substring matches only
LEAST = {"m": 2, "nflip": 0}
#: counting searches hold it shared, the heap fallback (which switches use_heap) exclusively
MODE_LOCK = ReadWriteLock()


@dataclass(frozen=True)
class FaissSpec:
    """Which faiss binary index to build and its parameters (``faiss`` in ``conf/export.yaml``).

    Args:
        type: ``flat`` (exact), ``mih``, ``hnsw`` or ``ivf`` (approximate, for large
            collections; ``docs/serving.md`` says which at which size).
        m: HNSW neighbours per node (at least 2).
        ef_construction: HNSW candidate list size while building.
        ef_search: HNSW candidate list size while searching (raised to k when smaller).
        nlist: IVF cells (k-means on the codes; needs at least ``nlist`` codes).
        nprobe: IVF cells visited per query (at most ``nlist``).
        nhash: MIH substrings (hash tables) a code is cut into; each has bits // nhash bits.
        nflip: MIH bit flips probed per substring (0: exact substring matches only; at most the
            substring's bits).

    A setting out of range is a :class:`UserError` naming its key.
    """

    type: str = "flat"
    m: int = 32
    ef_construction: int = 64
    ef_search: int = 128
    nlist: int = 1024
    nprobe: int = 16
    nhash: int = 4
    nflip: int = 1

    def __post_init__(self) -> None:
        if self.type not in INDEX_TYPES:
            raise UserError(f"faiss.type={self.type!r} unknown; expected one of {INDEX_TYPES}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "type":
                continue
            least = LEAST.get(field.name, 1)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
                raise UserError(f"faiss.{field.name} must be an integer >= {least}, got {value!r}")
        if self.type == "ivf" and self.nprobe > self.nlist:
            raise UserError(
                f"faiss.nprobe={self.nprobe} exceeds faiss.nlist={self.nlist}: an IVF index "
                f"cannot visit more cells than it has; at most faiss.nprobe={self.nlist}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> FaissSpec:
        """Spec from a config mapping; unknown keys are an error (a typo would be silent)."""
        values = dict(values or {})
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"faiss config keys {unknown} unknown; expected some of {sorted(known)}"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the manifest."""
        return dataclasses.asdict(self)


def build_index(packed: np.ndarray, spec: FaissSpec) -> faiss.IndexBinary:
    """A faiss binary index of ``spec.type`` holding ``packed`` (uint8 (N, bytes)) as ids 0..N-1."""
    dimension = 8 * packed.shape[1]
    if spec.type == "flat":
        index = faiss.IndexBinaryFlat(dimension)
    elif spec.type == "hnsw":
        index = faiss.IndexBinaryHNSW(dimension, spec.m)
        index.hnsw.efConstruction = spec.ef_construction
        index.hnsw.efSearch = spec.ef_search
    elif spec.type == "mih":
        if not 1 <= spec.nhash <= dimension:
            raise UserError(f"faiss.nhash={spec.nhash} must be in 1..{dimension} (code bits)")
        substring = dimension // spec.nhash
        if spec.nflip > substring:
            raise UserError(
                f"faiss.nflip={spec.nflip} exceeds the {substring} bits of each of "
                f"faiss.nhash={spec.nhash} substrings; at most faiss.nflip={substring}"
            )
        index = faiss.IndexBinaryMultiHash(dimension, spec.nhash, substring)
        index.nflip = spec.nflip
    else:
        if len(packed) < spec.nlist:
            raise UserError(
                f"faiss.nlist={spec.nlist} needs at least that many codes to train its cells; "
                f"the collection has {len(packed)}: lower faiss.nlist or use faiss.type=flat"
            )
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(dimension), dimension, spec.nlist)
        index.train(packed)
        index.nprobe = spec.nprobe
    index.add(packed)
    return configure(index)


def configure(index: faiss.IndexBinary) -> faiss.IndexBinary:
    """Set a flat index to the search mode :func:`search` relies on for its size (counting below
    :data:`HEAP_FROM` codes, heap from there), in blocks of :data:`QUERY_BATCH` queries; call it
    again after adding codes."""
    if isinstance(index, faiss.IndexBinaryFlat):
        index.use_heap = bool(index.ntotal >= HEAP_FROM)
        index.query_batch_size = QUERY_BATCH
    return index


def write_index(index: faiss.IndexBinary, path: Path) -> None:
    """Serialise ``index`` to ``path``."""
    faiss.write_index_binary(index, str(path))


def read_index(path: Path) -> faiss.IndexBinary:
    """Read a binary index; an unreadable file is a ValueError naming it."""
    try:
        return configure(faiss.read_index_binary(str(path)))
    except RuntimeError as err:
        raise ValueError(f"faiss index {path} is unreadable (truncated or corrupt): {err}") from err


def sort_results(distances: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by (distance, id); missing results (id -1) go last."""
    missing = ids < 0
    distance_key = np.where(missing, np.iinfo(np.int64).max, distances.astype(np.int64))
    id_key = np.where(missing, np.iinfo(np.int64).max, ids)
    order = np.lexsort((id_key, distance_key), axis=-1)
    return (
        np.take_along_axis(distances, order, axis=1).astype(np.int32),
        np.take_along_axis(ids, order, axis=1).astype(np.int64),
    )


def search(
    index: faiss.IndexBinary, spec: FaissSpec, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (distances int32, ids int64), each (Q, min(k, N)), rows in (distance, id) order.

    Exact for ``flat``; approximate indexes may leave id -1 (distance -1) where they found fewer.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = min(int(k), int(index.ntotal))
    if k == 0 or len(queries) == 0:
        return np.zeros((len(queries), k), np.int32), np.zeros((len(queries), k), np.int64)
    if spec.type == "flat":
        return _search_flat_exact(index, queries, k)
    if spec.type == "hnsw":
        index.hnsw.efSearch = max(spec.ef_search, k)
    elif spec.type == "mih":
        index.nflip = spec.nflip
    else:
        index.nprobe = spec.nprobe
    distances, ids = sort_results(*index.search(queries, k))
    distances[ids < 0] = -1
    return distances, ids


def _search_flat_exact(
    index: faiss.IndexBinary, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k in (distance, id) order from a flat index (ties at the k-th distance resolved).

    By faiss' heap search from :data:`HEAP_FROM` codes; else by its counting search, in calls of
    at most as many queries as its buckets fit in :data:`COUNTING_BYTES` (faiss searches
    ``query_batch_size`` queries at a time), else by :func:`_search_flat_heap`.
    """
    per_query = (8 * index.code_size + 1) * k * np.dtype(np.int64).itemsize
    block = COUNTING_BYTES // per_query
    with MODE_LOCK.reading():
        configure(index)
        if index.use_heap:
            return sort_results(*index.search(queries, k))
    if block < 1:
        return _search_flat_heap(index, queries, k)
    with MODE_LOCK.reading():
        configure(index)
        if block >= index.query_batch_size:
            distances, ids = index.search(queries, k)
        else:
            parts = [index.search(queries[s : s + block], k) for s in range(0, len(queries), block)]
            distances = np.concatenate([d for d, _ in parts])
            ids = np.concatenate([i for _, i in parts])
    return distances.astype(np.int32), ids.astype(np.int64)


def _search_flat_heap(
    index: faiss.IndexBinary, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k in (distance, id) order from faiss' heap search and range searches.

    faiss returns a correct *set of distances*; asking for k + 1 tells whether the k-th
    distance ties with an item left out. Only those queries need all items up to that distance
    (a range search with radius k-th distance + 1, faiss' radius being strict).
    """
    probe = min(k + 1, int(index.ntotal))
    with MODE_LOCK.writing():
        index.use_heap = True
        try:
            distances, ids = sort_results(*index.search(queries, probe))
        finally:
            configure(index)
    if probe == k:
        return distances, ids
    boundary = distances[:, k - 1]
    cut = np.flatnonzero(distances[:, k] == boundary)
    distances, ids = distances[:, :k].copy(), ids[:, :k].copy()
    for radius in np.unique(boundary[cut]):
        rows = cut[boundary[cut] == radius]
        for start in range(0, len(rows), RANGE_CHUNK):
            chunk = rows[start : start + RANGE_CHUNK]
            limits, found_distances, found_ids = index.range_search(queries[chunk], int(radius) + 1)
            for position, row in enumerate(chunk):
                lo, hi = limits[position], limits[position + 1]
                row_distances = found_distances[lo:hi].astype(np.int32)
                row_ids = found_ids[lo:hi]
                order = np.lexsort((row_ids, row_distances))[:k]
                distances[row], ids[row] = row_distances[order], row_ids[order]
    return distances, ids
