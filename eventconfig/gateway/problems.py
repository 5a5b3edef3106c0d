"""Errors as ``application/problem+json`` (RFC 9457), carrying the service's error types.

Every error body has ``type`` (``urn:eventconfig:error:<error_type>``), ``title``, ``status``,
``detail``, ``instance`` (the request path) and ``error_type``: the wire error type of docs/design.md §5.4
(``bad-request``, ``conflict``, ``too-large``, ``timeout``, ``forbidden`` 403, ``unauthenticated`` 401
...) or one of the gateway's own (``not-found``, ``unauthorized``, ``out-of-retention``,
``unavailable``, ``too-many-requests``). The mapping is pure, so it is tested without a server.

Example::

    problem = problem_for(Conflict("key prompt/system is at version 9, not 7"))
    problem.status   # 412
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from eventconfig.audit.errors import AuditError, OutOfRetention, VersionNotFound
from eventconfig.client.client import ClientError
from eventconfig.errors import (BadOperation, BadRequest, ConfigError, Conflict, EventConfigError, Forbidden,
                                InvalidValue, RequestError, RequestTimeout, TooLarge, Unauthenticated, ViewError)
from eventconfig.gateway.auth import Unauthorized
from eventconfig.gateway.throttle import TooManyLogins
from eventconfig.validation import problem_fields

PROBLEM_JSON = "application/problem+json"


@dataclass
class Problem(Exception):
    """An HTTP error with its problem document; raise it from a route, or build it with problem_for.

        raise Problem(400, "bad-request", "If-Match must be a version ETag")
    """

    status: int
    error_type: str
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.error_type}: {self.detail}"

    def body(self, instance: str) -> dict[str, Any]:
        return {"type": f"urn:eventconfig:error:{self.error_type}", "title": HTTPStatus(self.status).phrase,
                "status": self.status, "detail": self.detail, "instance": instance, "error_type": self.error_type,
                **self.extra}

    def response(self, instance: str) -> JSONResponse:
        return JSONResponse(self.body(instance), status_code=self.status, headers=self.headers,
                            media_type=PROBLEM_JSON)


# Service errors by class, most specific first; the wire type travels as error_type.
_STATUS: tuple[tuple[type[EventConfigError], int], ...] = (
    (Conflict, 412),  # an if_version precondition (If-Match, or a batch item's) did not hold
    (TooLarge, 413),
    (InvalidValue, 422),  # a JSON Schema refused the value (docs/design.md §5.5)
    (BadRequest, 400),
    (BadOperation, 400),
    (RequestTimeout, 504),
    (Forbidden, 403),  # the policy refused the caller (§14.2)
    (Unauthenticated, 401),  # the writer refused the request's signature or delegation (§14.1)
    (ConfigError, 500),
    (RequestError, 502),  # an error type this gateway does not know: the service's, passed on
    (Unauthorized, 401),
    (TooManyLogins, 429),
    (OutOfRetention, 410),
    (VersionNotFound, 404),
    (AuditError, 500),
    (ClientError, 503),
    (ViewError, 503),
)
_OWN_TYPES = {Unauthorized: "unauthorized", TooManyLogins: "too-many-requests", OutOfRetention: "out-of-retention",
              VersionNotFound: "not-found",
              ClientError: "unavailable", ViewError: "unavailable"}


def problem_for(error: EventConfigError) -> Problem:
    """The problem document of an eventconfig error (an unknown one is a 500 ``config-error``)."""
    status = next((code for cls, code in _STATUS if isinstance(error, cls)), 500)
    if isinstance(error, RequestError):
        error_type, detail = error.wire_type, error.message
    else:
        error_type = next((name for cls, name in _OWN_TYPES.items() if isinstance(error, cls)), "config-error")
        detail = str(error)
    problem = Problem(status, error_type, detail)
    if isinstance(error, Unauthorized | Unauthenticated):
        # Bearer only: a Basic challenge would make browsers pop up their own login over the console's.
        problem.headers["WWW-Authenticate"] = 'Bearer realm="eventconfig"'
    if isinstance(error, InvalidValue):
        problem.extra = problem_fields(error.message) or {}
    if isinstance(error, TooManyLogins):
        problem.headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, OutOfRetention):
        problem.extra = {"first_version": error.first_version, "first_timestamp_ms": error.first_timestamp_ms}
    return problem


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", detail)


def bad_request(detail: str) -> Problem:
    return Problem(400, "bad-request", detail)
