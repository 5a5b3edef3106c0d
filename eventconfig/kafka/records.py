"""What every producer in eventconfig hands to Kafka: a plain record, no aiokafka types (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from eventconfig.model import Headers


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce: key, value (None = tombstone), headers and, when the reader asked for one,
    the partition (None: placed by a stable hash of the key)."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None
