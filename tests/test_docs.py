"""The documentation against the code: every ``python -m hashing.<cmd> key=value`` shown in the
README or under docs/ composes with Hydra (so each key and option it names exists), every
relative link and ``docs/<page>.md#<anchor>`` citation resolves, and the README keeps the shape a
first visit needs."""

from __future__ import annotations

import re
import shlex
import unicodedata
from functools import cache
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from hashing.runs.resume import RESUMABLE_CHANGES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOC_FILES = [README, *sorted(DOCS.rglob("*.md"))]
CONF = ROOT / "conf"

FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
INLINE_COMMAND = re.compile(r"`(python -m hashing\.[^`]+)`")
COMMAND = re.compile(r"python -m hashing\.(\w+)(.*)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*$", re.MULTILINE)
EXPLICIT_ID = re.compile(r"\{[^}]*#([\w-]+)[^}]*\}\s*$")
CITATION = re.compile(r"docs/([\w./-]+\.md)(?:#([\w-]+))?")
PLACEHOLDER = re.compile(r"[<>]|\.\.\.|…")  # in a value: <run dir>, <m>, ...
#: file names that read like config keys: an index folder's file (not the export config's
#: faiss.* keys) and WordNet's noun database
FILE_NAMES = {"faiss.index", "data.noun"}
INLINE_CODE = re.compile(r"`([^`\n]+)`")
CONFIG_KEY = re.compile(
    r"\+?((?:method|data|backbone|trainer|callbacks|hydra\.launcher|hydra\.sweeper|faiss)"
    r"(?:\.\w+)+)(?:\.\*)?(?:=.*|:)?"
)


def shown_commands() -> list[tuple[str, str, str, frozenset[str]]]:
    """(where, command module, argument string, options the page creates) for every distinct
    hashing command in code blocks and inline code of the README and docs/, continuation lines
    joined, comments dropped."""
    found, seen = [], set()
    for path in DOC_FILES:
        text = path.read_text()
        snippets = [block.replace("\\\n", " ") for block in FENCE.findall(text)]
        snippets += INLINE_COMMAND.findall(FENCE.sub("", text))
        for snippet in snippets:
            for line in snippet.splitlines():
                match = COMMAND.search(line.split(" # ")[0])
                if match and (match.group(1), match.group(2).strip()) not in seen:
                    seen.add((match.group(1), match.group(2).strip()))
                    where = f"{path.relative_to(ROOT)}: {match.group(0).strip()[:70]}"
                    found.append((where, match.group(1), match.group(2), made_here(text)))
    return found


def made_here(text: str) -> frozenset[str]:
    """Config options a page has the reader write (``conf/method/coin.yaml`` -> method/coin)."""
    return frozenset(re.findall(r"conf/([\w/]+)\.yaml", text))


def as_single_override(token: str) -> str:
    """``bits=16,32,64`` -> ``bits=16`` (a sweep's first value); placeholders such as
    ``<run dir>`` or ``...`` become a plain value."""
    key, _, value = token.partition("=")
    if PLACEHOLDER.search(value):
        return f"{key}=x"
    override = OverridesParser.create().parse_override(token)
    if override.is_sweep_override():
        return f"{override.get_key_element()}={next(override.sweep_string_iterator())}"
    return token


COMMANDS = shown_commands()


def test_the_docs_show_commands_of_every_hydra_entry_point():
    shown = {module for _, module, _, _ in COMMANDS}
    assert {"train", "eval", "export", "search", "features"} <= shown
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize(
    ("module", "arguments", "created"),
    [(module, arguments, created) for _, module, arguments, created in COMMANDS],
    ids=[where for where, _, _, _ in COMMANDS],
)
def test_a_shown_command_composes(module: str, arguments: str, created: frozenset[str]):
    """Options the page has the reader create (and the search path to them) and placeholder
    options (``method=<m>``) are left out."""
    config = CONF / f"{module}.yaml"
    if not config.exists():
        pytest.skip(f"hashing.{module} is not a Hydra command")
    tokens = [t for t in shlex.split(arguments, comments=True) if "=" in t and t[0] != "-"]
    overrides = [
        as_single_override(t)
        for t in tokens
        if not t.startswith("hydra.searchpath=")
        and "/".join(t.split("=", 1)) not in created
        and not (PLACEHOLDER.search(t) and (CONF / t.split("=")[0]).is_dir())
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        compose(config_name=module, overrides=overrides, return_hydra_config=True)


@cache
def composed_variants() -> tuple[DictConfig, ...]:
    """Composed configs that together hold every option of the groups the docs name keys of
    (options of different groups share a composition, which needs no instantiation), every
    experiment preset, both launchers, the Optuna sweeper, and the export config (``faiss.*``)."""
    options = {
        group: sorted(path.stem for path in (CONF / group).glob("*.yaml"))
        for group in ("data", "method", "backbone", "trainer")
    }
    widest = max(len(names) for names in options.values())
    choices = [
        [f"{group}={names[i % len(names)]}" for group, names in options.items()]
        for i in range(widest)
    ]
    choices += [
        [f"experiment={path.stem}"] for path in sorted((CONF / "experiment").glob("*.yaml"))
    ]
    choices += [["hydra/launcher=local"], ["hydra/launcher=slurm", "hparams_search=optuna"]]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        variants = [compose("train", overrides=c, return_hydra_config=True) for c in choices]
        variants.append(compose("export", overrides=["ckpt_path=x"]))
    return tuple(variants)


def config_key_exists(key: str, added: bool) -> bool:
    """Whether some composed variant has ``key`` (for an added ``+key``: its parent mapping)."""
    target = key.rsplit(".", 1)[0] if added else key
    missing = object()
    for config in composed_variants():
        found = OmegaConf.select(config, target, default=missing, throw_on_resolution_failure=False)
        if found is not missing and (not added or isinstance(found, DictConfig)):
            return True
    return False


def documented_keys() -> list[tuple[str, str, bool]]:
    """(where, key, added with +) for every config key named in inline code of the docs."""
    found = []
    for path in DOC_FILES:
        for span in INLINE_CODE.findall(FENCE.sub("", path.read_text())):
            for token in span.split():
                match = CONFIG_KEY.fullmatch(token)
                if match and match.group(1) not in FILE_NAMES:
                    found.append((str(path.relative_to(ROOT)), match.group(1), token[0] == "+"))
    return found


def test_every_config_key_named_in_the_docs_exists():
    keys = documented_keys()
    assert len(keys) >= 40
    # keys no preset sets but the docs may name: ones they show added with +, and the Trainer and
    # DataModule arguments a resume may change
    addable = {key for _, key, added in keys if added} | set(RESUMABLE_CHANGES)
    unknown = sorted(
        {
            f"{where}: {key}"
            for where, key, added in keys
            if key not in addable and not config_key_exists(key, added)
        }
    )
    assert not unknown, "config keys the docs name but conf/ does not have:\n" + "\n".join(unknown)


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (mkdocs) and GitHub give a heading."""
    text = re.sub(r"[`*_]", "", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a markdown file: explicit ``{#id}`` or the heading's slug."""
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        explicit = EXPLICIT_ID.search(heading)
        found.add(explicit.group(1) if explicit else slug(heading))
    return frozenset(found)


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for path in DOC_FILES:
        for target in LINK.findall(FENCE.sub("", path.read_text())):
            if not re.match(r"[a-z]+:", target):
                links.append((path, target))
    return links


@pytest.mark.parametrize(
    ("source", "target"),
    relative_links(),
    ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in relative_links()],
)
def test_a_relative_link_resolves(source: Path, target: str):
    file_part, _, anchor = target.partition("#")
    resolved = (source.parent / file_part).resolve() if file_part else source
    assert resolved.exists(), f"{source.relative_to(ROOT)} links to missing {file_part}"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{resolved.relative_to(ROOT)} has no #{anchor}"


def code_citations() -> list[tuple[str, str, str]]:
    """(where, page, anchor) for every ``docs/<page>.md#<anchor>`` in code, configs and tests."""
    found = []
    for folder in ("hashing", "conf", "benchmarks", "tests"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in {".py", ".yaml"} or path.name == "test_docs.py":
                continue
            for page, anchor in CITATION.findall(path.read_text()):
                found.append((str(path.relative_to(ROOT)), page, anchor))
    return found


def test_code_cites_existing_docs_pages_and_sections():
    broken = [
        f"{where}: docs/{page}#{anchor}"
        for where, page, anchor in code_citations()
        if not (DOCS / page).exists() or (anchor and anchor not in anchors(DOCS / page))
    ]
    assert not broken, "citations of missing docs pages or sections:\n" + "\n".join(broken)


def test_code_and_configs_cite_the_docs_not_an_internal_specification():
    """Users read docs/; a citation of a file they never see (the SPEC) is a broken reference."""
    citing = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("hashing", "conf")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in {".py", ".yaml"}
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "SPEC" in line
    ]
    assert not citing, "cite a docs/ page instead of the SPEC:\n" + "\n".join(citing)


def test_every_docs_page_is_in_the_site_navigation_and_every_entry_exists():
    def pages(nav) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        return [p for item in nav for p in pages(item)]

    nav = pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == on_disk


def test_readme_opens_with_the_two_commands_and_warns_cpu_users_first():
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    first_block = FENCE.search(text).group(1).splitlines()
    assert first_block == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && python -m "
        "hashing.train",
        'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && python -m '
        'pytest -m "not slow"',
    ]
    before_commands = text[: FENCE.search(text).start()]
    assert "CPU" in before_commands and "CUDA" in before_commands
    assert text.index("--index-url https://download.pytorch.org/whl/cpu") < text.index(
        "## What it is"
    )
