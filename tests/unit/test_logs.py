"""Structured logging: key=value fields, and no false alarms from a fresh broker."""

from __future__ import annotations

import logging

import pytest

from eventconfig.logs import setup_logging


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = saved[0], saved[1]


def test_fields_render_as_key_value_and_transient_coordinator_errors_are_warnings(capsys):
    setup_logging("INFO", "text")
    logging.getLogger("eventconfig.test").info("caught up", extra={"fields": {"version": 42, "offset": 97}})
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    coordinator.error("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
    coordinator.error("a real failure")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("INFO eventconfig.test caught up version=42 offset=97")
    assert " WARNING aiokafka.consumer.group_coordinator Group Coordinator" in lines[1]
    assert " ERROR aiokafka.consumer.group_coordinator a real failure" in lines[2]
