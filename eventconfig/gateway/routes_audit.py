"""``/v1/history``, ``/v1/state`` and ``/v1/diff``: the audit commands of the CLI over HTTP.

They read the history topic (with readers the gateway reuses) with the same filters and answers as
``eventconfig history|state|diff``, showing only what the caller may read (:mod:`eventconfig.gateway.access`):
mutations, state and differences are filtered to the workspaces and types the policy grants, and
naming a workspace (or type) the caller may not read at all is 403. A history listing is paginated:
``limit`` mutations per page and a ``next`` link (also a ``Link: <...>; rel="next"`` header) that
narrows the version range.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from eventconfig.audit import HistoryQuery, Mutation, format_time, parse_time
from eventconfig.gateway.access import ReadAccess
from eventconfig.gateway.backend import Backend
from eventconfig.gateway.deps import access_of, backend_of
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
                  order: Literal["asc", "desc"] = Query("asc", description="desc: newest first."),
                  access: ReadAccess = Depends(access_of)) -> dict[str, Any]:
    if workspace is not None:
        access.require(workspace, type)
    if from_version is not None and to_version is not None and from_version > to_version:
        raise bad_request("from_version is above to_version")
    query = HistoryQuery(workspace, type, key, from_version, to_version, _time("since", since),
                         _time("until", until))
    async with backend.history.reader() as reader:
        stream = reader.read(query) if order == "asc" else reader.newest_first(query)
        page, more = await _page(stream, access, limit)
    next_url = None
    if more:
        bound = ({"from_version": page[-1].version + 1} if order == "asc" else {"to_version": page[-1].version - 1})
        url = request.url.include_query_params(**bound)
        next_url = f"{url.path}?{url.query}"  # relative: right behind any proxy
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return {"items": [m.to_json() for m in page], "next": next_url}


async def _page(stream: AsyncGenerator[Mutation, None], access: ReadAccess, limit: int) -> tuple[list[Mutation], bool]:
    """The first ``limit`` mutations of ``stream`` the caller may read, and whether more follow."""
    page: list[Mutation] = []
    async with aclosing(stream):
        async for mutation in stream:
            shown = access.mutation(mutation)
            if shown is None:
                continue
            if len(page) == limit:
                return page, True
            page.append(shown)
    return page, False


@router.get("/state", summary="The configuration as of a version or a time, replayed from the history")
async def state(backend: Backend = Depends(backend_of), at_version: int | None = Query(None, ge=0),
                at_time: str | None = Query(None, description="ISO-8601 (no zone = UTC) or epoch ms."),
                workspace: str | None = None, access: ReadAccess = Depends(access_of)) -> dict[str, Any]:
    """With ``workspace``: ``config`` is ``{type: {key: value}}``; without: ``workspaces`` nests them all."""
    if workspace is not None:
        access.require(workspace)
    if (at_version is None) == (at_time is None):
        raise bad_request("give exactly one of at_version and at_time")
    async with backend.history.reader() as reader:
        result = await reader.state(at_version=at_version, at_time_ms=_time("at_time", at_time), workspace=workspace)
    answer: dict[str, Any] = {"version": result.version, "timestamp_ms": result.timestamp_ms,
                              "time": None if result.timestamp_ms is None else format_time(result.timestamp_ms)}
    if workspace is not None:
        return {**answer, "workspace": workspace, "config": access.config(workspace, result.config(workspace))}
    return {**answer, "workspaces": access.nested(result.workspaces())}


@router.get("/diff", summary="Keys added, removed and changed between two versions")
async def diff(backend: Backend = Depends(backend_of), from_: int = Query(..., alias="from", ge=0),
               to: int = Query(..., ge=0), workspace: str | None = None,
               access: ReadAccess = Depends(access_of)) -> dict[str, Any]:
    if workspace is not None:
        access.require(workspace)
    async with backend.history.reader() as reader:
        result = await reader.diff(from_, to, workspace=workspace)
    return access.diff(result).to_json()
