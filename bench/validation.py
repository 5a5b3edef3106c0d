"""What validated config costs per put, measured in-process with no broker (pure CPU).

The writer's whole batch step for a one-item put of a 256-byte JSON object (decode, handle, hash-chain
the Mutation, encode), one request per batch so that each put is timed alone, without a schema on its
type and with one (draft 2020-12: an object with required, typed and bounded properties). The schema
is compiled once before timing, as the writer compiles it once per schema version.

Example::

    rows = validation_rows(requests=2_000)
"""

from __future__ import annotations

import json
import time
import uuid

from eventconfig.client.wire import request_headers
from eventconfig.codec import default_codec
from eventconfig.model import Entry, ItemKey, Version
from eventconfig.validation import SCHEMAS_WORKSPACE
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch

from bench.report import Row, percentile

SCHEMA = {"type": "object", "required": ["text", "temperature", "tags"], "additionalProperties": False,
          "properties": {"text": {"type": "string", "maxLength": 4096},
                         "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                         "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 16}}}


def _value(i: int) -> str:
    """A 256-byte JSON object the schema accepts."""
    head = {"temperature": round(0.1 * (i % 20), 1), "tags": ["bench", f"t{i % 7}"], "text": ""}
    head["text"] = "x" * (256 - len(json.dumps(head)))
    return json.dumps(head)


def _per_put_us(records: list[RawRequest], reader: DictReader, now_ms: int) -> list[float]:
    codec, config, took = default_codec(), BatchConfig(), []
    for record in records:
        started = time.perf_counter()
        result = process_batch([record], reader, {}, Version(reader.version), config, now_ms, codec)
        took.append((time.perf_counter() - started) * 1e6)
        assert not result.dlq, "every request is accepted"
    return took


def validation_rows(requests: int) -> list[Row]:
    codec = default_codec()
    now_ms = int(time.time() * 1000)
    records = [RawRequest(i, codec.encode("ConfigRequest", {"operation": "put", "workspace": "bench", "values": [
        {"type": "prompt", "key": f"k{i % 100}", "value": _value(i)}]}), request_headers(uuid.uuid4().hex, "bench"))
        for i in range(requests)]
    plain = DictReader({ItemKey("bench", "prompt", "seed"): Entry(_value(0), 1)}, version=1)
    governed = DictReader({ItemKey("bench", "prompt", "seed"): Entry(_value(0), 1),
                           ItemKey(SCHEMAS_WORKSPACE, "prompt", "*"): Entry(json.dumps(SCHEMA), 1)}, version=1)
    _per_put_us(records[:50], governed, now_ms)  # compiles the schema once, warms both paths
    without = _per_put_us(records, plain, now_ms)
    with_schema = _per_put_us(records, governed, now_ms)
    note = (f"{requests:,} one-item puts of a 256 B JSON object, one per batch, timed each; one thread, "
            "warm; the schema compiled once before (as the writer does per schema version)")
    base = {q: percentile(without, q) for q in (50, 99)}
    governed_us = {q: percentile(with_schema, q) for q in (50, 99)}
    return [row for q in (50, 99) for row in (
        Row("schema", f"writer batch step per put, no schema, p{q}", base[q], "µs", note=note),
        Row("schema", f"writer batch step per put, JSON Schema on the type, p{q}", governed_us[q], "µs",
            note=f"validation {governed_us[q] - base[q]:.0f} µs per put ({governed_us[q] / base[q]:.2f}×); {note}"))]
