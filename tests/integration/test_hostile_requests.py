"""One request must never stop the service: hostile records go to a real broker, and afterwards
ordinary requests are still answered and every acknowledged write is still there."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import REGISTRY

from eventconfig.codec import default_codec
from eventconfig.kafka.topics import admin_client
from eventconfig.logrecords import decode_record
from eventconfig.process import ConfigService
from tests.support import wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


@pytest.fixture
async def hostile(settings):
    """A producer that may send records up to the topics' limit (the Wire's stops at 1 MiB)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                                max_request_size=settings.max_message_bytes + 1024 * 1024)
    await producer.start()
    yield producer
    await producer.stop()


def config_request() -> bytes:
    return codec.encode("ConfigRequest", {"operation": "config", "workspace": "w"})


def size(record) -> int:
    return len(record.key or b"") + len(record.value or b"") + sum(len(n) + len(v) for n, v in record.headers)


async def written_versions(wire, settings) -> list[int]:
    records = [decode_record(r.key, r.value, r.headers) for r in await wire.read_topic(settings.topics.log)]
    return [r.version for r in records if r.is_marker]


async def test_a_request_with_a_huge_id_header_is_dead_lettered_unanswered_and_the_service_keeps_going(
        service, wire, hostile, settings):
    assert (await wire.put("w", ("t", "a", "1")))["version"] == 1
    await hostile.send_and_wait(settings.topics.request, config_request(), headers=[("id", b"i" * 5_000_000)])
    assert (await wire.put("w", ("t", "b", "2")))["version"] == 2, "the writer answers requests after it"
    assert (await wire.call("config", "w"))["config"] == {"t": {"a": "1", "b": "2"}}
    (dead,) = await wire.read_topic(settings.topics.dlq)
    headers = dict(dead.headers)
    assert headers["error-type"] == b"BadId" and b"5000000 bytes" in headers["error"]
    assert "id" not in headers and headers["dropped"] == b"1: id(5000002)"
    assert size(dead) < 64 * 1024
    assert not [r for r in wire.unmatched if len(r.key or b"") > 256], "no response echoes the huge id"
    assert await written_versions(wire, settings) == [1, 2]


async def test_a_request_with_two_id_headers_is_dead_lettered_unanswered(service, wire, settings):
    first, second = wire.expect("one"), wire.expect("two")
    await wire.send_raw(codec.encode("ConfigRequest", {"operation": "put", "workspace": "w", "values": [
        {"type": "t", "key": "k", "value": "v"}]}), [("id", b"one"), ("id", b"two")])
    assert (await wire.call("config", "w"))["config"] == {}, "answered after it, and it wrote nothing"
    (dead,) = await wire.read_topic(settings.topics.dlq)
    assert dict(dead.headers)["error-type"] == b"DuplicateId"
    assert not first.done() and not second.done()


async def test_a_request_with_two_deadline_headers_is_dead_lettered_unanswered_like_two_ids(service, wire, settings):
    """docs/design.md §4.3: one rule for every repeated header of the contract. A signature covers the
    first deadline, a dict keeps the last: the request is refused rather than read either way."""
    answer = wire.expect("twice")
    await wire.send_raw(codec.encode("ConfigRequest", {"operation": "put", "workspace": "w", "values": [
        {"type": "t", "key": "k", "value": "v"}]}), [("id", b"twice"), ("deadline", b"9" * 15), ("deadline", b"1")])
    assert (await wire.call("config", "w"))["config"] == {}, "answered after it, and it wrote nothing"
    (dead,) = await wire.read_topic(settings.topics.dlq)
    assert dict(dead.headers)["error-type"] == b"DuplicateHeader"
    assert b"2 'deadline' headers" in dict(dead.headers)["error"]
    assert not answer.done()


async def test_an_undecodable_request_with_its_bulk_in_a_header_gets_a_bounded_dlq_copy(
        service, wire, hostile, settings):
    bulk = b"b" * (settings.max_message_bytes - 100 * 1024)
    answered = wire.expect("bulky")
    await hostile.send_and_wait(settings.topics.request, b"not avro", headers=[("id", b"bulky"), ("bulk", bulk)])
    assert (await wire.put("w", ("t", "k", "v")))["version"] == 1, "the writer answers requests after it"
    error = codec.decode("ConfigResponse", (await asyncio.wait_for(answered, 20)).value)["error"]
    assert error["type"] == "config-error"
    (dead,) = await wire.read_topic(settings.topics.dlq)
    headers = dict(dead.headers)
    assert dead.value == b"not avro" and headers["id"] == b"bulky" and headers["error-type"] == b"BadMarker"
    assert headers["dropped"] == f"1: bulk({len(bulk) + 4})".encode() and "bulk" not in headers
    assert size(dead) < 64 * 1024


async def lower_limits(settings, dlq_takes_it: bool) -> None:  # type: ignore[no-untyped-def]
    """The response topic takes less than the writer's own limit: a full config read cannot be produced.
    Unless ``dlq_takes_it``, the DLQ topic refuses even the short dead letter: then the request is only skipped."""
    limits = {settings.topics.response: "2048"} | ({} if dlq_takes_it else {settings.topics.dlq: "100"})
    async with admin_client(settings) as admin:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": limit})
                                   for topic, limit in limits.items()])


@pytest.mark.parametrize("dlq_takes_it", [True, False])
async def test_a_request_whose_output_the_broker_refuses_is_dead_lettered_and_skipped(
        settings, topics, wire, dlq_takes_it):
    await lower_limits(settings, dlq_takes_it)
    calls = [("put", {"values": [{"type": "t", "key": "big", "value": "x" * 4000}]}),
             ("config", {}),  # its response holds the 4000-byte value
             ("put", {"values": [{"type": "t", "key": "k", "value": "v"}]}),
             ("get", {"keys": [{"type": "t", "key": "k"}]})]
    ids = [str(uuid.uuid4()) for _ in calls]
    answers = [wire.expect(rid) for rid in ids]
    for rid, (operation, fields) in zip(ids, calls):  # all queued before the writer starts: one batch
        await wire.send_raw(codec.encode("ConfigRequest", {"operation": operation, "workspace": "w", **fields}),
                            [("id", rid.encode())])
    refused = "dlq" if dlq_takes_it else "skipped"
    before = counted("eventconfig_requests_total", operation="?", outcome=refused)
    service = ConfigService(settings, projector=False)
    await service.start()
    try:
        replies = [codec.decode("ConfigResponse", (await asyncio.wait_for(answers[i], 60)).value) for i in (0, 2, 3)]
        assert [r["version"] for r in replies[:2]] == [1, 2] and replies[2]["values"][0]["value"] == "v"
        # The other answers may have gone out before the refusal was handled (they are not in a transaction).
        await wait_until(lambda: counted("eventconfig_requests_total", operation="?", outcome=refused) == before + 1,
                         60, f"the refused read was not counted as {refused}")
        dlq = [dict(r.headers) for r in await wire.read_topic(settings.topics.dlq)]
        assert [(h["error-type"], h["id"]) for h in dlq] == ([(b"Unproducible", ids[1].encode())] if dlq_takes_it
                                                             else [])
        assert all(b"MessageSizeTooLarge" in h["error"] for h in dlq)
        assert not answers[1].done(), "the refused request is not answered"
        assert await written_versions(wire, settings) == [1, 2]
        assert (await wire.put("w", ("t", "k3", "v3")))["version"] == 3, "and the writer is back to normal"
        assert service.writer.max_records == settings.batch_max_requests
    finally:
        await service.stop()


@pytest.mark.parametrize("dlq_takes_it", [True, False])
async def test_a_read_on_the_read_topic_whose_answer_the_broker_refuses_is_dead_lettered_and_the_rest_of_its_batch_answered(
        settings, topics, wire, dlq_takes_it):
    """docs/design.md §4.6, §5.4: reads answered by any ``serve`` process are isolated like the writer's."""
    await lower_limits(settings, dlq_takes_it)
    for rid, (key, value) in (("put-big", ("big", "x" * 4000)), ("put-k", ("k", "v"))):
        await wire.send_raw(codec.encode("ConfigRequest", {"operation": "put", "workspace": "w", "values": [
            {"type": "t", "key": key, "value": value}]}), [("id", rid.encode())])
    # All on one partition of the read topic before any process runs: one batch; all answered on one
    # response partition (as a ConfigClient's are). Each read waits for both writes (min_version 2), so
    # the config read's answer holds the 4000-byte value.
    calls = [codec.encode("ConfigRequest", {"operation": "get", "workspace": "w", "min_version": 2,
                                             "keys": [{"type": "t", "key": "k"}]}),
             codec.encode("ConfigRequest", {"operation": "config", "workspace": "w", "min_version": 2}),
             b"not avro",  # answered config-error, dead-lettered BadMarker
             codec.encode("ConfigRequest", {"operation": "put", "workspace": "w", "values": [
                 {"type": "t", "key": "k", "value": "no"}]}),  # a write on the read topic: bad-request
             codec.encode("ConfigRequest", {"operation": "list", "workspace": "w", "type": "t", "min_version": 2})]
    ids = [str(uuid.uuid4()) for _ in calls]
    answers = [wire.expect(rid) for rid in ids]
    for rid, value in zip(ids, calls):
        await wire.producer.send_and_wait(settings.topics.read, value, partition=0,
                                          headers=[("id", rid.encode()), ("reply-partition", b"0")])
    outcomes = ("ok", "dlq", "skipped")
    before = [counted("eventconfig_read_topic_answers_total", outcome=outcome) for outcome in outcomes]
    service = ConfigService(replace(settings, min_version_wait_ms=120_000), projector=False)
    await service.start()
    try:
        assert service.read_server is not None
        replies = {i: codec.decode("ConfigResponse", (await asyncio.wait_for(answers[i], 60)).value)
                   for i in (0, 2, 3, 4)}
        assert replies[0]["values"][0]["value"] == "v" and replies[4]["directory"] == ["big", "k"]
        assert [replies[i]["error"]["type"] for i in (2, 3)] == ["config-error", "bad-request"]
        # Counted once sent or dead-lettered, each refused request as dlq (or skipped) and not as answered.
        expected = [2, 2, 0] if dlq_takes_it else [2, 0, 2]
        await wait_until(lambda: [counted("eventconfig_read_topic_answers_total", outcome=outcome) - was
                                  for outcome, was in zip(outcomes, before)] == expected,
                         60, f"the read topic's answers were not counted as {dict(zip(outcomes, expected))}")
        dlq = [dict(r.headers) for r in await wire.read_topic(settings.topics.dlq)]
        # Without the DLQ, the undecodable request is skipped, but its answer (not refused) has gone out.
        assert [(h["error-type"], h["id"]) for h in dlq] == ([(b"BadMarker", ids[2].encode()),
                                                              (b"Unproducible", ids[1].encode())] if dlq_takes_it
                                                             else [])
        assert all(b"MessageSizeTooLarge" in h["error"] for h in dlq if h["error-type"] == b"Unproducible")
        assert not answers[1].done(), "the refused read is not answered"
        assert (await wire.put("w", ("t", "k3", "v3")))["version"] == 3, "the service goes on"
    finally:
        await service.stop()


def counted(counter: str, **labels: str) -> float:
    """This process's value of ``counter`` with ``labels``."""
    return REGISTRY.get_sample_value(counter, labels) or 0.0
