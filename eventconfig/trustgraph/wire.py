"""TrustGraph's JSON config protocol, pure: its requests in, its responses and pushes out.

TrustGraph's Kafka backend sends ``json.dumps`` of its schema dataclasses (every field present,
``null`` for None) and correlates by the Kafka header ``id``. Its decoder ignores unknown keys and
keeps missing ones at their defaults; :func:`decode_request` does the same and turns the body into
eventconfig's ``ConfigRequest``. The released client treats ``error: {}`` as an error and a ``null``
list as a crash, so the encoders always write ``error: null`` on success and ``[]`` for empty lists.

A forwarded request's eventconfig id is ``tg:<topicspace>:<r|w>:<TrustGraph id>``: the translator
that answers from eventconfig's response topic needs no state to know where an answer goes and
whether it answers a write (whose TrustGraph response carries version 0, as the seed's did).

Example::

    request = decode_request(b'{"operation": "list", "workspace": "w", "type": "prompt"}')
    request_id = forward_id("tg", "4f1c...", request["operation"])      # 'tg:tg:r:4f1c...'
    body = encode_response(response, write=False)                       # TrustGraph ConfigResponse JSON
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from eventconfig.client.wire import build_request
from eventconfig.errors import CodecError, TooLarge
from eventconfig.model import WRITE_OPERATIONS
from eventconfig.settings import TrustGraphTopics as TrustGraphTopics  # its home: the deployment's topic names
from eventconfig.writer.handler import error_response

DEFAULT_TOPICSPACE = "tg"
_ID_PREFIX = "tg"


class TrustGraphDecodeError(CodecError):
    """A record on the TrustGraph request topic is not a TrustGraph ``ConfigRequest``."""


def actor(topicspace: str) -> str:
    """The history's actor for TrustGraph writes: TrustGraph's requests name no one."""
    return f"trustgraph:{topicspace}"


# --- requests ------------------------------------------------------------------------------------


def decode_request(body: bytes | None) -> dict[str, Any]:
    """A TrustGraph request body as eventconfig's ``ConfigRequest`` (raises TrustGraphDecodeError)."""
    if body is None:
        raise TrustGraphDecodeError("request record has no value")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TrustGraphDecodeError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TrustGraphDecodeError(f"expected a JSON object, got {type(document).__name__}")
    keys = [(_string_field(k, "type", "keys[]"), _string_field(k, "key", "keys[]"))
            for k in _objects(document, "keys")]
    values = [(_string_field(v, "type", "values[]"), _string_field(v, "key", "values[]"),
               _string_field(v, "value", "values[]", nullable=True))
              for v in _objects(document, "values")]
    return build_request(_string_field(document, "operation"), _string_field(document, "workspace"), keys=keys,
                         type=_string_field(document, "type"), values=values)


def _string_field(obj: Mapping[str, Any], name: str, where: str = "request", *, nullable: bool = False) -> Any:
    """A string field: missing gives "" (the dataclass default); null gives "" unless ``nullable``."""
    value = obj.get(name, "")
    if value is None:
        return None if nullable else ""
    if not isinstance(value, str):
        raise TrustGraphDecodeError(f"{where}.{name} must be a string, got {type(value).__name__}")
    return value


def _objects(document: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """A list-of-objects field: missing or null gives [] (the dataclass default)."""
    items = document.get(name)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TrustGraphDecodeError(f"request.{name} must be a list of objects")
    return items


def forward_id(topicspace: str, trustgraph_id: str, operation: str) -> str:
    """The eventconfig request id of a forwarded TrustGraph request."""
    kind = "w" if operation in WRITE_OPERATIONS else "r"
    return f"{_ID_PREFIX}:{topicspace}:{kind}:{trustgraph_id}"


def parse_forward_id(topicspace: str, request_id: str | None) -> tuple[str, bool] | None:
    """``(TrustGraph id, is a write)`` of a response id this topicspace forwarded, else None."""
    if not request_id:
        return None
    parts = request_id.split(":", 3)
    if len(parts) != 4 or parts[0] != _ID_PREFIX or parts[1] != topicspace or parts[2] not in ("r", "w"):
        return None
    return parts[3], parts[2] == "w"


# --- responses and pushes --------------------------------------------------------------------------


def encode_response(response: Mapping[str, Any], *, write: bool, max_bytes: int | None = None) -> bytes:
    """eventconfig's ``ConfigResponse`` as TrustGraph's JSON; a body over ``max_bytes`` becomes a
    ``too-large`` error (the topic would refuse it, and the client would wait for nothing)."""
    body = _response_json(response, write)
    if max_bytes is not None and len(body) > max_bytes:
        error = TooLarge(f"the TrustGraph response is {len(body)} bytes, over the {max_bytes}-byte limit of its "
                         "topic; narrow the request (e.g. getkeys-all-ws, then get)")
        body = _response_json(error_response(error), write)
    return body


def _response_json(response: Mapping[str, Any], write: bool) -> bytes:
    error = response.get("error")
    document = {
        # The seed answered every write with the dataclass default 0; TrustGraph never reads it.
        "version": 0 if write else response.get("version", 0),
        "values": [{"type": v["type"], "key": v["key"], "value": v.get("value"), "workspace": v.get("workspace") or ""}
                   for v in response.get("values") or ()],
        "directory": list(response.get("directory") or ()),
        "config": {t: dict(kv) for t, kv in (response.get("config") or {}).items()},
        "error": {"type": error["type"], "message": error["message"]} if error else None,
    }
    return json.dumps(document).encode()


def encode_push(poke: Mapping[str, Any]) -> bytes:
    """A projector poke as TrustGraph's ``ConfigPush`` JSON (``workspace_changes`` null when none)."""
    lifecycle = poke.get("workspace_changes")
    document = {
        "version": poke["version"],
        "changes": {t: list(ws) for t, ws in poke["changes"].items()},
        "workspace_changes": {"created": list(lifecycle["created"]), "deleted": list(lifecycle["deleted"])}
        if lifecycle else None,
    }
    return json.dumps(document).encode()
