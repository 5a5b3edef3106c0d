"""The gateway's ASGI application and its HTTP server.

``/v1/...`` is the API (authenticated in production mode), ``/`` the web console (static files shipped
in the package, no build step, nothing from a CDN), ``/openapi.json`` the OpenAPI document, and
``/healthz``, ``/readyz``, ``/metrics`` are for operators. Every error is ``application/problem+json``.

Example::

    backend = Backend(settings); await backend.start()
    server = GatewayServer(create_app(backend, LoginChecker()), "127.0.0.1", 8080)
    await server.serve()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from eventconfig.errors import EventConfigError
from eventconfig.gateway import metrics, routes_audit, routes_config, routes_schemas, watch
from eventconfig.gateway.auth import LoginChecker
from eventconfig.gateway.backend import Backend
from eventconfig.gateway.deps import caller
from eventconfig.gateway.problems import Problem, problem_for

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_HTTP_TYPES = {404: "not-found", 405: "method-not-allowed"}


def create_app(backend: Backend, auth: LoginChecker) -> FastAPI:
    """The gateway over a started (or starting) backend; ``auth`` decides production or development mode."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.stopping.set()  # open event streams end instead of holding the shutdown

    app = FastAPI(title="eventconfig gateway", version="1",
                  description="Config, history and live changes of an eventconfig deployment over HTTP. "
                              "Versions are ETags; If-Match is compare-and-set; errors are problem+json.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.backend, app.state.auth, app.state.stopping = backend, auth, asyncio.Event()
    authenticated = [Depends(caller)]
    for module in (routes_config, routes_schemas, routes_audit, watch):
        app.include_router(module.router, dependencies=authenticated)
    _add_error_handlers(app)
    _add_operator_routes(app, backend)
    app.middleware("http")(_measure)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(EventConfigError)
    async def on_error(request: Request, exc: EventConfigError) -> JSONResponse:
        problem = problem_for(exc)
        if problem.status >= 500:
            log.warning("request failed", extra={"fields": {"path": request.url.path, "error": str(exc)}})
        return problem.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return Problem(400, "bad-request", detail).response(request.url.path)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        error_type = _HTTP_TYPES.get(exc.status_code, "http-error")
        return Problem(exc.status_code, error_type, str(exc.detail), headers=dict(exc.headers or {})
                       ).response(request.url.path)


def _add_operator_routes(app: FastAPI, backend: Backend) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Connected to Kafka, local view caught up and following")
    async def readyz() -> dict[str, Any]:
        if not backend.started:
            raise Problem(503, "unavailable", "the gateway is still starting")
        return {"status": "ready", "version": backend.version}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    metrics.HTTP_SECONDS.labels(request.method, route).observe(time.perf_counter() - started)
    return response


class _Uvicorn(uvicorn.Server):
    """uvicorn that ends the open event streams on SIGTERM/SIGINT, instead of waiting on them."""

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._stopping.set()
        super().handle_exit(sig, frame)


class GatewayServer:
    """uvicorn serving the gateway app on ``host:port`` (port 0: a free one, see :attr:`port`).

        server = GatewayServer(create_app(backend, LoginChecker()), "127.0.0.1", 0)
        task = asyncio.create_task(server.serve()); ...; server.stop(); await task
    """

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                timeout_graceful_shutdown=3, lifespan="on")
        self._stopping: asyncio.Event = app.state.stopping
        self.server = _Uvicorn(config, self._stopping)

    async def serve(self) -> None:
        await self.server.serve()

    @property
    def started(self) -> bool:
        return self.server.started

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Begin a graceful shutdown; open event streams end within half a second."""
        self._stopping.set()
        self.server.should_exit = True
