"""The pure half of the client: ConfigRequest building and ConfigResponse reading (docs/design.md §4, §5).

No I/O and no event loop, so the wire mapping is tested without a broker. Keys and items are accepted
as tuples (``(type, key[, if_version])``, ``(type, key, value[, if_version])``), mappings or objects with
those attributes, so callers can pass back what they read.

Example::

    message = build_request("put", "default", values=[("prompt", "system", "hi", 0)])
    headers = request_headers(new_request_id(), actor="ops")
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from eventconfig.errors import error_from_wire
from eventconfig.model import ACTOR_HEADER, DEADLINE_HEADER, ID_HEADER, REPLY_PARTITION_HEADER, Headers

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConfigItem:
    """One config item as read; ``value``/``version`` are None for a missing key.

    ``version`` is the global version at which this key last changed (docs/design.md §4, ``ConfigValue``).
    """

    workspace: str
    type: str
    key: str
    value: str | None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    """A read result and the global version it reflects (for subscribe-then-fetch)."""

    value: T
    version: int


# --- pure: building requests -----------------------------------------------------------------


def _precondition(name: str, version: int | None) -> int | None:
    if version is not None and (type(version) is not int or version < 0):
        raise ValueError(f"{name} must be a non-negative int or None, got {version!r}")
    return version


def key_entry(type: str, key: str, if_version: int | None = None) -> dict[str, Any]:
    """A ``ConfigKey``; ``if_version`` is a delete precondition (0 = must not exist)."""
    return {"type": type, "key": key, "if_version": _precondition("if_version", if_version)}


def value_entry(type: str, key: str, value: str | None, if_version: int | None = None) -> dict[str, Any]:
    """A ``ConfigValue`` to put; its ``workspace`` stays empty (the request's workspace rules)."""
    return {"type": type, "key": key, "value": value, "workspace": "", "version": None,
            "if_version": _precondition("if_version", if_version)}


def key_entries(keys: Iterable[Any]) -> list[dict[str, Any]]:
    """``(type, key)`` or ``(type, key, if_version)`` tuples, or objects with ``type``/``key``."""
    out = []
    for k in keys:
        if isinstance(k, tuple):
            out.append(key_entry(*k))
        else:
            out.append(key_entry(_field(k, "type"), _field(k, "key"), _field(k, "if_version", None)))
    return out


def value_entries(items: Iterable[Any]) -> list[dict[str, Any]]:
    """``(type, key, value)`` or ``(type, key, value, if_version)`` tuples, or ConfigItem-like objects.

    A ConfigItem's ``version`` is *not* used as a precondition: pass ``if_version`` explicitly (a tuple,
    a mapping or an object with ``if_version``) so a compare-and-set is always visible in the code.
    """
    out = []
    for item in items:
        if isinstance(item, tuple):
            out.append(value_entry(*item))
        else:
            out.append(value_entry(_field(item, "type"), _field(item, "key"), _field(item, "value"),
                                   _field(item, "if_version", None)))
    return out


_MISSING = object()


def _field(obj: Any, name: str, default: Any = _MISSING) -> Any:
    value = obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)
    if value is _MISSING:
        raise TypeError(f"{type(obj).__name__} has no {name!r}")
    return value


def build_request(operation: str, workspace: str = "", *, keys: Iterable[Any] = (), type: str = "",
                  values: Iterable[Any] = (), min_version: int | None = None) -> dict[str, Any]:
    """A ``ConfigRequest`` ready for the codec; keys/values accept the forms of key_entries/value_entries."""
    return {"operation": operation, "workspace": workspace, "keys": key_entries(keys), "type": type,
            "values": value_entries(values), "min_version": _precondition("min_version", min_version)}


def new_request_id() -> str:
    return str(uuid.uuid4())


def request_headers(request_id: str, actor: str | None = None, deadline_ms: int | None = None,
                    reply_partition: int | None = None) -> Headers:
    """Kafka headers of a request: the correlation ``id``, for the history the ``actor``, the
    ``deadline`` (epoch ms) after which the writer answers ``timeout`` instead of acting on it, and the
    response partition the caller reads (``reply-partition``)."""
    headers = [(ID_HEADER, request_id.encode())]
    if actor:
        headers.append((ACTOR_HEADER, actor.encode()))
    if deadline_ms is not None:
        headers.append((DEADLINE_HEADER, str(deadline_ms).encode()))
    if reply_partition is not None:
        headers.append((REPLY_PARTITION_HEADER, str(reply_partition).encode()))
    return headers


def header_value(headers: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    """The first header called ``name``, decoded, or None (also for undecodable bytes)."""
    for key, raw in headers or ():
        if key == name and raw is not None:
            try:
                return bytes(raw).decode()
            except UnicodeDecodeError:
                return None
    return None


# --- pure: reading responses -----------------------------------------------------------------


def check_response(response: Mapping[str, Any]) -> Mapping[str, Any]:
    """The response itself, or the typed RequestError its ``error`` describes."""
    error = response.get("error")
    if error:
        raise error_from_wire(error.get("type", ""), error.get("message", ""))
    return response


def response_items(response: Mapping[str, Any], workspace: str = "") -> list[ConfigItem]:
    """``values`` as ConfigItems; an empty value workspace means the request's ``workspace``."""
    return [ConfigItem(v.get("workspace") or workspace, v["type"], v["key"], v.get("value"), v.get("version"))
            for v in response.get("values", ())]
