"""The initialiser list is validated whole at start: every mistake is a typed, named, fatal error.

Messages follow TrustGraph's where it has them (docs/compatibility.md behaviour 62).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventconfig.bootstrap import (Bootstrapper, Cadence, ClassPathError, Configured, InstantiationError, SpecError,
                                   UnknownParams, build_initialisers, load_entries)
from eventconfig.bootstrap.initialisers import KafkaTopology, TemplateSeed, WorkspaceInit
from eventconfig.cli.main import cli
from eventconfig.errors import EventConfigError
from eventconfig.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CORE = "eventconfig.bootstrap.initialisers"


@pytest.fixture
def seed_file(tmp_path: Path) -> str:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"prompt": {"system": "hi"}}))
    return str(path)


def entry(name: str = "topology", cls: str = f"{CORE}.KafkaTopology", flag: object = "v1", **more: object) -> dict:
    return {"class": cls, "name": name, "flag": flag, **more}


def build_error(*entries: object) -> SpecError:
    with pytest.raises(SpecError) as caught:
        build_initialisers(entries)  # type: ignore[arg-type]
    return caught.value


# --- the file ------------------------------------------------------------------------------------


def test_yaml_and_json_files_give_the_same_entries(tmp_path: Path) -> None:
    wanted = [entry(params={"replication_factor": 1})]
    (tmp_path / "a.yaml").write_text("initialisers:\n  - {class: %s.KafkaTopology, name: topology, flag: v1,"
                                     " params: {replication_factor: 1}}\n" % CORE)
    (tmp_path / "a.json").write_text(json.dumps({"initialisers": wanted}))
    assert load_entries(tmp_path / "a.yaml") == load_entries(tmp_path / "a.json") == wanted


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "expected a mapping with an 'initialisers' key"),
    ('{"other": []}', "expected a mapping with an 'initialisers' key"),
    ('{"initialisers": [], "x": 1}', "unknown top-level key(s) 'x'"),
    ('{"initialisers": []}', "'initialisers' must be a non-empty list"),
    ('{"initialisers": {"a": 1}}', "'initialisers' must be a non-empty list"),
    ("{not json", "not valid JSON"),
])
def test_a_malformed_file_is_refused_with_its_path(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "boot.json"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_entries(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_a_missing_file_and_broken_yaml_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the initialiser file"):
        load_entries(tmp_path / "nope.yaml")
    (tmp_path / "bad.yml").write_text("initialisers: [\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_entries(tmp_path / "bad.yml")


# --- entries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["class", "name", "flag"])
def test_a_missing_required_field_is_named(missing: str) -> None:
    broken = entry()
    del broken[missing]
    assert str(build_error(broken)) == f"Initialiser entry missing required field {missing!r}: {broken!r}"


def test_an_entry_that_is_not_a_mapping_is_refused() -> None:
    assert str(build_error("topology")) == "Initialiser entry must be a mapping, got: 'topology'"


def test_a_duplicate_name_is_refused_also_across_built_entries() -> None:
    assert str(build_error(entry("a"), entry("b"), entry("a"))) == "Duplicate initialiser name 'a'"
    built = Configured("a", "v1", KafkaTopology())
    assert str(build_error(built, entry("a"))) == "Duplicate initialiser name 'a'"


def test_a_misspelt_field_bad_params_bad_name_or_bad_flag_is_refused() -> None:
    assert "unknown field(s) 'parmas'" in str(build_error(entry(parmas={})))
    assert "params must be a mapping" in str(build_error(entry(params=["replication_factor"])))
    assert str(build_error(entry(name=""))) == "Initialiser name must not be empty: ''"
    for flag in (None, ["v1"], {"v": 1}):
        assert "flag must be a string, number or boolean" in str(build_error(entry(flag=flag)))


@pytest.mark.parametrize("path, message", [
    ("KafkaTopology", "Initialiser class must be a dotted path, got 'KafkaTopology'"),
    ("eventconfig.", "Initialiser class must be a dotted path, got 'eventconfig.'"),
    ("eventconfig.nope.Thing", "Cannot import initialiser class 'eventconfig.nope.Thing' for 'topology': "
                               "ModuleNotFoundError: No module named 'eventconfig.nope'"),
    (f"{CORE}.NoSuchClass", f"Cannot import initialiser class '{CORE}.NoSuchClass' for 'topology': module "
                            f"'{CORE}' has no attribute 'NoSuchClass'"),
    ("eventconfig.model.ItemKey", "Initialiser class 'eventconfig.model.ItemKey' for 'topology' is not a subclass "
                                  "of eventconfig.bootstrap.Initialiser"),
])
def test_a_class_path_that_does_not_give_an_initialiser_is_refused(path: str, message: str) -> None:
    error = build_error(entry(cls=path))
    assert isinstance(error, ClassPathError) and str(error) == message


def test_a_module_that_fails_on_import_is_refused_with_its_error(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "broken_init.py").write_text("raise RuntimeError('no licence key')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    error = build_error(entry(cls="broken_init.Thing"))
    assert str(error) == ("Cannot import initialiser class 'broken_init.Thing' for 'topology': "
                          "RuntimeError: no licence key")


def test_unknown_params_are_refused_with_what_the_initialiser_accepts(seed_file: str) -> None:
    error = build_error(entry("seed", f"{CORE}.TemplateSeed", params={"config_fiel": seed_file}))
    assert isinstance(error, UnknownParams)
    assert str(error) == (f"Initialiser 'seed' ({CORE}.TemplateSeed) got unknown param(s) 'config_fiel'; "
                          "it accepts: config_file, overwrite")


def test_an_initialiser_taking_kwargs_accepts_any_params(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "lax_init.py").write_text(
        "from eventconfig.bootstrap import Initialiser\n"
        "class Lax(Initialiser):\n"
        "    def __init__(self, **params):\n"
        "        self.params = params\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    [built] = build_initialisers([entry("lax", "lax_init.Lax", params={"anything": 1})])
    assert built.initialiser.params == {"anything": 1}  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls, params, message", [
    ("TemplateSeed", {}, "TypeError: TemplateSeed.__init__() missing 1 required keyword-only argument: 'config_file'"),
    ("TemplateSeed", {"config_file": ""}, "ValueError: TemplateSeed requires 'config_file'"),
    ("TemplateSeed", {"config_file": "/nope/seed.json"}, "InitialiserError: /nope/seed.json: cannot read"),
    ("WorkspaceInit", {"source": "git"}, "ValueError: source must be one of template, seed-file, got 'git'"),
    ("WorkspaceInit", {"source": "seed-file"}, "ValueError: WorkspaceInit requires 'seed_file' when source is "
                                               "'seed-file'"),
    ("WorkspaceInit", {"workspace": "__template__"}, "ValueError: workspace '__template__' is reserved"),
    ("WorkspaceInit", {"overwrite": "yes"}, "TypeError: overwrite must be true or false, got 'yes'"),
    ("KafkaTopology", {"replication_factor": 0}, "ValueError: replication_factor must be an integer >= 1, got 0"),
])
def test_a_constructor_failure_is_refused_with_the_seeds_message(cls: str, params: dict, message: str) -> None:
    error = build_error(entry("it", f"{CORE}.{cls}", params=params))
    assert isinstance(error, InstantiationError)
    assert str(error).startswith(f"Failed to instantiate initialiser '{CORE}.{cls}' as 'it': {message}")


def test_every_configuration_error_is_an_eventconfig_error() -> None:
    assert issubclass(SpecError, EventConfigError)
    assert all(issubclass(c, SpecError) for c in (ClassPathError, UnknownParams, InstantiationError))
    with pytest.raises(SpecError, match="gate_down must be a positive"):
        Cadence(gate_down=0)


# --- the shipped example and a third-party initialiser ------------------------------------------


def test_the_example_file_builds_the_three_core_initialisers(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    built = Bootstrapper.from_file(Settings(), "examples/bootstrap.yaml").entries
    assert [(b.name, type(b.initialiser), b.pre_gate) for b in built] == [
        ("kafka-topology", KafkaTopology, True), ("template-seed", TemplateSeed, False),
        ("workspace-default", WorkspaceInit, False)]


def test_a_third_party_initialiser_loads_by_dotted_path_from_outside_the_package(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "examples" / "thirdparty"))
    [built] = build_initialisers([entry("acme", "acme_init.AcmeFeatureFlags", "2026-01",
                                        params={"flags": {"new-search": True}})])
    assert type(built.initialiser).__module__ == "acme_init" and not built.pre_gate
    assert isinstance(build_error(entry("acme", "acme_init.AcmeFeatureFlags", params={"flags": {}})),
                      InstantiationError)


def test_the_command_refuses_a_bad_file_with_a_clear_error_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "boot.yaml"
    path.write_text("initialisers:\n  - {class: x.Y, name: a, flag: v1}\n  - {class: x.Y, name: a, flag: v1}\n")
    result = CliRunner().invoke(cli, ["bootstrap", "-c", str(path), "--once"])
    assert result.exit_code == 1
    assert "Cannot import initialiser class 'x.Y' for 'a'" in result.output
