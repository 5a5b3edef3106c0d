"""Dead letters, bounded by construction: a copy of a refused record that always fits the DLQ topic.

A record can be refused for anything it carries, so its copy cannot simply repeat it: a 5 MB header
would make the copy as unproducible as the original. The copy keeps the key and each header only up
to :data:`DLQ_FIELD_BYTES` (all headers together up to :data:`DLQ_HEADERS_BYTES`), lists what it left
out in a ``dropped`` header, cuts the value to the record limit (``truncated-from`` says from what),
and adds the reason (``error``, ``error-type``, ``source-offset``). Key and headers so never add more
than :data:`DLQ_EXTRA_BYTES` to the value. The writer and the TrustGraph forwarder both use it.

Example::

    record = dead_letter(key, value, headers, offset=7, error_type="CorruptBody", reason="...",
                         max_value_bytes=settings.max_response_bytes)
"""

from __future__ import annotations

from collections.abc import Sequence

from eventconfig import model
from eventconfig.logrecords import Headers, OutRecord

DLQ_FIELD_BYTES = 1024  # the key, each kept header, the reason, the summary of what was dropped
DLQ_HEADERS_BYTES = 16 * 1024  # all kept headers of the refused record together
DLQ_EXTRA_BYTES = DLQ_FIELD_BYTES + DLQ_HEADERS_BYTES + 4 * DLQ_FIELD_BYTES  # key, its headers, ours


def dead_letter(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]], *, offset: int,
                error_type: str, reason: str, max_value_bytes: int,
                extra: Sequence[tuple[str, bytes]] = ()) -> OutRecord:
    """The bounded copy of a refused record (``extra``: short headers of the caller's, e.g. its topic)."""
    dropped = [] if key is None or len(key) <= DLQ_FIELD_BYTES else [f"key({len(key)})"]
    if dropped:
        key = None
    kept = bounded_headers(headers, dropped)
    kept.extend(reasons(offset, error_type, reason))
    kept.extend(extra)
    if dropped:
        kept.append(("dropped", cut(f"{len(dropped)}: {', '.join(dropped)}")))
    if value is not None and len(value) > max_value_bytes:
        kept.append(("truncated-from", str(len(value)).encode()))
        value = value[:max_value_bytes]
    return OutRecord(key, value, kept)


def reasons(offset: int, error_type: str, reason: str) -> Headers:
    """The headers that say why a record was dead-lettered and where it came from."""
    return [(model.ERROR_HEADER, cut(reason)), (model.ERROR_TYPE_HEADER, error_type.encode()[:DLQ_FIELD_BYTES]),
            ("source-offset", str(offset).encode())]


def bounded_headers(headers: Sequence[tuple[str, bytes]], dropped: list[str]) -> Headers:
    """The headers that fit (each at most DLQ_FIELD_BYTES, all at most DLQ_HEADERS_BYTES); appends
    ``name(size)`` of each one left out to ``dropped``."""
    kept: Headers = []
    total = 0
    for name, raw in headers:
        size = len(name.encode()) + len(raw or b"")
        if size > DLQ_FIELD_BYTES or total + size > DLQ_HEADERS_BYTES:
            dropped.append(f"{name[:64]}({size})")
            continue
        kept.append((name, raw))
        total += size
    return kept


def cut(text: str) -> bytes:
    """``text`` as UTF-8, at most DLQ_FIELD_BYTES of it."""
    return text.encode()[:DLQ_FIELD_BYTES]
