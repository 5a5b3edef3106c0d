"""``/v1/workspaces``: config items over HTTP, with versions as ETags and If-Match as compare-and-set.

Reads come from the gateway's local view (``?min_version=N`` waits until it holds version N), and
show only what the caller may read (:mod:`eventconfig.gateway.access`): a read of one type or item
the policy does not grant is 403, a workspace list or dump leaves out what it does not grant. Writes
are requests to the service; each answers with the new global version (body, ``ETag`` and the
``X-Eventconfig-Version`` header). An item's ETag is the version at which it last changed, so
``If-Match: "<etag>"`` on a PUT or DELETE writes only if nobody changed it since (412 otherwise) and
``If-None-Match: *`` on a PUT creates only.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from eventconfig.gateway.access import ReadAccess
from eventconfig.gateway.auth import HttpUser
from eventconfig.gateway.backend import Backend, acting_as
from eventconfig.gateway.deps import access_of, backend_of, caller
from eventconfig.gateway.problems import bad_request, not_found
from eventconfig.model import WORKSPACE_TYPE, WORKSPACES_WORKSPACE, ItemKey, is_reserved
from eventconfig.view.reader import workspace_config

log = logging.getLogger(__name__)
VERSION_HEADER = "X-Eventconfig-Version"
router = APIRouter(prefix="/v1", tags=["config"])
MinVersion = Annotated[int | None, Query(ge=0, description="Answer once the gateway's view holds this version.")]


class Written(BaseModel):
    """The answer to every write: the global version it created."""

    version: int


class Item(BaseModel):
    workspace: str
    type: str
    key: str
    value: str
    version: int = Field(description="The version at which this key last changed (also its ETag).")


class PutBody(BaseModel):
    value: str = Field(description="The value, stored verbatim (JSON documents are strings too).")


class BatchPut(BaseModel):
    type: str
    key: str
    value: str
    if_version: int | None = Field(None, ge=0, description="Compare-and-set: 0 = must not exist yet.")


class BatchDelete(BaseModel):
    type: str
    key: str
    if_version: int | None = Field(None, ge=0)


class Batch(BaseModel):
    """One atomic write of many keys: either ``put`` or ``delete`` items (one service request)."""

    put: list[BatchPut] = []
    delete: list[BatchDelete] = []


def etag(version: int) -> str:
    return f'"{version}"'


def precondition(if_match: str | None, if_none_match: str | None = None) -> int | None:
    """The ``if_version`` of a write from its conditional headers (None: unconditional).

    ``If-Match: "7"`` (or ``W/"7"``, or ``7``) means "only if it is at version 7";
    ``If-None-Match: *`` means "only if it does not exist" (if_version 0).
    """
    if if_match is not None and if_none_match is not None:
        raise bad_request("give If-Match or If-None-Match, not both")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise bad_request('a write takes only `If-None-Match: *` (create only)')
        return 0
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise bad_request(f"If-Match must be one version ETag such as \"7\", not {if_match!r}")
    return int(tag)


def _written(request: Request, response: Response, identity: HttpUser, version: int, tag: int | None = None) -> Written:
    """The answer to a write, logged with who wrote it and whether the gateway verified that."""
    log.info("write", extra={"fields": {"method": request.method, "path": request.url.path, "version": version,
                                        "actor": identity.actor, "verified": identity.verified}})
    _versioned(response, version, tag)
    return Written(version=version)


def _versioned(response: Response, version: int, tag: int | None = None) -> None:
    response.headers[VERSION_HEADER] = str(version)
    if tag is not None:
        response.headers["ETag"] = etag(tag)


@router.get("/whoami", summary="The caller as the gateway sees it, and its mode", tags=["session"])
async def whoami(request: Request, identity: HttpUser = Depends(caller)) -> dict[str, Any]:
    return {"actor": identity.actor, "verified": identity.verified,
            "mode": "production" if request.app.state.auth.production else "development"}


@router.get("/workspaces", summary="Workspaces that hold config or are registered")
async def list_workspaces(response: Response, backend: Backend = Depends(backend_of), min_version: MinVersion = None,
                          access: ReadAccess = Depends(access_of), reserved: bool = Query(False, description="Include reserved (`_`-prefixed) ones.")
                          ) -> dict[str, Any]:
    await backend.at_least(min_version)
    with backend.snapshot() as view:
        names = set(view.workspaces())
        names.update(key for key, _ in view.scan_type(WORKSPACES_WORKSPACE, WORKSPACE_TYPE))
        version = view.version
    _versioned(response, version)
    shown = access.workspaces(n for n in names if reserved or not is_reserved(n))
    return {"version": version, "workspaces": sorted(shown)}


@router.get("/workspaces/{workspace}/config",
            summary="The whole workspace: {type: {key: value}} (the types the caller may read)")
async def dump(workspace: str, response: Response, backend: Backend = Depends(backend_of),
               min_version: MinVersion = None, access: ReadAccess = Depends(access_of)) -> dict[str, Any]:
    access.require(workspace)
    await backend.at_least(min_version)
    with backend.snapshot() as view:
        config = access.config(workspace, workspace_config(view, workspace))
        version = view.version
    _versioned(response, version)
    return {"workspace": workspace, "version": version, "config": config}


@router.get("/workspaces/{workspace}/config/{type}", summary="Every key of one type with its value and version")
async def list_type(workspace: str, type: str, response: Response, backend: Backend = Depends(backend_of),
                    min_version: MinVersion = None, access: ReadAccess = Depends(access_of)) -> dict[str, Any]:
    access.require(workspace, type)
    await backend.at_least(min_version)
    with backend.snapshot() as view:
        items = [Item(workspace=workspace, type=type, key=key, value=e.value, version=e.version)
                 for key, e in view.scan_type(workspace, type)]
        version = view.version
    _versioned(response, version)
    return {"workspace": workspace, "type": type, "version": version, "items": items}


@router.get("/workspaces/{workspace}/config/{type}/{key:path}", response_model=Item,
            summary="One value; its ETag is the version at which it last changed",
            responses={304: {"description": "If-None-Match named the current version"}, 403: {}, 404: {}})
async def get_item(workspace: str, type: str, key: str, response: Response, backend: Backend = Depends(backend_of),
                   min_version: MinVersion = None, if_none_match: str | None = Header(None),
                   access: ReadAccess = Depends(access_of)) -> Any:
    access.require(workspace, type)  # before the lookup: a 404 would tell that the key does not exist
    await backend.at_least(min_version)
    with backend.snapshot() as view:
        entry, version = view.get(ItemKey(workspace, type, key)), view.version
    if entry is None:
        raise not_found(f"{workspace}/{type}/{key} does not exist (as of version {version})")
    if if_none_match is not None and if_none_match.strip().removeprefix("W/") == etag(entry.version):
        return Response(status_code=304, headers={"ETag": etag(entry.version), VERSION_HEADER: str(version)})
    _versioned(response, version, entry.version)
    return Item(workspace=workspace, type=type, key=key, value=entry.value, version=entry.version)


async def _value_of(request: Request) -> str:
    """A PUT's value: ``{"value": "..."}`` as JSON, or the raw body as text/plain."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        if content_type == "text/plain":
            return raw.decode("utf-8")
        body = PutBody.model_validate_json(raw)
    except UnicodeDecodeError:
        raise bad_request("a text/plain value must be UTF-8") from None
    except ValueError as exc:
        raise bad_request(f'the body must be {{"value": "<string>"}} (or a text/plain value): {exc}') from None
    return body.value


@router.put("/workspaces/{workspace}/config/{type}/{key:path}", response_model=Written,
            summary="Set one value (If-Match: compare-and-set; If-None-Match: * creates only)",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": PutBody.model_json_schema()},
                "text/plain": {"schema": {"type": "string"}}}}})
async def put_item(workspace: str, type: str, key: str, request: Request, response: Response,
                   backend: Backend = Depends(backend_of), identity: HttpUser = Depends(caller),
                   if_match: str | None = Header(None), if_none_match: str | None = Header(None)) -> Written:
    if_version = precondition(if_match, if_none_match)
    value = await _value_of(request)
    with acting_as(identity):
        version = await backend.client.put(workspace, type, key, value, if_version=if_version)
    return _written(request, response, identity, version, tag=version)


@router.delete("/workspaces/{workspace}/config/{type}/{key:path}", response_model=Written,
               summary="Delete one key (a missing key is fine unless If-Match names a version)")
async def delete_item(workspace: str, type: str, key: str, request: Request, response: Response,
                      backend: Backend = Depends(backend_of), identity: HttpUser = Depends(caller),
                      if_match: str | None = Header(None)) -> Written:
    with acting_as(identity):
        version = await backend.client.delete(workspace, type, key, if_version=precondition(if_match))
    return _written(request, response, identity, version)


@router.post("/workspaces/{workspace}/batch", response_model=Written,
             summary="Put many items, or delete many keys, in one atomic write (one version)")
async def batch(workspace: str, request: Request, response: Response, body: Batch = Body(...),
                backend: Backend = Depends(backend_of), identity: HttpUser = Depends(caller)) -> Written:
    if bool(body.put) == bool(body.delete):
        raise bad_request("a batch has either `put` items or `delete` items (one service request each)")
    with acting_as(identity):
        if body.put:
            version = await backend.client.put_many(workspace, [(i.type, i.key, i.value, i.if_version)
                                                                for i in body.put])
        else:
            version = await backend.client.delete_many(workspace, [(i.type, i.key, i.if_version)
                                                                   for i in body.delete])
    return _written(request, response, identity, version)
