"""The service through the wire contract only: operations, errors, versions, history, DLQ.

Numbers in test names are the behaviours numbered in docs/compatibility.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from eventconfig.codec import default_codec
from eventconfig.logrecords import decode_record

pytestmark = pytest.mark.integration
codec = default_codec()


async def test_01_02_a_request_gets_one_response_with_its_id_and_every_field(service, wire):
    response = await wire.call("config", "w")
    assert response == {"version": 0, "values": [], "directory": [], "config": {}, "error": None}
    assert wire.unmatched == []


async def test_03_04_workspace_check_comes_first_then_the_operation_check(service, wire):
    for operation in ("get", "put", "nonsense"):
        response = await wire.call(operation, "")
        assert response["error"] == {"type": "bad-request", "message": "Workspace is required"}
    assert (await wire.call("nonsense", "w"))["error"] == {"type": "bad-operation", "message": "Bad operation"}
    assert (await wire.call("config", "w"))["version"] == 0, "errors never change the version"


async def test_08_to_14_reads(service, wire):
    await wire.put("w", ("prompt", "b", "B"), ("prompt", "a", "A"), ("flow", "f", "F"))
    await wire.put("_hidden", ("prompt", "t", "T"))
    got = await wire.call("get", "w", keys=[{"type": "prompt", "key": "a"}, {"type": "prompt", "key": "zz"},
                                            {"type": "prompt", "key": "a"}])
    assert [(v["key"], v["value"], v["version"]) for v in got["values"]] == [("a", "A", 1), ("zz", None, None),
                                                                           ("a", "A", 1)]
    assert got["version"] == 2
    assert (await wire.call("list", "w", type="prompt"))["directory"] == ["a", "b"]
    assert (await wire.call("list", "w", type="nothing"))["directory"] == []
    values = (await wire.call("getvalues", "w", type="prompt"))["values"]
    assert [(v["type"], v["key"], v["value"], v["workspace"]) for v in values] == [
        ("prompt", "a", "A", ""), ("prompt", "b", "B", "")]
    every = (await wire.call("getvalues-all-ws", "", type="prompt"))["values"]
    assert [(v["workspace"], v["key"]) for v in every] == [("_hidden", "t"), ("w", "a"), ("w", "b")]
    keys = (await wire.call("getkeys-all-ws", "", type="prompt"))["values"]
    assert {v["value"] for v in keys} == {""}
    assert (await wire.call("config", "w"))["config"] == {"flow": {"f": "F"}, "prompt": {"a": "A", "b": "B"}}
    assert (await wire.call("config", "empty"))["config"] == {}


async def test_15_to_26_every_successful_write_adds_exactly_one_version(service, wire):
    assert (await wire.put("w", ("t", "k", "a")))["version"] == 1
    assert (await wire.put("w", ("t", "k", "b")))["version"] == 2
    assert (await wire.put("w", ("t", "k", "b")))["version"] == 3, "an unchanged value still counts"
    assert (await wire.put("w"))["version"] == 4, "an empty put still counts"
    assert (await wire.delete("w", ("t", "missing")))["version"] == 5, "a delete of a missing key still counts"
    assert (await wire.put("", ("t", "k", "x")))["error"]["type"] == "bad-request"
    assert (await wire.put("w", ("", "k", "x")))["error"]["type"] == "bad-request"
    assert (await wire.delete("w", ("t", "k")))["version"] == 6
    got = await wire.call("get", "w", keys=[{"type": "t", "key": "k"}])
    assert got["values"][0]["value"] is None and got["version"] == 6
    await wire.put("w1", ("t", "k", "one"))
    assert (await wire.call("config", "w2"))["config"] == {}, "workspaces are isolated"


async def test_compare_and_set_conflicts_write_nothing(service, wire):
    await wire.put("w", ("t", "k", "v1"))
    conflict = await wire.call("put", "w", values=[{"type": "t", "key": "k", "value": "v2", "if_version": 0},
                                                   {"type": "t", "key": "other", "value": "x"}])
    assert conflict["error"]["type"] == "conflict"
    ok = await wire.call("put", "w", values=[{"type": "t", "key": "k", "value": "v2", "if_version": 1}])
    assert ok["version"] == 2
    state = await wire.call("config", "w")
    assert state["config"] == {"t": {"k": "v2"}} and state["version"] == 2


async def test_min_version_reads_wait_for_the_version_or_time_out(service, wire):
    waiting = wire.expect("waits-for-1")  # expected before it is sent: the answer cannot slip past
    await wire.send_raw(codec.encode("ConfigRequest", {"operation": "config", "workspace": "w", "min_version": 1}),
                        [("id", b"waits-for-1")])
    probe = await wire.call("config", "w")  # handled after it (one partition, in order), answered at once
    assert probe["version"] == 0
    assert not waiting.done(), "a read for a future version waits (an early answer would precede the probe's)"
    await wire.put("w", ("t", "k", "v"))
    answer = codec.decode("ConfigResponse", (await asyncio.wait_for(waiting, 20)).value)
    assert answer["config"] == {"t": {"k": "v"}} and answer["version"] == 1
    late = await wire.call("config", "w", min_version=99, timeout=30)
    assert late["error"]["type"] == "timeout"


async def test_limits_give_clear_errors_and_write_nothing(service, wire):
    huge = "x" * (512 * 1024 + 1)
    response = await wire.put("w", ("t", "big", huge))
    assert response["error"]["type"] == "too-large"
    assert "limit" in response["error"]["message"]
    response = await wire.call("put", "w", values=[{"type": "t", "key": "k\x00", "value": "v"}])
    assert response["error"]["type"] == "bad-request"
    response = await wire.put("w", ("t", "k" * 600_000, "v"))
    assert response["error"]["type"] == "too-large" and "key name" in response["error"]["message"]
    assert (await wire.call("config", "w"))["version"] == 0


async def test_bad_input_goes_to_the_dlq_and_the_service_keeps_running(service, wire):
    answered = wire.expect("garbage-1")  # before sending: the answer may arrive before send_raw returns
    await wire.send_raw(b"not avro at all", [("id", b"garbage-1")])
    await wire.send_raw(b"\xc3\x01" + b"\x00" * 8 + b"body", [("id", b"unknown-fp")])
    await wire.send_raw(codec.encode("ConfigRequest", {"operation": "config", "workspace": "w"}), [])
    assert (await wire.put("w", ("t", "k", "v")))["version"] == 1, "the service still serves"
    error = codec.decode("ConfigResponse", (await asyncio.wait_for(answered, 10)).value)["error"]
    assert error["type"] == "config-error" and "undecodable" in error["message"]
    dlq = await wire.read_topic(service.settings.topics.dlq)
    reasons = [dict(r.headers)["error-type"].decode() for r in dlq]
    assert reasons == ["BadMarker", "UnknownFingerprint", "MissingId"]
    assert all(dict(r.headers)["error"] for r in dlq)


async def test_history_has_one_mutation_per_write_with_previous_values_and_actor(service, wire):
    await wire.put("w", ("t", "k", "v1"), actor="alice")
    await wire.put("w", ("t", "k", "v2"))
    await wire.delete("w", ("t", "k"))
    await wire.call("config", "w")
    mutations = [codec.decode("Mutation", r.value) for r in await wire.read_topic(service.settings.topics.history)]
    assert [(m["version"], m["operation"], m["actor"]) for m in mutations] == [
        (1, "put", "alice"), (2, "put", None), (3, "delete", None)]
    assert [(c["previous"], c["value"]) for m in mutations for c in m["changes"]] == [
        (None, "v1"), ("v1", "v2"), ("v2", None)]
    assert all(m["request_id"] and m["timestamp_ms"] > 0 for m in mutations)


async def test_log_records_of_a_write_share_its_version_and_end_with_a_commit_marker(service, wire):
    await wire.put("w", ("a", "1", "x"), ("b", "2", "y"))
    await wire.delete("w", ("a", "1"))
    records = [decode_record(r.key, r.value, r.headers) for r in await wire.read_topic(service.settings.topics.log)]
    assert [(r.item.key, r.value, r.version, r.is_marker) for r in records] == [
        ("1", "x", 1, False), ("2", "y", 1, False), ("", "", 1, True), ("1", None, 2, False), ("", "", 2, True)]


async def test_concurrent_writes_get_distinct_consecutive_versions(service, wire):
    responses = await asyncio.gather(*(wire.put("w", ("t", str(i), "v")) for i in range(50)))
    assert sorted(r["version"] for r in responses) == list(range(1, 51))


async def test_a_read_after_a_write_response_sees_the_write(service, wire):
    for i in range(20):
        key = uuid.uuid4().hex
        await wire.put("w", ("t", key, str(i)))
        got = await wire.call("get", "w", keys=[{"type": "t", "key": key}])
        assert got["values"][0]["value"] == str(i)


async def test_a_request_past_its_deadline_is_answered_timeout_and_changes_nothing(service, wire):
    async def put_with_deadline(deadline: bytes) -> dict:
        rid = str(uuid.uuid4())
        answer = wire.expect(rid)
        value = codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                               "values": [{"type": "t", "key": "k", "value": "late"}]})
        await wire.send_raw(value, [("id", rid.encode()), ("deadline", deadline)])
        return codec.decode("ConfigResponse", (await asyncio.wait_for(answer, 20)).value)

    expired = await put_with_deadline(str(int(time.time() * 1000) - 1).encode())
    assert expired["error"]["type"] == "timeout"
    malformed = await put_with_deadline(b"tomorrow")
    assert malformed["error"]["type"] == "bad-request"
    state = await wire.call("config", "w")
    assert state["version"] == 0 and state["config"] == {}, "neither request wrote anything"
    in_time = await put_with_deadline(str(int(time.time() * 1000) + 60_000).encode())
    assert in_time["version"] == 1


async def test_a_10000_item_put_is_handled_off_the_event_loop_and_the_writer_stays_active(service, wire,
                                                                                         monkeypatch):
    """The writer decodes and handles a 10,000-item put in a worker thread: the event loop (the group
    heartbeat, the pipelined commit, other requests) keeps turning meanwhile, the writer is never
    re-activated, and the view applies the version whole."""
    from eventconfig.writer import role as writer_module

    ticks, during, activations = 0, [], 0
    handle_batch = writer_module.process_batch

    def observed(raw, *args, **kwargs):  # type: ignore[no-untyped-def]
        before = ticks
        result = handle_batch(raw, *args, **kwargs)
        if any(len(r.value or b"") > 64 * 1024 for r in raw):
            during.append(ticks - before)
        return result

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    original_activate = service.writer.take_over

    async def counted_activate():  # type: ignore[no-untyped-def]
        nonlocal activations
        activations += 1
        return await original_activate()

    monkeypatch.setattr(writer_module, "process_batch", observed)
    monkeypatch.setattr(service.writer, "take_over", counted_activate)
    task = asyncio.create_task(ticker())
    try:
        items = [("t", f"k{n:05d}", f"value {n}") for n in range(10_000)]
        response = await wire.put("w", *items, timeout=120)
    finally:
        task.cancel()
    assert response["error"] is None and response["version"] == 1
    assert len(during) == 1 and during[0] >= 100, f"the event loop ran {during} times while the put was handled"
    assert activations == 0 and service.writer.active, "the writer lost its role during the put"
    assert await service.materializer.wait_for_version(1, 60), "the view did not apply the put"
    with service.materializer.store.snapshot() as view:
        assert len(list(view.scan_type("w", "t"))) == 10_000
