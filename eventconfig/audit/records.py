"""History records as plain values: ``Mutation`` and ``Change`` (docs/design.md §4), and audit times.

The writer puts one ``Mutation`` per successful write on the history topic; here it becomes a frozen
value that the pure replay code folds and the CLI renders. Times are the writer's wall clock in
epoch milliseconds; they are shown as ISO-8601 UTC and accepted as ISO-8601 or epoch ms.

Example::

    m = Mutation.from_wire(codec.decode("Mutation", record.value), offset=record.offset)
    m.version, [c.key for c in m.changes]
    parse_time("2026-01-31T12:00:00Z") == parse_time("1769860800000")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from eventconfig.model import ItemKey


@dataclass(frozen=True, slots=True)
class Change:
    """One item of a mutation: ``value`` None means deleted, ``previous`` is the value before it."""

    type: str
    key: str
    value: str | None
    previous: str | None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "key": self.key, "previous": self.previous, "value": self.value}


@dataclass(frozen=True, slots=True)
class Mutation:
    """One successful write request: who, when, which version, and every item it changed."""

    version: int
    timestamp_ms: int
    request_id: str
    actor: str | None
    workspace: str
    operation: str
    changes: tuple[Change, ...]
    offset: int = -1  # position on the history topic, -1 when not read from Kafka
    actor_verified: bool = False  # the writer checked the actor's signature (docs/design.md §14.1)

    @classmethod
    def from_wire(cls, record: Mapping[str, Any], offset: int = -1) -> Mutation:
        """From the decoded Avro ``Mutation`` record."""
        changes = tuple(Change(c["type"], c["key"], c["value"], c["previous"]) for c in record["changes"])
        return cls(int(record["version"]), int(record["timestamp_ms"]), record["request_id"], record["actor"],
                   record["workspace"], record["operation"], changes, offset, bool(record.get("actor_verified")))

    def item(self, change: Change) -> ItemKey:
        return ItemKey(self.workspace, change.type, change.key)

    @property
    def time(self) -> str:
        return format_time(self.timestamp_ms)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "time": self.time, "timestamp_ms": self.timestamp_ms,
                "actor": self.actor, "actor_verified": self.actor_verified, "request_id": self.request_id, "workspace": self.workspace,
                "operation": self.operation, "changes": [c.to_json() for c in self.changes]}


def format_time(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds, e.g. ``2026-01-31T12:00:00.000Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(text: str) -> int:
    """Epoch milliseconds from ISO-8601 (no zone means UTC) or from a plain integer of epoch ms.

    Raises ValueError with the accepted forms when ``text`` is neither.
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use ISO-8601 (2026-01-31T12:00:00Z, "
                         "2026-01-31 12:00+02:00, 2026-01-31) or epoch milliseconds (1769860800000)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)
