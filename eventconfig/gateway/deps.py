"""Request dependencies shared by the routes: the backend, and who the caller is."""

from __future__ import annotations

from fastapi import Request

from eventconfig.gateway.auth import ACTOR_HEADER, LoginChecker, HttpUser
from eventconfig.gateway.backend import Backend


def backend_of(request: Request) -> Backend:
    return request.app.state.backend


def caller(request: Request) -> HttpUser:
    """The authenticated caller (Unauthorized in production mode without valid credentials).

    A plain function on purpose: FastAPI runs it in a worker thread, so a PBKDF2 password check
    never blocks the event loop.
    """
    auth: LoginChecker = request.app.state.auth
    return auth.identify(request.headers.get("authorization"), request.headers.get(ACTOR_HEADER))
