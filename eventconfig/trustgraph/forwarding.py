"""Forwarding, pure: TrustGraph request records in, what one forwarder transaction writes out.

Each decodable TrustGraph request becomes an Avro ``ConfigRequest`` on eventconfig's request topic,
with the id :func:`~eventconfig.trustgraph.wire.forward_id` and the actor ``trustgraph:<ts>``, so it
goes through the one fenced writer like any other request. A record that cannot be decoded goes to
the DLQ (with the reason in the ``error``/``error-type`` headers) and, when it has an ``id``, gets a
``config-error`` answer; one that repeats a header of the contract is dead-lettered unanswered. That answer is written as an eventconfig response, so it reaches TrustGraph
the same way every other answer does: through the translator, after its transaction committed.
Every forwarded request asks for its answer on :data:`REPLY_PARTITION` of eventconfig's response topic
(the ``reply-partition`` header), the one partition the translator reads.

Example::

    out = forward_batch(raw_records, "tg", "tg.request.config", max_request_bytes=10 << 20)
    # produce out.requests / out.responses / out.dlq with the input offset in one transaction
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eventconfig import model
from eventconfig.client.wire import header_value, request_headers
from eventconfig.codec import Codec, default_codec
from eventconfig.deadletter import dead_letter
from eventconfig.errors import ConfigError, RequestError, TooLarge
from eventconfig.logrecords import OutRecord
from eventconfig.signing import Signer
from eventconfig.trustgraph.wire import TrustGraphDecodeError, actor, decode_request, forward_id
from eventconfig.writer.batch import RawRequest, repeated_header_refusal
from eventconfig.writer.handler import error_response

REPLY_PARTITION = 0  # of eventconfig's response topic: where the answers to forwarded requests go


@dataclass
class Forwarded:
    requests: list[OutRecord] = field(default_factory=list)   # to eventconfig's request topic
    responses: list[OutRecord] = field(default_factory=list)  # to eventconfig's response topic
    dlq: list[OutRecord] = field(default_factory=list)


def forward_batch(records: Sequence[RawRequest], topicspace: str, source_topic: str, max_request_bytes: int,
                  codec: Codec | None = None, max_id_bytes: int = 256, signer: Signer | None = None,
                  now_ms: int = 0) -> Forwarded:
    """Translate a batch of TrustGraph request records, in order. With a ``signer`` (authentication on,
    docs/design.md §14.1) each forward is signed at ``now_ms`` as the front end's own identity."""
    codec = codec or default_codec()
    out = Forwarded()
    for record in records:
        repeated = model.repeated_header(record.headers)
        if repeated is not None:  # refused unanswered, as the writer refuses it (docs/design.md §4.3)
            error_type, reason = repeated_header_refusal(record.headers, repeated)
            out.dlq.append(_dead_letter(record, source_topic, error_type, reason, max_request_bytes))
            continue
        trustgraph_id = header_value(record.headers, model.ID_HEADER)
        if trustgraph_id and len(forward_id(topicspace, trustgraph_id, "w")) > max_id_bytes:
            # Its forward could not be answered (the writer refuses an over-long id) and could be too
            # large to produce at all: refuse it here, bounded.
            out.dlq.append(_dead_letter(record, source_topic, "BadId", "the 'id' header is too long to "
                                        f"forward (at most {max_id_bytes} bytes with its prefix)", max_request_bytes))
            continue
        try:
            request = decode_request(record.value)
        except TrustGraphDecodeError as exc:
            out.dlq.append(_dead_letter(record, source_topic, "TrustGraphDecodeError", str(exc), max_request_bytes))
            if trustgraph_id:
                _reject(out, codec, forward_id(topicspace, trustgraph_id, ""),
                        ConfigError(f"undecodable TrustGraph request: {exc}"))
            continue
        if not trustgraph_id:
            out.dlq.append(_dead_letter(record, source_topic, "MissingId",
                                        "request has no 'id' header; no response can be sent", max_request_bytes))
            continue
        request_id = forward_id(topicspace, trustgraph_id, request["operation"])
        value = codec.encode("ConfigRequest", request)
        if len(value) > max_request_bytes:
            _reject(out, codec, request_id, TooLarge(f"the request is {len(value)} bytes as eventconfig's "
                                                     f"ConfigRequest, over the {max_request_bytes}-byte limit"))
            continue
        headers = request_headers(request_id, actor(topicspace), reply_partition=REPLY_PARTITION)
        if signer is not None:
            headers = signer.sign(value, headers, now_ms)
        out.requests.append(OutRecord(None, value, headers))
    return out


def _reject(out: Forwarded, codec: Codec, request_id: str, error: RequestError) -> None:
    value = codec.encode("ConfigResponse", error_response(error))
    out.responses.append(OutRecord(request_id.encode(), value, [(model.ID_HEADER, request_id.encode())],
                                   REPLY_PARTITION))


def _dead_letter(record: RawRequest, source_topic: str, error_type: str, reason: str, max_bytes: int) -> OutRecord:
    return dead_letter(record.key, record.value, record.headers, offset=record.offset, error_type=error_type,
                       reason=reason, max_value_bytes=max_bytes, extra=[("source-topic", source_topic.encode())])
