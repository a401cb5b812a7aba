"""Partial and noisy training labels (docs/labels.md): the draws and what the DataModule serves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hashing.data.digits import DigitsDataModule
from hashing.data.labels import (
    UNLABELLED,
    draw_labelling,
    keep_labels,
    labelled_rows,
    nearest_classes,
    replace_labels,
)
from hashing.runs.errors import UserError

# digits-1: 80 training items a class, 8 of them validation queries: 72 fit items a class
FIT_PER_CLASS = 72


def digits(**options: object) -> DigitsDataModule:
    module = DigitsDataModule(split_dir=None, **options)  # type: ignore[arg-type]
    module.setup()
    return module


def per_class(labels: np.ndarray, rows: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(labels[rows], return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


@pytest.mark.parametrize("fraction", [0.3, 0.1, 0.01])
def test_kept_labels_are_per_class_seeded_and_at_least_one_a_class(fraction: float) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), [40, 13, 7, 1, 90])
    labels = labels[rng.permutation(len(labels))]
    keep = keep_labels(labels, fraction, seed=3)
    expected = {c: max(1, round(fraction * n)) for c, n in per_class(labels, labels >= 0).items()}
    assert per_class(labels, keep) == expected
    assert np.array_equal(keep, keep_labels(labels, fraction, seed=3))
    assert not np.array_equal(keep, keep_labels(labels, fraction, seed=4))
    assert keep_labels(labels, 1.0, seed=3).all()


def test_multi_label_keeps_a_seeded_share_of_items() -> None:
    labels = (np.random.default_rng(1).random((50, 4)) > 0.5).astype(np.float32)
    keep = keep_labels(labels, 0.2, seed=0)
    assert keep.sum() == 10 and np.array_equal(keep, keep_labels(labels, 0.2, seed=0))
    with pytest.raises(UserError, match="multi-label"):
        replace_labels(labels, keep, 0.2, "uniform", 0, 4)


@pytest.mark.parametrize("noise", [0.2, 0.4])
def test_noise_replaces_exactly_a_share_of_each_class_by_another_class(noise: float) -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 6, size=400)
    labelled = rng.random(400) < 0.7
    changed, new = replace_labels(labels, labelled, noise, "uniform", seed=5, num_classes=6)
    assert labelled[changed].all(), "only labelled items get noise"
    assert (new != labels[changed]).all() and ((new >= 0) & (new < 6)).all()
    counts = per_class(labels, labelled)
    assert per_class(labels, changed) == {c: round(noise * n) for c, n in counts.items()}
    again = replace_labels(labels, labelled, noise, "uniform", seed=5, num_classes=6)
    assert np.array_equal(changed, again[0]) and np.array_equal(new, again[1])
    other = replace_labels(labels, labelled, noise, "uniform", seed=6, num_classes=6)
    assert not np.array_equal(changed, other[0])
    # uniform: every other class is reached
    assert set(new[labels[changed] == 0].tolist()) == {1, 2, 3, 4, 5}


def brute_distance(paths: dict[str, list[str]], classes: list[str]) -> np.ndarray:
    """Edges between two classes through their lowest common ancestor, from the paths."""
    size = len(classes)
    out = np.zeros((size, size), dtype=np.int64)
    for i, a in enumerate(classes):
        for j, b in enumerate(classes):
            pa, pb = paths[a], paths[b]
            common = 0
            while common < min(len(pa), len(pb)) and pa[common] == pb[common]:
                common += 1
            out[i, j] = (len(pa) - common) + (len(pb) - common)
    return out


def test_sibling_noise_picks_the_nearest_classes_of_a_small_taxonomy(tmp_path: Path) -> None:
    paths = {
        "0": ["root", "round", "0"],
        "1": ["root", "line", "vertical", "1"],
        "2": ["root", "curve", "2"],
        "3": ["root", "curve", "3"],
        "4": ["root", "line", "angle", "4"],
        "5": ["root", "curve", "5"],
        "6": ["root", "round", "loop", "6"],
        "7": ["root", "line", "angle", "7"],
        "8": ["root", "round", "loop", "8"],
        "9": ["root", "round", "loop", "9"],
    }
    taxonomy = tmp_path / "digits.txt"
    taxonomy.write_text("".join("/".join(path) + "\n" for path in paths.values()))
    module = digits(hierarchy=taxonomy, label_noise=0.4, label_noise_kind="sibling", label_seed=1)
    distance = brute_distance(paths, [str(c) for c in range(10)])
    assert np.array_equal(module.class_relations.distance, distance)
    labelling = module.labelling
    old = labelling.clean.numpy()[labelling.changed]
    new = labelling.labels.numpy()[labelling.changed]
    for a, b in zip(old.tolist(), new.tolist(), strict=True):
        others = np.delete(distance[a], a)
        assert distance[a, b] == others.min() and b != a
    # ties are drawn among the nearest: 6 -> {8, 9}, 2 -> {3, 5}; a unique nearest is always it
    assert set(new[old == 6].tolist()) == {8, 9} and set(new[old == 2].tolist()) == {3, 5}
    assert set(new[old == 4].tolist()) == {7} and set(new[old == 1].tolist()) == {4, 7}
    assert nearest_classes(distance, 0).tolist() == [6, 8, 9]


def test_the_datamodule_draws_on_the_fit_split_and_keeps_evaluation_clean() -> None:
    clean = digits()
    module = digits(label_fraction=0.1, label_noise=0.4)
    labelling = module.labelling
    fit = module.split["fit"]
    assert np.array_equal(labelling.items, fit)
    assert np.intersect1d(labelling.labelled_items, module.split["val_query"]).size == 0
    pool = module.pool.labels
    # every evaluation split keeps its clean labels
    for key in ("query", "database", "val_query", "fit"):
        split = module.dataset(key)
        assert torch.equal(split.labels, pool[torch.as_tensor(module.split[key])])
    # 10% of 72 = 7 labelled items a class; 40% of 7 = 3 of them get another class
    labelled_view = module.training_dataset("labelled")
    labels_of = dict(zip(fit.tolist(), pool[torch.as_tensor(fit)].tolist(), strict=True))
    items = labelled_view.indices.numpy()
    assert len(items) == 70 and set(items.tolist()) <= set(fit.tolist())
    assert per_class(np.array([labels_of[i] for i in items]), np.ones(70, bool)) == {
        c: 7 for c in range(10)
    }
    changed_items = set(labelling.items[labelling.changed].tolist())
    assert len(changed_items) == 30
    for item, label in zip(items.tolist(), labelled_view.labels.tolist(), strict=True):
        assert (label != labels_of[item]) == (item in changed_items)
    # the mask view: every fit item, unlabelled ones marked, labelled ones as in the other view
    masked = module.training_dataset("mask")
    assert np.array_equal(masked.indices.numpy(), fit)
    marked = ~labelled_rows(masked.labels)
    assert int(marked.sum()) == len(fit) - 70 and (masked.labels[marked] == UNLABELLED).all()
    position = {item: p for p, item in enumerate(fit.tolist())}
    rows = torch.as_tensor([position[i] for i in items.tolist()])
    assert torch.equal(masked.labels[rows], labelled_view.labels)
    # the split does not depend on the labels' settings
    for key in clean.split:
        assert np.array_equal(clean.split[key], module.split[key])


def test_the_label_seed_defaults_to_the_split_seed_and_changes_the_draw() -> None:
    base = digits(label_fraction=0.1, split_seed=0).labelling.labelled_items
    assert np.array_equal(base, digits(label_fraction=0.1, label_seed=0).labelling.labelled_items)
    other = digits(label_fraction=0.1, label_seed=1).labelling.labelled_items
    assert not np.array_equal(np.sort(base), np.sort(other))


def test_defaults_serve_the_fit_split_exactly() -> None:
    module = digits()
    fit = module.dataset("fit", train=True)
    for view in ("labelled", "mask"):
        served = module.training_dataset(view)
        assert torch.equal(served.indices, fit.indices)
        assert torch.equal(served.labels, fit.labels)
        assert served.labels.dtype == fit.labels.dtype
    module.use_labels("mask")
    batches = list(module.train_dataloader())
    expected = list(
        torch.utils.data.DataLoader(
            fit,
            batch_size=module.batch_size,
            sampler=module.train_dataloader().sampler,
        )
    )
    assert len(batches) == len(expected)
    for (x, y, i), (ex, ey, ei) in zip(batches, expected, strict=True):
        assert torch.equal(x, ex) and torch.equal(y, ey) and torch.equal(i, ei)
    record = module.label_record()
    assert record["labelled_items"] == 10 * FIT_PER_CLASS and record["changed"] == []
    assert module.labelling.describe() is None


def test_the_record_lists_counts_and_changed_items() -> None:
    module = digits(label_fraction=0.3, label_noise=0.2, label_seed=4)
    module.use_labels("labelled")
    record = module.label_record()
    kept = round(0.3 * FIT_PER_CLASS)
    assert record["labelled_per_class"] == {str(c): kept for c in range(10)}
    assert record["labelled_items"] == record["labels_used"] == 10 * kept
    assert record["noisy_items"] == len(record["changed"]) == 10 * round(0.2 * kept)
    pool = module.pool.labels
    for change in record["changed"]:
        assert pool[change["item"]] == change["old"] != change["new"]
    module.use_labels("none")
    assert module.label_record()["labels_used"] == 0
    assert module.labelling.describe().startswith(
        f"{10 * kept} of {10 * FIT_PER_CLASS} training labels, {record['noisy_items']} replaced"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"label_fraction": 0.0}, "label_fraction=0.0"),
        ({"label_fraction": 1.5}, "label_fraction=1.5"),
        ({"label_noise": 1.0}, "label_noise=1.0"),
        ({"label_noise": -0.1}, "label_noise=-0.1"),
        ({"label_noise_kind": "near"}, "label_noise_kind='near'"),
        ({"label_noise": 0.2, "label_noise_kind": "sibling"}, "data.hierarchy"),
    ],
)
def test_bad_settings_are_user_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        DigitsDataModule(split_dir=None, **options)  # type: ignore[arg-type]


def test_draw_labelling_without_imperfection_changes_nothing() -> None:
    clean = torch.arange(20) % 4
    labelling = draw_labelling(
        np.arange(20), clean, fraction=1.0, noise=0.0, kind="uniform", seed=0, num_classes=4
    )
    assert labelling.labelled.all() and len(labelling.changed) == 0
    assert torch.equal(labelling.labels, clean) and torch.equal(labelling.masked_labels(), clean)
