"""The records of the log topic: how a write becomes Kafka records, and how a record reads back.

A write at version V is: one record per changed item (value ``LogEntry{value, V}``, or a null
tombstone carrying V in the ``version`` header), then one commit marker (key ``LogKey("","","")``,
value ``LogEntry{"", V}``) that says "version V is complete". The writer produces these; the view's
applier and the push projector decode them. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from eventconfig.codec import Codec, default_codec
from eventconfig.errors import CodecError
from eventconfig.kafka.records import OutRecord  # re-exported, with Headers: the writer's and DLQ's import path
from eventconfig.model import CHAIN_HEAD_HEADER, MARKER_KEY, VERSION_HEADER, Headers, ItemKey

__all__ = ["Headers", "LogRecord", "OutRecord", "decode_record", "delete_record", "marker_record", "put_record"]

@dataclass(frozen=True, slots=True)
class LogRecord:
    """A decoded log record. ``value`` None means the item was deleted at ``version``."""

    item: ItemKey
    value: str | None
    version: int

    @property
    def is_marker(self) -> bool:
        return self.item == MARKER_KEY


def put_record(item: ItemKey, value: str, version: int, codec: Codec | None = None) -> OutRecord:
    codec = codec or default_codec()
    return OutRecord(codec.encode_log_key(*item), codec.encode("LogEntry", {"value": value, "version": version}), [])


def delete_record(item: ItemKey, version: int, codec: Codec | None = None) -> OutRecord:
    codec = codec or default_codec()
    return OutRecord(codec.encode_log_key(*item), None, [(VERSION_HEADER, str(version).encode())])


def marker_record(version: int, codec: Codec | None = None, chain_head: str = "") -> OutRecord:
    """The commit marker of ``version``; ``chain_head`` (the write's Mutation hash) goes in a header."""
    record = put_record(MARKER_KEY, "", version, codec)
    return OutRecord(record.key, record.value, [(CHAIN_HEAD_HEADER, chain_head.encode())] if chain_head else [])


def decode_record(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]],
                  codec: Codec | None = None) -> LogRecord:
    """Decode one consumed log record; raises CodecError for anything that is not ours."""
    codec = codec or default_codec()
    if key is None:
        raise CodecError("log record without a key")
    item = ItemKey(*codec.decode_log_key(key))
    if value is not None:
        entry = codec.decode("LogEntry", value)
        return LogRecord(item, entry["value"], int(entry["version"]))
    for name, raw in headers:
        if name == VERSION_HEADER:
            try:
                return LogRecord(item, None, int(raw.decode()))
            except (UnicodeDecodeError, ValueError) as exc:
                raise CodecError(f"tombstone with a bad version header {raw!r}") from exc
    raise CodecError("tombstone without a version header")
