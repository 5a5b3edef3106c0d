"""Older clients: requests written with generation-0 schemas (TrustGraph's fields) are accepted and
answered in generation 0, so a client that never heard of if_version/min_version keeps working."""

from __future__ import annotations

import io
import json

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from eventconfig.codec import MARKER, SCHEMAS_DIR, default_codec, schema_fingerprint
from eventconfig.model import Entry, ItemKey
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, answer_reads, process_batch

codec = default_codec()
OLD_REQUEST = parse_schema(json.loads((SCHEMAS_DIR / "compat" / "ConfigRequest.v0.avsc").read_text()), _write_hint=False)
OLD_RESPONSE = parse_schema(json.loads((SCHEMAS_DIR / "compat" / "ConfigResponse.v0.avsc").read_text()),
                            _write_hint=False)


def old_request(value: dict) -> bytes:
    """What a TrustGraph-era client sends: its own (older) schema's fingerprint, then the body."""
    buf = io.BytesIO()
    buf.write(MARKER + schema_fingerprint(OLD_REQUEST))
    schemaless_writer(buf, OLD_REQUEST, value)
    return buf.getvalue()


def read_old_response(data: bytes) -> dict:
    """What a TrustGraph-era client can read: only its own ConfigResponse schema."""
    assert data[2:10] == schema_fingerprint(OLD_RESPONSE), "answered in the client's generation"
    return schemaless_reader(io.BytesIO(data[10:]), OLD_RESPONSE, None)


def test_a_generation_0_request_decodes_with_the_new_fields_at_their_defaults():
    request = codec.decode("ConfigRequest", old_request({
        "operation": "put", "workspace": "w", "keys": [], "type": "",
        "values": [{"type": "t", "key": "k", "value": "v", "workspace": ""}]}))
    assert request["min_version"] is None
    assert request["values"] == [{"type": "t", "key": "k", "value": "v", "workspace": "", "version": None,
                                  "if_version": None}]


def test_a_generation_0_request_is_answered_in_generation_0():
    records = [RawRequest(0, old_request({"operation": "put", "workspace": "w", "keys": [], "type": "",
                                          "values": [{"type": "t", "key": "k", "value": "v", "workspace": ""}]}),
                          [("id", b"old-put")]),
               RawRequest(1, old_request({"operation": "get", "workspace": "w", "type": "", "values": [],
                                          "keys": [{"type": "t", "key": "k"}]}), [("id", b"old-get")]),
               RawRequest(2, codec.encode("ConfigRequest", {"operation": "get", "workspace": "w",
                                                            "keys": [{"type": "t", "key": "k"}]}),
                          [("id", b"new-get")])]
    result = process_batch(records, DictReader(), {}, 0, BatchConfig(), now_ms=0)
    (put,) = (r.value for r in result.responses)
    view = DictReader({ItemKey("w", "t", "k"): Entry("v", 1)}, version=1)  # the put, applied
    answered, _ = answer_reads(result.reads, view, 0, BatchConfig(), now_ms=0)
    get, new = (r.value for r in answered.responses)
    assert read_old_response(put)["version"] == 1
    assert read_old_response(get)["values"] == [{"type": "t", "key": "k", "value": "v", "workspace": ""}]
    assert codec.decode("ConfigResponse", new)["values"][0]["version"] == 1, "current clients get everything"


# --- pokes: ConfigPush gained items and previous_version ---------------------------------------------

def _old_push_schema() -> dict:
    """The v0 ConfigPush as an older release has it: WorkspaceChanges written out in place."""
    schema = json.loads((SCHEMAS_DIR / "compat" / "ConfigPush.v0.avsc").read_text())
    lifecycle = json.loads((SCHEMAS_DIR / "WorkspaceChanges.avsc").read_text())
    for field in schema["fields"]:
        if field["type"] == ["null", "WorkspaceChanges"]:
            field["type"] = ["null", lifecycle]
    return parse_schema(schema, _write_hint=False)


OLD_PUSH = _old_push_schema()
NEW_POKE = {"version": 9, "changes": {"prompt": ["w"]}, "workspace_changes": None, "previous_version": 8,
            "items": [{"workspace": "w", "type": "prompt", "key": "k", "value": "v", "version": 9, "if_version": None}]}


def old_push(value: dict) -> bytes:
    """A poke as a projector from before items wrote it."""
    buf = io.BytesIO()
    buf.write(MARKER + schema_fingerprint(OLD_PUSH))
    schemaless_writer(buf, OLD_PUSH, value)
    return buf.getvalue()


def test_a_poke_of_the_older_generation_reads_as_one_without_items_so_subscribers_fetch():
    poke = codec.decode("ConfigPush", old_push({"version": 4, "changes": {"prompt": ["w"]}, "workspace_changes": None}))
    assert (poke["items"], poke["previous_version"]) == (None, None)


def test_with_no_item_cap_pokes_are_written_in_the_older_generation_that_old_readers_decode():
    """poke_items_max_bytes = 0: the projector writes the v0 generation (no items), byte for byte what
    a subscriber of an older release knows."""
    data = codec.encode("ConfigPush", {**NEW_POKE, "items": None}, writer=codec.registry.generation("v0", "ConfigPush"))
    assert data[2:10] == schema_fingerprint(OLD_PUSH) == bytes.fromhex("b5fb8608a039eb00"), "the pokes of before items"
    assert schemaless_reader(io.BytesIO(data[10:]), OLD_PUSH, None) == {
        "version": 9, "changes": {"prompt": ["w"]}, "workspace_changes": None}
    assert data == old_push({"version": 9, "changes": {"prompt": ["w"]}, "workspace_changes": None})


def test_an_older_reader_given_the_new_schema_resolves_new_pokes_without_the_new_fields():
    """What shipping a new schema to every reader first (design.md §4.5) means for pokes."""
    data = codec.encode("ConfigPush", NEW_POKE)
    new_writer = codec.registry.writer(bytes(data[2:10]))
    assert new_writer is not None
    assert schemaless_reader(io.BytesIO(data[10:]), new_writer[1], OLD_PUSH) == {
        "version": 9, "changes": {"prompt": ["w"]}, "workspace_changes": None}
    assert codec.decode("ConfigPush", data) == NEW_POKE
