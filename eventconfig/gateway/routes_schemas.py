"""``/v1/workspaces/{workspace}/schemas`` and ``/validate``: validated config for the console and HTTP callers.

Both read the gateway's local view and judge with the writer's own pure check
(:mod:`eventconfig.validation`), so the console can show a type's schema and refuse a draft before it
is sent; the service still judges every write, and its refusal arrives as the same 422 problem.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from eventconfig.gateway.backend import Backend
from eventconfig.gateway.deps import backend_of
from eventconfig.gateway.routes_config import MinVersion
from eventconfig.model import ItemKey
from eventconfig.validation import check_put, schemas_for, shown

router = APIRouter(prefix="/v1", tags=["schemas"])


class Draft(BaseModel):
    type: str
    key: str
    value: str


@router.get("/workspaces/{workspace}/schemas/{type}", summary="The JSON Schemas a type's values must satisfy here")
async def schemas_of(workspace: str, type: str, backend: Backend = Depends(backend_of),
                     min_version: MinVersion = None) -> dict[str, Any]:
    await backend.at_least(min_version)
    with backend.snapshot() as view:
        found = [{"workspaces": glob, "schema": shown(entry.value), "version": entry.version}
                 for glob, entry in schemas_for(view, workspace, type)]
        version = view.version
    return {"workspace": workspace, "type": type, "version": version, "schemas": found}


@router.post("/workspaces/{workspace}/validate", summary="Check a draft value as the writer would; writes nothing",
             responses={422: {"description": "The value is refused: problem+json with `item` and `path`"}})
async def validate(workspace: str, draft: Draft, backend: Backend = Depends(backend_of),
                   min_version: MinVersion = None) -> dict[str, Any]:
    await backend.at_least(min_version)
    with backend.snapshot() as view:
        check_put(view, workspace, {ItemKey(workspace, draft.type, draft.key): draft.value})  # or InvalidValue: 422
        governed = [glob for glob, _ in schemas_for(view, workspace, draft.type)]
        version = view.version
    return {"valid": True, "version": version, "schemas": governed}

