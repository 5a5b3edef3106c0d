"""``GET /v1/watch``: pokes as Server-Sent Events, resumable with ``Last-Event-ID``.

Every event's id is a version. The stream starts with one of:

* ``ready`` (id V): pokes up to version V are accounted for; read the state with ``min_version=V``
  and apply the ``poke`` events that follow (subscribe, then fetch: no change can fall in between);
* ``resync`` (id V): the ``Last-Event-ID`` (or ``from_version``) is older than what the notify topic
  still holds, so some pokes after it are gone: reload everything with ``min_version=V``.

Then ``poke`` events (id = the poke's version, data = ``{"version", "changes": {type: [workspace]},
"workspace_changes"}``), with only the workspaces and types the caller may read (the policy,
:mod:`eventconfig.gateway.access`; a poke with none of them is not sent), filtered by
``workspace``/``type`` when asked, and a ``: keep-alive`` comment every 15 s. A reconnecting EventSource sends the last id it saw and resumes where it was.

The notify topic has one partition and pokes in version order, but not every version has a poke (a
write to reserved workspaces has none), so a gap in versions is no loss; only retention is: the
notify topic keeps pokes for a day.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.gateway import metrics
from eventconfig.gateway.access import ReadAccess
from eventconfig.gateway.backend import Backend
from eventconfig.gateway.deps import access_of, backend_of
from eventconfig.gateway.problems import bad_request
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["watch"])
KEEP_ALIVE_S = 15.0
_TAIL_WINDOW = 64  # offsets read back from the end to find the last poke (markers take offsets too)
_POLL_MS = 500


# --- pure ------------------------------------------------------------------------------------


def sse(event: str, data: Any, id: int | None = None) -> bytes:
    """One Server-Sent Event; ``data`` is JSON on one line."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def needs_resync(beginning_offset: int, first_held_version: int | None, last_seen: int, current: int) -> bool:
    """True when pokes newer than ``last_seen`` may have been deleted by retention.

    Deleted pokes all precede the first one held, so nothing newer than ``last_seen`` is lost when
    ``last_seen`` reaches the version just before it, or when nothing was ever deleted. When every
    poke was deleted (a quiet day), the deleted ones are at or below ``current``, the version the
    gateway's view has applied: a client that saw that much lost nothing.
    """
    if beginning_offset == 0:
        return False
    if first_held_version is None:
        return last_seen < current
    return first_held_version - 1 > last_seen


def select(poke: dict[str, Any], workspace: str | None, types: set[str]) -> dict[str, Any] | None:
    """The poke as a client filtering by workspace/types sees it, or None when nothing is left."""
    changes = {t: [w for w in wss if workspace is None or w == workspace]
               for t, wss in poke["changes"].items() if not types or t in types}
    changes = {t: wss for t, wss in changes.items() if wss}
    lifecycle = poke.get("workspace_changes")
    if lifecycle and workspace is not None and workspace not in lifecycle["created"] + lifecycle["deleted"]:
        lifecycle = None
    if not changes and not lifecycle:
        return None
    return {"version": poke["version"], "changes": changes, "workspace_changes": lifecycle}


def last_event_id(header: str | None, from_version: int | None) -> int | None:
    """Where to resume: the Last-Event-ID header (a version) wins over ``?from_version=``."""
    if header is None or not header.strip():
        return from_version
    if not header.strip().isdigit():
        raise bad_request(f"Last-Event-ID must be a version (a non-negative integer), not {header!r}")
    return int(header)


# --- the notify topic ------------------------------------------------------------------------


@dataclass
class Opening:
    """How a stream starts: ``ready`` or ``resync`` at ``version``, with pokes already read after it."""

    kind: str
    version: int
    pokes: list[dict[str, Any]]


class PokeFollower:
    """One stream's reader of the notify topic (a consumer of its own, no group, read_committed).

        async with PokeFollower(settings) as follower:
            opening = await follower.open(last_seen=41, current=backend.version); pokes = await follower.pokes()
    """

    def __init__(self, settings: Settings) -> None:
        self._tp = TopicPartition(settings.topics.notify, 0)
        self._consumer = committed_consumer(settings)
        self._codec = default_codec()

    async def __aenter__(self) -> PokeFollower:
        await self._consumer.start()
        self._consumer.assign([self._tp])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def open(self, last_seen: int | None, current: int) -> Opening:
        """Position after ``last_seen`` when the topic still holds what follows it, else at the end.

        At the end, the stream starts at the newer of the last poke held and ``current`` (the version
        the caller's reads will reflect): pokes at or below it that the projector has yet to write are
        already in what the client reads with ``min_version``, so they are passed over.
        """
        consumer, tp = self._consumer, self._tp
        beginning = int((await consumer.beginning_offsets([tp]))[tp])
        end = await end_offset(consumer, tp)
        if last_seen is not None:
            consumer.seek(tp, beginning)
            first = await self._first_pokes(end)
            if not needs_resync(beginning, first[0]["version"] if first else None, last_seen, current):
                return Opening("ready", last_seen, first)
        consumer.seek(tp, max(beginning, end - _TAIL_WINDOW))
        version = current
        while await consumer.position(tp) < end:
            for poke in await self.pokes():
                version = max(version, poke["version"])
        return Opening("ready" if last_seen is None else "resync", version, [])

    async def _first_pokes(self, end: int) -> list[dict[str, Any]]:
        while await self._consumer.position(self._tp) < end:
            pokes = await self.pokes()
            if pokes:
                return pokes
        return []

    async def pokes(self) -> list[dict[str, Any]]:
        """The next decoded pokes (waits up to half a second; undecodable ones are logged and skipped)."""
        batches = await self._consumer.getmany(self._tp, timeout_ms=_POLL_MS)
        decoded = []
        for record in batches.get(self._tp, []):
            try:
                decoded.append(self._codec.decode("ConfigPush", record.value or b""))
            except CodecError as exc:
                log.warning("watch: skipping an undecodable poke at offset %d: %s", record.offset, exc)
        return decoded


async def _events(request: Request, backend: Backend, access: ReadAccess, last_seen: int | None,
                  workspace: str | None, types: set[str]) -> AsyncIterator[bytes]:
    stopping: asyncio.Event = request.app.state.stopping
    loop = asyncio.get_running_loop()
    metrics.WATCH_STREAMS.inc()
    try:
        async with PokeFollower(backend.settings) as follower:
            opening = await follower.open(last_seen, backend.version)
            reason = (f"pokes after version {last_seen} are no longer held (notify topic retention)"
                      if opening.kind == "resync" else None)
            yield b"retry: 2000\n\n" + sse(opening.kind, {"version": opening.version, "reason": reason},
                                           id=opening.version)
            seen, pokes, quiet_since = opening.version, opening.pokes, loop.time()
            while not stopping.is_set():
                for poke in pokes:
                    if poke["version"] <= seen:
                        continue
                    seen = poke["version"]
                    readable = access.poke(poke)
                    shown = None if readable is None else select(readable, workspace, types)
                    if shown is not None:
                        quiet_since = loop.time()
                        yield sse("poke", shown, id=seen)
                if loop.time() - quiet_since >= KEEP_ALIVE_S:
                    quiet_since = loop.time()
                    yield b": keep-alive\n\n"
                pokes = await follower.pokes()
    finally:
        metrics.WATCH_STREAMS.dec()


@router.get("/watch", summary="Pokes as Server-Sent Events (resumable with Last-Event-ID)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "ready|resync, then poke events; ids are versions"}})
async def watch(request: Request, backend: Backend = Depends(backend_of),
                workspace: str | None = Query(None, description="Only pokes touching this workspace."),
                type: list[str] = Query([], description="Only pokes touching these types (repeatable)."),
                from_version: int | None = Query(None, ge=0, description="Resume after this version "
                                                 "(for clients that cannot send Last-Event-ID)."),
                last_event_id_header: str | None = Header(None, alias="Last-Event-ID"),
                access: ReadAccess = Depends(access_of)) -> StreamingResponse:
    if workspace is not None:
        access.require(workspace)
    last_seen = last_event_id(last_event_id_header, from_version)
    return StreamingResponse(_events(request, backend, access, last_seen, workspace, set(type)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
