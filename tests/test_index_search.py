"""faiss-backed search: exact (distance, id) order for flat, sorted approximate results, add."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from hashing.index import FaissSpec, HashIndex, Query, faiss_backend, jobs, pack_codes
from hashing.runs.errors import UserError
from tests.helpers.runs import CONF

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def random_codes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    return rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, bits))


def brute_force_top_k(query: np.ndarray, database: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(distance, id) pairs of the k nearest, ties by id: a plain loop and a sort."""
    distances = (database != query[None, :]).sum(axis=1)
    return sorted(zip(distances.tolist(), range(len(database)), strict=True))[:k]


@pytest.fixture(params=["counting", "heap", "heap-mode"])
def flat_search_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every exact flat search: faiss' counting search; (no memory for its buckets) the heap
    search with range searches at a tied cut; and (a large index) the heap search sorted."""
    if request.param == "heap":
        monkeypatch.setattr(faiss_backend, "COUNTING_BYTES", 0)
    if request.param == "heap-mode":
        monkeypatch.setattr(faiss_backend, "HEAP_FROM", 1)
    return request.param


@pytest.mark.parametrize("bits", [8, 12, 64, 256])
@pytest.mark.parametrize("k", [1, 7, 100, 1000])
def test_flat_matches_brute_force_order_exactly(bits: int, k: int, flat_search_path: str) -> None:
    rng = np.random.default_rng(bits * 1000 + k)
    database = random_codes(rng, 600, bits)
    # duplicates make ties at every distance; queries include database codes
    database[300:400] = database[:100]
    queries = np.concatenate([random_codes(rng, 90, bits), database[:10]])
    result = HashIndex.from_codes(database).search(queries, k=k)
    assert result.ids.shape == (len(queries), min(k, len(database)))
    for q, query in enumerate(queries):
        expected = brute_force_top_k(query, database, k)
        assert [(d, i) for i, d in result.row(q)] == expected


def test_ties_across_the_cut_are_resolved_by_smallest_ids(flat_search_path: str) -> None:
    # 4 bits, 500 items: every distance is shared by ~100 items, so the k-th always ties
    rng = np.random.default_rng(3)
    database = random_codes(rng, 500, 4)
    queries = random_codes(rng, 200, 4)  # more tied queries than one range-search chunk
    result = HashIndex.from_codes(database).search(queries, k=5)
    for q, query in enumerate(queries):
        assert [(d, i) for i, d in result.row(q)] == brute_force_top_k(query, database, 5)


def test_approximate_indexes_return_sorted_true_distances() -> None:
    rng = np.random.default_rng(4)
    database, queries = random_codes(rng, 2000, 32), random_codes(rng, 30, 32)
    flat = HashIndex.from_codes(database).search(queries, k=20)
    for spec in (
        FaissSpec(type="hnsw", m=16),
        FaissSpec(type="ivf", nlist=8, nprobe=8),
        FaissSpec(type="mih", nhash=4, nflip=2),
    ):
        result = HashIndex.from_codes(database, spec=spec).search(queries, k=20)
        found = 0
        for q, query in enumerate(queries):
            row = result.row(q)
            assert row == sorted(row, key=lambda pair: (pair[1], pair[0]))
            for item, distance in row:
                assert distance == int((query != database[item]).sum())
            found += len({i for i, _ in row} & {i for i, _ in flat.row(q)})
        if spec.type == "ivf":  # every cell probed: the distances are the exact ones
            np.testing.assert_array_equal(result.distances, flat.distances)
        if spec.type == "mih":
            # pigeonhole: an item within nhash * (nflip + 1) - 1 bits matches some substring
            # within nflip flips, so a query whose k-th distance is that close is answered exactly
            sure = flat.distances[:, -1] <= spec.nhash * (spec.nflip + 1) - 1
            assert sure.sum() >= 10
            np.testing.assert_array_equal(result.distances[sure], flat.distances[sure])
        assert found / flat.ids.size > 0.5


def test_add_then_search_equals_building_at_once() -> None:
    rng = np.random.default_rng(5)
    codes, queries = random_codes(rng, 500, 16), random_codes(rng, 40, 16)
    grown = HashIndex.from_codes(codes[:350], labels=np.arange(350) % 7)
    new_ids = grown.add(codes[350:], labels=np.arange(350, 500) % 7)
    np.testing.assert_array_equal(new_ids, np.arange(350, 500))
    whole = HashIndex.from_codes(codes, labels=np.arange(500) % 7)
    a, b = grown.search(queries, k=30), whole.search(queries, k=30)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)
    np.testing.assert_array_equal(grown.labels, np.arange(500) % 7)
    assert grown.item(499) == {"id": 499, "label": 499 % 7}


def test_search_accepts_packed_codes_and_rejects_bad_input() -> None:
    rng = np.random.default_rng(6)
    codes = random_codes(rng, 100, 12)
    index = HashIndex.from_codes(codes)
    a = index.search(codes[:5], k=3)
    b = index.search(pack_codes(codes[:5]), k=3)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert (a.distances[:, 0] == 0).all()
    with pytest.raises(ValueError, match="positive integer"):
        index.search(codes[:5], k=0)
    with pytest.raises(ValueError, match="neither"):
        index.search(codes[:5, :8], k=3)
    with pytest.raises(ValueError, match="records no model"):
        index.search(torch.zeros(2, 1, 8, 8), k=3)
    with pytest.raises(ValueError, match="holds labels"):
        HashIndex.from_codes(codes, labels=np.zeros(100)).add(codes[:2])
    with pytest.raises(ValueError, match="unknown"):
        FaissSpec.from_mapping({"type": "flat", "nprob": 3})
    with pytest.raises(ValueError, match="needs at least"):
        HashIndex.from_codes(codes, spec=FaissSpec(type="ivf", nlist=1024))


def test_explicit_query_kinds_search_alike() -> None:
    rng = np.random.default_rng(7)
    codes = random_codes(rng, 300, 12)
    index = HashIndex.from_codes(codes)
    packed = pack_codes(codes[:4])
    hex_codes = [bytes(row).hex() for row in packed]
    assert hex_codes[0] == "".join(f"{b:02x}" for b in np.packbits(codes[0] > 0))
    expected = index.search(Query.codes(codes[:4]), k=9)
    for query in (
        Query.packed(packed),
        Query.hex(hex_codes, bits=12),
        Query.ids([0, 1, 2, 3]),
        Query.codes(codes[:4].tolist()),
    ):
        result = index.search(query, k=9)
        np.testing.assert_array_equal(result.ids, expected.ids)
        np.testing.assert_array_equal(result.distances, expected.distances)
    with pytest.raises(ValueError, match="has 1 bytes; 12-bit codes take 2"):
        Query.hex(["ab"], bits=12)
    with pytest.raises(ValueError, match="not a hex string"):
        Query.hex(["zz00"], bits=12)
    with pytest.raises(ValueError, match="padding"):
        Query.hex(["ffff"], bits=12)  # the last 4 bits of a 12-bit code must be 0
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        Query.codes([[0, 1]])
    with pytest.raises(ValueError, match="codes have 8 bits; this index holds 12"):
        index.search(Query.codes(codes[:2, :8]), k=3)
    with pytest.raises(ValueError, match=r"outside 0\.\.299"):
        index.search(Query.ids([300]), k=3)


def test_cli_search_by_codes_and_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(8)
    codes = random_codes(rng, 200, 16)
    index = HashIndex.from_codes(codes, labels=np.arange(200) % 3)
    index.save(tmp_path / "index")
    expected = index.records(index.search(Query.codes(codes[:2]), k=4))
    hex_codes = [bytes(row).hex() for row in pack_codes(codes[:2])]
    as_lists = "[" + ",".join("[" + ",".join(map(str, row)) + "]" for row in codes[:2]) + "]"
    for overrides, names in (
        ([f"codes={as_lists}"], codes[:2].tolist()),
        ([f"codes=['{hex_codes[0]}','{hex_codes[1]}']"], hex_codes),
        (["ids=[0,1]"], [{"id": 0}, {"id": 1}]),
    ):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("search", [f"index={tmp_path / 'index'}", "k=4", *overrides])
        lines = jobs.search(cfg)
        assert [line["results"] for line in lines] == expected
        assert [line["query"] for line in lines] == names
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert printed == lines
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("search", [f"index={tmp_path / 'index'}", "ids=[1]", "codes=['00ff']"])
    with pytest.raises(UserError, match="exactly one of"):
        jobs.search(cfg)


def clustered(rng: np.random.Generator, n: int, classes: int, noise: float) -> np.ndarray:
    """±1 64-bit codes like a trained model's: class centers with independent bit flips."""
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(classes, 64))
    flips = rng.random((n, 64)) < noise
    return np.where(flips, -1, 1).astype(np.int8) * centers[rng.integers(0, classes, n)]


def tie_aware_recall(found: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Per query, the share of the exact top-k distances the found ones cover (per distance
    value, min(found, exact) counts): any of several items tied at the k-th distance is right."""
    shares = []
    for got, want in zip(found, exact, strict=True):
        values, counts = np.unique(want, return_counts=True)
        covered = sum(
            min(int((got == v).sum()), int(c)) for v, c in zip(values, counts, strict=True)
        )
        shares.append(covered / len(want))
    return np.asarray(shares)


def test_approximate_kinds_recall_on_clustered_codes_and_survive_reload(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    codes = clustered(rng, 3000, 12, 0.12)
    queries = clustered(np.random.default_rng(11), 3040, 12, 0.12)[3000:]  # same centers
    k = 10
    # independent exact answer: a plain Hamming count and a (distance, id) sort
    exact = np.asarray(
        [[d for d, _ in brute_force_top_k(query, codes, k)] for query in queries], np.int32
    )
    for spec, bound in (
        (FaissSpec(type="ivf", nlist=16, nprobe=8), 0.9),
        (FaissSpec(type="hnsw", m=16, ef_construction=64, ef_search=64), 0.9),
        (FaissSpec(type="mih", nhash=8, nflip=1), 1.0),
    ):
        index = HashIndex.from_codes(codes, spec=spec)
        result = index.search(queries, k=k)
        for q, query in enumerate(queries):  # returned in (distance, id) order, true distances
            row = result.row(q)
            assert row == sorted(row, key=lambda pair: (pair[1], pair[0]))
            assert all(d == int((query != codes[i]).sum()) for i, d in row)
        recall = tie_aware_recall(result.distances, exact)
        if spec.type == "mih":
            # pigeonhole: within nhash * (nflip + 1) - 1 = 15 bits every item shares a substring
            # within one flip, so those queries are answered exactly
            sure = exact[:, -1] <= spec.nhash * (spec.nflip + 1) - 1
            assert sure.mean() > 0.9
            recall = recall[sure]
        assert recall.mean() >= bound, (spec.type, recall.mean())
        index.save(tmp_path / spec.type)
        again = HashIndex.load(tmp_path / spec.type).search(queries, k=k)
        np.testing.assert_array_equal(again.ids, result.ids)
        np.testing.assert_array_equal(again.distances, result.distances)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"type": "ivf", "nlist": 8, "nprobe": 9}, "faiss.nprobe=9 exceeds faiss.nlist=8"),
        ({"type": "ivf", "nlist": 0}, "faiss.nlist"),
        ({"type": "hnsw", "m": 1}, "faiss.m"),
        ({"type": "hnsw", "ef_search": 2.5}, "faiss.ef_search"),
        ({"type": "mih", "nflip": -1}, "faiss.nflip"),
        ({"type": "annoy"}, "faiss.type='annoy'"),
        ({"type": "flat", "nprob": 3}, "nprob"),
    ],
)
def test_bad_index_settings_name_the_key(settings: dict, key: str) -> None:
    with pytest.raises(UserError, match=re.escape(key)):
        FaissSpec.from_mapping(settings)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        (FaissSpec(type="mih", nhash=4, nflip=17), "faiss.nflip=17 exceeds the 16 bits"),
        (FaissSpec(type="mih", nhash=65), "faiss.nhash=65"),
        (FaissSpec(type="ivf", nlist=1024, nprobe=4), "faiss.nlist=1024 needs at least"),
    ],
)
def test_settings_that_do_not_fit_the_codes_name_the_key(spec: FaissSpec, key: str) -> None:
    codes = random_codes(np.random.default_rng(12), 200, 64)
    with pytest.raises(UserError, match=re.escape(key)):
        HashIndex.from_codes(codes, spec=spec)
