"""Request dependencies shared by the routes: the backend, and who the caller is."""

from __future__ import annotations

from fastapi import Depends, Request

from eventconfig.gateway.access import ReadAccess
from eventconfig.gateway.auth import ACTOR_HEADER, HttpUser, LoginChecker
from eventconfig.gateway.backend import Backend


def backend_of(request: Request) -> Backend:
    return request.app.state.backend


def caller(request: Request) -> HttpUser:
    """The authenticated caller (Unauthorized in production mode without valid credentials).

    A plain function on purpose: FastAPI runs it in a worker thread, so a PBKDF2 password check
    never blocks the event loop.
    """
    auth: LoginChecker = request.app.state.auth
    address = request.client.host if request.client is not None else None
    return auth.identify(request.headers.get("authorization"), request.headers.get(ACTOR_HEADER), address=address)


async def access_of(request: Request, identity: HttpUser = Depends(caller)) -> ReadAccess:
    """What the caller may read, by the service's policy (docs/design.md §14.2)."""
    backend: Backend = request.app.state.backend
    return backend.rules.for_caller(identity)
