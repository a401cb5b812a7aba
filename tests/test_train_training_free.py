"""`method=lsh|pcah|itq` through the training pipeline on digits: no gradient step, the same run
folder, and codes equal to the projection fitted outside the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hashing import pipeline
from hashing.baselines import fit_projection, projection_codes
from hashing.data.digits import DigitsDataModule
from hashing.metrics import evaluate_retrieval
from hashing.runs.errors import UserError
from tests.helpers.runs import compose_run

# the flattened 8x8 pixels (backbone = flatten), 32 bits
FLAT = ["backbone.hidden_dims=[]", "bits=32", "seed=0", "~callbacks.retrieval_grid"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, float]]]:
    root = tmp_path_factory.mktemp("free")
    done = {}
    for method in ("lsh", "itq"):
        cfg = compose_run("train", root / method, root / "cache", [f"method={method}", *FLAT])
        done[method] = root / method, pipeline.train(cfg)
    return done


def test_itq_beats_lsh_and_writes_the_run_folder(runs) -> None:
    for method, (out, metrics) in runs.items():
        assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
        assert (out / "checkpoints" / "last.ckpt").is_file(), method
        assert "val/mAP_best" in metrics
    assert runs["itq"][1]["test/mAP@ALL"] > runs["lsh"][1]["test/mAP@ALL"] + 0.05


def test_itq_run_scores_the_codes_of_the_projection_fitted_outside(runs, tmp_path: Path) -> None:
    out, metrics = runs["itq"]
    datamodule = DigitsDataModule(split_dir=out.parent / "cache" / "splits")
    datamodule.setup()
    pool, split = datamodule.pool, datamodule.split
    features = {key: pool.source[split[key]].flatten(1).float() for key in split}
    mean, weights = fit_projection("itq", features["fit"], bits=32, seed=0)
    query, database = (projection_codes(features[k], mean, weights) for k in ("query", "database"))
    labels = {key: pool.labels[split[key]] for key in ("query", "database")}
    report = evaluate_retrieval(query, database, labels["query"], labels["database"], (None,))
    assert metrics["test/mAP@ALL"] == pytest.approx(report.map_at_k[None], abs=1e-4)
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    weight = state["state_dict"]["hash_layer.weight"].double()
    assert state["epoch"] == 0  # one pass, and the weights are the fit's: no step moved them
    assert torch.allclose(weight, weights.T, atol=1e-6)


def test_more_bits_than_features_is_a_user_error(tmp_path: Path) -> None:
    overrides = ["method=pcah", "backbone.hidden_dims=[]", "bits=128"]
    cfg = compose_run("train", tmp_path / "run", tmp_path / "cache", overrides)
    with pytest.raises(UserError, match="bits=128 is more than the 64 backbone features"):
        pipeline.train(cfg)
