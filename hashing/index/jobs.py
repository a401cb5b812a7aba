"""The work behind ``python -m hashing.export`` and ``python -m hashing.search``.

Export: rebuild the model from its checkpoint, encode a DataModule split (default: the
database) or a collection of image files, and write an index folder atomically. Search: open
an index folder, encode the query images with the model that made it, and print each query's
top-k as one JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from hashing.data.splits import SPLIT_KEYS
from hashing.index.encoder import CodeEncoder, InputSpec
from hashing.index.faiss_backend import FaissSpec
from hashing.index.hash_index import HashIndex
from hashing.index.image_files import list_images
from hashing.index.queries import Query
from hashing.index.taxonomy_copy import IndexTaxonomy
from hashing.pipeline import build_datamodule, load_run_config
from hashing.runs.errors import UserError

log = logging.getLogger(__name__)


def run_data_config(cfg: DictConfig, run_cfg: DictConfig) -> DictConfig:
    """The run config with ``data`` replaced by the export config's ``data``, when it has one.

    A replacement data config that leaves ``transform`` unset gets the run's, so the model
    sees inputs prepared as in training.
    """
    override = cfg.get("data")
    if override is None:
        return run_cfg
    merged = run_cfg.copy()
    with open_dict(merged):
        merged.data = OmegaConf.create(OmegaConf.to_container(override, resolve=True))
        if merged.data.get("transform") is None:
            merged.data.transform = run_cfg.data.get("transform")
    return merged


def spec_from_config(data_cfg: DictConfig, input_shape: Sequence[int]) -> InputSpec:
    """Input spec from a data config and an explicit shape (when the data is not at hand)."""
    shape = tuple(int(s) for s in input_shape)
    transform = data_cfg.get("transform") or get_class(data_cfg._target_).default_transform
    size = data_cfg.get("image_size")
    if data_cfg.get("grayscale"):
        mode: str | None = "L"
    else:
        mode = {1: "L", 3: "RGB"}.get(shape[0]) if len(shape) == 3 else None
    return InputSpec(shape, str(transform), None if size is None else int(size), mode)


def check_export_config(cfg: DictConfig) -> None:
    """Fail before any loading on a bad split, source or existing output folder."""
    if cfg.get("source") is None and cfg.split not in SPLIT_KEYS:
        raise UserError(f"split={cfg.split!r} unknown; expected one of {SPLIT_KEYS}")
    if cfg.get("source") is not None and not Path(cfg.source).exists():
        raise UserError(f"source={cfg.source!r} does not exist: give an image folder or list file")
    if Path(cfg.out).exists() and not cfg.overwrite:
        raise UserError(f"out={cfg.out} already exists; choose another folder or overwrite=true")


def export(cfg: DictConfig) -> HashIndex:
    """Encode a split or image collection with ``cfg.ckpt_path``'s model into ``cfg.out``."""
    check_export_config(cfg)
    spec = FaissSpec.from_mapping(OmegaConf.to_container(cfg.faiss, resolve=True))  # type: ignore[arg-type]
    run_cfg = run_data_config(cfg, load_run_config(cfg.ckpt_path))
    options = {"batch_size": cfg.batch_size, "num_workers": cfg.num_workers, "device": cfg.device}
    datamodule = None
    if cfg.get("input_shape") is not None and cfg.get("source") is not None:
        input_spec = spec_from_config(run_cfg.data, cfg.input_shape)
    else:
        try:
            datamodule = build_datamodule(run_cfg)
        except UserError as err:  # build_datamodule reports a missing file as one
            if not isinstance(err.__cause__, OSError):
                raise
            raise UserError(
                f"the run's data ({run_cfg.data._target_}) is not available here ({err}); to "
                f"export image files without it, give input_shape=[C,H,W] of the model input"
            ) from err
        input_spec = InputSpec.from_datamodule(datamodule)
    encoder = CodeEncoder.from_checkpoint(cfg.ckpt_path, input_spec, **options)
    if cfg.get("source") is not None:
        images = list_images(cfg.source, root=cfg.get("source_root"))
        log.info("encoding %d images from %s", len(images.paths), cfg.source)
        index = HashIndex.from_codes(
            encoder.encode_files(images.paths),
            labels=images.labels,
            classes=images.classes,
            paths=images.paths,
            spec=spec,
            encoder=encoder,
            source={"kind": "files", "source": str(Path(cfg.source).resolve())},
        )
    else:
        assert datamodule is not None
        dataset = datamodule.dataset(cfg.split)
        log.info("encoding the %d items of %s's %s split", len(dataset), datamodule.name, cfg.split)
        codes, labels = encoder.encode_dataset(dataset)
        taxonomy = None
        if datamodule.class_relations is not None:  # the run's data names a hierarchy
            taxonomy = IndexTaxonomy.from_file(datamodule.hierarchy, datamodule.class_names)
        index = HashIndex.from_codes(
            codes,
            labels=labels,
            num_classes=int(datamodule.num_classes),
            classes=taxonomy.class_names if taxonomy is not None else None,
            taxonomy=taxonomy,
            dataset_index=datamodule.split[cfg.split],
            spec=spec,
            encoder=encoder,
            source={"kind": "split", "data": datamodule.name, "split": cfg.split},
        )
    index.save(cfg.out, overwrite=bool(cfg.overwrite))
    log.info("index of %d %d-bit codes written to %s", len(index), index.bits, cfg.out)
    return index


def query_source(query: Any) -> str | list[str]:
    """The ``query`` config value as a path or a list of paths."""
    if isinstance(query, ListConfig | list | tuple):
        return [str(item) for item in query]
    return str(query)


def code_query(codes: Sequence[Any], bits: int) -> Query:
    """Codes written as ±1 lists or as packed hex strings (all one way) as a :class:`Query`."""
    if all(isinstance(code, str) for code in codes):
        try:
            return Query.hex(codes, bits)
        except ValueError as err:
            raise UserError(str(err)) from err
    if any(isinstance(code, str) for code in codes):
        raise UserError("codes mix hex strings and ±1 lists; write them all one way")
    try:
        return Query.codes([list(code) for code in codes])
    except (TypeError, ValueError) as err:
        raise UserError(f"codes must be ±1 lists of {bits} values or hex strings: {err}") from err


def search_query(cfg: DictConfig, bits: int) -> tuple[Query, list[Any]]:
    """The one query of ``cfg`` (``query`` images, ``codes`` or ``ids``) and how each of its rows
    is named in the output."""
    given = [key for key in ("query", "codes", "ids") if cfg.get(key) is not None]
    if len(given) != 1:
        raise UserError(
            f"give exactly one of query=<image | folder | list file>, codes=[...] or ids=[...] "
            f"(got {given or 'none'})"
        )
    if given[0] == "query":
        query = Query.images(query_source(cfg.query), root=cfg.get("query_root"))
        return query, list(query.value.paths)
    values = OmegaConf.to_container(cfg[given[0]], resolve=True)
    if not isinstance(values, list):
        values = [values]
    if given[0] == "ids":
        return Query.ids(values), [{"id": value} for value in values]
    return code_query(values, bits), values


def open_index(cfg: DictConfig) -> HashIndex:
    """``cfg.index`` with the encoder settings of a search or serve config."""
    return HashIndex.load(
        cfg.index,
        ckpt_path=cfg.get("ckpt_path"),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        device=cfg.device,
    )


def search(cfg: DictConfig, stream: TextIO | None = None) -> list[dict[str, Any]]:
    """Search ``cfg.index`` for each query of ``cfg``; print one JSON line per query."""
    stream = stream or sys.stdout
    k = cfg.k
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise UserError(
            f"k={k!r} is invalid: k is how many results each query gets, a positive integer "
            "(e.g. k=10)"
        )
    index = open_index(cfg)
    query, names = search_query(cfg, index.bits)
    records = index.records(index.search(query, k=k))
    lines = [
        {"query": name, "results": results} for name, results in zip(names, records, strict=True)
    ]
    for line in lines:
        stream.write(json.dumps(line) + "\n")
    stream.flush()
    return lines
