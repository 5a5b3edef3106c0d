"""``/v1/history``, ``/v1/state`` and ``/v1/diff``: the audit commands of the CLI over HTTP.

They read the history topic (with readers the gateway reuses) with the same filters and answers as
``eventconfig history|state|diff``. A history listing is paginated: ``limit`` mutations per page and a
``next`` link (also a ``Link: <...>; rel="next"`` header) that narrows the version range.
"""

from __future__ import annotations

from collections import deque
from contextlib import aclosing
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from eventconfig.audit import HistoryQuery, HistoryReader, Mutation, format_time, parse_time
from eventconfig.gateway.backend import Backend
from eventconfig.gateway.deps import backend_of
from eventconfig.gateway.problems import bad_request

router = APIRouter(prefix="/v1", tags=["audit"])
MAX_PAGE = 1000


def _time(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise bad_request(f"{name}: {exc}") from None


@router.get("/history", summary="Mutations (who, when, old -> new), filtered and paginated")
async def history(request: Request, response: Response, backend: Backend = Depends(backend_of),
                  workspace: str | None = None, type: str | None = None, key: str | None = None,
                  from_version: int | None = Query(None, ge=0), to_version: int | None = Query(None, ge=0),
                  since: str | None = Query(None, description="ISO-8601 (no zone = UTC) or epoch ms, inclusive."),
                  until: str | None = Query(None, description="ISO-8601 (no zone = UTC) or epoch ms, inclusive."),
                  limit: int = Query(100, ge=1, le=MAX_PAGE),
                  order: Literal["asc", "desc"] = Query("asc", description="desc: newest first.")
                  ) -> dict[str, Any]:
    if from_version is not None and to_version is not None and from_version > to_version:
        raise bad_request("from_version is above to_version")
    query = HistoryQuery(workspace, type, key, from_version, to_version, _time("since", since),
                         _time("until", until))
    async with backend.history.reader() as reader:
        page, more = await (_oldest_first(reader, query, limit) if order == "asc"
                            else _newest_first(reader, query, limit))
    next_url = None
    if more:
        bound = ({"from_version": page[-1].version + 1} if order == "asc" else {"to_version": page[-1].version - 1})
        url = request.url.include_query_params(**bound)
        next_url = f"{url.path}?{url.query}"  # relative: right behind any proxy
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return {"items": [m.to_json() for m in page], "next": next_url}


async def _oldest_first(reader: HistoryReader, query: HistoryQuery, limit: int) -> tuple[list[Mutation], bool]:
    page: list[Mutation] = []
    stream = reader.read(query)
    async with aclosing(stream):
        async for mutation in stream:
            if len(page) == limit:
                return page, True
            page.append(mutation)
    return page, False


async def _newest_first(reader: HistoryReader, query: HistoryQuery, limit: int) -> tuple[list[Mutation], bool]:
    """The last ``limit`` matches: the history is read in version order, so all of it is read."""
    window: deque[Mutation] = deque(maxlen=limit + 1)
    async for mutation in reader.read(query):
        window.append(mutation)
    newest = list(reversed(window))
    return newest[:limit], len(newest) > limit


@router.get("/state", summary="The configuration as of a version or a time, replayed from the history")
async def state(backend: Backend = Depends(backend_of), at_version: int | None = Query(None, ge=0),
                at_time: str | None = Query(None, description="ISO-8601 (no zone = UTC) or epoch ms."),
                workspace: str | None = None) -> dict[str, Any]:
    """With ``workspace``: ``config`` is ``{type: {key: value}}``; without: ``workspaces`` nests them all."""
    if (at_version is None) == (at_time is None):
        raise bad_request("give exactly one of at_version and at_time")
    async with backend.history.reader() as reader:
        result = await reader.state(at_version=at_version, at_time_ms=_time("at_time", at_time), workspace=workspace)
    answer: dict[str, Any] = {"version": result.version, "timestamp_ms": result.timestamp_ms,
                              "time": None if result.timestamp_ms is None else format_time(result.timestamp_ms)}
    if workspace is not None:
        return {**answer, "workspace": workspace, "config": result.config(workspace)}
    return {**answer, "workspaces": result.workspaces()}


@router.get("/diff", summary="Keys added, removed and changed between two versions")
async def diff(backend: Backend = Depends(backend_of), from_: int = Query(..., alias="from", ge=0),
               to: int = Query(..., ge=0), workspace: str | None = None) -> dict[str, Any]:
    async with backend.history.reader() as reader:
        result = await reader.diff(from_, to, workspace=workspace)
    return result.to_json()
