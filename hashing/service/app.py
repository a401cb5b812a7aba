"""The HTTP API and web page over one :class:`~hashing.index.HashIndex` (docs/serving.md).

Every search goes through ``HashIndex.search`` with an explicit
:class:`~hashing.index.queries.Query` and ``HashIndex.records``, as ``python -m hashing.search``
does, so both answer the same items in the same (distance, id) order. Searches run in worker
threads side by side; adds and deletes are committed to the index folder before they answer.
"""

from __future__ import annotations

import hmac
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hashing.index.hash_index import HashIndex, ItemNotFound
from hashing.index.jobs import code_query
from hashing.index.queries import Query
from hashing.service.settings import ServeSettings
from hashing.service.thumbnails import Thumbnails
from hashing.service.uploads import BodyLimit, form_files, image_file, store_image


def create_app(index: HashIndex, settings: ServeSettings) -> FastAPI:
    """The service's FastAPI application over ``index``."""
    app = FastAPI(title="hashing search service", version="1")
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    thumbnails = Thumbnails(index, settings.thumbnail_size, settings.max_image_pixels)
    page = resources.files("hashing.service").joinpath("page.html").read_text(encoding="utf-8")

    @app.exception_handler(ValueError)
    async def bad_input(request: Request, error: ValueError) -> JSONResponse:
        """A UserError or ValueError from the index is the request's fault: its message, 4xx."""
        status = 404 if isinstance(error, ItemNotFound) else 400
        return JSONResponse({"detail": str(error)}, status_code=status)

    def authorize(request: Request) -> None:
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        expected = f"Bearer {settings.token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, "this server needs 'Authorization: Bearer <serve.token>'")

    def top_k(value: Any) -> int:
        try:
            k = int(value)
        except (TypeError, ValueError):
            k = 0
        if isinstance(value, bool) or not 1 <= k <= settings.max_k or str(k) != str(value):
            raise HTTPException(400, f"k must be an integer in 1..{settings.max_k}, got {value!r}")
        return k

    def records(query: Query, k: int, label: int | None = None) -> list[dict[str, Any]]:
        results = index.records(index.search(query, k=k))[0]
        if label is None and query.kind == "ids":
            label = index.item(int(query.value[0])).get("label")
        return with_taxonomy_distance(index, results, label)

    def search_image(data: bytes, k: int, label: int | None) -> list[dict[str, Any]]:
        with image_file(data, settings.max_image_pixels, "the query image") as path:
            return records(Query.images([path]), k, label)

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return page

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "items": index.live_count,
            "bits": index.bits,
            "images": index.input_spec is not None and index.input_spec.mode is not None,
            "max_k": settings.max_k,
        }

    @app.post("/search")
    async def search(request: Request) -> JSONResponse:
        """One query's top-k (answered as a plain JSONResponse: no response-model pass)."""
        if is_multipart(request):
            form = await request.form()
            files = form_files(form, "image")
            if len(files) != 1:
                raise HTTPException(400, "a multipart search needs one file field 'image'")
            k = top_k(form.get("k", "10"))
            label = query_label(index, form.get("label"))
            data = await files[0].read()
            results = await run_in_threadpool(search_image, data, k, label)
            return JSONResponse({"results": results})
        body = await json_body(request)
        given = [key for key in ("code", "id") if key in body]
        if len(given) != 1:
            raise HTTPException(400, "give exactly one of 'code' (±1 list or hex) or 'id'")
        k = top_k(body.get("k", 10))
        label = query_label(index, body.get("label"))
        if given[0] == "id":
            query = Query.ids([item_id(body["id"])])
        else:
            query = code_query([body["code"]], index.bits)
        return JSONResponse({"results": await run_in_threadpool(records, query, k, label)})

    @app.post("/items")
    async def add_items(request: Request) -> dict[str, Any]:
        authorize(request)
        if is_multipart(request):
            form = await request.form()
            files = form_files(form, "images")
            if not files:
                raise HTTPException(400, "a multipart add needs one or more file fields 'images'")
            check_batch(len(files))
            labels = parse_labels(form.get("labels"))
            uploads = [(await upload.read(), upload.filename) for upload in files]

            def add_images() -> list[int]:
                folder = Path(settings.upload_dir or ".")
                folder.mkdir(parents=True, exist_ok=True)
                paths = [
                    str(store_image(data, folder, settings.max_image_pixels, f"image {name!r}"))
                    for data, name in uploads
                ]
                return index.add(Query.images(paths), labels=labels, paths=paths).tolist()

            return {"ids": await run_in_threadpool(add_images)}
        body = await json_body(request)
        codes = body.get("codes")
        if not isinstance(codes, list) or not codes:
            raise HTTPException(400, "give 'codes': a non-empty list of ±1 lists or hex strings")
        check_batch(len(codes))
        query = code_query(codes, index.bits)
        labels = body.get("labels")
        label_array = None if labels is None else np.asarray(labels)

        def add_codes() -> list[int]:
            return index.add(query, labels=label_array).tolist()

        return {"ids": await run_in_threadpool(add_codes)}

    @app.delete("/items/{item}")
    def delete_item(item: int, request: Request) -> dict[str, Any]:
        authorize(request)
        index.delete([item])
        return {"deleted": item}

    @app.get("/items/{item}")
    def get_item(item: int) -> dict[str, Any]:
        index.check_id(item)
        return index.item(item)

    @app.get("/items/{item}/thumbnail")
    def thumbnail(item: int) -> Response:
        png = thumbnails.png(item)
        if png is None:
            raise HTTPException(404, f"no image of item {item} is available here")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    def check_batch(count: int) -> None:
        if count > settings.max_batch:
            raise HTTPException(
                413, f"{count} items in one add; serve.max_batch is {settings.max_batch}"
            )

    return app


def is_multipart(request: Request) -> bool:
    """Whether the request body is a multipart form (an upload)."""
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or 400 naming what is wrong with it."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HTTPException(400, f"the body is not JSON (or a multipart upload): {err}") from err
    if not isinstance(body, dict):
        raise HTTPException(400, "the JSON body must be an object")
    return body


def item_id(value: Any) -> int:
    """An item id from JSON: an integer, never a path or a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HTTPException(400, f"an item id is an integer, got {value!r}")
    if int(value) != value:
        raise HTTPException(400, f"an item id is an integer, got {value!r}")
    return int(value)


def query_label(index: HashIndex, value: Any) -> int | None:
    """The query's class index a request gives as ``label`` (a JSON int or a form field)."""
    if value is None or value == "":
        return None
    try:
        label = int(value)
    except (TypeError, ValueError):
        label = -1
    if isinstance(value, bool | float) or str(label) != str(value).strip():
        label = -1
    if index.num_classes is not None and not 0 <= label < index.num_classes:
        raise HTTPException(
            400, f"label is a class index in 0..{index.num_classes - 1}, got {value!r}"
        )
    if label < 0:
        raise HTTPException(400, f"label is a class index (an integer), got {value!r}")
    return label


def with_taxonomy_distance(
    index: HashIndex, results: list[dict[str, Any]], label: int | None
) -> list[dict[str, Any]]:
    """``results`` with ``taxonomy_distance`` (edges between the query's class ``label`` and
    each result's class; 0 = same class) when the index has a taxonomy and the label is known."""
    if index.taxonomy is None or label is None:
        return results
    for result in results:
        if "label" in result:
            result["taxonomy_distance"] = index.taxonomy.distance(label, result["label"])
    return results


def parse_labels(value: Any) -> np.ndarray | None:
    """Labels of uploaded images from a form field: a JSON list (class indices or multi-hot)."""
    if value is None or value == "":
        return None
    try:
        labels = json.loads(str(value))
    except json.JSONDecodeError as err:
        raise HTTPException(400, f"labels must be a JSON list, e.g. [3, 1], got {value!r}") from err
    if not isinstance(labels, list):
        raise HTTPException(400, f"labels must be a JSON list, got {value!r}")
    return np.asarray(labels)
