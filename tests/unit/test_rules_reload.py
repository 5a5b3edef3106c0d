"""Rules files re-read while running (docs/design.md §14.4): a changed file is read again on use once the
check interval has passed, SIGHUP (``reload_all``) and a take-over read it at once, and a file that no
longer parses keeps the previous rules with one error line and a metric."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from eventconfig.settings import Settings
from eventconfig.writer.policy import Policy
from eventconfig.writer.rules import ServiceRules, WatchedFile, reload_all
from tests.support import Clock


def policy(path: Path, admin: str) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({"admins": [admin], "rules": []}))
    os.replace(temp, path)  # a new inode, as editors and `eventconfig keys` write


def admins(watched: WatchedFile[Policy]) -> frozenset[str]:
    return frozenset(watched.current().admins)


@pytest.fixture
def file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    policy(path, "alice")
    return path


def test_a_changed_file_is_read_again_once_the_check_interval_has_passed(file: Path) -> None:
    clock = Clock()
    watched = WatchedFile(str(file), Policy.load, "policy", check_s=2.0, clock=clock)
    policy(file, "bob")
    clock.now = 1.0
    assert admins(watched) == {"alice"}, "not looked at before the interval"
    clock.now = 2.0
    assert admins(watched) == {"bob"}


def test_sighup_and_a_take_over_read_the_files_at_once(file: Path, tmp_path: Path) -> None:
    clock = Clock()
    watched = WatchedFile(str(file), Policy.load, "policy", clock=clock)
    policy(file, "bob")
    reload_all()
    assert admins(watched) == {"bob"}
    rules = ServiceRules.from_settings(_settings(policy_file=str(file)))
    policy(file, "carol")
    _, fresh = rules.read_afresh()
    assert fresh is not None and set(fresh.admins) == {"carol"}


def test_a_file_that_no_longer_parses_keeps_the_previous_rules_with_one_error_line_and_a_metric(
        file: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    watched = WatchedFile(str(file), Policy.load, "policy", clock=clock)
    before = failures()
    file.write_text("admins: [unclosed")
    clock.now = 5.0
    with caplog.at_level(logging.ERROR, logger="eventconfig.writer.rules"):
        assert admins(watched) == {"alice"}
        clock.now = 10.0
        assert admins(watched) == {"alice"}, "the same broken file is not read again"
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "the previous rules stay in force" in caplog.records[0].getMessage()
    assert failures() == before + 1
    policy(file, "bob")
    clock.now = 15.0
    assert admins(watched) == {"bob"}, "a fixed file is read at its next change"


def failures() -> float:
    return REGISTRY.get_sample_value("eventconfig_rules_reload_failures_total", {"file": "policy"}) or 0.0


def _settings(**values: str) -> Settings:
    return Settings.load(values, env={})
