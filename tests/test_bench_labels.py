"""benchmarks/bench_labels.py without running it: its plan, training budget and summaries."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_labels


def test_the_default_plan_covers_the_grid_once_sibling_only_with_a_taxonomy() -> None:
    args = bench_labels.parse_args([])
    plan = bench_labels.default_plan(args)
    assert len(plan) == len(set(plan))
    supervised = len(bench_labels.METHODS) * 3  # seeds
    fractions = supervised * len(bench_labels.FRACTIONS) * 2  # datasets
    noise = supervised * len(bench_labels.NOISES) * 3  # cifar10 uniform, tiny uniform + sibling
    floors = 2 * 3
    assert len(plan) == fractions + noise + floors
    sibling = {run[0] for run in plan if run[4] == "sibling" and run[3] > 0}
    assert sibling == {"tinyimagenet"}
    # the claim comes first: supervised TBH and CSQ over every fraction, and the TBH floor
    head = plan[: 3 * 2 * (2 * len(bench_labels.FRACTIONS) + 1)]
    assert {run[1] for run in head} == {"tbh_supervised", "csq", "tbh"}
    quick = bench_labels.default_plan(bench_labels.parse_args(["--quick"]))
    assert [(r[1], r[2]) for r in quick] == [("csq", 1), ("csq", 0.1), ("tbh", 1.0)]


def test_labelled_only_methods_get_the_steps_of_the_fully_labelled_run(tmp_path: Path) -> None:
    args = bench_labels.parse_args(["--epochs", "15", "--val-every", "3", "--work", str(tmp_path)])
    fit_labels = np.repeat(np.arange(10), 450)  # 4,500 fit items, batch 128: 36 steps an epoch
    args.facts = {"cifar10": {"fit_labels": fit_labels, "batch_size": 128}}
    full = bench_labels.budget(("cifar10", "csq", 1.0, 0.0, "uniform", 0), args)
    assert full == {"epochs": 15, "val_every": 3, "classifier_epochs": 10}
    tenth = bench_labels.budget(("cifar10", "csq", 0.1, 0.0, "uniform", 0), args)
    # 450 labelled items: 4 steps an epoch; 15 * 36 steps -> 135 epochs, validation every 27
    assert tenth["epochs"] == math.ceil(15 * 36 / 4) == 135 and tenth["val_every"] == 27
    assert tenth["classifier_epochs"] == math.ceil(10 * 36 / 4)
    # supervised TBH sees every item: its epochs stay; and --budget epochs keeps them for all
    assert bench_labels.budget(("cifar10", "tbh_supervised", 0.1, 0, "uniform", 0), args) == full
    args.budget = "epochs"
    assert bench_labels.budget(("cifar10", "csq", 0.1, 0.0, "uniform", 0), args) == full


def job(value: float, labelled: int = 100) -> dict:
    return {"metrics": {"mAP@ALL": value, "mAP@1000": value + 0.1}, "labelled_items": labelled}


def entry(dataset: str, method: str, fraction: float, seed: int, value: float) -> dict:
    return {
        "dataset": dataset,
        "method": method,
        "fraction": fraction,
        "noise": 0.0,
        "kind": "uniform",
        "seed": seed,
        "folder": "/nonexistent",
        "job": job(value, int(1000 * fraction)),
    }


@pytest.fixture
def results() -> dict:
    values = {
        ("tbh_supervised", 1.0): [0.60, 0.62],
        ("tbh_supervised", 0.1): [0.50, 0.49],
        ("csq", 1.0): [0.80, 0.70],
        ("csq", 0.1): [0.40, 0.42],
        ("tbh", 1.0): [0.30, 0.55],
    }
    runs = [
        entry("cifar10", method, fraction, seed, value)
        for (method, fraction), by_seed in values.items()
        for seed, value in enumerate(by_seed)
    ]
    return {
        "datasets": ["cifar10"],
        "methods": ["tbh_supervised", "csq"],
        "fractions": [1.0, 0.1],
        "noises": [],
        "seeds": [0, 1],
        "bits": 32,
        "epochs": 15,
        "budget": "steps",
        "runs": runs,
        "itq": [{"dataset": "cifar10", "seed": 0, "metrics": {"mAP@ALL": 0.3, "mAP@1000": 0.4}}],
    }


def test_the_claim_rows_compare_with_the_floor_and_the_fully_labelled_runs(results) -> None:
    (row,) = bench_labels.claim_rows(results)
    # seed 0: 0.50 - 0.30 > 0; seed 1: 0.49 - 0.55 < 0
    assert row["above_floor"]["positive"] == 1 and row["above_floor"]["seeds"] == 2
    assert row["above_floor"]["mean"] == pytest.approx((0.20 - 0.06) / 2)
    assert row["kept_tbh_supervised"] == pytest.approx((0.50 / 0.60 + 0.49 / 0.62) / 2)
    assert row["kept_csq"] == pytest.approx((0.40 / 0.80 + 0.42 / 0.70) / 2)
    table = bench_labels.claim_table([row])
    assert table["rows"][0][-1] == "yes"  # supervised TBH keeps more than CSQ here


def test_the_fraction_table_lists_methods_floors_and_labels_used(results) -> None:
    table = bench_labels.fraction_table(results, "mAP@ALL")
    assert table["columns"] == ["dataset", "method", "f = 1", "f = 0.1", "no labels"]
    rows = {row[1]: row[2:] for row in table["rows"]}
    assert rows["csq"][0].startswith("0.7500 ± 0.0707")
    assert rows["ITQ"][-1].startswith("0.3000") and rows["ITQ"][0] == "–"
    assert rows["TBH (unsupervised)"][-1].startswith("0.4250")
    assert rows["labels used"] == ["1000", "100", "0"]
