"""ConfigClient without a broker: request building, response reading, correlation, timeouts, failures.

The wire mapping (``eventconfig.client.wire``) is pure. The client's correlation logic is driven
through fake producer/consumer objects that answer like a tiny in-memory service.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

from eventconfig.cli.config_commands import dump_cmd, put_cmd
from eventconfig.client import ClientError, ConfigClient, ConfigItem, Versioned, build_request, check_response
from eventconfig.client.wire import header_value, new_request_id, request_headers, response_items
from eventconfig.codec import default_codec
from eventconfig.errors import (BadOperation, BadRequest, ConfigError, Conflict, ReadTimeout, RequestError,
                                RequestTimeout, TooLarge)
from eventconfig.settings import Settings

codec = default_codec()


# --- requests ------------------------------------------------------------------------------------


def test_put_request_carries_values_with_per_item_if_version_and_an_empty_value_workspace():
    item = ConfigItem("elsewhere", "t", "c", "3", version=9)
    request = build_request("put", "w", values=[("t", "a", "1"), ("t", "b", "2", 0), item,
                                                {"type": "t", "key": "d", "value": "4", "if_version": 5}])
    assert request["operation"] == "put" and request["workspace"] == "w"
    assert request["keys"] == [] and request["min_version"] is None
    assert [(v["type"], v["key"], v["value"], v["if_version"]) for v in request["values"]] == [
        ("t", "a", "1", None), ("t", "b", "2", 0), ("t", "c", "3", None), ("t", "d", "4", 5)]
    # a read item's version is never silently turned into a precondition; the request workspace rules
    assert all(v["workspace"] == "" and v["version"] is None for v in request["values"])


def test_delete_request_carries_keys_with_if_version():
    request = build_request("delete", "w", keys=[("t", "a"), ("t", "b", 3), ConfigItem("w", "u", "c", "x", 4)])
    assert request["keys"] == [{"type": "t", "key": "a", "if_version": None},
                               {"type": "t", "key": "b", "if_version": 3},
                               {"type": "u", "key": "c", "if_version": None}]
    assert request["values"] == []


def test_min_version_is_a_request_field_and_all_workspace_reads_have_no_workspace():
    request = build_request("getvalues-all-ws", type="flow", min_version=12)
    assert (request["workspace"], request["type"], request["min_version"]) == ("", "flow", 12)


@pytest.mark.parametrize("request_", [
    build_request("get", "w", keys=[("t", "a"), ("t", "a")], min_version=0),
    build_request("put", "w", values=[("t", "k", "", 0), ("t", "k2", "ünïcødé ✓")]),
    build_request("delete", "w", keys=[("t", "k", 7)]),
    build_request("config", "w"),
])
def test_requests_encode_to_single_object_avro_and_decode_back_unchanged(request_):
    data = codec.encode("ConfigRequest", request_)
    assert data[:2] == b"\xc3\x01"
    assert codec.decode("ConfigRequest", data) == request_


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_a_version_precondition_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="if_version"):
        build_request("put", "w", values=[("t", "k", "v", bad)])
    with pytest.raises(ValueError, match="min_version"):
        build_request("get", "w", min_version=bad)


def test_an_item_without_a_value_is_rejected_with_a_clear_message():
    with pytest.raises(TypeError, match="'value'"):
        build_request("put", "w", values=[{"type": "t", "key": "k"}])


def test_headers_carry_a_fresh_uuid_id_and_the_actor_only_when_given():
    rid = new_request_id()
    assert uuid.UUID(rid).version == 4 and rid != new_request_id()
    assert request_headers(rid) == [("id", rid.encode())]
    assert request_headers(rid, "alice") == [("id", rid.encode()), ("actor", b"alice")]
    assert header_value(request_headers(rid, "alice"), "actor") == "alice"
    assert header_value([("id", b"\xff")], "id") is None
    assert header_value([], "id") is None
    assert request_headers(rid, None, 1_700_000_000_123) == [("id", rid.encode()), ("deadline", b"1700000000123")]
    assert request_headers(rid, reply_partition=7) == [("id", rid.encode()), ("reply-partition", b"7")]


# --- responses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wire_type, cls", [
    ("bad-request", BadRequest), ("bad-operation", BadOperation), ("conflict", Conflict),
    ("too-large", TooLarge), ("timeout", ReadTimeout), ("config-error", ConfigError),
])
def test_an_error_response_raises_the_typed_exception_with_type_and_message(wire_type, cls):
    response = codec.decode("ConfigResponse", codec.encode("ConfigResponse", {
        "error": {"type": wire_type, "message": "Workspace is required"}}))
    with pytest.raises(cls) as caught:
        check_response(response)
    assert caught.value.wire_type == wire_type and caught.value.message == "Workspace is required"
    assert str(caught.value) == f"{wire_type}: Workspace is required"


def test_an_unknown_error_type_stays_a_request_error_with_its_type():
    with pytest.raises(RequestError) as caught:
        check_response({"error": {"type": "gateway-error", "message": "boom"}})
    assert str(caught.value) == "gateway-error: boom"


def test_values_become_items_and_the_request_workspace_fills_an_empty_one():
    response = {"values": [{"type": "t", "key": "a", "value": "1", "workspace": "", "version": 4},
                           {"type": "t", "key": "b", "value": None, "workspace": "", "version": None},
                           {"type": "t", "key": "c", "value": "3", "workspace": "x", "version": 2}]}
    assert check_response(response) is response
    assert response_items(response, "w") == [ConfigItem("w", "t", "a", "1", 4), ConfigItem("w", "t", "b", None),
                                             ConfigItem("x", "t", "c", "3", 2)]


# --- the client, with fake Kafka ----------------------------------------------------------------

Handler = Callable[[dict[str, Any], dict[str, str]], "dict[str, Any] | None"]


@dataclass
class Record:
    headers: list[tuple[str, bytes]]
    value: bytes | None


class FakeKafka:
    """Producer and consumer in one: each sent request is answered by ``handler`` (None: no answer)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.responses: asyncio.Queue[Record] = asyncio.Queue()
        self.broken: Exception | None = None

    async def send_and_wait(self, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        request, hdrs = codec.decode("ConfigRequest", value), {k: v.decode() for k, v in headers}
        self.sent.append((topic, request, hdrs))
        response = self.handler(request, hdrs)
        if response is not None:
            self.answer(hdrs["id"], response)

    def answer(self, request_id: str, response: dict[str, Any] | None) -> None:
        value = None if response is None else codec.encode("ConfigResponse", response)
        self.responses.put_nowait(Record([("id", request_id.encode())], value))

    async def getmany(self, timeout_ms: int) -> dict[str, list[Record]]:
        if self.broken:
            raise self.broken
        try:
            record = await asyncio.wait_for(self.responses.get(), 0.02)
        except TimeoutError:
            return {}
        return {"tp": [record]}

    async def stop(self) -> None:
        pass


def store_service() -> Handler:
    """Enough of the service for the client's mapping: one dict, one version."""
    data: dict[tuple[str, str, str], tuple[str, int]] = {}
    state = {"version": 0}

    def handle(req: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        ws, op = req["workspace"], req["operation"]
        if not ws and op not in ("getvalues-all-ws", "getkeys-all-ws"):
            return {"error": {"type": "bad-request", "message": "Workspace is required"}}
        if op == "put":
            for v in req["values"]:
                current = data.get((ws, v["type"], v["key"]))
                if v["if_version"] is not None and v["if_version"] != (current[1] if current else 0):
                    return {"error": {"type": "conflict", "message": f"{v['type']}/{v['key']} moved"}}
            state["version"] += 1
            data.update({(ws, v["type"], v["key"]): (v["value"], state["version"]) for v in req["values"]})
            return {"version": state["version"]}
        if op == "get":
            got = [(k, data.get((ws, k["type"], k["key"]))) for k in req["keys"]]
            return {"version": state["version"], "values": [
                {"type": k["type"], "key": k["key"], "value": e and e[0], "version": e and e[1]} for k, e in got]}
        if op == "getvalues-all-ws":
            return {"version": state["version"], "values": [
                {"workspace": w, "type": t, "key": k, "value": v} for (w, t, k), (v, _) in sorted(data.items())
                if t == req["type"]]}
        return {"error": {"type": "bad-operation", "message": "Bad operation"}}

    return handle


def fake_client(fake: FakeKafka, **kwargs: Any) -> ConfigClient:
    client = ConfigClient(Settings(), **kwargs)
    client._attach(fake, fake)
    return client


@contextlib.asynccontextmanager
async def attached(fake: FakeKafka, **kwargs: Any) -> AsyncIterator[ConfigClient]:
    """A client wired to the fake transport, stopped afterwards whatever happens."""
    client = fake_client(fake, **kwargs)
    try:
        yield client
    finally:
        await client.stop()


async def sent_one(fake: FakeKafka) -> None:
    """Wait until the client has sent its first request."""
    while not fake.sent:
        await asyncio.sleep(0.001)


async def test_calls_are_correlated_by_id_and_mapped_to_results():
    fake = FakeKafka(store_service())
    async with attached(fake, actor="alice") as client:
        assert await client.get("w", "t", "missing") is None
        assert await client.version() == 0
        assert await client.put("w", "t", "a", "1") == 1
        assert await client.put_many("w", [("t", "b", "2"), ("u", "c", "3")]) == 2
        assert await client.get("w", "t", "a", min_version=2) == "1"
        assert await client.get_item("w", "u", "c") == ConfigItem("w", "u", "c", "3", 2)
        assert await client.get_values_all_workspaces("t") == [ConfigItem("w", "t", "a", "1"),
                                                               ConfigItem("w", "t", "b", "2")]
        many = await client.get_many_versioned("w", [("t", "a"), ("t", "zz"), ("t", "a")])
        assert isinstance(many, Versioned) and many.version == 2
        assert [i.value for i in many.value] == ["1", None, "1"]
    topic, put, headers = fake.sent[2]
    assert topic == "eventconfig.request" and headers["actor"] == "alice" and uuid.UUID(headers["id"])
    assert put["values"][0]["value"] == "1" and fake.sent[4][1]["min_version"] == 2
    assert fake.sent[1][1]["operation"] == "get" and fake.sent[1][1]["workspace"] == "__system__"
    assert len({h["id"] for _, _, h in fake.sent}) == len(fake.sent)


async def test_each_request_carries_a_deadline_of_now_plus_its_timeout():
    fake = FakeKafka(store_service())
    async with attached(fake, timeout=30) as client:
        before = int(time.time() * 1000)
        await client.version()
        await client.request("get", "w", timeout=2)
        after = time.time() * 1000
    default, short = (int(headers["deadline"]) for _, _, headers in fake.sent)
    assert before + 30_000 <= default <= after + 30_000
    assert before + 2_000 <= short <= after + 2_000


async def test_error_responses_raise_typed_exceptions():
    async with attached(FakeKafka(store_service())) as client:
        with pytest.raises(BadRequest, match="Workspace is required"):
            await client.keys("", "t")
        await client.put("w", "t", "k", "v")
        with pytest.raises(Conflict) as caught:
            await client.put("w", "t", "k", "v2", if_version=0)
        assert caught.value.wire_type == "conflict"
        assert await client.get("w", "t", "k") == "v"
        with pytest.raises(BadOperation):
            await client.request("frobnicate", "w")


async def test_responses_with_unknown_ids_are_ignored():
    fake = FakeKafka(lambda req, hdrs: None)
    async with attached(fake, timeout=5) as client:
        call = asyncio.create_task(client.request("config", "w"))
        await sent_one(fake)
        fake.answer(str(uuid.uuid4()), {"version": 99})  # someone else's
        fake.answer(fake.sent[0][2]["id"], {"version": 7, "config": {"t": {"k": "v"}}})
        assert (await call)["version"] == 7


async def test_a_missing_response_raises_read_timeout_and_forgets_the_request():
    async with attached(FakeKafka(lambda req, hdrs: None), timeout=0.1) as client:
        with pytest.raises(ReadTimeout, match="no response to 'list' request .* within 0.1 s"):
            await client.keys("w", "t")
        assert client.hub.stats().pending == 0, "the request is forgotten"


async def test_a_write_without_response_raises_request_timeout_not_read_timeout():
    async with attached(FakeKafka(lambda req, hdrs: None), timeout=0.1) as client:
        with pytest.raises(RequestTimeout, match="'put' request .* within 0.1 s.* may still be applied") as caught:
            await client.put("w", "t", "k", "v")
    assert not isinstance(caught.value, ReadTimeout) and caught.value.wire_type == "timeout"
    assert issubclass(ReadTimeout, RequestTimeout), "catching RequestTimeout catches both"


async def test_an_undecodable_response_fails_only_its_own_call():
    fake = FakeKafka(lambda req, hdrs: None)
    async with attached(fake, timeout=5) as client:
        call = asyncio.create_task(client.request("config", "w"))
        await sent_one(fake)
        fake.answer(fake.sent[0][2]["id"], None)
        with pytest.raises(ClientError, match="empty response"):
            await call
        fake.handler = store_service()
        assert await client.version() == 0


async def test_a_dying_reader_fails_pending_calls_at_once_and_later_calls_fast():
    fake = FakeKafka(lambda req, hdrs: None)
    async with attached(fake, timeout=30) as client:
        call = asyncio.create_task(client.request("config", "w"))
        await sent_one(fake)
        fake.broken = RuntimeError("broker exploded")
        with pytest.raises(ClientError, match="response reader stopped: RuntimeError: broker exploded"):
            await asyncio.wait_for(call, 2)
        with pytest.raises(ClientError, match="response reader stopped"):
            await client.version()


async def test_stop_fails_pending_calls_and_an_unstarted_client_refuses_requests():
    fake = FakeKafka(lambda req, hdrs: None)
    client = fake_client(fake, timeout=30)
    call = asyncio.create_task(client.request("config", "w"))
    await sent_one(fake)
    await client.stop()
    with pytest.raises(ClientError, match="stopped"):
        await call
    with pytest.raises(ClientError, match="not started"):
        await ConfigClient(Settings()).version()


async def test_reads_go_to_the_read_topic_except_while_a_write_of_the_same_client_awaits_its_answer():
    """docs/design.md §6: a put then a get sent without waiting keep their order on the request topic."""
    held: list[str] = []
    fake = FakeKafka(lambda req, hdrs: held.append(hdrs["id"]) if req["operation"] == "put" else {"version": 0})
    async with attached(fake, timeout=5) as client:
        client.hub.has_read_topic = True  # what a hub learns at start in a deployment with a read topic
        assert client.read_topic == "eventconfig.read"
        await client.version()
        put = asyncio.create_task(client.put("w", "t", "k", "v"))
        while not held:
            await asyncio.sleep(0.001)
        await client.version()  # while the put awaits its answer
        fake.answer(held[0], {"version": 1})
        assert await put == 1
        await client.version()
    assert [topic for topic, _, _ in fake.sent] == [
        "eventconfig.read", "eventconfig.request", "eventconfig.request", "eventconfig.read"]


async def test_reads_go_to_the_request_topic_without_a_read_topic_or_when_the_setting_is_off():
    for settings, has_read_topic in ((Settings(), False), (Settings(client_reads_on_read_topic=0), True)):
        fake = FakeKafka(store_service())
        client = ConfigClient(settings)
        client._attach(fake, fake)
        try:
            client.hub.has_read_topic = has_read_topic
            assert client.read_topic == "eventconfig.request"
            await client.version()
        finally:
            await client.stop()
        assert [topic for topic, _, _ in fake.sent] == ["eventconfig.request"]


# --- CLI argument errors (no service needed: they fail before connecting) -------------------------


def test_put_refuses_both_value_and_stdin_and_neither():
    runner = CliRunner()
    both = runner.invoke(put_cmd, ["-t", "prompt", "-k", "k", "--value", "v", "--stdin"], input="x")
    assert both.exit_code != 0 and "either --value or --stdin, not both" in both.output
    neither = runner.invoke(put_cmd, ["-t", "prompt", "-k", "k"])
    assert neither.exit_code != 0 and "--value or --stdin" in neither.output


def test_dump_refuses_type_with_all_types_and_commands_have_help():
    result = CliRunner().invoke(dump_cmd, ["--all-types", "-t", "prompt"])
    assert result.exit_code != 0 and "not both" in result.output
    help_text = CliRunner().invoke(put_cmd, ["--help"]).output
    for option in ("--workspace", "--type", "--key", "--value", "--stdin", "--if-version", "--timeout"):
        assert option in help_text
