"""Class taxonomies: file formats, errors naming the class, WordNet paths, data.hierarchy,
SHC's taxonomy similarity, and the taxonomy metrics of a real run (digits)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hashing import pipeline
from hashing.centers.similarity import taxonomy_similarity
from hashing.data.features import FeaturesDataModule
from hashing.methods.shc_centers import SemanticCenters
from hashing.runs.errors import UserError
from hashing.taxonomy import read_taxonomy
from hashing.taxonomy.__main__ import main as taxonomy_main
from tests.helpers.runs import compose_run

TEXT = """# products
shop/furniture/chair
shop/furniture/table

shop/kitchen/cup
shop/kitchen / glass
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_text_and_json_formats_give_the_same_tree(tmp_path: Path) -> None:
    text = read_taxonomy(write(tmp_path / "t.txt", TEXT))
    paths = [line.replace(" ", "").split("/") for line in TEXT.splitlines()[1:] if line]
    data = {"classes": [{"path": p} for p in paths]}
    from_json = read_taxonomy(write(tmp_path / "t.json", json.dumps(data)))
    classes = ["chair", "table", "cup", "glass"]
    for tree in (text, from_json):
        assert tree.root == "shop"
        assert tree.path("glass") == ["shop", "kitchen", "glass"]
        distance, wup = tree.relations(classes)
        # chair-table meet at furniture (depth 2): 2 edges, WuP 2*2/(3+3)
        assert distance[0, 1] == 2 and wup[0, 1] == pytest.approx(4 / 6)
        # chair-cup meet at the root (depth 1): 4 edges, WuP 2*1/(3+3)
        assert distance[0, 2] == 4 and wup[0, 2] == pytest.approx(2 / 6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a/b/c\nx/b/d\n", "class 'b' two parents"),
        ("a/b/a\n", "cycle through class 'a'"),
        ("a/b\nz/c\n", "2 roots"),
        ("a//b\n", "line 1"),
    ],
)
def test_bad_files_name_the_class(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_taxonomy(write(tmp_path / "bad.txt", text))


def test_a_cycle_across_lines_is_refused(tmp_path: Path) -> None:
    # b's parent is a, a's parent is b: no root at all, the cycle is named
    with pytest.raises(UserError, match="cycle through class"):
        read_taxonomy(write(tmp_path / "loop.txt", "b/a/x\na/b/y\n"))


DATA_NOUN = """  1 This software and database is being provided to you, the LICENSEE, by
  2 Princeton University under the following license.
00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04431553 n 0000 | that which
00001930 03 n 01 physical_entity 0 002 @ 00001740 n 0000 ~ 00002452 n 0000 | an entity
00002137 03 n 02 abstraction 0 abstract_entity 0 001 @ 00001740 n 0000 | a general concept
00002452 03 n 01 thing 0 002 @ 00001930 n 0000 ~ 00000099 n 0000 | a separate entity
00000099 05 n 01 widget 0 003 + 00000555 v 0101 @ 00002452 n 0000 @ 00002137 n 0000 | a thing
00000077 05 n 01 Gadget 0 002 @i 00002137 n 0000 ! 00002452 n 0101 | an instance
"""


def test_wordnet_command_follows_the_first_hypernym(tmp_path: Path, capsys) -> None:
    noun = write(tmp_path / "data.noun", DATA_NOUN)
    wnids = write(tmp_path / "wnids.txt", "n00000099\nn00000077\n")
    out = tmp_path / "tax.txt"
    taxonomy_main(["wordnet", str(wnids), str(out), "--data-noun", str(noun)])
    lines = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    # widget has two hypernyms (thing, abstraction): the first one wins; a verb pointer (+)
    # and an antonym (!) are not hypernyms; Gadget is an instance (@i) of abstraction
    assert lines == [
        "n00001740/n00001930/n00002452/n00000099",
        "n00001740/n00002137/n00000077",
    ]
    assert "2 classes, depth 3-4" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        taxonomy_main(["wordnet", str(write(tmp_path / "w2", "n12345678\n")), str(out),
                       "--data-noun", str(noun)])  # fmt: skip
    assert exit_info.value.code == 2
    assert "class 'n12345678' is not a WordNet" in capsys.readouterr().err


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_JSON = SHARED / "tinyimagenet200_wordnet.json"
DATA_NOUN_FILE = Path("/usr/share/wordnet/data.noun")


@pytest.mark.skipif(
    not (SHARED_JSON.is_file() and DATA_NOUN_FILE.is_file()),
    reason="needs the shared WordNet file and Debian's wordnet-base",
)
def test_wordnet_command_rebuilds_the_shared_tinyimagenet_paths(tmp_path: Path) -> None:
    shared = json.loads(SHARED_JSON.read_text())["classes"]
    wnids = write(tmp_path / "wnids.txt", "\n".join(c["wnid"] for c in shared))
    taxonomy_main(["wordnet", str(wnids), str(tmp_path / "t.txt")])
    lines = [line for line in (tmp_path / "t.txt").read_text().splitlines() if line[0] != "#"]
    assert lines == ["/".join(c["path"]) for c in shared]


def features_file(path: Path, classes: list[str], per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(classes)), per_class)
    np.savez(
        path,
        train_x=rng.normal(size=(len(labels), 5)).astype(np.float32),
        train_y=labels,
        test_x=rng.normal(size=(len(classes) * 2, 5)).astype(np.float32),
        test_y=np.repeat(np.arange(len(classes)), 2),
        classes=np.array(classes),
    )
    return path


def test_hierarchy_aligns_with_the_features_classes(tmp_path: Path) -> None:
    npz = features_file(tmp_path / "f.npz", ["cup", "chair", "glass", "table"])
    module = FeaturesDataModule(
        npz,
        protocol="tinyimagenet200",
        train_per_class=3,
        hierarchy=write(tmp_path / "t.txt", TEXT),
        split_dir=None,
    )
    module.setup()
    assert module.class_names == ["cup", "chair", "glass", "table"]
    relations = module.class_relations
    assert relations.distance[1, 3] == 2 and relations.distance[0, 1] == 4
    split = module.split
    # tinyimagenet200: queries = the file's test rows, database = its train rows, training
    # items 3 a class drawn from the database; k = 1000
    assert sorted(split["query"]) == list(range(24, 32))
    assert sorted(split["database"]) == list(range(24))
    assert set(split["train"]) <= set(split["database"]) and len(split["train"]) == 12
    assert module.protocol_k == 1000


def test_a_class_missing_from_the_hierarchy_is_named(tmp_path: Path) -> None:
    npz = features_file(tmp_path / "f.npz", ["cup", "chair", "sofa", "table"])
    module = FeaturesDataModule(npz, hierarchy=write(tmp_path / "t.txt", TEXT), split_dir=None)
    module.setup()
    with pytest.raises(UserError, match="class 'sofa' of the dataset is missing"):
        _ = module.class_relations
    with pytest.raises(UserError, match="does not exist"):
        FeaturesDataModule(npz, hierarchy=tmp_path / "absent.txt")


def test_taxonomy_similarity_is_stage_one_normalisation_of_wu_palmer() -> None:
    wup = torch.tensor([[1.0, 0.8, 0.2], [0.8, 1.0, 0.4], [0.2, 0.4, 1.0]], dtype=torch.float64)
    s = taxonomy_similarity(wup)
    # row 0 with the diagonal zeroed: [0, .8, .2], mean 1/3, spread max(|.8-1/3|, |0-1/3|)
    spread = 0.8 - 1 / 3
    assert s[0, 1].item() == pytest.approx((0.8 - 1 / 3) / spread)
    assert s[0, 2].item() == pytest.approx((0.2 - 1 / 3) / spread)
    assert torch.equal(torch.diag(s), torch.ones(3, dtype=torch.float64))


def test_shc_taxonomy_needs_a_hierarchy_and_caches_its_stage(tmp_path: Path) -> None:
    npz = features_file(tmp_path / "f.npz", ["cup", "chair", "glass", "table"])
    backbone = {"_target_": "hashing.backbones.mlp.MLP", "hidden_dims": []}
    classifier = {"max_epochs": 1, "batch_size": 8, "optimizer": {"_target_": "torch.optim.Adam"}}
    source = SemanticCenters(
        backbone, classifier, {"time_budget": 2.0}, similarity="taxonomy", cache_dir=tmp_path
    )
    bare = FeaturesDataModule(npz, split_dir=None)
    bare.setup()
    with pytest.raises(UserError, match=r"data\.hierarchy"):
        source(4, 8, bare, tmp_path / "run0")
    module = FeaturesDataModule(npz, hierarchy=write(tmp_path / "t.txt", TEXT), split_dir=None)
    module.setup()
    centers = source(4, 8, module, tmp_path / "run1")
    assert source.last_cache == {"stage1": "miss", "stage2": "miss"}
    saved = torch.load(tmp_path / "run1" / "similarity.pt")
    wu_palmer = torch.from_numpy(module.class_relations.wu_palmer)
    assert torch.allclose(saved, taxonomy_similarity(wu_palmer))
    again = source(4, 8, module, tmp_path / "run2")
    assert source.last_cache == {"stage1": "hit", "stage2": "hit"}
    assert torch.equal(centers, again)
    stats = json.loads((tmp_path / "run2" / "center_stats.json").read_text())
    # equidistant centers rank no pair: the key is there, its value None (as "spearman")
    assert stats["similarity"] == "taxonomy" and "taxonomy_spearman" in stats
    with pytest.raises(ValueError, match=r"method\.similarity='wordnet'"):
        SemanticCenters(backbone, classifier, similarity="wordnet")


def test_a_run_with_a_hierarchy_reports_the_taxonomy_metrics(tmp_path: Path) -> None:
    """Digits (classes "0".."9") under a hand-written taxonomy, SHC with the taxonomy S."""
    tree = write(
        tmp_path / "digits.txt",
        "".join(f"digit/{'round' if d in '0689' else 'straight'}/{d}\n" for d in "0123456789"),
    )
    cfg = compose_run(
        "train",
        tmp_path / "run",
        tmp_path / "cache",
        [
            "method=shc",
            "method.similarity=taxonomy",
            "bits=16",
            f"data.hierarchy={tree}",
            "debug=fast",
            "method.center_source.figures=false",
        ],
    )
    metrics = pipeline.train(cfg)
    for name in ("tax_dist@100", "miss_tax_dist@100", "ndcg_wup@100"):
        assert f"test/{name}" in metrics
    # two sibling digits are 2 edges apart, cousins 4: misses lie in [2, 4], NDCG in (0, 1]
    assert 2.0 <= metrics["test/miss_tax_dist@100"] <= 4.0
    assert metrics["test/tax_dist@100"] < metrics["test/miss_tax_dist@100"]
    assert 0.0 < metrics["test/ndcg_wup@100"] <= 1.0
    stats = json.loads((tmp_path / "run" / "center_stats.json").read_text())
    assert stats["similarity"] == "taxonomy" and -1.0 <= stats["taxonomy_spearman"] <= 1.0
    logged = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "val/tax_dist@100" in logged


def csv_validations(run: Path) -> list[dict[str, str]]:
    """The rows of a run's CSV log that hold a validation."""
    import csv

    with (run / "csv" / "metrics.csv").open() as handle:
        return [row for row in csv.DictReader(handle) if row.get("val/mAP")]


@pytest.mark.parametrize("tested", ["best", "last"])
def test_metrics_json_reports_the_validation_of_the_tested_checkpoint(
    tmp_path: Path, tested: str
) -> None:
    """val/ taxonomy metrics in metrics.json are those the CSV log holds for the validation
    whose checkpoint was tested: the first with the highest val/mAP, or the last one."""
    tree = write(
        tmp_path / "digits.txt",
        "".join(f"digit/{'round' if d in '0689' else 'straight'}/{d}\n" for d in "0123456789"),
    )
    run = tmp_path / "run"
    cfg = compose_run(
        "train",
        run,
        tmp_path / "cache",
        [
            "method=csq",
            "bits=16",
            f"data.hierarchy={tree}",
            "debug=fast",
            "trainer.max_epochs=4",
            "trainer.limit_train_batches=1",
            f"test_ckpt={tested}",
            "~callbacks.retrieval_grid",
            "callbacks.retrieval_evaluation.curves=false",
        ],
    )
    pipeline.train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    rows = csv_validations(run)
    assert len(rows) == 4
    if tested == "best":
        top = max(float(row["val/mAP"]) for row in rows)
        row = next(row for row in rows if float(row["val/mAP"]) == top)
        assert metrics["val/mAP_best"] == pytest.approx(top)
    else:
        row = rows[-1]
    for name in ("tax_dist@100", "miss_tax_dist@100", "ndcg_wup@100"):
        assert metrics[f"val/{name}"] == pytest.approx(float(row[f"val/{name}"]), rel=1e-6)
    assert not any(key.startswith("val/mAP@") for key in metrics)  # val/mAP_best says it
    # the four validations differ, so matching one row is a choice among them
    assert len({row["val/tax_dist@100"] for row in rows}) > 1
