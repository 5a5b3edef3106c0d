"""The one exception tree of eventconfig.

Every error the project raises derives from :class:`EventConfigError`. Errors that travel on the
wire carry their wire error type (``bad-request``, ``conflict`` ...) so the writer can turn them into
a ``ConfigResponse.error`` and clients can turn a response back into the same exception class.
"""

from __future__ import annotations


class EventConfigError(Exception):
    """Base of every eventconfig error."""


# --- codec -------------------------------------------------------------------------------------


class CodecError(EventConfigError):
    """A message could not be encoded or decoded."""


class BadMarker(CodecError):
    """The bytes do not start with the Avro single-object marker ``C3 01``."""


class UnknownFingerprint(CodecError):
    """The writer-schema fingerprint is not in the schema registry."""


class CorruptBody(CodecError):
    """The Avro body does not decode with the writer schema (truncated, garbage, wrong type)."""


# --- topology ----------------------------------------------------------------------------------


class TopologyError(EventConfigError):
    """Kafka topics are missing or configured in a way that would break guarantees."""


# --- view --------------------------------------------------------------------------------------


class ViewError(EventConfigError):
    """The local RocksDB view cannot be used as it is."""


# --- request outcomes (carry a wire error type) ------------------------------------------------


class RequestError(EventConfigError):
    """A request failed; ``wire_type`` and ``message`` are what the client sees."""

    wire_type = "config-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.wire_type}: {self.message}"


class BadRequest(RequestError):
    wire_type = "bad-request"


class BadOperation(RequestError):
    wire_type = "bad-operation"


class Conflict(RequestError):
    """An ``if_version`` precondition did not hold; nothing was written."""

    wire_type = "conflict"


class TooLarge(RequestError):
    wire_type = "too-large"


class RequestTimeout(RequestError):
    """A request was not answered in time: the writer reached it after its ``deadline`` (nothing was
    done), or the client stopped waiting for the answer (a write may then still be applied)."""

    wire_type = "timeout"


class ReadTimeout(RequestTimeout):
    """A read timed out: a ``min_version`` read was not reached in time, or a client read or a
    subscriber's start waited longer than allowed."""


class InvalidValue(RequestError):
    """A put's value is refused by the JSON Schema of its type (docs/design.md §5.5); nothing was written."""

    wire_type = "invalid-value"


class Unauthenticated(RequestError):
    """Authentication is on and the request is unsigned, badly signed, stale or a replay (§14.1)."""

    wire_type = "unauthenticated"


class Forbidden(RequestError):
    """The permission policy does not let the request's actor do this; nothing was done (§14.2)."""

    wire_type = "forbidden"


class ConfigError(RequestError):
    """Anything unexpected while handling a request."""

    wire_type = "config-error"


# The wire's ``timeout`` comes back as ReadTimeout: the answers a client still waits for are reads (a
# write the writer reached after its deadline is one the client has already stopped waiting for).
_BY_WIRE_TYPE: dict[str, type[RequestError]] = {
    cls.wire_type: cls for cls in (BadRequest, BadOperation, Conflict, TooLarge, InvalidValue, ReadTimeout,
                                  Unauthenticated, Forbidden, ConfigError)
}


def error_from_wire(wire_type: str, message: str) -> RequestError:
    """Rebuild the exception a response's ``error`` field describes (unknown types stay generic)."""
    cls = _BY_WIRE_TYPE.get(wire_type)
    if cls is not None:
        return cls(message)
    err = RequestError(message)
    err.wire_type = wire_type
    return err


# --- reaching Kafka and starting -----------------------------------------------------------------


class KafkaUnavailable(EventConfigError):
    """Kafka could not be reached, or did not answer in time; retrying later may succeed."""


class ServiceStartError(EventConfigError):
    """The service could not start (e.g. its metrics port is taken); everything it had started is stopped."""
