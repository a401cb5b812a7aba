"""From a trained digits checkpoint to an index: export, search by images (API and CLI), the
flat index against the evaluation's stable ranking, model identity checks, add."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from hashing import pipeline
from hashing.index import HashIndex, jobs
from hashing.metrics.functional.hamming import hamming_distance
from hashing.metrics.functional.ranking import stable_order
from hashing.runs.errors import USAGE_EXIT_CODE, MissingFileError, UserError, as_user_error
from tests.helpers.runs import CONF, compose_run, run_entry_point

TRAIN = [
    "trainer.max_epochs=2",
    "callbacks.retrieval_evaluation=null",
    "callbacks.model_checkpoint.monitor=null",
    "callbacks.model_checkpoint.save_top_k=-1",
    "callbacks.model_summary=null",
    "test=false",
]


pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def train(root: Path, name: str, overrides: list[str]) -> Path:
    """Train a tiny digits run; returns its checkpoints folder."""
    cfg = compose_run("train", root / name, root / "cache", [*TRAIN, *overrides])
    pipeline.train(cfg)
    return root / name / "checkpoints"


def compose_export(output_dir: Path, cache_dir: Path, overrides: list[str]) -> DictConfig:
    """The export config as `python -m hashing.export` composes it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="export",
            overrides=[
                f"paths.output_dir={output_dir}",
                f"paths.cache_dir={cache_dir}",
                *overrides,
            ],
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    main = train(root, "main", ["bits=16", "seed=1"])
    quick = [
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
    ]
    other = train(root, "other", ["bits=16", "seed=1", "method.lambda_q=0.01", *quick])
    short = train(root, "short", ["bits=8", "seed=1", *quick])
    cfg = compose_export(root / "export", root / "cache", [f"ckpt_path={main / 'last.ckpt'}"])
    jobs.export(cfg)
    faiss.omp_set_num_threads(previous)
    return {
        "root": root,
        "cache": root / "cache",
        "index": root / "export" / "index",
        "last": main / "last.ckpt",
        "first_epoch": main / "epoch_000.ckpt",
        "other_config": other / "last.ckpt",
        "other_bits": short / "last.ckpt",
    }


def datamodule_and_model(ckpt: Path, cache: Path) -> tuple[object, torch.nn.Module]:
    """The run's DataModule and its model with the checkpoint's weights."""
    run_cfg = pipeline.load_run_config(ckpt)
    run_cfg.data.split_dir = str(cache / "splits")
    datamodule = pipeline.build_datamodule(run_cfg)
    model = pipeline.build_model(run_cfg, datamodule)
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    return datamodule, model.eval()


def test_export_writes_the_database_split(runs: dict[str, Path]) -> None:
    datamodule, model = datamodule_and_model(runs["last"], runs["cache"])
    index = HashIndex.load(runs["index"], bits=16)
    database = datamodule.dataset("database")
    x = torch.stack([database[i][0] for i in range(len(database))])
    expected = model.encode(x).to(torch.int8).numpy()
    np.testing.assert_array_equal(index.codes, expected)
    np.testing.assert_array_equal(index.labels, database.labels.numpy())
    np.testing.assert_array_equal(index.dataset_index, datamodule.split["database"])
    assert index.config == pipeline.load_run_config(runs["last"])  # the run's resolved config
    meta = json.loads((runs["index"] / "manifest.json").read_text())
    assert meta["source"] == {"kind": "split", "data": "digits", "split": "database"}
    assert meta["input"] == {
        "shape": [1, 8, 8],
        "transform": "scale",
        "image_size": None,
        "mode": "L",
    }


def test_flat_index_reproduces_the_evaluation_ranking(runs: dict[str, Path]) -> None:
    datamodule, model = datamodule_and_model(runs["last"], runs["cache"])
    index = HashIndex.load(runs["index"])
    queries = datamodule.dataset("query")
    query_codes = model.encode(torch.stack([queries[i][0] for i in range(len(queries))]))
    database_codes = torch.from_numpy(index.codes).float()
    n = len(index)
    # the evaluation's ranking: Hamming distance, ties by database index (stable sort)
    evaluation = stable_order(hamming_distance(query_codes, database_codes))
    for k in (1, 10, 100, n):
        result = index.search(query_codes, k=k)
        for q in range(len(query_codes)):
            # independent brute force: count differing bits, sort (distance, id) pairs
            differing = (database_codes != query_codes[q]).sum(dim=1).tolist()
            expected = sorted(zip(differing, range(n), strict=True))[:k]
            assert [(d, i) for i, d in result.row(q)] == expected
            assert result.ids[q].tolist() == evaluation[q, :k].tolist()


def write_pngs(datamodule: object, folder: Path, count: int) -> tuple[list[Path], torch.Tensor]:
    """Query digits as 8-bit PNGs in class folders; returns paths and the pixels as read back."""
    queries = datamodule.dataset("query")
    paths, pixels = [], []
    for i in range(count):
        x, y, _ = queries[i]
        grey = torch.round(x[0] * 255).to(torch.uint8)
        path = folder / str(int(y)) / f"q{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grey.numpy(), mode="L").save(path)
        paths.append(path)
        pixels.append(grey.float().div(255).unsqueeze(0))
    order = sorted(range(count), key=lambda i: (int(paths[i].parent.name), paths[i].name))
    return [paths[i] for i in order], torch.stack([pixels[i] for i in order])


def test_search_images_by_api_and_cli(
    runs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    datamodule, model = datamodule_and_model(runs["last"], runs["cache"])
    paths, pixels = write_pngs(datamodule, tmp_path / "queries", 12)
    index = HashIndex.load(runs["index"])
    result = index.search(tmp_path / "queries", k=5)
    codes = model.encode(pixels)
    database_codes = torch.from_numpy(index.codes).float()
    for q in range(len(paths)):
        differing = (database_codes != codes[q]).sum(dim=1).tolist()
        assert [(d, i) for i, d in result.row(q)] == sorted(
            zip(differing, range(len(index)), strict=True)
        )[:5]
    records = index.records(result)

    # the real entry point as `python -m` runs it
    args = [f"index={runs['index']}", f"query={tmp_path / 'queries'}", "k=5",
            f"hydra.run.dir={tmp_path / 'search_run'}"]  # fmt: skip
    assert run_entry_point("hashing.search", args, monkeypatch) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["query"] for line in lines] == [str(p.resolve()) for p in paths]
    assert [line["results"] for line in lines] == records
    assert records[0][0].keys() >= {"rank", "distance", "id", "label", "dataset_index"}


def test_search_answers_bad_queries_and_k_in_one_paragraph(
    runs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("buy milk\n2 eggs and 1 cat\n")
    binary = tmp_path / "codes.bin"
    binary.write_bytes(bytes(range(256)))
    index = f"index={runs['index']}"
    cases = {
        f"query={notes}": f"{notes} is neither an image",
        f"query={binary}": "(it is not text)",
        "k=0": "k=0 is invalid: k is how many results each query gets, a positive integer",
    }
    for argument, expected in cases.items():
        query = [] if argument.startswith("query") else [f"query={notes}"]
        args = [index, *query, argument, f"hydra.run.dir={tmp_path / 'search'}"]
        code = run_entry_point("hashing.search", args, monkeypatch)
        err = capsys.readouterr().err
        assert code == USAGE_EXIT_CODE, err
        assert expected in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 2, err


def test_other_models_are_refused(runs: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="another config") as error:
        HashIndex.load(runs["index"], ckpt_path=runs["other_config"])
    assert "method.lambda_q: 0.0001 (index) vs 0.01 (model)" in str(error.value)
    with pytest.raises(ValueError, match="other weights"):
        HashIndex.load(runs["index"], ckpt_path=runs["first_epoch"])
    with pytest.raises(ValueError, match=r"holds 16-bit codes but the model .* makes 8-bit"):
        HashIndex.load(runs["index"], ckpt_path=runs["other_bits"])
    with pytest.raises(ValueError, match="another config"):
        HashIndex.load(runs["index"], config=pipeline.load_run_config(runs["other_config"]))
    index = HashIndex.load(runs["index"], ckpt_path=runs["last"])
    assert index.encoder.checkpoint == runs["last"].resolve()


def test_add_images_encodes_only_the_new_ones(runs: dict[str, Path], tmp_path: Path) -> None:
    datamodule, model = datamodule_and_model(runs["last"], runs["cache"])
    paths, pixels = write_pngs(datamodule, tmp_path / "new", 6)
    folder = tmp_path / "index"
    HashIndex.load(runs["index"]).save(folder)
    index = HashIndex.load(folder)
    encoded: list[int] = []
    encode_files = index.encoder.encode_files
    index.encoder.encode_files = lambda files: encoded.append(len(files)) or encode_files(files)
    labels = np.asarray([int(p.parent.name) for p in paths])
    with pytest.raises(ValueError, match="no class names"):
        index.add(tmp_path / "new")
    ids = index.add(tmp_path / "new", labels=labels)
    assert encoded == [6]  # only the new images; never the 1,597 old items
    n = len(ids)
    reopened = HashIndex.load(folder)
    assert len(reopened) == 1597 + n
    np.testing.assert_array_equal(reopened.codes[-n:], model.encode(pixels).to(torch.int8))
    assert reopened.item(int(ids[0]))["path"] == str(paths[0].resolve())
    assert reopened.item(int(ids[0]))["label"] == labels[0]
    assert "path" not in reopened.item(0) and reopened.item(0)["dataset_index"] >= 0
    result = reopened.search(paths[:1], k=1)
    assert result.distances[0, 0] == 0


def test_export_image_folder_without_the_training_data(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    datamodule, model = datamodule_and_model(runs["last"], runs["cache"])
    paths, pixels = write_pngs(datamodule, tmp_path / "photos", 20)
    cfg = compose_export(
        tmp_path / "export",
        tmp_path / "no_cache",
        [
            f"ckpt_path={runs['last']}",
            f"source={tmp_path / 'photos'}",
            "input_shape=[1,8,8]",
            f"out={tmp_path / 'photo_index'}",
            "faiss.type=hnsw",
            "faiss.m=8",
        ],
    )
    index = jobs.export(cfg)
    assert not (tmp_path / "no_cache").exists()  # no DataModule was built
    reopened = HashIndex.load(tmp_path / "photo_index")
    assert reopened.spec.type == "hnsw" and reopened.classes == sorted(
        {p.parent.name for p in paths}
    )
    np.testing.assert_array_equal(reopened.codes, model.encode(pixels).to(torch.int8))
    assert reopened.paths == [str(p.resolve()) for p in paths]
    assert [reopened.classes[label] for label in reopened.labels] == [p.parent.name for p in paths]
    assert len(index) == 20
    with pytest.raises(ValueError, match="already exists"):
        jobs.export(cfg)


def test_export_without_the_run_data_asks_for_input_shape(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing_data(cfg: DictConfig) -> None:
        with as_user_error("data (digits)"):
            raise MissingFileError(f"folder dataset root {tmp_path / 'gone'} does not exist")

    monkeypatch.setattr(jobs, "build_datamodule", missing_data)
    cfg = compose_export(
        tmp_path / "export", tmp_path / "cache", [f"ckpt_path={runs['last']}", "split=query"]
    )
    with pytest.raises(UserError, match=r"is not available here \(data \(digits\): folder"):
        jobs.export(cfg)
    message = "data (digits): data.query_per_class=5 is too large"

    def bad_value(cfg: DictConfig) -> None:
        raise UserError(message)

    monkeypatch.setattr(jobs, "build_datamodule", bad_value)
    with pytest.raises(UserError) as error:
        jobs.export(cfg)
    assert str(error.value) == message  # not an availability problem: passed on unchanged
