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
