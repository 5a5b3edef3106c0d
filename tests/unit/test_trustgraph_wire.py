"""TrustGraph's JSON config protocol, translated both ways; checked against trustgraph-base's own codec."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trustgraph.base.serialization import dataclass_to_dict, dict_to_dataclass
from trustgraph.schema import ConfigKey, ConfigPush, ConfigRequest, ConfigResponse, ConfigValue, Error

from eventconfig.codec import default_codec
from eventconfig.deadletter import DLQ_EXTRA_BYTES
from eventconfig.trustgraph.forwarding import forward_batch
from eventconfig.trustgraph.wire import (TrustGraphDecodeError, TrustGraphTopics, decode_request, encode_push,
                                         encode_response, forward_id, parse_forward_id)
from eventconfig.signing import Signer, public_key_text
from eventconfig.writer.auth import Authenticator, Keyring
from eventconfig.writer.batch import RawRequest

codec = default_codec()


def tg_body(request: ConfigRequest) -> bytes:
    """What TrustGraph's Kafka producer sends."""
    return json.dumps(dataclass_to_dict(request)).encode()


def tg_read(body: bytes, schema: type) -> object:
    """What TrustGraph's Kafka consumer makes of a body."""
    return dict_to_dataclass(json.loads(body), schema)


def test_topics_follow_trustgraphs_kafka_naming() -> None:
    assert TrustGraphTopics.of("tg") == TrustGraphTopics("tg.request.config", "tg.response.config", "tg.notify.config")


def test_a_trustgraph_put_becomes_an_eventconfig_put() -> None:
    body = tg_body(ConfigRequest(operation="put", workspace="w", values=[
        ConfigValue(type="prompt", key="system", value="hi", workspace="ignored")]))
    request = decode_request(body)
    assert request["operation"] == "put" and request["workspace"] == "w"
    assert [(v["type"], v["key"], v["value"], v["workspace"], v["if_version"]) for v in request["values"]] == [
        ("prompt", "system", "hi", "", None)]
    assert request["min_version"] is None
    assert codec.decode("ConfigRequest", codec.encode("ConfigRequest", request)) == request


def test_get_keys_and_read_fields_are_carried() -> None:
    request = decode_request(tg_body(ConfigRequest(operation="get", workspace="w",
                                                   keys=[ConfigKey("prompt", "a"), ConfigKey("prompt", "b")])))
    assert [(k["type"], k["key"]) for k in request["keys"]] == [("prompt", "a"), ("prompt", "b")]
    assert decode_request(tg_body(ConfigRequest(operation="getkeys-all-ws", type="flow")))["type"] == "flow"


def test_unknown_keys_are_ignored_and_missing_ones_defaulted() -> None:
    request = decode_request(b'{"operation": "config", "workspace": "w", "future": {"x": 1}}')
    assert request["keys"] == [] and request["values"] == [] and request["type"] == ""
    empty = decode_request(b"{}")
    assert (empty["operation"], empty["workspace"]) == ("", "")
    value = decode_request(b'{"operation": "put", "values": [{"type": "t", "key": "k"}]}')["values"][0]
    assert value["value"] == ""  # TrustGraph's ConfigValue default


def test_nulls_read_as_defaults_except_a_value() -> None:
    request = decode_request(b'{"operation": "put", "workspace": null, "keys": null, "type": null, '
                             b'"values": [{"type": "t", "key": "k", "value": null}]}')
    assert (request["workspace"], request["keys"], request["type"]) == ("", [], "")
    assert request["values"][0]["value"] is None  # stored nowhere: the writer answers bad-request


@pytest.mark.parametrize("body", [
    None, b"\xff\xfe", b"not json", b"[1, 2]", b'"text"', b'{"workspace": 5}', b'{"keys": "prompt"}',
    b'{"keys": [1]}', b'{"values": [{"type": "t", "key": "k", "value": 3}]}', b'{"operation": ["get"]}',
])
def test_bodies_that_are_no_config_request_are_refused(body: bytes | None) -> None:
    with pytest.raises(TrustGraphDecodeError):
        decode_request(body)


def test_forward_ids_round_trip_and_stay_within_their_topicspace() -> None:
    rid = forward_id("tg", "a:b-c", "put")
    assert rid == "tg:tg:w:a:b-c"
    assert parse_forward_id("tg", rid) == ("a:b-c", True)
    assert parse_forward_id("tg", forward_id("tg", "x", "getvalues")) == ("x", False)
    assert parse_forward_id("tg2", rid) is None
    for other in (None, "", "0b5c-uuid", "tg:tg:x:1", "tg:tg"):
        assert parse_forward_id("tg", other) is None


def eventconfig_response(**fields: object) -> dict:
    return {"version": 0, "values": [], "directory": [], "config": {}, "error": None, **fields}


def test_a_read_response_decodes_with_trustgraphs_schema() -> None:
    response = eventconfig_response(version=7, values=[
        {"type": "prompt", "key": "a", "value": "x", "workspace": "", "version": 3, "if_version": None},
        {"type": "prompt", "key": "gone", "value": None, "workspace": "", "version": None, "if_version": None}])
    body = encode_response(response, write=False)
    assert json.loads(body) == {"version": 7, "values": [
        {"type": "prompt", "key": "a", "value": "x", "workspace": ""},
        {"type": "prompt", "key": "gone", "value": None, "workspace": ""}],
        "directory": [], "config": {}, "error": None}
    assert tg_read(body, ConfigResponse) == ConfigResponse(version=7, values=[
        ConfigValue("prompt", "a", "x", ""), ConfigValue("prompt", "gone", None, "")])


def test_a_write_response_carries_version_zero_like_the_seed() -> None:
    body = encode_response(eventconfig_response(version=12), write=True)
    assert tg_read(body, ConfigResponse) == ConfigResponse(version=0)
    assert json.loads(body)["error"] is None  # {} would read as an error


def test_an_error_response_keeps_type_and_message() -> None:
    body = encode_response(eventconfig_response(error={"type": "bad-request", "message": "Workspace is required"}),
                           write=True)
    assert tg_read(body, ConfigResponse) == ConfigResponse(error=Error("bad-request", "Workspace is required"))


def test_a_response_over_the_topic_limit_becomes_too_large() -> None:
    big = eventconfig_response(version=3, config={"t": {f"k{i}": "v" * 100 for i in range(100)}})
    decoded = tg_read(encode_response(big, write=False, max_bytes=2000), ConfigResponse)
    assert decoded.error.type == "too-large" and decoded.config == {}


def test_pushes_are_trustgraph_config_push_json() -> None:
    poke = {"version": 9, "changes": {"prompt": ["w1", "w2"]}, "workspace_changes": None}
    body = encode_push(poke)
    assert json.loads(body) == {"version": 9, "changes": {"prompt": ["w1", "w2"]}, "workspace_changes": None}
    lifecycle = encode_push({"version": 10, "changes": {}, "workspace_changes": {"created": ["acme"], "deleted": []}})
    pushed = tg_read(lifecycle, ConfigPush)
    assert (pushed.version, pushed.changes) == (10, {})
    assert (pushed.workspace_changes.created, pushed.workspace_changes.deleted) == (["acme"], [])


# --- forwarding ----------------------------------------------------------------------------------


def raw(offset: int, body: bytes | None, rid: str | None = "r1") -> RawRequest:
    return RawRequest(offset, body, [("id", rid.encode())] if rid else [])


def test_a_request_is_forwarded_with_its_derived_id_and_actor() -> None:
    out = forward_batch([raw(5, tg_body(ConfigRequest(operation="delete", workspace="w",
                                                      keys=[ConfigKey("t", "k")])))],
                        "tg", "tg.request.config", 1 << 20)
    assert (out.responses, out.dlq) == ([], [])
    [record] = out.requests
    assert record.headers == [("id", b"tg:tg:w:r1"), ("actor", b"trustgraph:tg"), ("reply-partition", b"0")]
    assert codec.decode("ConfigRequest", record.value)["keys"][0]["key"] == "k"


def test_with_authentication_the_front_end_signs_forwards_as_its_own_identity() -> None:
    signer = Signer("trustgraph-frontend", Ed25519PrivateKey.generate(), "prod")
    keyring = Keyring.parse({"actors": {signer.actor: {"keys": [public_key_text(signer.key.public_key())]}}})
    out = forward_batch([raw(5, tg_body(ConfigRequest(operation="config", workspace="w")))],
                        "tg", "tg.request.config", 1 << 20, signer=signer, now_ms=1_000)
    [record] = out.requests
    identity = Authenticator(keyring, 60_000, "prod").verify(record.value, record.headers, "tg:tg:w:r1", 0, 1_000)
    assert (identity.actor, identity.verified) == ("trustgraph-frontend", True)


def test_undecodable_requests_go_to_the_dlq_and_are_answered_when_they_have_an_id() -> None:
    out = forward_batch([raw(1, b"{broken"), raw(2, b"{broken", rid=None), raw(3, b"{}", rid=None)],
                        "tg", "tg.request.config", 1 << 20)
    assert out.requests == []
    assert [dict(r.headers)["error-type"] for r in out.dlq] == [b"TrustGraphDecodeError", b"TrustGraphDecodeError",
                                                               b"MissingId"]
    assert [dict(r.headers)["source-offset"] for r in out.dlq] == [b"1", b"2", b"3"]
    assert all(dict(r.headers)["source-topic"] == b"tg.request.config" for r in out.dlq)
    [answer] = out.responses
    assert answer.headers == [("id", b"tg:tg:r:r1")] and answer.partition == 0, "where the translator reads"
    error = codec.decode("ConfigResponse", answer.value)["error"]
    assert error["type"] == "config-error" and error["message"].startswith("undecodable TrustGraph request")


def test_a_request_too_large_to_forward_is_answered_too_large() -> None:
    body = tg_body(ConfigRequest(operation="put", workspace="w", values=[ConfigValue("t", "k", "v" * 5000)]))
    out = forward_batch([raw(1, body)], "tg", "tg.request.config", 1000)
    assert out.requests == [] and out.dlq == []
    assert codec.decode("ConfigResponse", out.responses[0].value)["error"]["type"] == "too-large"


def test_a_hostile_request_is_dead_lettered_bounded_and_an_over_long_id_is_never_forwarded() -> None:
    body = tg_body(ConfigRequest(operation="get", workspace="w"))
    huge = b"x" * 5_000_000
    hostile = RawRequest(1, body, [("id", huge), ("bulk", huge)], key=huge)
    broken = RawRequest(2, b"{broken" + huge, [("id", b"r2"), ("bulk", huge)])

    out = forward_batch([hostile, broken], "tg", "tg.request.config", 1 << 20, max_id_bytes=256)

    assert out.requests == []
    assert [dict(r.headers)["error-type"] for r in out.dlq] == [b"BadId", b"TrustGraphDecodeError"]
    for record in out.dlq:
        size = len(record.key or b"") + len(record.value or b"") + sum(len(n) + len(v) for n, v in record.headers)
        assert size <= (1 << 20) + DLQ_EXTRA_BYTES, "every dead letter fits the record limit"
        assert b"bulk(5000004)" in dict(record.headers)["dropped"]
    assert [r.headers for r in out.responses] == [[("id", b"tg:tg:r:r2")]], "only the short id is answered"
