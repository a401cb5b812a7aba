"""benchmarks/bench_tinyimagenet.py without its hour-long runs: the floors refreshed alone into
an existing results file, a collect that needs nothing from outside the repository, and a table
that says what is missing and where centers fall short of the required distance."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import torch
from scipy import stats

from benchmarks import bench_tinyimagenet as bench
from benchmarks.floor_rows import floor_scores
from hashing.taxonomy import read_taxonomy
from hashing.taxonomy.tree import ClassRelations

METRIC_KEYS = ("mAP@1000", "mAP@ALL", "tax_dist@100", "miss_tax_dist@100", "ndcg_wup@100")
OLD_ORIGIN = {"command": "python old", "commit": "0" * 40, "date_utc": "2026-01-01 00:00 UTC"}


def scores(value: float) -> dict[str, float]:
    return {key: value for key in METRIC_KEYS}


def floor_entry(method: str, bits: int, value: float, origin: dict | None) -> dict:
    entry = {
        "method": method,
        "bits": bits,
        "jobs": [{"bits": bits, "seed": s, "metrics": scores(value)} for s in (0, 1)],
    }
    if origin:
        entry["computed_by"] = origin
    return entry


def write_results(path: Path, runs: list[dict], **extra: object) -> Path:
    path.write_text(json.dumps({"command": "python earlier", "results": {"runs": runs, **extra}}))
    return path


def make_job(work: Path, method: str, bits: int, seed: int, value: float, **centers) -> None:
    folder = work / "runs" / method / str(bits) / "epochs15" / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "config_resolved.yaml").write_text(f"bits: {bits}\nseed: {seed}\n")
    metrics = {f"test/{key}": value for key in METRIC_KEYS} | {"val/mAP_best": value}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if centers:
        (folder / "center_stats.json").write_text(json.dumps(centers))


def table_rows(markdown: str) -> dict[tuple[str, str], list[str]]:
    """(bits, method) -> the cells of each row of the main table."""
    found = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("bits", "---"):
            found[cells[0], cells[1]] = cells
    return found


@pytest.fixture()
def collected(tmp_path: Path) -> tuple[dict, dict]:
    """A collect of fake run folders beside an --out holding floors and a stale run."""
    work = tmp_path / "work"
    values = {("mds", 16): (0.10, 0.12), ("shc", 16): (0.15, 0.18), ("mds", 32): (0.2, 0.21)}
    for (method, bits), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            d = bench.required_distance(bits)
            make_job(work, method, bits, seed, value, min=float(d), required_min_distance=d)
    make_job(work, "shc", 32, 0, 0.3, min=10.0, required_min_distance=10)
    make_job(work, "csq", 16, 0, 0.05, min=2.0, required_min_distance=4, csq_test_passed=False)
    out = write_results(
        tmp_path / "out.json",
        [
            floor_entry("lsh", 16, 0.03, OLD_ORIGIN),
            floor_entry("itq", 16, 0.07, None),
            {"method": "mds", "bits": 64, "seed": 0, "job": {"metrics": scores(0.9)}},
        ],
        float_knn={"mAP@1000": 0.2175, "mAP@ALL": 0.106, "computed_by": OLD_ORIGIN},
    )
    lengths = ["--bits", "16", "32", "--seeds", "0", "1", "--methods", "mds", "shc", "csq"]
    bench.main(["--collect", "--work", str(work), "--out", str(out), *lengths])
    record = json.loads(out.read_text())
    return record, values


def test_collect_keeps_the_floors_of_out_and_rebuilds_the_runs(collected) -> None:
    record, _ = collected
    assert record["command"] == (
        "python benchmarks/bench_tinyimagenet.py --collect --work "
        + record["settings"]["work"]
        + " --out "
        + record["settings"]["out"]
        + " --bits 16 32 --seeds 0 1 --methods mds shc csq"
    )
    runs = record["results"]["runs"]
    floors = {(e["method"], e["bits"]): e for e in runs if "jobs" in e}
    assert set(floors) == {("lsh", 16), ("itq", 16)}
    assert floors["lsh", 16]["computed_by"] == OLD_ORIGIN
    # the stale run of --out is gone: a collect takes the runs from the folders only
    assert {(e["method"], e["bits"]) for e in runs if "job" in e} == {
        ("mds", 16),
        ("shc", 16),
        ("mds", 32),
        ("shc", 32),
        ("csq", 16),
    }
    markdown = record["tables"]["main"]["markdown"]
    assert (
        "\nlsh 16, float k-NN: computed by `python old` at commit `0000000000` on 2026-01-01"
        in (markdown)
    )
    assert "\nitq 16: computed before the benchmark recorded" in markdown


def test_rows_say_what_is_missing_and_how_far_centers_are(collected) -> None:
    record, _ = collected
    found = table_rows(record["tables"]["main"]["markdown"])
    assert found["16", "csq"][2] == "0 of 0,1"
    assert found["16", "csq"][-1] == (
        "min center distance 2 < d = 4; CSQ's test failed (best of 20 Bernoulli draws kept)"
    )
    assert (
        found["16", "mds"][2] == "0,1" and found["16", "mds"][-1] == "min center distance 4 ≥ d = 4"
    )
    assert found["32", "shc"][2] == "0 of 0,1"
    assert found["32", "csq"][2:] == ["none of 0,1", *["-"] * len(METRIC_KEYS), "not run"]
    assert found["16", "lsh"][-1] == ""  # no centers, nothing to say
    assert found["float", "k-NN ceiling"][3:5] == ["0.2175", "0.1060"]
    assert "16 bits: d = 4, 32 bits: d = 10" in record["tables"]["main"]["markdown"]


def test_paired_tests_at_every_length_with_both_methods(collected) -> None:
    record, values = collected
    paired = record["results"]["paired_shc_vs_mds"]
    shc, mds = values["shc", 16], values["mds", 16]
    differences = [a - b for a, b in zip(shc, mds, strict=True)]
    mean = sum(differences) / 2
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences))  # n - 1 = 1
    t = mean / (spread / math.sqrt(2))
    test = paired["16/mAP@1000"]
    assert test["mean_difference"] == pytest.approx(mean)
    assert test["paired_t_p"] == pytest.approx(2 * stats.t.sf(abs(t), df=1))
    assert test["positive"] == 2 and test["seeds"] == [0, 1]
    assert paired["32/mAP@1000"]["seeds"] == [0]  # SHC has seed 0 only there
    markdown = record["tables"]["main"]["markdown"]
    assert f"SHC - MDS mAP@1000 at 16 bits: mean {mean:+.4f}" in markdown
    assert "SHC - MDS mAP@1000 at 32 bits: mean +0.1000" in markdown
    per_seed = record["tables"]["per_seed"]["markdown"].splitlines()
    assert [line.split("|")[1:3] for line in per_seed[2:]] == [
        [" 16 ", " 0 "],
        [" 16 ", " 1 "],
        [" 32 ", " 0 "],
    ]


def test_also_must_be_a_file_of_the_repository(tmp_path: Path, capsys) -> None:
    outside = write_results(tmp_path / "inputs.json", [])
    with pytest.raises(SystemExit) as stop:
        bench.main(["--collect", "--out", str(tmp_path / "out.json"), "--also", str(outside)])
    assert stop.value.code == 2
    assert f"--also {outside}: not a file of this repository" in capsys.readouterr().err


def tiny_split(folder: Path, classes: int = 6) -> dict:
    """What ``split_data`` returns, for Gaussian class clusters in 24 dimensions under a
    two-level taxonomy of the classes."""
    generator = torch.Generator().manual_seed(0)
    means = 3 * torch.randn(classes, 24, generator=generator)

    def part(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(classes).repeat_interleave(per_class)
        return means[labels] + torch.randn(len(labels), 24, generator=generator), labels

    tree = folder / "tree.txt"
    tree.write_text("".join(f"all/{'even' if c % 2 else 'odd'}/{c}\n" for c in range(classes)))
    relations = ClassRelations(read_taxonomy(tree), [str(c) for c in range(classes)])
    return {
        "parts": {"train": part(20), "query": part(5), "database": part(30)},
        "distance": torch.from_numpy(relations.distance),
        "wu_palmer": torch.from_numpy(relations.wu_palmer),
        "classes": classes,
    }


def bench_commit() -> str:
    """This checkout's HEAD, by git itself."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_refreshing_the_floors_keeps_everything_else(tmp_path: Path, monkeypatch) -> None:
    """``--no-runs --baselines lsh itq``: the floors of --bits are recomputed, the other rows
    of --out (floors of other lengths, ceiling, probe, pipeline runs) stay as they were."""
    data = tiny_split(tmp_path)
    monkeypatch.setattr(bench, "split_data", lambda args: data)
    monkeypatch.setattr(bench, "FEATURES", Path(__file__))
    monkeypatch.setattr(bench, "WORDNET", Path(__file__))
    pipeline_run = {"method": "mds", "bits": 16, "seed": 0, "job": {"metrics": scores(0.4)}}
    probe = {"accuracy": 0.55, "computed_by": OLD_ORIGIN}
    out = write_results(
        tmp_path / "out.json",
        [
            floor_entry("lsh", 16, 0.03, OLD_ORIGIN),
            floor_entry("lsh", 64, 0.09, OLD_ORIGIN),
            pipeline_run,
        ],
        float_knn={"mAP@1000": 0.2, "mAP@ALL": 0.1},
        linear_probe=probe,
    )
    argv = ["--no-runs", "--baselines", "lsh", "itq", "--bits", "16", "--seeds", "0", "1"]
    bench.main([*argv, "--out", str(out), "--work", str(tmp_path / "work")])
    results = json.loads(out.read_text())["results"]
    floors = {(e["method"], e["bits"]): e for e in results["runs"] if "jobs" in e}
    assert set(floors) == {("lsh", 16), ("itq", 16), ("lsh", 64)}
    assert floors["lsh", 64]["computed_by"] == OLD_ORIGIN  # another length: kept
    assert pipeline_run in results["runs"]
    assert results["float_knn"] == {"mAP@1000": 0.2, "mAP@ALL": 0.1}
    assert results["linear_probe"] == probe
    train_x = data["parts"]["train"][0]
    query, database = data["parts"]["query"], data["parts"]["database"]
    for method in ("lsh", "itq"):
        entry = floors[method, 16]
        command = " ".join([*argv, "--out", str(out), "--work", str(tmp_path / "work")])
        assert entry["computed_by"]["command"].endswith(command)
        assert entry["computed_by"]["commit"] == bench_commit()
        for job in entry["jobs"]:  # the AP of hashing.metrics.evaluate_retrieval
            expected = floor_scores(train_x, query, database, method, 16, job["seed"], (None,))
            assert job["metrics"]["mAP@ALL"] == pytest.approx(expected["mAP@ALL"], rel=1e-5)
        assert entry["jobs"][0]["metrics"] != entry["jobs"][1]["metrics"]  # seeds differ
