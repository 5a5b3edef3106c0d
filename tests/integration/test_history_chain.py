"""The tamper-evident history on the real broker: the service chains every Mutation (across a writer
fail-over too), and `eventconfig verify --history` names the first version an attacker with write
access to the topics altered, inserted, dropped or reordered (docs/design.md §14.3).

Forgeries are produced with a plain producer, as an attacker would: appended to the live history, or
a rewritten history (the topic deleted and re-created) in a copy of the deployment.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from click.testing import CliRunner

from eventconfig.audit.chain import ALTERED, DROPPED, INSERTED, REORDERED
from eventconfig.audit.history_chain import verify_history
from eventconfig.cli.main import cli
from eventconfig.codec import default_codec
from eventconfig.hashchain import seal
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.settings import Settings
from tests.support import running_service

pytestmark = pytest.mark.integration
codec = default_codec()


async def produce(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes | None, list]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def raw(record: ConsumerRecord) -> tuple[bytes | None, bytes | None, list]:
    return record.key, record.value, list(record.headers)


async def rewritten(settings: Settings, name: str, log: list[ConsumerRecord], history: list) -> Settings:
    """A copy of the deployment whose history topic holds ``history`` (raw tuples) instead."""
    copy = dataclasses.replace(settings, topic_prefix=f"{settings.topic_prefix}-{name}")
    async with admin_client(copy) as admin:
        await create_topics(admin, copy)
    await produce(copy, copy.topics.log, [raw(r) for r in log])
    await produce(copy, copy.topics.history, history)
    return copy


def forged(record: ConsumerRecord, **changes) -> tuple[bytes | None, bytes, list]:
    mutation = {**codec.decode("Mutation", record.value), **changes}
    return record.key, codec.encode("Mutation", mutation), []


async def written(settings: Settings, wire, count: int) -> tuple[list[ConsumerRecord], list[ConsumerRecord]]:  # type: ignore[no-untyped-def]
    """``count`` puts through the running service; then its history and log records."""
    for i in range(count):
        assert (await wire.put("w", ("t", "k", str(i))))["error"] is None
    return await wire.read_topic(settings.topics.history), await wire.read_topic(settings.topics.log)


async def test_the_service_chains_its_history_across_a_fail_over_and_verify_passes(settings, topics, wire):
    async with running_service(settings):
        for i in range(3):
            assert (await wire.put("w", ("t", "k", str(i))))["error"] is None
    async with running_service(settings):  # a new writer continues the chain from the history's tail
        assert (await wire.put("w", ("t", "k", "after")))["error"] is None
    history = [codec.decode("Mutation", r.value) for r in await wire.read_topic(settings.topics.history)]
    assert [m["prev_hash"] for m in history[1:]] == [m["hash"] for m in history[:-1]]
    report = await verify_history(settings)
    assert report.ok and (report.first_chained, report.last_version) == (1, 4) and report.head == history[-1]["hash"]


async def test_verify_history_names_the_first_altered_inserted_dropped_or_reordered_version(settings, topics, wire):
    async with running_service(settings):
        history, log = await written(settings, wire, 4)
        assert (await verify_history(settings)).ok
        h = history
        cases = {
            # content changed, hash kept
            "altered": ([raw(h[0]), forged(h[1], actor="mallory"), *map(raw, h[2:])], ALTERED, 2),
            # content changed and re-sealed: the next record no longer links to it
            "resealed": ([raw(h[0]), forged(h[1], **seal({**codec.decode("Mutation", h[1].value), "actor": "mallory"},
                                                         codec.decode("Mutation", h[0].value)["hash"])),
                          *map(raw, h[2:])], DROPPED, 3),
            "dropped": ([raw(h[0]), *map(raw, h[2:])], DROPPED, 3),
            "reordered": ([raw(h[0]), raw(h[2]), raw(h[1]), raw(h[3])], REORDERED, 3),
            "duplicated": ([raw(h[0]), raw(h[1]), raw(h[1]), *map(raw, h[2:])], INSERTED, 2),
        }
        for name, (records, kind, version) in cases.items():
            report = await verify_history(await rewritten(settings, name, log, records))
            assert report.first_bad is not None, name
            assert (report.first_bad.kind, report.first_bad.version) == (kind, version), name

        # Appended to the live topic, perfectly chained: only the log's commit marker gives it away.
        last = codec.decode("Mutation", h[-1].value)
        extra = seal({**last, "version": 5, "request_id": "forged", "actor": "mallory"}, last["hash"])
        await produce(settings, settings.topics.history, [(b"5", codec.encode("Mutation", extra), [])])
        report = await verify_history(settings)
        assert report.first_bad is not None and (report.first_bad.kind, report.first_bad.version) == (INSERTED, 5)


async def test_verify_history_on_the_cli_exits_1_with_one_line_naming_the_first_bad_version(settings, topics, wire):
    async with running_service(settings):
        history, log = await written(settings, wire, 2)
    args = ["--bootstrap-servers", settings.bootstrap_servers, "--log-level", "WARNING", "verify", "--history"]
    good = await asyncio.to_thread(CliRunner().invoke, cli, ["--topic-prefix", settings.topic_prefix, *args])
    assert good.exit_code == 0 and "OK: history chain intact from version 1 to 2" in good.stdout, good.output
    head = good.stdout.strip().rsplit("head ", 1)[1]
    anchored = await asyncio.to_thread(CliRunner().invoke, cli, ["--topic-prefix", settings.topic_prefix, *args,
                                                                  "--anchor", head])
    assert anchored.exit_code == 0, anchored.output
    malformed = await asyncio.to_thread(CliRunner().invoke, cli, ["--topic-prefix", settings.topic_prefix, *args,
                                                                   "--anchor", "2:nothex"])
    assert malformed.exit_code == 2 and "is not VERSION:HASH" in malformed.output
    bad = await rewritten(settings, "cli", log, [forged(history[0], workspace="elsewhere"), raw(history[1])])
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["--topic-prefix", bad.topic_prefix, *args])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == ["verify --history failed: version 1 (offset 0): altered: its "
                                                  "content does not match its hash"]
