"""docs/design.md §9.1: an acknowledged write survives a crash of the broker itself (kill -9 and restart).

It never skips: the ``local_broker`` fixture starts a dedicated broker for it.
"""

from __future__ import annotations

import asyncio

import pytest

from eventconfig.codec import default_codec
from eventconfig.settings import Settings

pytestmark = pytest.mark.integration
codec = default_codec()


@pytest.fixture
def settings(settings_on_local_broker: Settings) -> Settings:
    """This module's deployments live on the broker the test crashes (never on a shared one)."""
    return settings_on_local_broker


async def put_until_acknowledged(wire, key: str, deadline_s: float = 90) -> int:
    """Retry one write (as a client would) until the service answers it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        try:
            response = await wire.put("w", ("t", key, key), timeout=3)
            assert response["error"] is None, response
            return response["version"]
        except asyncio.TimeoutError:
            assert loop.time() < deadline, f"no answer to {key} within {deadline_s} s of the broker restart"


async def test_acknowledged_writes_survive_a_broker_crash(local_broker, service, wire):
    acknowledged = {f"before-{i}": await put_until_acknowledged(wire, f"before-{i}") for i in range(20)}
    local_broker.kill()
    await asyncio.to_thread(local_broker.start)
    for i in range(20):
        acknowledged[f"after-{i}"] = await put_until_acknowledged(wire, f"after-{i}")

    state = (await wire.call("config", "w", timeout=30))["config"]["t"]
    assert {k: state.get(k) for k in acknowledged} == {k: k for k in acknowledged}
    versions = [codec.decode("Mutation", r.value)["version"]
                for r in await wire.read_topic(service.settings.topics.history)]
    assert versions == list(range(1, len(versions) + 1)), "no version lost or repeated across the restart"
    assert set(acknowledged.values()) <= set(versions)
