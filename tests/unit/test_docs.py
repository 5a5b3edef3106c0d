"""The documentation stays true: README.md and docs/*.md against the code, without a broker.

Every setting is documented with its variable and reached the way the docs say; every command in a
code block parses; every relative link resolves; every header, wire error type and metric is
documented; the README's layout names every package; nothing cites documents outside the repository.
The contract's contents line lists every section; §11's pure core and layers are import-linter's
contracts and §12 lists only what the code still marks as pending; what the docs say the gateway
records and how much memory a view takes are what the code does.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from eventconfig import errors, metrics, model
from eventconfig.gateway import metrics as gateway_metrics
from eventconfig.cli.main import cli
from eventconfig.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
SETTINGS = {f.name: f for f in dataclasses.fields(Settings)}
NO_FLAG = "—"


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def fenced_blocks(markdown: str) -> Iterator[tuple[str, str]]:
    """(language, body) of every fenced code block of a Markdown text."""
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", markdown, re.S | re.M):
        yield match.group(1), match.group(2)


def without_code(path: Path) -> str:
    return re.sub(r"^```.*?^```", "", text(path), flags=re.S | re.M)


def shell_lines() -> Iterator[tuple[Path, str]]:
    """Every command line of the shell code blocks (bash, sh or unmarked) of the README and docs/."""
    for page in PAGES:
        for language, body in fenced_blocks(text(page)):
            if language in ("", "bash", "sh", "shell"):
                for line in body.splitlines():
                    if line.strip():
                        yield page, line.strip()


def command_words(line: str) -> list[str]:
    """A shell line as words, without comments, leading VAR=value assignments and [ | ] notation."""
    words = [w.strip("[]") for w in shlex.split(line, comments=True)]
    words = [w for w in words if w and w != "|"]
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words.pop(0)
    return words


# --- settings ----------------------------------------------------------------------------------------


def settings_table() -> dict[str, tuple[str, str]]:
    """operations.md's settings table: setting -> (environment variable, flag or '—')."""
    rows: dict[str, tuple[str, str]] = {}
    section = text(ROOT / "docs" / "operations.md").split("## Settings", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2].strip("`"))
    return rows


def options_by_setting() -> dict[str, set[str]]:
    """Setting name -> the command lines that set it as a flag (``eventconfig serve --metrics-port``)."""
    found: dict[str, set[str]] = {}

    def walk(command: click.Command, path: list[str]) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and param.name in SETTINGS:
                for opt in param.opts:
                    if opt.startswith("--"):
                        found.setdefault(param.name, set()).add(" ".join([*path, opt]))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(cli, ["eventconfig"])
    return found


def sample(name: str) -> object:
    """A value for ``name`` different from its default and valid with the other defaults."""
    default = SETTINGS[name].default
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    return Path("docs-test") if isinstance(default, Path) else "docs-test"


def test_every_setting_is_in_the_settings_table_with_its_environment_variable() -> None:
    table = settings_table()
    assert sorted(table) == sorted(SETTINGS), "operations.md's settings table must list exactly the Settings fields"
    for name, (variable, _) in table.items():
        assert variable == f"EVENTCONFIG_{name.upper()}"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_is_reached_through_its_environment_variable(name: str) -> None:
    value = sample(name)
    loaded = Settings.load(env={f"EVENTCONFIG_{name.upper()}": str(value)})
    assert getattr(loaded, name) == value


def test_the_flag_column_names_exactly_the_flags_the_command_has() -> None:
    flags = options_by_setting()
    for name, (_, flag) in settings_table().items():
        if flag == NO_FLAG:
            assert name not in flags, f"{name} has the flag(s) {flags.get(name)}; the settings table says none"
        else:
            assert flag in flags.get(name, set()), f"{name}: `{flag}` is not an option that sets it"
    table = settings_table()
    for name, command_lines in flags.items():
        assert table[name][1] in command_lines, f"{name} is a flag ({command_lines}) the settings table omits"


def test_the_readme_says_which_settings_are_flags_of_which_command() -> None:
    readme = " ".join(text(README).split())
    assert "Every setting is an `EVENTCONFIG_<NAME>` environment variable." in readme
    assert "the rest (retention, message size, batching, timeouts) are environment only" in readme
    assert "docs/operations.md#settings" in readme
    connection = {"bootstrap_servers", "topic_prefix", "deployment", "data_dir", "security_protocol", "sasl_mechanism",
                  "sasl_username", "sasl_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile"}
    said = {**{n: "eventconfig" for n in connection},  # "also flags of `eventconfig` itself"
            **{n: "eventconfig serve" for n in ("max_value_bytes", "max_items_per_request", "max_name_bytes",
                                                "max_id_bytes", "max_actor_bytes", "min_version_wait_ms",
                                                "metrics_port")},  # "value size, item count, name, id, actor ..."
            "replication_factor": "eventconfig topics create", "min_insync_replicas": "eventconfig topics create"}
    # "the TrustGraph topicspace of `eventconfig serve` and `eventconfig project`"
    said_of_several = {"trustgraph_topicspace": {"eventconfig serve", "eventconfig project"}}
    commands = {name: {line.rsplit(" ", 1)[0] for line in lines} for name, lines in options_by_setting().items()}
    assert commands == {**{name: {command} for name, command in said.items()}, **said_of_several}
    # "the rest (retention, batching, timeouts) are environment only"
    env_only = set(SETTINGS) - set(said) - set(said_of_several)
    assert all(settings_table()[name][1] == NO_FLAG for name in env_only)


# --- commands in code blocks ---------------------------------------------------------------------------


def eventconfig_lines() -> list[tuple[Path, list[str]]]:
    """Every distinct ``eventconfig ...`` line of a code block, and every inline `eventconfig ...` span
    outside tables (a table cell names a flag without its value); ``topics create|check`` stands for both."""
    found = [(page, words) for page, line in shell_lines() if (words := command_words(line))[:1] == ["eventconfig"]]
    for page in PAGES:
        prose = "\n".join(line for line in without_code(page).splitlines() if not line.startswith("|"))
        for span in re.findall(r"`(eventconfig(?: [^`]*)?)`", prose):
            words = command_words(span)
            for i, word in enumerate(words):
                if "|" in word:
                    found += [(page, [*words[:i], choice, *words[i + 1:]]) for choice in word.split("|")]
                    break
            else:
                found.append((page, words))
    unique = {(page.name, tuple(words)): (page, words) for page, words in found}
    return list(unique.values())


def test_the_docs_show_eventconfig_commands() -> None:
    assert len(eventconfig_lines()) >= 30


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    """A CLI runner; the root command sets up logging, so the root logger is restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield CliRunner()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("page,words", eventconfig_lines(),
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v.name)
def test_every_eventconfig_command_line_in_the_docs_parses(runner: CliRunner, page: Path, words: list[str]) -> None:
    """The command path and every option of the line exist (``--help`` last: nothing is executed)."""
    result = runner.invoke(cli, [*words[1:], "--help"])
    assert result.exit_code == 0, f"{page.name}: `{' '.join(words)}` does not parse: {result.output}"
    assert "Usage:" in result.output


def test_every_make_target_and_bench_option_in_the_docs_exists() -> None:
    from bench.__main__ import parse_args

    targets = set(re.findall(r"^([\w-]+):", text(ROOT / "Makefile"), re.M))
    checked = 0
    for page, line in shell_lines():
        words = command_words(line)
        if words[:1] == ["make"]:
            assert set(words[1:]) <= targets, f"{page.name}: `{line}` names a target the Makefile lacks"
            checked += 1
        elif words[:3] == ["python", "-m", "bench"]:
            parse_args(words[3:])  # exits 2 on an unknown option or scenario
            checked += 1
    for page in PAGES:  # inline mentions too: `make bench`, `python -m bench --only history`
        for span in re.findall(r"`(make [\w -]+|python -m bench[^`]*)`", without_code(page)):
            words = command_words(span)
            if words[0] == "make":
                assert set(words[1:]) <= targets, f"{page.name}: `{span}` names a target the Makefile lacks"
            else:
                parse_args(words[3:])
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_python_example_compiles(page: Path) -> None:
    for number, (language, body) in enumerate(fenced_blocks(text(page))):
        if language == "python":
            compile(body, f"{page.name}, python block {number}", "exec")  # no top-level await either


# --- links ---------------------------------------------------------------------------------------------


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", without_code(path), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", without_code(page))
    assert links, f"{page.name} has no links"
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: link {link} points to nothing"
        assert path.is_relative_to(ROOT), f"{page.name}: link {link} leaves the repository"
        if anchor:
            assert anchor in anchors(path), f"{page.name}: link {link}: no such heading in {path.name}"


# --- the contract's names are documented -----------------------------------------------------------------


def test_every_header_and_error_type_is_in_the_contract() -> None:
    design = text(ROOT / "docs" / "design.md")
    headers = [getattr(model, n) for n in dir(model) if n.endswith("_HEADER")] + ["source-offset", "truncated-from"]
    for header in headers:
        assert f"| `{header}` |" in design, f"header {header!r} is missing from docs/design.md §4.3"
    for wire_type in errors._BY_WIRE_TYPE:
        assert f"| `{wire_type}` |" in design, f"error type {wire_type!r} is missing from docs/design.md §5.4"
    codec_errors = [c.__name__ for c in vars(errors).values()
                    if isinstance(c, type) and issubclass(c, errors.CodecError)]
    for dlq_type in [*codec_errors, "MissingId"]:
        assert f"`{dlq_type}`" in design, f"DLQ error-type {dlq_type!r} is missing from docs/design.md"


def test_every_metric_is_in_the_operations_guide() -> None:
    guide = text(ROOT / "docs" / "operations.md")
    names = [m._name for module in (metrics, gateway_metrics) for m in vars(module).values()
             if hasattr(m, "_name") and hasattr(m, "_documentation")]
    assert len(names) >= 17
    for name in names:
        assert f"`{name}" in guide, f"metric {name} is missing from docs/operations.md"


# --- layout and outside references -----------------------------------------------------------------------


def test_the_readme_layout_names_every_package_module_and_top_level_folder() -> None:
    layout = text(README).split("## Layout", 1)[1]
    block = next(body for _, body in fenced_blocks(layout))
    package = ROOT / "eventconfig"
    entries = [p.name + "/" if p.is_dir() and not p.is_symlink() else p.name for p in package.iterdir()
               if p.name not in ("__init__.py", "__pycache__")]
    folders = [p.name + "/" for p in ROOT.iterdir()
               if p.is_dir() and not p.name.startswith(".") and p.name not in ("build", "dist")
               and not p.name.endswith(".egg-info")]
    for entry in [*entries, *folders]:
        assert re.search(rf"(^|\s){re.escape(entry)}", block, re.M), f"README's Layout omits {entry}"


def test_nothing_in_the_repository_cites_documents_outside_it() -> None:
    # Built from parts, so this file does not match itself.
    outside = ["../" + "shared", "shared/" + "DESIGN", "DESIGN" + " §", "DESIGN" + ".md", "reference" + " §"]
    skip = {".git", ".venv", "__pycache__", ".eventconfig", ".pytest_cache", ".hypothesis", "build", "dist"}
    offenders = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in skip and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            try:
                content = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary files cite nothing
            offenders += [f"{path.relative_to(ROOT)}: {needle}" for needle in outside if needle in content]
    assert not offenders, "cite docs/design.md or docs/compatibility.md instead: " + "; ".join(offenders)


# --- the contract's own structure: contents, where things live, changes in flight -------------------------


def design_section(number: int) -> str:
    """The text of docs/design.md's ``## N.`` section, up to the next ``## `` heading."""
    design = text(ROOT / "docs" / "design.md")
    return design.split(f"\n## {number}. ", 1)[1].split("\n## ", 1)[0]


def import_contract(contract_id: str) -> dict:
    """One import-linter contract of pyproject.toml (what `make lint` enforces), by its id."""
    config = tomllib.loads(text(ROOT / "pyproject.toml"))["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == contract_id)


def test_the_contents_line_of_the_design_lists_every_section() -> None:
    design = text(ROOT / "docs" / "design.md")
    contents = design.split("\nContents: ", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"\[(\d+) ([^\]]+)\]\(#([^)]+)\)", contents)
    sections = re.findall(r"^## (\d+)\. (.+)$", design, re.M)
    assert [(n, title) for n, title, _ in listed] == sections, "the contents line must list every `## N.` section"


def test_the_pure_core_of_where_things_live_is_the_import_linter_contract() -> None:
    bullet = design_section(11).split("The pure core:", 1)[1].split("\n* ", 1)[0]
    documented = {"eventconfig." + path.removesuffix(".py").replace("/", ".")
                  for path in re.findall(r"`([\w/]+\.py)`", bullet.split("Importing any of them", 1)[0])}
    assert documented == set(import_contract("pure-core")["source_modules"]), \
        "docs/design.md §11's pure core and pyproject.toml's pure-core contract must name the same modules"


def test_the_layers_of_where_things_live_are_the_import_linter_contract() -> None:
    block = next(body for language, body in fenced_blocks(design_section(11)) if language == "text")
    assert [line.strip() for line in block.strip().splitlines()] == import_contract("layers")["layers"]


def test_changes_in_flight_are_exactly_the_imports_the_layers_contract_still_ignores() -> None:
    """§12 lists work that is not merged yet; what the code marks as pending is the contract's ignored
    imports, so merged work cannot stay listed (lint fails on an ignored import that no longer exists)."""
    listed = set(re.findall(r"`(eventconfig[\w.]* -> eventconfig[\w.]*)`", " ".join(design_section(12).split())))
    assert listed == set(import_contract("layers").get("ignore_imports", [])), \
        "docs/design.md §12 must name exactly the imports the layers contract ignores"
    items = " ".join(design_section(12).split()).split(" * ")[1:]
    assert all(" -> " in item for item in items), "each item of §12 names the ignored imports that mark it"


def test_a_behaviour_marked_pending_names_a_change_in_flight() -> None:
    """compatibility.md's "pending (X)" points at §12: X must be one of its items, so merged work is
    not left pending there either."""
    in_flight = " ".join(design_section(12).split())
    pending = re.findall(r"\| pending \(([^)]*)\)", text(ROOT / "docs" / "compatibility.md"))
    for what in pending:
        assert what in in_flight, f"compatibility.md marks a behaviour pending ({what}) that §12 does not list"


# --- what the gateway records, the view's memory: docs that quote the code ------------------------------


def readme_section(heading: str) -> str:
    return text(README).split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_and_the_contract_tell_the_same_story_of_the_gateways_actor() -> None:
    from eventconfig.gateway.auth import ACTOR_HEADER, ANONYMOUS, UNVERIFIED_PREFIX, LoginChecker

    development = LoginChecker()
    assert development.identify(None).actor == ANONYMOUS
    assert development.identify(None, "name").actor == UNVERIFIED_PREFIX + "name"
    readme = " ".join(readme_section("HTTP API and web console").split())
    contract = " ".join(design_section(14).split("\n### 14.2", 1)[0].split())
    for name, page in (("README.md", readme), ("design.md §14.1", contract)):
        for said in (f"`{ANONYMOUS}`", f"`{UNVERIFIED_PREFIX}<name>`", "`signing_key_file`", "the caller",
                     "`on-behalf-of`", "`delegates`"):
            assert said in page, f"{name} must say how the gateway's actor is chosen: {said} is missing"
        assert ACTOR_HEADER in page.lower(), f"{name} must name the development mode's {ACTOR_HEADER} header"
        assert re.search(r"records the caller, verified", page), \
            f"{name} must say that a gateway with a signing key has its caller recorded, verified (delegation)"


def test_the_gateway_examples_history_shows_the_actor_the_gateway_records() -> None:
    """The README's curl session runs a development-mode gateway: its history shows what the gateway
    records for the writes shown, given the actor header they send (none: ``anonymous``)."""
    from eventconfig.gateway.auth import ACTOR_HEADER, LoginChecker

    session = next(body for language, body in fenced_blocks(readme_section("HTTP API and web console"))
                   if language == "console")
    writes = [line for line in session.splitlines() if line.startswith("$ curl") and "-X PUT" in line]
    headers = {(re.findall(rf"-H '{ACTOR_HEADER}: ([^']*)'", line, re.I) or [None])[0] for line in writes}
    assert len(writes) >= 1 and len(headers) == 1, "the example's writes all send the same actor header"
    shown = set(re.findall(r'"actor":"([^"]*)"', session))
    assert shown == {LoginChecker().identify(None, headers.pop()).actor}


def test_the_view_memory_formula_quotes_the_stores_column_families() -> None:
    from eventconfig.view.store import COLUMN_FAMILIES, ViewStoreOptions

    assert tuple(ViewStoreOptions().column_families()) == COLUMN_FAMILIES, "every family has write buffers"
    families, mib, defaults = len(COLUMN_FAMILIES), 1024 * 1024, Settings()
    sizing = " ".join(text(ROOT / "docs" / "operations.md").split("### Sizing a view", 1)[1].split("\n#", 1)[0].split())
    buffers = families * defaults.view_max_write_buffers * defaults.view_write_buffer_bytes // mib
    assert f"view_block_cache_bytes ({defaults.view_block_cache_bytes // mib} MiB)" in sizing
    assert f"+ {families} × view_max_write_buffers × view_write_buffer_bytes ({buffers} MiB)" in sizing
    assert f"{len(COLUMN_FAMILIES)} column families" in sizing
    small = {name: int(value) for name, value in re.findall(r"`EVENTCONFIG_(VIEW_\w+)=(\d+)`", sizing)}
    total = (small["VIEW_BLOCK_CACHE_BYTES"]
             + families * small["VIEW_MAX_WRITE_BUFFERS"] * small["VIEW_WRITE_BUFFER_BYTES"]) // mib
    assert f"(about {total} MiB)" in sizing, f"the small view's settings come to about {total} MiB"
    assert f"len(COLUMN_FAMILIES) * max_write_buffers * write_buffer_bytes`` ({families} ×)" in \
        " ".join((ViewStoreOptions.__doc__ or "").split())
