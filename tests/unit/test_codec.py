"""The wire codec (docs/design.md §4): Avro single-object encoding resolved through a schema registry."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from eventconfig import codec as codec_module
from eventconfig.codec import (
    HEADER_SIZE,
    MARKER,
    SCHEMAS_DIR,
    Codec,
    SchemaRegistry,
    rabin64,
    schema_fingerprint,
)
from eventconfig.errors import BadMarker, CodecError, CorruptBody, UnknownFingerprint

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

# --- fixtures -------------------------------------------------------------------------------------


def _definitions() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(REPO_SCHEMAS.glob("*.avsc"))}


@pytest.fixture
def registry() -> SchemaRegistry:
    """A private registry: tests that register writer schemas never touch the cached default one."""
    return SchemaRegistry.from_dir(REPO_SCHEMAS)


@pytest.fixture
def codec(registry: SchemaRegistry) -> Codec:
    return Codec(registry)


# --- the schema files are the contract of docs/design.md §4 ----------------------------------------

NL, NS = ["null", "long"], ["null", "string"]
_NO = object()  # no default

CONTRACT: dict[str, list[tuple[str, Any, Any]]] = {
    "Error": [("type", "string", _NO), ("message", "string", _NO)],
    "ConfigKey": [("type", "string", _NO), ("key", "string", _NO), ("if_version", NL, None)],
    "ConfigValue": [
        ("type", "string", _NO), ("key", "string", _NO), ("value", NS, None),
        ("workspace", "string", ""), ("version", NL, None), ("if_version", NL, None),
    ],
    "ConfigRequest": [
        ("operation", "string", _NO), ("workspace", "string", ""),
        ("keys", {"type": "array", "items": "ConfigKey"}, []), ("type", "string", ""),
        ("values", {"type": "array", "items": "ConfigValue"}, []), ("min_version", NL, None),
    ],
    "ConfigResponse": [
        ("version", "long", 0), ("values", {"type": "array", "items": "ConfigValue"}, []),
        ("directory", {"type": "array", "items": "string"}, []),
        ("config", {"type": "map", "values": {"type": "map", "values": "string"}}, {}),
        ("error", ["null", "Error"], None),
    ],
    "WorkspaceChanges": [
        ("created", {"type": "array", "items": "string"}, []),
        ("deleted", {"type": "array", "items": "string"}, []),
    ],
    "ConfigPush": [
        ("version", "long", _NO),
        ("changes", {"type": "map", "values": {"type": "array", "items": "string"}}, {}),
        ("workspace_changes", ["null", "WorkspaceChanges"], None),
        ("items", ["null", {"type": "array", "items": "ConfigValue"}], None),
        ("previous_version", ["null", "long"], None),
    ],
    "LogKey": [("workspace", "string", _NO), ("type", "string", _NO), ("key", "string", _NO)],
    "LogEntry": [("value", "string", _NO), ("version", "long", _NO)],
    "Change": [("type", "string", _NO), ("key", "string", _NO), ("value", NS, None), ("previous", NS, None)],
    "Mutation": [
        ("version", "long", _NO), ("timestamp_ms", "long", _NO), ("request_id", "string", _NO),
        ("actor", NS, None), ("workspace", "string", _NO), ("operation", "string", _NO),
        ("changes", {"type": "array", "items": "Change"}, []), ("actor_verified", "boolean", False),
        ("prev_hash", "string", ""), ("hash", "string", ""),
    ],
}


def test_schema_files_match_the_wire_contract_exactly() -> None:
    defs = _definitions()
    assert set(defs) == set(CONTRACT)
    for name, fields in CONTRACT.items():
        schema = defs[name]
        assert (schema["type"], schema["name"], schema["namespace"]) == ("record", name, "eventconfig")
        got = [(f["name"], f["type"], f.get("default", _NO)) for f in schema["fields"]]
        assert got == fields, name


def test_package_finds_the_schemas_through_its_symlink() -> None:
    assert SCHEMAS_DIR.resolve() == REPO_SCHEMAS.resolve()
    assert codec_module.default_registry() is codec_module.default_registry()  # cached
    assert codec_module.default_registry().record_names == sorted(CONTRACT)


def test_every_top_level_schema_is_self_contained(registry: SchemaRegistry) -> None:
    canonical = to_parsing_canonical_form(registry.reader("ConfigRequest").schema)
    assert '"name":"eventconfig.ConfigKey","type":"record"' in canonical
    assert '"name":"eventconfig.ConfigValue","type":"record"' in canonical
    canonical = to_parsing_canonical_form(registry.reader("Mutation").schema)
    assert '"name":"eventconfig.Change","type":"record"' in canonical


# --- fingerprints: CRC-64-AVRO, written little-endian ------------------------------------------------

# (schema as written, parsing canonical form, fingerprint as a signed long) from the Avro repository's
# share/test/data/schema-tests.txt (vectors 000, 004, 006, 014, 019, 020, 022, 025, 033).
SPEC_VECTORS = [
    ('"null"', '"null"', 7195948357588979594),
    ('"int"', '"int"', 8247732601305521295),
    ('"long"', '"long"', -3434872931120570953),
    ('"string"', '"string"', -8142146995180207161),
    ('{"fields":[], "type":"record", "name":"foo"}', '{"name":"foo","type":"record","fields":[]}',
     -4824392279771201922),
    ('{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
     '{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771),
    ('{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}',
     '{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
    ('{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
     '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}', 7843277075252814651),
    ('{"name":"PigValue","type":"record","fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
     '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
     -1759257747318642341),
]


@pytest.mark.parametrize(("schema", "canonical", "expected"), SPEC_VECTORS)
def test_fingerprint_matches_the_avro_spec_vectors(schema: str, canonical: str, expected: int) -> None:
    assert to_parsing_canonical_form(json.loads(schema)) == canonical
    assert rabin64(canonical.encode()) == expected & 0xFFFFFFFFFFFFFFFF
    assert schema_fingerprint(json.loads(schema)) == expected.to_bytes(8, "little", signed=True)


def test_fingerprint_bytes_are_little_endian_like_java_and_fastavro() -> None:
    # 7195948357588979594 == 0x63DD24E7CC258F8A; on the wire the low byte comes first.
    assert schema_fingerprint("null") == bytes.fromhex("8a8f25cce724dd63")
    assert fastavro_fingerprint('"null"', "CRC-64-AVRO") == "8a8f25cce724dd63"


def test_log_key_schema_is_frozen(codec: Codec) -> None:
    # Changing LogKey changes every key's bytes and breaks compaction: this pin must never move.
    assert to_parsing_canonical_form(codec.registry.reader("LogKey").schema) == (
        '{"name":"eventconfig.LogKey","type":"record","fields":[{"name":"workspace","type":"string"},'
        '{"name":"type","type":"string"},{"name":"key","type":"string"}]}'
    )
    assert codec.fingerprint("LogKey") == bytes.fromhex("98e80e67220d27d7")


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_every_message_starts_with_marker_and_its_writer_fingerprint(codec: Codec, name: str) -> None:
    data = codec.encode(name, SAMPLES[name])
    reader = codec.registry.reader(name)
    expected_fp = rabin64(to_parsing_canonical_form(reader.schema).encode()).to_bytes(8, "little")
    assert data[:2] == MARKER == b"\xc3\x01"
    assert data[2:HEADER_SIZE] == codec.fingerprint(name) == expected_fp
    assert codec.header(name) == data[:HEADER_SIZE]
    assert codec.fingerprint(f"eventconfig.{name}") == expected_fp  # full names work too


# --- round trips ---------------------------------------------------------------------------------

VALUE = {"type": "prompt", "key": "système", "value": '{"text": "héllo 👋"}', "workspace": "default",
         "version": 42, "if_version": None}
SAMPLES: dict[str, dict[str, Any]] = {
    "Error": {"type": "conflict", "message": "key prompt/a changed at version 7"},
    "ConfigKey": {"type": "prompt", "key": "", "if_version": 0},
    "ConfigValue": VALUE,
    "ConfigRequest": {
        "operation": "put", "workspace": "ws-1",
        "keys": [{"type": "prompt", "key": "a", "if_version": 3}, {"type": "t", "key": "b", "if_version": None}],
        "type": "", "values": [VALUE, {**VALUE, "value": None, "version": None, "if_version": 2**63 - 1}],
        "min_version": 17,
    },
    "ConfigResponse": {
        "version": 9, "values": [VALUE], "directory": ["a", "b", "ü"],
        "config": {"prompt": {"a": "1", "ключ": "значение"}, "empty": {}},
        "error": {"type": "bad-request", "message": "Workspace is required"},
    },
    "WorkspaceChanges": {"created": ["ws-2"], "deleted": []},
    "ConfigPush": {"version": 12, "changes": {"prompt": ["ws-1", "ws-2"], "tool": []},
                   "workspace_changes": {"created": ["ws-2"], "deleted": ["old"]},
                   "items": [{"type": "prompt", "key": "a", "value": None, "workspace": "ws-1", "version": 12,
                              "if_version": None}], "previous_version": 9},
    "LogKey": {"workspace": "", "type": "", "key": ""},
    "LogEntry": {"value": "", "version": -1},
    "Change": {"type": "prompt", "key": "a", "value": None, "previous": "old ✓"},
    "Mutation": {
        "version": 3, "timestamp_ms": 1_732_752_000_123, "request_id": "req-0001", "actor": None,
        "workspace": "ws-1", "operation": "delete",
        "changes": [{"type": "prompt", "key": "a", "value": None, "previous": "x"},
                    {"type": "prompt", "key": "b", "value": "y", "previous": None}],
        "actor_verified": True, "prev_hash": "ab" * 32, "hash": "cd" * 32,
    },
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_every_record_round_trips(codec: Codec, name: str) -> None:
    assert codec.decode(name, codec.encode(name, SAMPLES[name])) == SAMPLES[name]


@pytest.mark.parametrize(
    ("name", "given", "decoded"),
    [
        ("ConfigValue", {"type": "t", "key": "k"},
         {"type": "t", "key": "k", "value": None, "workspace": "", "version": None, "if_version": None}),
        ("ConfigRequest", {"operation": "get", "values": [{"type": "t", "key": "k"}]},
         {"operation": "get", "workspace": "", "keys": [], "type": "",
          "values": [{"type": "t", "key": "k", "value": None, "workspace": "", "version": None, "if_version": None}],
          "min_version": None}),
        ("ConfigResponse", {}, {"version": 0, "values": [], "directory": [], "config": {}, "error": None}),
        ("ConfigPush", {"version": 5}, {"version": 5, "changes": {}, "workspace_changes": None, "items": None,
                                        "previous_version": None}),
        ("Mutation", {"version": 1, "timestamp_ms": 0, "request_id": "r", "workspace": "w", "operation": "put"},
         {"version": 1, "timestamp_ms": 0, "request_id": "r", "actor": None, "workspace": "w",
          "operation": "put", "changes": [], "actor_verified": False, "prev_hash": "", "hash": ""}),
    ],
)
def test_missing_optional_fields_are_encoded_with_their_defaults(
    codec: Codec, name: str, given: dict[str, Any], decoded: dict[str, Any]
) -> None:
    assert codec.decode(name, codec.encode(name, given)) == decoded


def test_module_level_helpers_use_the_packaged_schemas() -> None:
    data = codec_module.encode("LogEntry", {"value": "v", "version": 1})
    assert codec_module.decode("LogEntry", data) == {"value": "v", "version": 1}


# --- schema evolution ------------------------------------------------------------------------------


def _old_config_value() -> dict[str, Any]:
    old = copy.deepcopy(_definitions()["ConfigValue"])
    old["fields"] = [f for f in old["fields"] if f["name"] not in ("version", "if_version")]
    return old


def _new_config_value() -> dict[str, Any]:
    new = copy.deepcopy(_definitions()["ConfigValue"])
    new["fields"].append({"name": "labels", "type": {"type": "map", "values": "string"}, "default": {}})
    return new


def test_data_written_with_an_older_schema_decodes_with_defaults_filled(codec: Codec) -> None:
    old_writer = Codec(SchemaRegistry([_old_config_value()]))
    data = old_writer.encode("ConfigValue", {"type": "t", "key": "k", "value": "v", "workspace": "w"})
    assert codec.registry.register(_old_config_value()) == data[2:HEADER_SIZE]
    assert codec.decode("ConfigValue", data) == {
        "type": "t", "key": "k", "value": "v", "workspace": "w", "version": None, "if_version": None,
    }


def test_an_older_nested_record_is_resolved_inside_its_parent(codec: Codec) -> None:
    defs = _definitions()
    old_request = {**defs["ConfigRequest"], "fields": [
        {**f, "type": {"type": "array", "items": _old_config_value()}} if f["name"] == "values" else f
        for f in defs["ConfigRequest"]["fields"]
    ]}
    old_writer = Codec(SchemaRegistry([old_request, defs["ConfigKey"]]))
    data = old_writer.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                               "values": [{"type": "t", "key": "k", "value": "v"}]})
    codec.registry.register(json.dumps(old_request))  # JSON text works too; ConfigKey comes from the registry
    assert codec.decode("ConfigRequest", data)["values"] == [
        {"type": "t", "key": "k", "value": "v", "workspace": "", "version": None, "if_version": None}
    ]


def test_data_written_with_a_newer_schema_decodes_once_registered(codec: Codec) -> None:
    new_writer = Codec(SchemaRegistry([_new_config_value()]))
    data = new_writer.encode("ConfigValue", {"type": "t", "key": "k", "labels": {"owner": "ops"}, "version": 4})
    with pytest.raises(UnknownFingerprint):
        codec.decode("ConfigValue", data)
    codec.registry.register(_new_config_value())
    assert codec.decode("ConfigValue", data) == {
        "type": "t", "key": "k", "value": None, "workspace": "", "version": 4, "if_version": None,
    }  # the extra field is dropped


def test_an_unregistered_fingerprint_is_reported_with_its_hex(codec: Codec) -> None:
    data = MARKER + bytes.fromhex("0123456789abcdef") + b"\x00"
    with pytest.raises(UnknownFingerprint, match="0123456789abcdef"):
        codec.decode("ConfigValue", data)


def test_a_message_of_another_record_type_is_refused(codec: Codec) -> None:
    data = codec.encode("LogEntry", {"value": "v", "version": 1})
    with pytest.raises(CodecError, match="LogEntry"):
        codec.decode("ConfigValue", data)


def test_registering_an_invalid_schema_is_a_codec_error(registry: SchemaRegistry) -> None:
    for bad in ("{not json", '"string"', {"type": "record", "name": "X", "fields": [{"name": "a", "type": "Nope"}]}):
        with pytest.raises(CodecError):
            registry.register(bad)


# --- bad bytes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"garbage", b"\xc3", b"\xc3\x01", MARKER + b"\x00" * 7, b"\x00\x01" + b"\x00" * 20])
def test_bytes_without_a_full_header_are_a_bad_marker(codec: Codec, data: bytes) -> None:
    with pytest.raises(BadMarker):
        codec.decode("ConfigValue", data)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_every_truncation_of_a_body_is_corrupt(codec: Codec, name: str) -> None:
    data = codec.encode(name, SAMPLES[name])
    for end in range(HEADER_SIZE, len(data)):
        with pytest.raises(CorruptBody):
            codec.decode(name, data[:end])


def test_trailing_bytes_after_the_body_are_rejected(codec: Codec) -> None:
    data = codec.encode("LogEntry", {"value": "v", "version": 1})
    with pytest.raises(CorruptBody, match="trailing"):
        codec.decode("LogEntry", data + b"\x00")


def test_invalid_utf8_in_a_string_is_corrupt(codec: Codec) -> None:
    with pytest.raises(CorruptBody):
        codec.decode("LogEntry", codec.header("LogEntry") + b"\x04\xff\xfe\x02")


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(CONTRACT)), body=st.binary(max_size=64))
def test_random_bodies_decode_or_raise_a_codec_error(name: str, body: bytes) -> None:
    codec = Codec(codec_module.default_registry())
    try:
        result = codec.decode(name, codec.header(name) + body)
    except CodecError:
        return
    assert codec.decode(name, codec.encode(name, result)) == result  # whatever decodes is a valid value


# --- LogKey: canonical bytes (compaction depends on it) ----------------------------------------------


def test_log_key_bytes_are_canonical(codec: Codec) -> None:
    a = codec.encode_log_key("ws", "prompt", "a")
    assert a == codec.encode_log_key("ws", "prompt", "a")
    assert a == codec.encode("LogKey", {"key": "a", "type": "prompt", "workspace": "ws"})  # dict order irrelevant
    assert a != codec.encode_log_key("ws", "prompt", "b")
    assert codec.encode_log_key("a", "bc", "") != codec.encode_log_key("ab", "c", "")
    assert codec.decode_log_key(a) == ("ws", "prompt", "a")
    assert codec.encode_log_key("", "", "") == codec.header("LogKey") + b"\x00\x00\x00"  # the commit marker


@settings(max_examples=200, deadline=None)
@given(a=st.tuples(st.text(), st.text(), st.text()), b=st.tuples(st.text(), st.text(), st.text()))
def test_log_key_bytes_identify_the_key(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    codec = Codec(codec_module.default_registry())
    ka, kb = codec.encode_log_key(*a), codec.encode_log_key(*b)
    assert codec.decode_log_key(ka) == a
    assert (ka == kb) == (a == b)


# --- encode errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ConfigValue", {"type": 5, "key": "k"}),                          # int where a string is required
        ("ConfigValue", {"type": "t"}),                                    # missing required field
        ("ConfigValue", {"type": "t", "key": None}),                       # null for a non-null string
        ("ConfigValue", {"type": "t", "key": "k", "value": b"bytes"}),     # bytes are not a string
        ("ConfigValue", {"type": "t", "key": "k", "version": "7"}),        # string for a long
        ("ConfigValue", {"type": "t", "key": "k", "version": 1.5}),
        ("ConfigValue", {"type": "t", "key": "k", "if_version": 2**63}),   # out of range for a long
        ("ConfigValue", {"type": "t", "key": "k", "if_verison": 0}),       # unknown field (a typo)
        ("ConfigValue", {"type": "\ud800", "key": "k"}),                   # not encodable as UTF-8
        ("LogEntry", {"value": "v", "version": 1.5}),                      # would be silently truncated
        ("LogEntry", {"value": "v", "version": True}),
        ("LogEntry", {"value": "v", "version": 2**64}),
        ("ConfigRequest", {"operation": "put", "values": [{"type": "t"}]}),  # nested missing field
        ("ConfigResponse", {"config": {"t": {"k": 1}}}),
        ("ConfigValue", "not a mapping"),
        ("NoSuchRecord", {}),
    ],
)
def test_values_that_do_not_match_the_schema_raise_codec_error(codec: Codec, name: str, value: Any) -> None:
    with pytest.raises(CodecError, match="NoSuchRecord|cannot encode"):
        codec.encode(name, value)


_longs = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=200, deadline=None)
@given(value=st.fixed_dictionaries({
    "type": st.text(), "key": st.text(), "value": st.none() | st.text(), "workspace": st.text(),
    "version": _longs, "if_version": _longs,
}))
def test_any_valid_config_value_round_trips(value: dict[str, Any]) -> None:
    codec = Codec(codec_module.default_registry())
    assert codec.decode("ConfigValue", codec.encode("ConfigValue", value)) == value
