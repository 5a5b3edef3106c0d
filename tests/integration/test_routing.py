"""Response routing on the real broker (docs/design.md §4.3 ``reply-partition``, operations.md Sizing).

A client reads one response partition and asks for its answers there; requests without the header
(the raw ``wire`` client reads every partition) are answered on the partition the stable hash of their
id picks; a malformed header is a ``bad-request``, an out-of-range one is ignored. The ``settings``
fixture gives the response topic 4 partitions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
import zlib

import pytest
from aiokafka.admin import NewPartitions

from eventconfig.client import ClientError, ConfigClient
from eventconfig.codec import default_codec
from eventconfig.kafka.topics import admin_client, check_topics
from eventconfig.settings import Settings
from tests.support import running_service

pytestmark = pytest.mark.integration
codec = default_codec()


def hashed_partition(request_id: str, partitions: int) -> int:
    return zlib.crc32(request_id.encode()) % partitions


async def raw_call(wire, headers: list[tuple[str, bytes]], operation: str = "config", **fields) -> tuple[int, dict]:
    """Send one request with ``headers`` besides its id; (partition it was answered on, response)."""
    rid = str(uuid.uuid4())
    answer = wire.expect(rid)
    value = codec.encode("ConfigRequest", {"operation": operation, "workspace": "w", **fields})
    await wire.send_raw(value, [("id", rid.encode()), *headers])
    record = await asyncio.wait_for(answer, 20)
    return record.partition, codec.decode("ConfigResponse", record.value)


async def test_a_client_reads_only_the_answers_on_its_own_partition(settings: Settings, service):
    async with ConfigClient(settings, reply_partition=1) as quiet, ConfigClient(settings, reply_partition=2) as busy:
        assert (quiet.reply_partition, busy.reply_partition) == (1, 2)
        await quiet.version()
        for i in range(40):
            await busy.put("w", "t", f"k{i}", "v")
        await quiet.version()  # answered after all of busy's: any of theirs on partition 1 came first
        assert quiet.responses_read == 2, "the quiet client read only its own two answers"
        assert busy.responses_read == 40


async def test_clients_without_a_partition_pick_one_of_the_topic_and_work(settings: Settings, service):
    async with ConfigClient(settings) as client:
        assert client.reply_partition in range(settings.response_partitions)
        version = await client.put("w", "t", "k", "v")
        assert await client.get("w", "t", "k", min_version=version) == "v"


async def test_a_request_naming_a_partition_is_answered_there(service, wire):
    partition, response = await raw_call(wire, [("reply-partition", b"3")])
    assert partition == 3 and response["error"] is None


async def test_a_request_without_the_header_is_answered_on_the_hashed_partition(service, wire):
    rid = str(uuid.uuid4())
    answer = wire.expect(rid)
    await wire.send_raw(codec.encode("ConfigRequest", {"operation": "config", "workspace": "w"}),
                        [("id", rid.encode())])
    record = await asyncio.wait_for(answer, 20)
    assert record.partition == hashed_partition(rid, 4)
    assert codec.decode("ConfigResponse", record.value)["error"] is None


async def test_an_out_of_range_partition_is_ignored_and_a_malformed_one_is_a_bad_request(service, wire):
    put = {"operation": "put", "values": [{"type": "t", "key": "k", "value": "v"}]}
    partition, response = await raw_call(wire, [("reply-partition", b"99")], **put)
    assert response["error"] is None and response["version"] == 1, "handled as if the header were absent"
    for malformed in (b"one", b"-1", b"1234567890", b"\xff"):
        partition, response = await raw_call(wire, [("reply-partition", malformed)], **put)
        assert response["error"]["type"] == "bad-request", malformed
        assert "reply-partition" in response["error"]["message"]
    _, state = await raw_call(wire, [])
    assert state["version"] == 1, "the malformed requests wrote nothing"


async def test_partitions_added_to_a_live_topic_are_used(settings: Settings, service):
    async with admin_client(settings) as admin:
        await admin.create_partitions({settings.topics.response: NewPartitions(6)})
    async with ConfigClient(settings, reply_partition=5, timeout=20) as client:
        assert await client.version() == 0, "the writer learnt of partition 5 and answered there"
        assert client.responses_read == 1


async def test_a_one_partition_response_topic_of_an_older_deployment_keeps_working(settings: Settings):
    older = dataclasses.replace(settings, response_partitions=1)
    async with running_service(older):
        async with admin_client(settings) as admin:
            warnings = await check_topics(admin, settings)  # the newer settings want 4: a warning only
        assert any(f"{settings.topics.response} (response) has 1 partitions" in w for w in warnings)
        async with ConfigClient(settings) as client:
            assert client.reply_partition == 0
            assert await client.put("w", "t", "k", "v") == 1


async def test_a_client_asking_for_a_partition_the_topic_lacks_fails_to_start(settings: Settings, topics):
    client = ConfigClient(settings, reply_partition=4)
    with pytest.raises(ClientError, match="has no partition 4 \\(it has 4\\)"):
        await client.start()
    assert client.reply_partition is None
