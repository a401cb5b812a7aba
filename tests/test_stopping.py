"""Ctrl-C outside the training loop (SHC's stage 1): exit 130, a marker, no traceback."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from hashing import pipeline
from hashing.methods.classifier import ClassifierModule
from hashing.runs.status import FAILED, INTERRUPTED, METRICS, record_failures
from hashing.runs.stopping import Stopped, stop_on_signal
from tests.helpers.runs import compose_run


def test_ctrl_c_in_shc_stage_1_stops_with_130_and_a_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    steps: list[int] = []
    original = ClassifierModule.training_step

    def interrupted_step(self: ClassifierModule, batch: Any, batch_idx: int) -> Any:
        steps.append(batch_idx)
        if batch_idx == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C on a terminal
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ClassifierModule, "training_step", interrupted_step)
    run = tmp_path / "run"
    cfg = compose_run("train", run, tmp_path / "cache", ["method=shc", "bits=16", "debug=fast"])
    before = signal.getsignal(signal.SIGINT)
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as stop:
        record_failures(pipeline.train, cfg)
    assert isinstance(stop.value, Stopped) and stop.value.code == 130
    assert steps == [0, 1]  # stopped in the step that got the signal
    assert signal.getsignal(signal.SIGINT) == before  # the handler is given back
    marker = json.loads((run / INTERRUPTED).read_text())
    assert marker["signal"] == "SIGINT" and marker["stage"].startswith("preparing shc")
    assert marker["resume"] is None  # no checkpoint yet: the run starts again
    assert not (run / FAILED).exists() and not (run / METRICS).exists()
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert "stopped by SIGINT while preparing shc" in caplog.text


def test_a_keyboard_interrupt_becomes_a_clean_stop(tmp_path: Path) -> None:
    with pytest.raises(Stopped) as stop, stop_on_signal("extracting features", tmp_path):
        raise KeyboardInterrupt
    assert stop.value.code == 130 and stop.value.__suppress_context__
    assert json.loads((tmp_path / INTERRUPTED).read_text())["stage"] == "extracting features"


def test_ctrl_c_while_testing_stops_with_130_and_a_resume_that_only_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashing.methods.base import HashingModule

    original = HashingModule.test_step

    def interrupted_test_step(self: HashingModule, *args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HashingModule, "test_step", interrupted_test_step)
    run = tmp_path / "run"
    cfg = compose_run("train", run, tmp_path / "cache", ["bits=16", "debug=fast"])
    with pytest.raises(SystemExit) as stop:
        record_failures(pipeline.train, cfg)
    assert isinstance(stop.value, Stopped) and stop.value.code == 130
    marker = json.loads((run / INTERRUPTED).read_text())
    assert marker["stage"] == "testing"
    assert marker["resume"] == f"python -m hashing.train resume={run}"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not (run / FAILED).exists() and not (run / METRICS).exists()
