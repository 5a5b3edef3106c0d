"""The request limits as settings: given by flag or environment, and refused when they cannot hold."""

from __future__ import annotations

import pytest

from eventconfig.settings import Settings, SettingsError


def test_the_name_id_and_actor_limits_come_from_the_environment():
    settings = Settings.load(env={"EVENTCONFIG_MAX_NAME_BYTES": "64", "EVENTCONFIG_MAX_ID_BYTES": "40",
                                  "EVENTCONFIG_MAX_ACTOR_BYTES": "32"})
    assert (settings.max_name_bytes, settings.max_id_bytes, settings.max_actor_bytes) == (64, 40, 32)
    assert settings.max_response_bytes == settings.max_message_bytes - 64 * 1024


@pytest.mark.parametrize("overrides, problem", [
    ({"max_name_bytes": 0}, "must be positive"),
    ({"max_id_bytes": 20_000}, "at most 16384"),
    ({"max_value_bytes": 1024 * 1024 - 64 * 1024 - 3 * 1024, "max_message_bytes": 1024 * 1024}, "three names"),
])
def test_limits_that_could_not_hold_are_refused(overrides, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings.load(overrides, env={})


def test_writer_pokes_is_read_as_a_boolean_and_refuses_anything_else():
    assert Settings.load(env={}).writer_pokes is True
    assert Settings.load(env={"EVENTCONFIG_WRITER_POKES": "false"}).writer_pokes is False
    assert Settings.load(env={"EVENTCONFIG_WRITER_POKES": "True"}).writer_pokes is True
    with pytest.raises(SettingsError, match="EVENTCONFIG_WRITER_POKES='no' is not true or false"):
        Settings.load(env={"EVENTCONFIG_WRITER_POKES": "no"})
