"""Every preset composes to the values it had before the configs were restructured.

``tests/data/composed_configs.json`` holds the resolved configs of every combination users
compose (each method on each dataset, each experiment preset with each method, each backbone,
trainer, logger, callbacks, debug and search option, and the tool entry configs), as they were
composed before ``conf/`` moved from copies to composition. The test composes each case again
and compares value for value; :data:`ACCEPTED` lists every difference allowed and why.

Write the snapshot (only when a difference is intended *and* listed): ``python
tests/test_config_snapshot.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SNAPSHOT = ROOT / "tests" / "data" / "composed_configs.json"
METHODS = ("csq", "mds", "shc", "tbh", "tbh_supervised")


def options(group: str) -> list[str]:
    """The options of a config group, by file name."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def cases() -> dict[str, tuple[str, list[str]]]:
    """Case name -> (entry config, overrides): the combinations the snapshot covers."""
    found: dict[str, tuple[str, list[str]]] = {"train": ("train", [])}
    for method in METHODS:
        found[f"train method={method}"] = ("train", [f"method={method}"])
    for experiment in options("experiment"):
        found[f"train experiment={experiment}"] = ("train", [f"experiment={experiment}"])
        for method in METHODS:
            found[f"train experiment={experiment} method={method}"] = (
                "train",
                [f"experiment={experiment}", f"method={method}"],
            )
    # a method reads data, backbone and trainer keys; SHC reads the most of them
    for group in ("data", "backbone", "trainer"):
        for option in options(group):
            overrides = [f"{group}={option}", "method=shc"]
            found[f"train {group}={option} method=shc"] = ("train", overrides)
    for group in ("logger", "callbacks", "debug", "hparams_search"):
        for option in options(group):
            found[f"train {group}={option}"] = ("train", [f"{group}={option}"])
    found["train hparams_search=grid experiment=digits_csq"] = (
        "train",
        ["hparams_search=grid", "experiment=digits_csq"],
    )
    found["eval"] = ("eval", ["ckpt_path=/run/last.ckpt"])
    found["eval trainer=cpu"] = ("eval", ["ckpt_path=/run/last.ckpt", "trainer=cpu"])
    found["features"] = ("features", [])
    found["features data=digits backbone=mlp"] = ("features", ["data=digits", "backbone=mlp"])
    found["export"] = ("export", ["ckpt_path=/run/last.ckpt"])
    found["export data=digits"] = ("export", ["ckpt_path=/run/last.ckpt", "data=digits"])
    found["search"] = ("search", ["index=/index", "query=/query.png"])
    return found


@contextmanager
def plain_environment() -> Iterator[None]:
    """No HASHING_* variables, so paths resolve the same on every machine."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("HASHING_")}
    try:
        yield
    finally:
        os.environ.update(saved)


def compose_case(config_name: str, overrides: list[str]) -> dict[str, Any]:
    """The resolved config of one case, with the sweeper settings it selects."""
    with plain_environment():
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(
                config_name=config_name,
                overrides=["paths.output_dir=/out", *overrides],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
        mode = str(cfg.hydra.mode)
        with open_dict(cfg):
            del cfg["hydra"]
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return {**resolved, "hydra": {"mode": mode, "sweeper": sweeper}}


def digest(value: Any) -> str:
    """A short content key of a JSON value."""
    text = json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_snapshot() -> None:
    """Compose every case and store it: identical subtrees once, each case as key -> subtree."""
    subtrees: dict[str, Any] = {}
    stored: dict[str, Any] = {}
    for name, (config_name, overrides) in cases().items():
        composed = compose_case(config_name, overrides)
        keys = {}
        for key, value in composed.items():
            keys[key] = digest(value)
            subtrees[keys[key]] = value
        stored[name] = {"config": config_name, "overrides": overrides, "keys": keys}
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"cases": stored, "subtrees": subtrees}, indent=1, sort_keys=True)
    SNAPSHOT.write_text(text + "\n")


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) pairs; an empty mapping or list is a leaf of its own."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from flatten(item, f"{prefix}{key}.")
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}{index}.")
    else:
        yield prefix[:-1], value


def differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (before, after) for every leaf that differs, is new or is gone."""
    old, new = dict(flatten(before)), dict(flatten(after))
    missing = object()
    found = {}
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, missing), new.get(key, missing)
        if a is missing or b is missing or a != b or type(a) is not type(b):
            found[key] = ("<absent>" if a is missing else a, "<absent>" if b is missing else b)
    return found


#: the cases that run SHC: method=shc, and the SHC presets with their own method
SHC_CASES = r"method=shc|experiment=shc_\w+$"
REFERENCE_KEYS = (
    "similarity_axis|rho|mu|eta|lambda_init|epochs|inner_passes|repulsion_scale|backtrack"
)

#: (case regex, dotted-key regex, why): the differences the restructuring may make
ACCEPTED: list[tuple[str, str, str]] = [
    (
        r".*",
        r"trainer\.max_steps",
        "every trainer lists Lightning's step limit (-1, none, as before), so a resume or a run "
        "may set trainer.max_steps without a '+' (docs/tbh_reproduction.md#released-budget)",
    ),
    (
        r"method=tbh|experiment=tbh_fc7$",
        r"method\.critic_probability_clip",
        "TBH's critic BCE can be the released Keras one (probabilities clipped at 1e-7); null "
        "keeps the BCE from logits it had (docs/tbh_reproduction.md)",
    ),
    (
        r"method=tbh|experiment=tbh_fc7$",
        r"method\.optimizer\.fused",
        "TBH's Adam is the fused one: the same update in one pass over the parameters instead of "
        "about ten, the actor's step 4x faster on a CPU core (docs/tbh_reproduction.md#step-time)",
    ),
    (
        r"experiment=tbh_fc7",
        r"data\.drop_last",
        "tbh_fc7 trains on full batches of 400 only, as the released input pipeline (repeat "
        "before batch) does (docs/tbh_reproduction.md)",
    ),
    (
        r"experiment=(cifar10_effnet|tbh_fc7)",
        r"(method\.center_source\.)?backbone\..+",
        "backbone=identity replaces backbone=mlp hidden_dims=[]: the same computation (a "
        "flatten, no parameters) under its own class, without the MLP's unused keys; SHC's "
        "stage-1 cache key, which hashes the backbone config, changes with it",
    ),
    (
        r"data=(cifar10|mnist)_pairs",
        r"data\.split_order",
        "the shared loader block spells out split_order: shuffled, the PairsDataModule's "
        "default, which the pairs configs left implicit",
    ),
    (
        SHC_CASES,
        rf"method\.center_source\.optimisation\.({REFERENCE_KEYS})",
        "SHC's stage-2 solver is a config group: local_search (the default) no longer carries "
        "the reference solver's settings; method/solver=reference brings them, same values",
    ),
    (
        SHC_CASES,
        r"method\.center_source\.optimisation\.(time_budget|max_seconds)",
        "the local search stops by work (kicks): the 30 s time_budget that decided where it "
        "stopped became max_seconds, a safety stop that is reported when hit",
    ),
    (
        r"^(train|eval)",
        r"callbacks\.code_balance\._target_",
        "bit balance and dead bits moved out of TBH into a callback every method gets "
        "(callbacks/default and callbacks/eval include code_balance)",
    ),
    (
        r"^(train|eval)",
        r"callbacks\.progress_bar\.metrics\.\d+",
        "the per-epoch line shows its own epoch's few values that matter, and which ones is a "
        "setting (train/loss, val/mAP, val/dead_bits when above 0)",
    ),
    (
        r"data=features|experiment=tbh_fc7",
        r"data\.name",
        "data=features names the data after its file (null = the file's stem), so two features "
        "files no longer share one split file under cifar10_fc7",
    ),
    (
        r"^features",
        r"per_class",
        "hashing.features encodes every image; per_class=N (null = all) takes a subset",
    ),
    (
        r"^export",
        r"faiss\.(nhash|nflip)",
        "the multi-index-hashing index (faiss.type=mih) takes its table count and flip depth",
    ),
    (
        r"^search",
        r"codes|ids",
        "queries say their kind: codes=[...] and ids=[...] beside query=<images>",
    ),
    (
        r".*",
        r"data\.hierarchy|callbacks\.retrieval_evaluation\.taxonomy_k",
        "any dataset may name a class taxonomy (null = none); with one, the evaluation reports "
        "taxonomy distances of the top taxonomy_k results (docs/taxonomy.md)",
    ),
    (
        SHC_CASES,
        r"method\.(center_source\.)?similarity",
        "SHC's class similarity is a choice: classifier (stage 1, as before) or taxonomy",
    ),
    (
        r".*",
        r"data\.label_(fraction|noise|noise_kind|seed)",
        "any dataset's training labels may be partial or noisy (docs/labels.md); the defaults "
        "(every label kept, none replaced) train exactly as before",
    ),
]


def load_snapshot() -> dict[str, Any]:
    """The stored cases, each rebuilt into its full config."""
    stored = json.loads(SNAPSHOT.read_text())
    subtrees = stored["subtrees"]
    return {
        name: {
            "config": case["config"],
            "overrides": case["overrides"],
            "values": {key: subtrees[ref] for key, ref in case["keys"].items()},
        }
        for name, case in stored["cases"].items()
    }


def unexplained(name: str, found: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """The differences of case ``name`` that no :data:`ACCEPTED` rule covers."""
    return {
        key: change
        for key, change in found.items()
        if not any(
            re.search(case, name) and re.fullmatch(pattern, key) for case, pattern, _ in ACCEPTED
        )
    }


def is_preset(name: str) -> bool:
    """The cases users type most: each method, each experiment preset (with each method)."""
    return name.startswith(("train method=", "train experiment="))


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    return load_snapshot()


def check_cases(snapshot: dict[str, Any], names: list[str]) -> None:
    """Compose the named cases now; fail listing every difference no rule accepts."""
    problems = {}
    for name in names:
        case = snapshot[name]
        found = differences(case["values"], compose_case(case["config"], case["overrides"]))
        left = unexplained(name, found)
        if left:
            problems[name] = left
    assert not problems, json.dumps(problems, indent=1, default=str)[:6000]


def test_presets_compose_to_their_snapshot_values(snapshot) -> None:
    check_cases(snapshot, [name for name in snapshot if is_preset(name)])


@pytest.mark.slow
def test_every_other_case_composes_to_its_snapshot_values(snapshot) -> None:
    check_cases(snapshot, [name for name in snapshot if not is_preset(name)])


@pytest.mark.slow
def test_every_accepted_difference_occurs(snapshot) -> None:
    """A rule that matches nothing is stale: the list names only real differences."""
    used = set()
    for name, case in snapshot.items():
        after = compose_case(case["config"], case["overrides"])
        for key in differences(case["values"], after):
            for index, (pattern_case, pattern_key, _) in enumerate(ACCEPTED):
                if re.search(pattern_case, name) and re.fullmatch(pattern_key, key):
                    used.add(index)
    unused = [rule for index, rule in enumerate(ACCEPTED) if index not in used]
    assert not unused, unused


def test_the_snapshot_covers_every_preset_and_method(snapshot) -> None:
    """New presets join the snapshot when it is written; the old ones must all be there."""
    for experiment in ("cifar10_effnet", "tbh_fc7", "shc_cifar100", "digits_csq"):
        for method in METHODS:
            assert f"train experiment={experiment} method={method}" in snapshot


def test_the_reference_solver_brings_the_settings_it_had(snapshot) -> None:
    """method/solver=reference composes to the reference settings of the old shc.yaml."""
    before = snapshot["train method=shc"]["values"]["method"]["center_source"]["optimisation"]
    after = compose_case("train", ["method=shc", "method/solver=reference"])
    optimisation = after["method"]["center_source"]["optimisation"]
    local_search = ("kicks", "kick_flips", "time_budget")
    assert optimisation == {
        **{k: v for k, v in before.items() if k not in local_search},
        "solver": "reference",
    }


def test_differences_are_found() -> None:
    """The comparison sees a changed, an added and a removed leaf, also inside lists."""
    before = {"a": {"b": 1, "c": [1, 2]}, "d": [], "e": 1}
    after = {"a": {"b": 2, "c": [1, 3, 4]}, "d": [], "f": 1, "e": 1.0}
    assert differences(before, after) == {
        "a.b": (1, 2),
        "a.c.1": (2, 3),
        "a.c.2": ("<absent>", 4),
        "e": (1, 1.0),
        "f": ("<absent>", 1),
    }


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {sys.argv[0]} --write  (rewrites {SNAPSHOT})")
    write_snapshot()
