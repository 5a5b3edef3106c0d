"""A newly active writer builds only on a history that ends at the log's last commit marker (docs/design.md
§6, §14.3), on the real broker. Forgeries are written with a plain producer, as an attacker with write
access to the history topic would: a record appended between two writers' activations (chained
correctly, so before this check the next write chained it in and `verify --history` passed), one
claiming a version near 2^63, and a stray log marker that makes the versions jump."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY

from eventconfig.audit.chain import ALTERED, DROPPED, INSERTED
from eventconfig.audit.history_chain import verify_history
from eventconfig.cli.main import cli
from eventconfig.codec import default_codec
from eventconfig.hashchain import seal
from eventconfig.kafka.role_state import State
from eventconfig.logrecords import marker_record
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from tests.integration.test_versions_after_failover import send
from tests.support import running_service, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


async def forge_history(settings: Settings, wire, version: int) -> int:  # type: ignore[no-untyped-def]
    """A Mutation at ``version``, chained to the history's last record (what only the marker can expose);
    its offset."""
    last = codec.decode("Mutation", (await wire.read_topic(settings.topics.history))[-1].value)
    forged = seal({"version": version, "timestamp_ms": 1, "request_id": "forged", "actor": "admin",
                   "actor_verified": True, "workspace": "w", "operation": "put",
                   "changes": [{"type": "t", "key": "k", "value": "evil", "previous": None}]}, last["hash"])
    await send(settings, settings.topics.history, str(version).encode(), codec.encode("Mutation", forged))
    return (await wire.read_topic(settings.topics.history))[-1].offset


@asynccontextmanager
async def started(settings: Settings, data_dir: Path) -> AsyncIterator[ConfigService]:
    """A service started without waiting for its writer to become active."""
    service = ConfigService(dataclasses.replace(settings, data_dir=data_dir), projector=False)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def refusing() -> float | None:
    return REGISTRY.get_sample_value("eventconfig_role_refusing", {"role": "writer"})


async def assert_refuses(service: ConfigService, wire) -> None:  # type: ignore[no-untyped-def]
    await wait_until(lambda: service.writer.state is State.REFUSING, 60, "the writer did not refuse")
    assert refusing() == 1
    with pytest.raises(asyncio.TimeoutError):  # neither a write nor a read is answered by a refusing writer
        await wire.put("w", ("t", "k", "after"), timeout=3)


async def test_a_forged_record_appended_between_two_writers_is_refused_at_take_over_and_named_by_verify(
        settings, topics, wire, tmp_path, caplog):
    async with running_service(settings):
        for i in range(2):
            assert (await wire.put("w", ("t", "k", str(i))))["error"] is None
    offset = await forge_history(settings, wire, 3)
    async with started(settings, tmp_path / "b") as service:
        await assert_refuses(service, wire)
        reasons = [r.getMessage() for r in caplog.records if "refuses to take over" in r.getMessage()]
        assert len(reasons) == 1 and f"history's last record (offset {offset}) is version 3, the log's last " \
            "commit marker version 2" in reasons[0], "one line says why"
    history = [codec.decode("Mutation", r.value) for r in await wire.read_topic(settings.topics.history)]
    assert [m["request_id"] for m in history][-1] == "forged", "nothing was chained after the forged record"
    report = await verify_history(settings)
    assert report.first_bad is not None and \
        (report.first_bad.kind, report.first_bad.version, report.first_bad.offset) == (INSERTED, 3, offset)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["--topic-prefix", settings.topic_prefix,
                                                               "--bootstrap-servers", settings.bootstrap_servers,
                                                               "--log-level", "WARNING", "verify", "--history"])
    assert result.exit_code == 1 and f"version 3 (offset {offset}): inserted" in result.output


async def test_a_huge_version_can_neither_overflow_the_writer_nor_wedge_reads(settings, topics, wire, tmp_path):
    async with running_service(settings):
        assert (await wire.put("w", ("t", "k", "1")))["version"] == 1
    stray = marker_record(2**63 - 1)  # in the log: a reader skips a version above the bound
    await send(settings, settings.topics.log, stray.key, stray.value)
    async with running_service(dataclasses.replace(settings, data_dir=tmp_path / "fresh")):
        assert (await wire.put("w", ("t", "k", "2")))["version"] == 2
        got = await wire.call("get", "w", keys=[{"type": "t", "key": "k"}], timeout=10)
        assert (got["error"], got["values"][0]["value"]) == (None, "2")
    offset = await forge_history(settings, wire, 2**63 - 1)  # in the history: the writer refuses, never adds 1 to it
    async with started(settings, tmp_path / "again") as service:
        await assert_refuses(service, wire)
    report = await verify_history(settings)
    assert report.first_bad is not None and (report.first_bad.kind, report.first_bad.offset) == (ALTERED, offset)
    assert "outside 0..9007199254740991" in report.lines()[0]


async def test_a_gap_in_the_history_versions_is_reported_by_verify(settings, topics, wire, tmp_path):
    async with running_service(settings):
        assert (await wire.put("w", ("t", "k", "1")))["version"] == 1
    stray = marker_record(10)  # a stray log marker moves the views (and so the next version) to 10
    await send(settings, settings.topics.log, stray.key, stray.value)
    async with running_service(dataclasses.replace(settings, data_dir=tmp_path / "fresh")):
        assert (await wire.put("w", ("t", "k", "2")))["version"] == 11
    report = await verify_history(settings)
    assert report.first_bad is not None and (report.first_bad.kind, report.first_bad.version) == (DROPPED, 11)
    assert "versions 2 to 10 are missing" in report.lines()[0]
