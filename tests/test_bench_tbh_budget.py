"""benchmarks/bench_tbh_budget.py: which jobs it starts, resumes, extends or leaves alone, and
the validation curves it reads from runs' CSV logs (a resumed run's included)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import bench_tbh_budget as budget
from tests.helpers.runs import run_entry_point

HEADER = "epoch,step,train/loss,val/mAP@1000,val/dead_bits,val/mAP\n"


def fake_run(
    folder: Path, *, fit: int = 450, batch: int = 40, max_steps: int = 40, steps: int | None = None
) -> Path:
    """A run folder as hashing.train leaves it: config, split file, optionally a checkpoint."""
    folder.mkdir(parents=True)
    (folder / "config_resolved.yaml").write_text(
        f"data:\n  batch_size: {batch}\n  drop_last: true\ntrainer:\n  max_steps: {max_steps}\n"
    )
    np.savez(folder / "x__official__seed0.npz", fit=np.arange(fit), query=np.arange(3))
    (folder / "train.log").write_text("")
    old = time.time() - 3600
    os.utime(folder / "train.log", (old, old))
    if steps is not None:
        (folder / "checkpoints").mkdir()
        torch.save({"state_dict": {}, "global_step": steps}, folder / "checkpoints" / "last.ckpt")
    return folder


def args_for(tmp_path: Path, *extra: str) -> object:
    features = tmp_path / "f.npz"
    features.touch()
    return budget.parse_args(["--work", str(tmp_path / "w"), "--features", str(features), *extra])


def test_curve_reads_every_attempt_and_counts_iterations_by_epoch(tmp_path: Path) -> None:
    # 450 fit items in batches of 40 with drop_last: 11 batches an epoch; budget 20 iterations
    folder = fake_run(tmp_path / "run", max_steps=40)
    csv = folder / "csv"
    csv.mkdir()
    (csv / "metrics.part1.csv").write_text(HEADER + "0,10,5.0,,,\n0,10,,0.30,1.0,0.2\n")
    # the resumed attempt stops at the budget, 9 batches into epoch 1 (its CSV step is one
    # higher after a resume, which is why the epoch counts, not the step)
    (csv / "metrics.csv").write_text(HEADER + "1,20,4.0,,,\n1,20,,0.40,0.0,0.3\n")
    rounds, trained = budget.curve(folder)
    assert [(r["iteration"], r["map"], r["dead_bits"]) for r in rounds] == [
        (11, 0.30, 1.0),
        (20, 0.40, 0.0),
    ]
    assert trained == 20


def test_curve_later_attempt_replaces_the_same_round(tmp_path: Path) -> None:
    folder = fake_run(tmp_path / "run", max_steps=1000)
    csv = folder / "csv"
    csv.mkdir()
    (csv / "metrics.part1.csv").write_text(HEADER + "0,10,,0.30,1.0,0.2\n1,21,,0.35,0.0,0.25\n")
    (csv / "metrics.csv").write_text(HEADER + "1,22,,0.36,2.0,0.26\n2,33,7.0,,,\n")
    rounds, trained = budget.curve(folder)
    assert [(r["iteration"], r["map"], r["dead_bits"]) for r in rounds] == [
        (11, 0.30, 1.0),
        (22, 0.36, 2.0),
    ]
    assert trained == 33


def test_plan_starts_resumes_extends_and_leaves_alone(tmp_path: Path) -> None:
    args = args_for(tmp_path, "--iterations", "50", "--extra", "data.batch_size=40")
    work = tmp_path / "w"
    job = budget.Job("tbh", 16, 0, work / "tbh" / "16" / "seed0")
    state, command = budget.plan(job, args)
    assert state == "new"
    assert "trainer.max_steps=100" in command and "method.critic_probability_clip=1e-7" in command
    assert command[-2:] == ["data.batch_size=40", f"hydra.run.dir={job.folder}"]

    fake_run(job.folder, steps=60)  # unfinished: no metrics.json
    assert budget.plan(job, args) == (
        "unfinished",
        [f"resume={job.folder}", "trainer.max_steps=100"],
    )

    (job.folder / "metrics.json").write_text("{}")  # finished at 30 iterations of 50
    state, command = budget.plan(job, args)
    assert state.startswith("finished at 30 iterations")
    assert command == [f"resume={job.folder}", "trainer.max_steps=100", "trainer.max_epochs=50"]

    (job.folder / "interrupted.json").write_text("{}")  # an interrupted extension: resume it
    assert budget.plan(job, args)[0] == "unfinished"
    (job.folder / "interrupted.json").unlink()

    torch.save({"state_dict": {}, "global_step": 100}, job.folder / "checkpoints" / "last.ckpt")
    assert budget.plan(job, args) == ("finished (50 iterations)", None)

    (job.folder / "metrics.json").unlink()
    (job.folder / "train.log").touch()  # another process is training it
    assert budget.plan(job, args) == ("running elsewhere", None)


def test_collect_reads_a_partial_and_a_finished_job(tmp_path: Path) -> None:
    work = tmp_path / "w"
    partial = fake_run(work / "tbh" / "16" / "seed0", steps=40)
    done = fake_run(work / "tbh" / "16" / "seed1", steps=40)
    for folder, value in ((partial, 0.2), (done, 0.4)):
        (folder / "csv").mkdir()
        (folder / "csv" / "metrics.csv").write_text(
            HEADER + f"0,10,,{value},1.0,0.1\n1,21,,{value + 0.1},3.0,0.1\n"
        )
    (done / "metrics.json").write_text(json.dumps({"test/mAP@1000": 0.5, "test/mAP": 0.1}))
    out = tmp_path / "budget.json"
    args = [
        "--work", str(work), "--features", str(tmp_path / "f.npz"), "--collect", "--no-floors",
        "--no-eval", "--out", str(out), "--plot", str(tmp_path / "curve.png"),
    ]  # fmt: skip
    (tmp_path / "f.npz").touch()
    budget.main(args)
    results = json.loads(out.read_text())["results"]
    [row] = results["summary"]
    assert row["iteration"] == 20 and row["finished"] == 1
    assert row["val_map"] == pytest.approx([0.3, 0.5])
    assert row["test_map"] == [0.5]
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_collect_tests_an_unfinished_jobs_best_and_last_checkpoint_once(tmp_path: Path) -> None:
    """An unfinished job's best checkpoint so far and its last model are tested once: an
    evaluation already in ``<work>/evaluations/`` is read back, not re-run, and its iteration
    is the checkpoint's (the last model's: its ``global_step`` halved)."""
    work = tmp_path / "w"
    # 450 fit items in batches of 40: 11 iterations an epoch; budget 40 iterations (80 steps)
    folder = fake_run(work / "tbh" / "16" / "seed0", max_steps=80, steps=30)
    (folder / "csv").mkdir()
    (folder / "csv" / "metrics.csv").write_text(HEADER + "0,10,,0.2,1.0,0.1\n1,21,,0.3,0.0,0.2\n")
    torch.save({"state_dict": {}}, folder / "checkpoints" / "epoch_001.ckpt")
    for name, value in (("epoch_001", 0.25), ("last_15", 0.27)):  # last.ckpt: 30 steps
        done = work / "evaluations" / f"tbh_16_seed0_{name}"
        done.mkdir(parents=True)
        (done / "metrics.json").write_text(
            json.dumps({"test/mAP@1000": value, "test/mAP@ALL": 0.1})
        )
    (tmp_path / "f.npz").touch()
    out = tmp_path / "budget.json"
    args = [
        "--work", str(work), "--features", str(tmp_path / "f.npz"), "--collect", "--no-floors",
        "--out", str(out), "--plot", str(tmp_path / "curve.png"),
    ]  # fmt: skip
    budget.main(args)
    results = json.loads(out.read_text())["results"]
    [job] = results["jobs"]
    assert not job["finished"] and "test" not in job
    assert job["test_so_far"] == {
        "checkpoint": "epoch_001.ckpt",
        "iteration": 22,
        "test/mAP@1000": 0.25,
        "test/mAP@ALL": 0.1,
    }
    assert job["test_last"] == {
        "checkpoint": "last.ckpt",
        "iteration": 15,
        "test/mAP@1000": 0.27,
        "test/mAP@ALL": 0.1,
    }
    [row] = results["summary"]
    assert row["test_map"] == [] and row["test_map_so_far"] == [0.25]
    assert row["test_map_last"] == [0.27] and row["test_iterations_last"] == [15]
    assert (
        "| 0.2500 (22) | 0.2700 (15) |" in json.loads(out.read_text())["tables"]["main"]["markdown"]
    )
    budget.main([*args, "--no-eval"])
    record = json.loads(out.read_text())["results"]["jobs"][0]
    assert "test_so_far" not in record and "test_last" not in record


@pytest.mark.slow
def test_jobs_start_extend_and_collect_on_tiny_features(tmp_path, monkeypatch) -> None:
    """Real ``hashing.train`` jobs: one started, then extended to a larger budget (its first
    attempt's CSV kept), then collected with the floors."""
    rng = np.random.default_rng(0)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 10
        return np.maximum(rng.normal(size=(n, 16)), 0).astype(np.float16), y

    (tx, ty), (qx, qy) = part(200), part(50)
    features = tmp_path / "tiny.npz"
    np.savez(features, train_x=tx, train_y=ty, test_x=qx, test_y=qy)
    work = tmp_path / "w"
    common = ["--work", str(work), "--features", str(features), "--methods", "tbh"]
    common += ["--bits", "8", "--seeds", "0", "--val-every-epochs", "1", "--busy-minutes", "0"]
    extra = ["--extra", "data.batch_size=30", f"paths.cache_dir={tmp_path / 'cache'}"]
    # 180 fit items in batches of 30: 6 iterations an epoch
    budget.main([*common, "--iterations", "6", *extra])
    folder = work / "tbh" / "8" / "seed0"
    assert budget.finished(folder) and budget.optimiser_steps(folder) == 12
    budget.main([*common, "--iterations", "12", *extra])
    assert budget.optimiser_steps(folder) == 24
    assert (folder / "csv" / "metrics.part1.csv").is_file()
    rounds, trained = budget.curve(folder)
    assert [r["iteration"] for r in rounds] == [6, 12] and trained == 12
    out = tmp_path / "budget.json"
    code = run_entry_point(
        "benchmarks.bench_tbh_budget",
        [*common, "--collect", "--out", str(out), "--plot", str(tmp_path / "c.png")],
        monkeypatch,
    )
    assert code == 0
    results = json.loads(out.read_text())["results"]
    assert set(results["floors"]) == {"LSH", "PCA-sign", "ITQ", "untrained TBH", "float"}
    [record] = results["jobs"]  # the last model, after the 12 iterations of the extension
    assert record["test_last"]["checkpoint"] == "last.ckpt"
    assert record["test_last"]["iteration"] == 12
    [paired] = [p for p in results["paired"] if p["b"] == "ITQ"]
    itq = results["floors"]["ITQ"]["8"]["test"][0]
    assert paired["differences"] == pytest.approx([record["test_last"]["test/mAP@1000"] - itq])
    # testing a best checkpoint through hashing.eval gives what the run's own test gave
    job = budget.Job("tbh", 8, 0, folder)
    tested = budget.checkpoint_test(job, work, 1)
    own = json.loads((folder / "metrics.json").read_text())
    assert tested is not None and tested["checkpoint"] == budget.best_checkpoint(folder).name
    for key in ("test/mAP@1000", "test/mAP@ALL", "test/dead_bits"):
        assert tested[key] == pytest.approx(own[key], abs=1e-6)


def test_paired_rows_align_seeds_and_match_an_independent_t_test() -> None:
    from scipy.stats import ttest_rel

    def record(method: str, seed: int, value: float) -> dict:
        best = {"test/mAP@1000": value - 0.1}  # the best checkpoint's test: not what is paired
        return {
            "method": method,
            "bits": 32,
            "seed": seed,
            "test": best,
            "test_last": {"test/mAP@1000": value},
        }

    records = [
        record("tbh", 2, 0.47),
        record("tbh", 0, 0.49),
        record("tbh", 1, 0.48),
        record("tbh_supervised", 1, 0.80),
        record("tbh_supervised", 0, 0.83),
        {"method": "tbh_supervised", "bits": 32, "seed": 2, "val": []},  # nothing tested yet
    ]
    floors = {"ITQ": {"32": {"seeds": [0, 1, 2], "test": [0.50, 0.45, 0.50], "val": [0.5]}}}
    rows = {(r["a"], r["b"]): r for r in budget.paired_rows(records, floors)}
    assert set(rows) == {("tbh_supervised", "tbh"), ("tbh", "ITQ"), ("tbh_supervised", "ITQ")}

    supervised = rows[("tbh_supervised", "tbh")]
    assert supervised["seeds"] == [0, 1]
    assert supervised["differences"] == pytest.approx([0.83 - 0.49, 0.80 - 0.48])
    assert supervised["a_wins"] == 2
    assert supervised["t_test_p"] == pytest.approx(ttest_rel([0.83, 0.80], [0.49, 0.48]).pvalue)

    against_itq = rows[("tbh", "ITQ")]
    assert against_itq["seeds"] == [0, 1, 2]
    assert against_itq["differences"] == pytest.approx([-0.01, 0.03, -0.03])
    assert against_itq["a_wins"] == 1
    expected = ttest_rel([0.49, 0.48, 0.47], [0.50, 0.45, 0.50]).pvalue
    assert against_itq["t_test_p"] == pytest.approx(expected)

    table = budget.paired_markdown(budget.paired_rows(records, floors))
    assert "| 32 | tbh vs ITQ | [0, 1, 2] | -0.0100, +0.0300, -0.0300 | -0.0033 | 1/3 |" in table


def test_bad_arguments_exit_2_before_anything_is_written(tmp_path: Path, capsys) -> None:
    features = tmp_path / "f.npz"
    out = tmp_path / "budget.json"
    with pytest.raises(SystemExit) as stop:
        budget.main(["--work", str(tmp_path), "--features", str(features), "--collect"])
    assert stop.value.code == 2 and "--features" in capsys.readouterr().err
    features.touch()
    with pytest.raises(SystemExit) as stop:
        budget.main(["--work", str(tmp_path), "--features", str(features), "--collect",
                     "--out", str(out)])  # fmt: skip
    assert stop.value.code == 2 and "no job folders" in capsys.readouterr().err
    assert not out.exists()
