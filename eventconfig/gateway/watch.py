"""``GET /v1/watch``: pokes as Server-Sent Events, resumable with ``Last-Event-ID``.

Every event's id is a version. The stream starts with one of:

* ``ready`` (id V): pokes up to version V are accounted for; read the state with ``min_version=V``
  and apply the ``poke`` events that follow (subscribe, then fetch: no change can fall in between);
* ``resync`` (id V): the ``Last-Event-ID`` (or ``from_version``) is older than what the notify topic
  still holds, so some pokes after it are gone: reload everything with ``min_version=V``.

Then ``poke`` events (id = the poke's version, data = ``{"version", "changes": {type: [workspace]},
"workspace_changes"}``), with only the workspaces and types the caller may read (the policy,
:mod:`eventconfig.gateway.access`; a poke with none of them is not sent), filtered by
``workspace``/``type`` when asked, and a ``: keep-alive`` comment every 15 s. A reconnecting
EventSource sends the last id it saw and resumes where it was. Later in a stream:

* ``resync`` (id V) again, when the client read so slowly that ``gateway_watch_queue_pokes`` pokes
  waited for it: they were dropped; reload with ``min_version=V`` and go on with the pokes that follow;
* ``interrupted`` (no id, data ``{"reason", "retry_ms"}``), when the gateway's notify consumer failed
  (an error Kafka's client does not retry itself, such as a lost authorization; a broker outage it
  rides out only delays the pokes): the stream stays open and pokes follow, none lost, once the
  consumer is back (``retry_ms`` later, doubling up to 10 s).

Every stream of a gateway is fed by one consumer (:mod:`eventconfig.gateway.watch_hub`); a resume of
a recent poke is served from its memory, an older one from the topic. The notify topic has one
partition and pokes in version order, but not every version has a poke (a write to reserved
workspaces has none), so a gap in versions is no loss; only retention is: the notify topic keeps
pokes for a day.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from eventconfig.gateway.access import ReadAccess
from eventconfig.gateway.deps import access_of
from eventconfig.gateway.problems import bad_request
from eventconfig.gateway.watch_hub import WatchHub
from eventconfig.gateway.watch_ring import Closed, Interrupted, Item, Lagged, Poke

router = APIRouter(prefix="/v1", tags=["watch"])
KEEP_ALIVE_S = 15.0


# --- pure ------------------------------------------------------------------------------------


def sse(event: str, data: Any, id: int | None = None) -> bytes:
    """One Server-Sent Event; ``data`` is JSON on one line."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


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


# --- the stream ------------------------------------------------------------------------------


def _shown(poke: Poke, access: ReadAccess, workspace: str | None, types: set[str]) -> bytes:
    """The poke's event for this caller and filter; empty when none of it is left to show."""
    readable = access.poke(poke)
    shown = None if readable is None else select(readable, workspace, types)
    return b"" if shown is None else sse("poke", shown, id=poke["version"])


class _Stream:
    """One stream's position and filters; turns what the hub queued into the bytes to send."""

    def __init__(self, hub: WatchHub, access: ReadAccess, workspace: str | None, types: set[str],
                 seen: int) -> None:
        self.hub, self.access, self.workspace, self.types, self.seen = hub, access, workspace, types, seen
        # Streams of the same caller (or of any unrestricted one) and filters share each poke's event.
        self.key = (None if access.unrestricted else access.actor, workspace, frozenset(types))

    def poke(self, poke: Poke) -> bytes:
        if poke["version"] <= self.seen:
            return b""
        self.seen = poke["version"]
        return self.hub.memo(poke, self.key, lambda: _shown(poke, self.access, self.workspace, self.types))

    def item(self, item: Item) -> bytes:
        if isinstance(item, Interrupted):
            return sse("interrupted", {"reason": item.reason, "retry_ms": item.retry_ms})
        if isinstance(item, Lagged):
            if item.version <= self.seen:
                return b""
            self.seen = item.version
            return sse("resync", {"version": item.version, "reason": item.reason}, id=item.version)
        assert not isinstance(item, Closed)
        return self.poke(item)


async def _events(hub: WatchHub, access: ReadAccess, last_seen: int | None,
                  workspace: str | None, types: set[str]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    with hub.subscribed() as inbox:
        opening = await hub.open(inbox, last_seen)
        try:
            reason = (f"pokes after version {last_seen} are no longer held (notify topic retention)"
                      if opening.kind == "resync" else None)
            yield b"retry: 2000\n\n" + sse(opening.kind, {"version": opening.version, "reason": reason},
                                           id=opening.version)
            stream = _Stream(hub, access, workspace, types, opening.version)
            async for pokes in opening.replayed():
                if chunk := b"".join(map(stream.poke, pokes)):
                    yield chunk
        finally:
            await opening.close()
        quiet_since = loop.time()
        while True:
            items = await inbox.take(max(0.0, KEEP_ALIVE_S - (loop.time() - quiet_since)))
            closed = any(isinstance(item, Closed) for item in items)
            chunk = b"".join(stream.item(item) for item in items if not isinstance(item, Closed))
            if chunk or not items:
                quiet_since = loop.time()
                yield chunk or b": keep-alive\n\n"
            if closed:
                return


@router.get("/watch", summary="Pokes as Server-Sent Events (resumable with Last-Event-ID)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "ready|resync, then poke, resync and interrupted events; "
                                            "ids are versions"}})
async def watch(request: Request,
                workspace: str | None = Query(None, description="Only pokes touching this workspace."),
                type: list[str] = Query([], description="Only pokes touching these types (repeatable)."),
                from_version: int | None = Query(None, ge=0, description="Resume after this version "
                                                 "(for clients that cannot send Last-Event-ID)."),
                last_event_id_header: str | None = Header(None, alias="Last-Event-ID"),
                access: ReadAccess = Depends(access_of)) -> StreamingResponse:
    if workspace is not None:
        access.require(workspace)
    last_seen = last_event_id(last_event_id_header, from_version)
    hub: WatchHub = request.app.state.watch_hub
    return StreamingResponse(_events(hub, access, last_seen, workspace, set(type)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
