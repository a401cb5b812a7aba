"""The index folder: round trip, refusal of truncated / modified / other-bits folders, atomic
writes (an interrupted save leaves the old folder or nothing), adds appended as segments and
committed last, deletions, one writer, searches concurrent with adds."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from hashing.index import FaissSpec, HashIndex, ItemNotFound, Query, faiss_backend, segments
from hashing.index.manifest import CODES, FAISS, LABELS, MANIFEST

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def make_index(n: int = 300, bits: int = 12, spec: FaissSpec | None = None) -> HashIndex:
    rng = np.random.default_rng(bits)
    codes = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, bits))
    return HashIndex.from_codes(
        codes,
        labels=np.arange(n) % 5,
        paths=[f"/images/{i:04d}.png" for i in range(n)],
        spec=spec,
        source={"kind": "test"},
    )


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "mih"])
def test_save_and_load_round_trip(tmp_path: Path, kind: str) -> None:
    index = make_index(spec=FaissSpec(type=kind, nlist=4, nprobe=4, m=8))
    index.save(tmp_path / "index")
    loaded = HashIndex.load(tmp_path / "index", bits=12)
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.labels, index.labels)
    assert loaded.paths == index.paths and loaded.spec == index.spec
    queries = index.codes[:20]
    a, b = index.search(queries, k=15), loaded.search(queries, k=15)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)
    meta = json.loads((tmp_path / "index" / MANIFEST).read_text())
    assert (meta["bits"], meta["padded_bits"], meta["count"]) == (12, 16, 300)
    assert meta["codes_sha256"] == meta["files"][CODES]["sha256"]
    assert leftovers(tmp_path) == []


def test_truncated_or_modified_folders_are_refused(tmp_path: Path) -> None:
    make_index().save(tmp_path / "good")

    def broken(name: str) -> Path:
        folder = tmp_path / name
        shutil.copytree(tmp_path / "good", folder)
        return folder

    folder = broken("short_codes")
    data = (folder / CODES).read_bytes()
    (folder / CODES).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        HashIndex.load(folder)

    folder = broken("flipped_byte")
    data = bytearray((folder / FAISS).read_bytes())
    data[-1] ^= 0xFF
    (folder / FAISS).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        HashIndex.load(folder)

    folder = broken("no_labels")
    (folder / LABELS).unlink()
    with pytest.raises(ValueError, match="missing"):
        HashIndex.load(folder)

    folder = broken("no_manifest")
    (folder / MANIFEST).unlink()
    with pytest.raises(ValueError, match=r"no manifest\.json"):
        HashIndex.load(folder)

    folder = broken("half_manifest")
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="unreadable or truncated"):
        HashIndex.load(folder)

    with pytest.raises(ValueError, match="does not exist"):
        HashIndex.load(tmp_path / "absent")
    HashIndex.load(tmp_path / "good")  # the original is intact


def test_another_bit_length_is_refused(tmp_path: Path) -> None:
    make_index(bits=12).save(tmp_path / "index")
    with pytest.raises(ValueError, match="holds 12-bit codes, not the 16-bit"):
        HashIndex.load(tmp_path / "index", bits=16)
    index = HashIndex.load(tmp_path / "index")
    with pytest.raises(ValueError, match="neither"):
        index.search(np.ones((2, 16), np.int8), k=3)


def test_interrupted_save_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(index: object, path: Path) -> None:
        path.write_bytes(b"half a faiss index")
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss_backend, "write_index", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_index().save(tmp_path / "index")
    assert not (tmp_path / "index").exists()
    assert leftovers(tmp_path) == []


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file of an index folder (segments included) by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_crash_between_segment_and_commit_keeps_the_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index()
    index.save(tmp_path / "index")
    index.add(index.codes[:2], labels=np.zeros(2, np.int64), paths=["x", "y"])
    before = HashIndex.load(tmp_path / "index")
    committed = (tmp_path / "index" / segments.COMMIT).read_bytes()

    def crash(folder: Path, commit: segments.Commit) -> None:
        raise KeyboardInterrupt  # the segment file is on disk, the commit record is not

    monkeypatch.setattr(segments, "write_commit", crash)
    with pytest.raises(KeyboardInterrupt):
        index.add(index.codes[:3], labels=np.zeros(3, np.int64), paths=["a", "b", "c"])
    assert len(list((tmp_path / "index" / segments.SEGMENTS).iterdir())) == 2  # orphan written
    assert (tmp_path / "index" / segments.COMMIT).read_bytes() == committed
    assert len(index) == 302  # memory as before too
    monkeypatch.undo()
    after = HashIndex.load(tmp_path / "index")
    np.testing.assert_array_equal(after.codes, before.codes)
    assert after.paths == before.paths and len(after) == 302
    # the next add overwrites the orphan and commits
    ids = index.add(index.codes[:1], labels=np.ones(1, np.int64), paths=["z"])
    assert ids.tolist() == [302]
    assert HashIndex.load(tmp_path / "index").item(302) == {"id": 302, "path": "z", "label": 1}
    assert leftovers(tmp_path) == []


def test_add_appends_a_segment_and_leaves_the_exported_files(tmp_path: Path) -> None:
    index = make_index()
    index.save(tmp_path / "index")
    base = folder_state(tmp_path / "index")
    reopened = HashIndex.load(tmp_path / "index")
    new = np.random.default_rng(9).choice(np.array([-1, 1], dtype=np.int8), size=(25, 12))
    ids = reopened.add(new[:20], labels=np.full(20, 4), paths=[f"/new/{i}.png" for i in range(20)])
    ids2 = reopened.add(new[20:], labels=np.full(5, 3))  # no paths: stored as empty
    np.testing.assert_array_equal(np.concatenate([ids, ids2]), np.arange(300, 325))
    state = folder_state(tmp_path / "index")
    assert {name: state[name] for name in base} == base  # exported files byte for byte
    added = sorted(set(state) - set(base))
    assert added == [
        segments.LOCK,
        segments.COMMIT,
        "segments/00000001.npz",
        "segments/00000002.npz",
    ]
    again = HashIndex.load(tmp_path / "index")
    assert len(again) == 325
    np.testing.assert_array_equal(again.codes[300:], new)
    assert again.item(310) == {"id": 310, "path": "/new/10.png", "label": 4}
    assert again.item(322) == {"id": 322, "label": 3}
    result = again.search(new[:5], k=1)
    assert (result.distances[:, 0] == 0).all()
    # save() compacts the segments into the exported files
    again.save(tmp_path / "compact")
    assert not (tmp_path / "compact" / segments.SEGMENTS).exists()
    np.testing.assert_array_equal(HashIndex.load(tmp_path / "compact").codes, again.codes)
    assert leftovers(tmp_path) == []


def test_damaged_segments_are_refused(tmp_path: Path) -> None:
    index = make_index()
    index.save(tmp_path / "index")
    index.add(index.codes[:4], labels=np.zeros(4, np.int64))
    segment = tmp_path / "index" / "segments" / "00000001.npz"
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        HashIndex.load(tmp_path / "index")


def test_deleted_items_leave_searches_and_stay_deleted(tmp_path: Path) -> None:
    index = make_index(n=200, bits=8)
    index.save(tmp_path / "index")
    queries = index.codes[:30]
    gone = [0, 5, 17, 18, 150]
    index.delete(gone)
    for reader in (index, HashIndex.load(tmp_path / "index")):
        result = reader.search(queries, k=40)
        codes = reader.codes
        for q, query in enumerate(queries):
            distances = (codes != query).sum(axis=1).tolist()
            expected = sorted((d, i) for i, d in enumerate(distances) if i not in gone)[:40]
            assert [(d, i) for i, d in result.row(q)] == expected
        with pytest.raises(ItemNotFound, match="deleted"):
            reader.search(Query.ids([5]), k=3)
    with pytest.raises(ItemNotFound, match="was deleted"):
        index.delete([1, 5])
    assert index.search(Query.ids([1]), k=1).ids[0, 0] == 1  # the failed delete deleted nothing
    with pytest.raises(ItemNotFound, match="outside"):
        index.delete([200])
    everything = HashIndex.load(tmp_path / "index").search(queries[:1], k=1000)
    assert everything.ids.shape == (1, 195)
    # a compacted copy keeps ids and tombstones
    index.save(tmp_path / "copy")
    assert HashIndex.load(tmp_path / "copy").deleted.tolist() == gone


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    make_index().save(tmp_path / "index")
    first, second = HashIndex.load(tmp_path / "index"), HashIndex.load(tmp_path / "index")
    first.add(first.codes[:1], labels=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="changed by another process"):
        second.add(first.codes[:1], labels=np.zeros(1, np.int64))
    assert len(HashIndex.load(tmp_path / "index")) == 301


def test_searches_never_see_part_of_an_add() -> None:
    rng = np.random.default_rng(2)
    codes = rng.choice(np.array([-1, 1], np.int8), size=(2000, 16))
    codes[:, 0] = -1  # no old code equals the query
    index = HashIndex.from_codes(codes)
    batch = 50
    query = np.ones((1, 16), np.int8)  # every added code equals the query: distance 0
    stop = threading.Event()
    seen: list[int] = []

    def search() -> None:
        while not stop.is_set():
            row = index.search(query, k=1000).row(0)
            seen.append(sum(1 for item, distance in row if distance == 0 and item >= 2000))

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        index.add(np.ones((batch, 16), np.int8))
    stop.set()
    for thread in threads:
        thread.join()
    assert seen and all(count % batch == 0 for count in seen)
    assert index.search(query, k=1000).row(0)[:3] == [(2000, 0), (2001, 0), (2002, 0)]


def test_existing_folders_are_not_clobbered(tmp_path: Path) -> None:
    make_index().save(tmp_path / "index")
    with pytest.raises(FileExistsError, match="overwrite"):
        make_index(bits=16).save(tmp_path / "index")
    assert HashIndex.load(tmp_path / "index").bits == 12
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ValueError, match="not an index folder"):
        make_index().save(tmp_path / "photos", overwrite=True)
    assert (tmp_path / "photos" / "holiday.jpg").read_bytes() == b"precious"
    make_index(bits=16).save(tmp_path / "index", overwrite=True)
    assert HashIndex.load(tmp_path / "index").bits == 16
