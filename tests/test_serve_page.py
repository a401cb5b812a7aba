"""The service over a trained model's index: image queries equal ``hashing.search``, uploaded
images become items with thumbnails, and the web page, driven in a real headless browser
(Playwright and Debian's chromium; .ci/run installs it), uploads an image and shows the result
grid the API answers; the run's data names a class taxonomy, so searches by item say how far
in it each result's class lies and the page shows it for misses."""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from hashing import pipeline
from hashing.index import HashIndex, jobs
from hashing.service.process import ServerProcess
from tests.helpers.runs import CONF, compose_run

CHROMIUM = Path("/usr/bin/chromium")
#: a hand-written taxonomy of the ten digit classes, leaves at depths 3 to 4
DIGIT_TREE = """# digits by shape
digit/round/closed/0
digit/round/closed/8
digit/round/open/6
digit/round/open/9
digit/straight/1
digit/straight/7
digit/straight/angled/4
digit/curved/2
digit/curved/3
digit/curved/5
"""
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A tiny digits run, its database exported, served; plus query digits as PNG files."""
    root = tmp_path_factory.mktemp("page")
    tree = root / "digits.txt"
    tree.write_text(DIGIT_TREE)
    train = [
        f"data.hierarchy={tree}",
        "bits=16",
        "seed=2",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        "callbacks.retrieval_evaluation=null",
        "callbacks.model_checkpoint.monitor=null",
        "callbacks.model_summary=null",
        "test=false",
    ]
    cfg = compose_run("train", root / "run", root / "cache", train)
    pipeline.train(cfg)
    checkpoint = root / "run" / "checkpoints" / "last.ckpt"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        export = compose(
            "export",
            [f"paths.output_dir={root / 'export'}", f"paths.cache_dir={root / 'cache'}",
             f"ckpt_path={checkpoint}", f"out={root / 'index'}"],
        )  # fmt: skip
    jobs.export(export)
    shutil.copytree(root / "index", root / "served")
    run_cfg = pipeline.load_run_config(checkpoint)
    queries = pipeline.build_datamodule(run_cfg).dataset("query")
    pngs = []
    for i in range(4):
        x, y, _ = queries[i]
        path = root / "queries" / f"digit{i}_class{int(y)}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(torch.round(x[0] * 255).to(torch.uint8).numpy(), mode="L").save(path)
        pngs.append(path)
    with ServerProcess(root / "served", root / "logs") as server:
        yield {
            "root": root,
            "server": server,
            "pngs": pngs,
            "index": root / "index",
            "tree": tree,
        }


def upload_search(url: str, path: Path, k: int) -> list[dict]:
    answer = httpx.post(
        f"{url}/search", files={"image": (path.name, path.read_bytes())}, data={"k": str(k)}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def hops_between(tree_text: str) -> dict[tuple[str, str], int]:
    """Edges between every two nodes of a ``root/.../class`` file: breadth-first search over
    the undirected graph of its lines' parent-child links (not the library's LCA depths)."""
    neighbours: dict[str, set[str]] = {}
    for line in tree_text.splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.strip().split("/")
            for parent, child in itertools.pairwise(parts):
                neighbours.setdefault(parent, set()).add(child)
                neighbours.setdefault(child, set()).add(parent)
    hops = {}
    for start in neighbours:
        seen, queue = {start: 0}, deque([start])
        while queue:
            node = queue.popleft()
            for other in neighbours[node] - seen.keys():
                seen[other] = seen[node] + 1
                queue.append(other)
        hops.update({(start, node): distance for node, distance in seen.items()})
    return hops


def test_searches_by_item_say_how_far_each_result_class_lies(served: dict) -> None:
    url = served["server"].url
    hops = hops_between(DIGIT_TREE)
    index = HashIndex.load(served["index"])
    assert index.classes == [str(d) for d in range(10)]
    assert (served["index"] / "taxonomy.txt").read_bytes() == served["tree"].read_bytes()
    checked = set()
    for item in (0, 5, 17):
        query_class = str(index.labels[item])
        results = httpx.post(f"{url}/search", json={"id": item, "k": 40}).json()["results"]
        assert results[0]["taxonomy_distance"] == 0  # the item itself
        for result in results:
            assert result["class"] == str(result["label"])
            assert result["taxonomy_distance"] == hops[query_class, result["class"]]
            checked.add(result["taxonomy_distance"])
    assert len(checked) >= 3  # same class, and misses at more than one distance
    # a code query has no class unless the request gives one
    code = index.codes[3].tolist()
    plain = httpx.post(f"{url}/search", json={"code": code, "k": 5}).json()["results"]
    assert all("taxonomy_distance" not in r for r in plain)
    given = httpx.post(f"{url}/search", json={"code": code, "k": 5, "label": 4}).json()["results"]
    assert [r["taxonomy_distance"] for r in given] == [hops["4", r["class"]] for r in given]
    bad = httpx.post(f"{url}/search", json={"code": code, "label": 10})
    assert bad.status_code == 400 and "0..9" in bad.json()["detail"]


def test_an_index_without_a_taxonomy_still_loads(served: dict, tmp_path: Path) -> None:
    """A folder exported before taxonomies (no file, no manifest key) loads without one."""
    index = HashIndex.load(served["index"])
    old = HashIndex.from_codes(index.codes, labels=index.labels)
    old.save(tmp_path / "old")
    assert "taxonomy" not in json.loads((tmp_path / "old" / "manifest.json").read_text())["files"]
    assert HashIndex.load(tmp_path / "old").taxonomy is None


def test_image_queries_equal_the_cli(served: dict) -> None:
    for path in served["pngs"][:3]:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("search", [f"index={served['index']}", f"query={path}", "k=10"])
        expected = jobs.search(cfg)[0]["results"]
        assert upload_search(served["server"].url, path, 10) == expected
        assert {"id", "distance", "label", "dataset_index"} <= expected[0].keys()


def test_uploaded_images_become_items_with_thumbnails(served: dict) -> None:
    url, pngs = served["server"].url, served["pngs"]
    labels = [int(p.stem.split("class")[1]) for p in pngs[2:4]]
    answer = httpx.post(
        f"{url}/items",
        files=[("images", (p.name, p.read_bytes(), "image/png")) for p in pngs[2:4]],
        data={"labels": str(labels)},
    )
    assert answer.status_code == 200, answer.text
    ids = answer.json()["ids"]
    reopened = HashIndex.load(served["root"] / "served")
    assert len(reopened) == ids[-1] + 1 and reopened.labels[ids].tolist() == labels
    stored = Path(reopened.item(ids[0])["path"])
    assert stored.parent == served["root"] / "served" / "uploads"
    assert stored.read_bytes() == pngs[2].read_bytes()
    results = upload_search(url, pngs[2], 50)
    assert ids[0] in [r["id"] for r in results if r["distance"] == 0]
    for item in (ids[0], 0):  # an uploaded file; an item of the exported split
        thumbnail = httpx.get(f"{url}/items/{item}/thumbnail")
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(thumbnail.content))
        assert image.size == (96, 96)  # 8x8 digits scaled up
        assert len(set(image.convert("L").getdata())) > 2  # a digit, not a blank square


def test_page_uploads_an_image_and_shows_the_results(served: dict, tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    url, query = served["server"].url, served["pngs"][0]
    expected = upload_search(url, query, 8)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 560})
            page.goto(f"{url}/")
            page.wait_for_function("document.getElementById('info').textContent.includes('items')")
            page.fill("#k", "8")
            page.set_input_files("#file", str(query))
            page.click("#search")
            page.wait_for_function("document.querySelectorAll('.result').length === 8")
            page.wait_for_function(
                "[...document.querySelectorAll('.result img')].every(i => i.complete)"
            )
            cards = page.eval_on_selector_all(
                ".result",
                "cards => cards.map(c => [Number(c.dataset.id), Number(c.dataset.distance),"
                " c.querySelector('img') ? c.querySelector('img').naturalWidth : 0,"
                " c.querySelector('.label').textContent])",
            )
            assert [(i, d) for i, d, _, _ in cards] == [(r["id"], r["distance"]) for r in expected]
            assert all(width == 96 for _, _, width, _ in cards)  # every thumbnail loaded
            assert [text for *_, text in cards] == [f"#{r['id']} {r['class']}" for r in expected]
            assert page.locator("#query img").count() == 1
            page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
            screenshot = os.environ.get("HASHING_SERVE_SCREENSHOT")
            if screenshot:
                shutil.copy(tmp_path / "serve.png", screenshot)
            # picking a result searches with that item
            second = expected[1]["id"]
            page.click(f".result[data-id='{second}']")
            page.wait_for_function(
                f"document.getElementById('query').textContent === 'query: item {second}'"
                " && document.getElementById('status').textContent.startsWith('8 results')"
            )
            picked = httpx.post(f"{url}/search", json={"id": second, "k": 8}).json()["results"]
            assert page.eval_on_selector_all(
                ".result", "cards => cards.map(c => Number(c.dataset.id))"
            ) == [r["id"] for r in picked]
            assert page.get_attribute(f".result[data-id='{second}']", "data-distance") == "0"
            # each miss says how far its class lies from the query's, hits say nothing
            shown = page.eval_on_selector_all(
                ".result",
                "cards => cards.map(c => c.querySelector('.taxonomy')?.textContent ?? '')",
            )
            hops = [r["taxonomy_distance"] for r in picked]
            assert shown == [f"{h} hop{'s' if h > 1 else ''}" if h else "" for h in hops]
            assert any(shown) and not all(shown)
            # a bad upload shows the server's message, not a broken grid
            page.set_input_files(
                "#file", files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"nope"}]
            )
            page.click("#search")
            page.wait_for_function("document.getElementById('status').className === 'error'")
            assert "415" in page.text_content("#status")
            assert page.locator(".result").count() == 0
        finally:
            browser.close()
