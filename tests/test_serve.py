"""The search service as a real server: ``python -m hashing.serve`` in a child process on a free
localhost port, queried over HTTP. Searches equal ``hashing.search`` item for item; changes need
the token, persist, and survive a restart; a crash (SIGKILL) during adds loses no acknowledged
add and keeps no part of an unacknowledged one; bad requests get a 4xx with a message."""

from __future__ import annotations

import logging
import runpy
import shutil
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from hashing.index import HashIndex, jobs, pack_codes
from hashing.service.process import ServerProcess
from hashing.service.settings import ServeSettings, is_local
from tests.helpers.runs import CONF

BITS, COUNT, TOKEN = 24, 3000, "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def random_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, BITS))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A codes-only index (no model) with labels and paths."""
    root = tmp_path_factory.mktemp("serve")
    codes = random_codes(np.random.default_rng(0), COUNT)
    codes[100:150] = codes[:50]  # ties at distance 0
    index = HashIndex.from_codes(
        codes, labels=np.arange(COUNT) % 7, paths=[f"/photos/{i:05d}.jpg" for i in range(COUNT)]
    )
    index.save(root / "index")
    return root


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[ServerProcess]:
    shutil.copytree(folder / "index", folder / "served")
    with ServerProcess(folder / "served", folder / "logs", [f"serve.token={TOKEN}"]) as process:
        yield process


def cli_lines(index: Path, overrides: list[str]) -> list[dict]:
    """What `python -m hashing.search` prints, composed and run in-process."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("search", [f"index={index}", *overrides])
    return jobs.search(cfg)


def test_searches_equal_the_cli(
    server: ServerProcess, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = HashIndex.load(folder / "index")
    codes = index.codes
    rng = np.random.default_rng(1)
    queries = [*random_codes(rng, 3), codes[7]]
    with httpx.Client(base_url=server.url) as client:
        for query in queries:
            hex_code = bytes(pack_codes(query[None])[0]).hex()
            listed = "[" + ",".join(map(str, query.tolist())) + "]"
            expected = cli_lines(folder / "index", [f"codes=[{listed}]", "k=25"])[0]["results"]
            for body in ({"code": query.tolist(), "k": 25}, {"code": hex_code, "k": 25}):
                answer = client.post("/search", json=body)
                assert answer.status_code == 200, answer.text
                assert answer.json()["results"] == expected
            # an independent brute force of the same top 25
            distances = (codes != query).sum(axis=1)
            pairs = sorted(zip(distances.tolist(), range(COUNT), strict=True))[:25]
            assert [(r["distance"], r["id"]) for r in expected] == pairs
        expected = cli_lines(folder / "index", ["ids=[120]", "k=60"])[0]["results"]
        answer = client.post("/search", json={"id": 120, "k": 60}).json()["results"]
        assert answer == expected
        assert {"id", "distance", "label", "path"} <= answer[0].keys()
        assert [r["id"] for r in answer[:2]] == [20, 120]  # the tie at 0, by id
    capsys.readouterr()


def test_changes_need_the_token_and_are_searchable_at_once(server: ServerProcess) -> None:
    new = random_codes(np.random.default_rng(2), 3)
    body = {"codes": new.tolist(), "labels": [6, 5, 4]}
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/items", json=body).status_code == 401
        wrong = {"Authorization": "Bearer guess"}
        assert client.post("/items", json=body, headers=wrong).status_code == 401
        count = client.get("/health").json()["items"]
        answer = client.post("/items", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        ids = answer.json()["ids"]
        assert ids == list(range(COUNT, COUNT + 3)) or ids[0] > COUNT  # other tests may add
        assert client.get("/health").json()["items"] == count + 3
        found = client.post("/search", json={"code": new[1].tolist(), "k": 1}).json()["results"]
        assert found == [{"rank": 1, "distance": 0, "id": ids[1], "label": 5}]
        assert client.delete(f"/items/{ids[1]}").status_code == 401
        assert client.delete(f"/items/{ids[1]}", headers=AUTH).json() == {"deleted": ids[1]}
        found = client.post("/search", json={"code": new[1].tolist(), "k": 5}).json()["results"]
        assert ids[1] not in [r["id"] for r in found]
        gone = client.get(f"/items/{ids[1]}")
        assert gone.status_code == 404 and "deleted" in gone.json()["detail"]
        assert client.delete(f"/items/{ids[1]}", headers=AUTH).status_code == 404
        assert client.delete("/items/999999", headers=AUTH).status_code == 404
        # ids are integers, never paths
        assert client.get("/items/..%2F..%2Fetc%2Fpasswd/thumbnail").status_code in (404, 422)
        assert client.get("/items/1.5").status_code == 422
        assert client.post("/search", json={"id": "/etc/passwd"}).status_code == 400


def png_header_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header says ``width`` x ``height``: a decompression bomb's signature."""
    import io

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data[12:29]  # chunk type + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_bad_requests_get_a_4xx_with_a_message(server: ServerProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url) as client:

        def refused(status: int, words: str, **request: object) -> None:
            answer = client.post("/search", **request)  # type: ignore[arg-type]
            assert answer.status_code == status, answer.text
            assert words in answer.json()["detail"]

        refused(415, "not a readable image", files={"image": ("a.png", b"GIF89a? no")})
        bomb = png_header_claiming(10**5, 10**5)
        refused(413, "decompression bomb", files={"image": ("b.png", bomb)})
        refused(413, "max_upload_bytes", files={"image": ("c.png", b"\0" * (11 * 2**20))})
        refused(400, "empty", files={"image": ("d.png", b"")})
        refused(400, "records no model", files={"image": ("e.png", png_header_claiming(2, 1))})
        refused(400, "k must be an integer in 1..1000", json={"id": 1, "k": 0})
        refused(400, "k must be an integer", json={"id": 1, "k": 10**6})
        refused(400, "exactly one of", json={"id": 1, "code": "00"})
        refused(400, "not JSON", content=b"{", headers={"content-type": "application/json"})
        refused(400, "24-bit codes take 3", json={"code": "abcd"})
        refused(400, "codes have 2 bits; this index holds 24", json={"code": [1, -1]})
        refused(404, "outside", json={"id": 10**9})
        answer = client.post("/items", json={"codes": ["ffffff"]}, headers=AUTH)
        assert answer.status_code == 400 and "labels" in answer.json()["detail"]
        assert client.get("/health").json()["status"] == "ok"


@pytest.mark.slow  # two server starts (~25 s each on a loaded 2-core machine)
def test_restart_serves_what_was_added(folder: Path) -> None:
    shutil.copytree(folder / "index", folder / "restart")
    new = random_codes(np.random.default_rng(3), 5)
    with ServerProcess(folder / "restart", folder / "logs") as first:
        answer = httpx.post(
            f"{first.url}/items", json={"codes": new.tolist(), "labels": [1, 2, 3, 4, 5]}
        )
        ids = answer.json()["ids"]
        assert ids == list(range(COUNT, COUNT + 5))
        assert httpx.delete(f"{first.url}/items/3").status_code == 200  # no token configured
    with ServerProcess(folder / "restart", folder / "logs") as second:
        for code, item in zip(new, ids, strict=True):
            found = httpx.post(f"{second.url}/search", json={"code": code.tolist(), "k": 1})
            assert found.json()["results"][0]["id"] == item
        assert httpx.get(f"{second.url}/items/3").status_code == 404
        assert httpx.get(f"{second.url}/health").json()["items"] == COUNT + 5 - 1


@pytest.mark.slow  # two server starts
def test_a_crash_during_adds_keeps_every_acknowledged_add(folder: Path) -> None:
    shutil.copytree(folder / "index", folder / "crash")
    batch, acknowledged = 40, {}
    rng = np.random.default_rng(4)
    started = threading.Event()
    server = ServerProcess(folder / "crash", folder / "logs").start()

    def add_forever() -> None:
        with httpx.Client(base_url=server.url) as client:
            while True:
                codes = random_codes(rng, batch)
                body = {"codes": codes.tolist(), "labels": [0] * batch}
                try:
                    answer = client.post("/items", json=body)
                except httpx.HTTPError:
                    return  # the server died mid-request: this add was never acknowledged
                for item, code in zip(answer.json()["ids"], codes, strict=True):
                    acknowledged[item] = code
                started.set()

    adder = threading.Thread(target=add_forever)
    adder.start()
    assert started.wait(120)
    while len(acknowledged) < 10 * batch:
        started.wait(0.05)
    server.kill()
    adder.join(60)
    reopened = HashIndex.load(folder / "crash")
    assert len(reopened) - COUNT in (len(acknowledged), len(acknowledged) + batch)
    items = np.asarray(sorted(acknowledged))
    np.testing.assert_array_equal(items, np.arange(COUNT, COUNT + len(items)))
    np.testing.assert_array_equal(reopened.codes[items], np.stack([acknowledged[i] for i in items]))
    with ServerProcess(folder / "crash", folder / "logs") as again:
        last = int(items[-1])
        found = httpx.post(f"{again.url}/search", json={"id": last, "k": 1}).json()["results"]
        assert found[0]["id"] == last and found[0]["distance"] == 0


def test_no_bind_beyond_localhost_without_a_token(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.5")
    monkeypatch.delenv("HASHING_SERVE_TOKEN", raising=False)
    monkeypatch.setattr(
        sys,
        "argv",
        ["hashing.serve", f"index={folder / 'index'}", "serve.host=0.0.0.0",
         f"hydra.run.dir={folder / 'refused'}"],
    )  # fmt: skip
    handlers, level = logging.root.handlers[:], logging.root.level
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_module("hashing.serve", run_name="__main__")
    finally:
        logging.root.handlers, logging.root.level = handlers, level
    assert exit_info.value.code == 2
    assert "serve.host=0.0.0.0 accepts connections from other machines" in capsys.readouterr().err
    monkeypatch.setenv("HASHING_SERVE_TOKEN", "from-env")
    settings = ServeSettings.from_mapping({"host": "0.0.0.0"}, folder)
    assert settings.token == "from-env"
