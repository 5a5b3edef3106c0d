"""Audit commands without a broker: option checks, time parsing and bad import files fail clearly."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventconfig.cli.main import cli


@pytest.fixture
def invoke():
    """Run the `eventconfig` group (its logging setup is undone afterwards)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def call(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--bootstrap-servers", "127.0.0.1:1", *args], input=input)

    yield call
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("args,message", [
    (["state"], "give exactly one of --at-version and --at-time"),
    (["state", "--at-version", "1", "--at-time", "0"], "give exactly one of --at-version and --at-time"),
    (["history", "--follow", "--format", "json"], "--follow prints as mutations arrive"),
    (["history", "--from-version", "5", "--to-version", "2"], "--from-version is above --to-version"),
    (["history", "--since", "last tuesday"], "is not a time: use ISO-8601"),
    (["state", "--at-version", "-1"], "x>=0"),
    (["verify", "--scratch", "--no-catch-up"], "--scratch builds its own view"),
    (["diff", "--from", "1"], "Missing option '--to'"),
])
def test_wrong_options_are_usage_errors(invoke, args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_an_import_of_a_file_that_is_not_an_export_fails_before_connecting(invoke, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    result = invoke("import", "-i", str(bad))
    assert result.exit_code == 1
    assert f"error: {bad} is not an eventconfig-export/1 document: 'format' is 'something-else'" in result.stderr
    result = invoke("import", input="not json")
    assert result.exit_code == 1 and "error: standard input is not JSON" in result.stderr
    result = invoke("import", "-i", str(tmp_path / "missing.json"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_every_audit_command_is_registered_with_help(invoke):
    for name in ("history", "state", "diff", "rebuild", "verify", "export", "import"):
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Usage: cli " + name in result.output
