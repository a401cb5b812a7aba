"""The index folder: round trip, refusal of truncated / modified / other-bits folders, atomic
writes (an interrupted save leaves the old folder or nothing), add persisting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hashing.index import FaissSpec, HashIndex, faiss_backend
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


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
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


def test_interrupted_add_keeps_the_old_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index()
    index.save(tmp_path / "index")
    before = {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir()}

    def interrupted(index: object, path: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss_backend, "write_index", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index.add(index.codes[:3], labels=np.zeros(3, np.int64), paths=["a", "b", "c"])
    assert {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir()} == before
    assert leftovers(tmp_path) == []
    assert len(HashIndex.load(tmp_path / "index")) == 300


def test_add_persists_and_keeps_old_codes_bytes(tmp_path: Path) -> None:
    index = make_index()
    index.save(tmp_path / "index")
    old_codes = np.load(tmp_path / "index" / CODES)
    reopened = HashIndex.load(tmp_path / "index")
    new = np.random.default_rng(9).choice(np.array([-1, 1], dtype=np.int8), size=(25, 12))
    ids = reopened.add(new, labels=np.full(25, 4), paths=[f"/new/{i}.png" for i in range(25)])
    np.testing.assert_array_equal(ids, np.arange(300, 325))
    again = HashIndex.load(tmp_path / "index")
    assert len(again) == 325
    np.testing.assert_array_equal(np.load(tmp_path / "index" / CODES)[:300], old_codes)
    np.testing.assert_array_equal(again.codes[300:], new)
    assert again.item(310) == {"id": 310, "path": "/new/10.png", "label": 4}
    result = again.search(new[:5], k=1)
    assert (result.distances[:, 0] == 0).all()
    assert leftovers(tmp_path) == []


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
