"""Request handling, pure: one decoded ``ConfigRequest`` + a view reader -> response and records.

No I/O and no clock of its own: the batch loop passes the next version and the time. A request
either succeeds whole (a write yields its log records, its history ``Mutation`` and the item
changes for the overlay) or fails whole with a typed :class:`RequestError` and writes nothing.

Example::

    ctx = Context(reader, Limits(), version=reader.version, now_ms=now, request_id="r1")
    outcome = handle_request(request, ctx)
    outcome.response["version"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from eventconfig import model
from eventconfig.errors import BadOperation, BadRequest, Conflict, RequestError, TooLarge
from eventconfig.hashchain import seal
from eventconfig.logrecords import OutRecord, delete_record, marker_record, put_record
from eventconfig.model import Entry, ItemKey, Version
from eventconfig.validation import check_put
from eventconfig.view.reader import ViewReader, workspace_config

Response = dict[str, Any]


@dataclass(frozen=True)
class Limits:
    """What a single request may carry; over a limit the request fails with ``too-large``."""

    max_value_bytes: int = 512 * 1024
    max_items: int = 10_000
    max_name_bytes: int = 1024  # workspace, type and key names, in UTF-8 bytes


@dataclass
class Outcome:
    """Result of one request. ``version`` is set only for a successful write."""

    response: Response
    log_records: list[OutRecord] = field(default_factory=list)
    mutation: dict[str, Any] | None = None
    changes: dict[ItemKey, Entry | None] = field(default_factory=dict)
    version: Version | None = None


def empty_response(version: int = 0) -> Response:
    return {"version": version, "values": [], "directory": [], "config": {}, "error": None}


def error_response(error: RequestError) -> Response:
    response = empty_response()
    response["error"] = {"type": error.wire_type, "message": error.message}
    return response


def needs_version(request: dict[str, Any]) -> int | None:
    """The ``min_version`` a read must wait for, or None (writes ignore ``min_version``)."""
    if request.get("operation") in model.READ_OPERATIONS:
        return request.get("min_version")
    return None


@dataclass(frozen=True)
class Context:
    """What a request is handled against: the state (at ``version``), the limits, who and when."""

    reader: ViewReader
    limits: Limits
    version: Version
    now_ms: int
    request_id: str
    actor: str | None = None
    actor_verified: bool = False  # the actor's signature was checked (docs/design.md §14.1)
    prev_hash: str = ""  # the history chain's head before this request (§14.3)


Request = dict[str, Any]


def handle_request(request: Request, ctx: Context) -> Outcome:
    """Handle one request against ``ctx.reader``; raises RequestError and then writes nothing."""
    operation = request["operation"]
    workspace = request["workspace"]
    if operation not in model.ALL_WORKSPACE_OPERATIONS and not workspace:
        raise BadRequest("Workspace is required")
    handler = _HANDLERS.get(operation)
    if handler is None:
        raise BadOperation("Bad operation")
    if workspace:
        _check_name("workspace", workspace, ctx.limits)
    return handler(request, ctx)


# --- reads -------------------------------------------------------------------------------------


def _value(type_: str, key: str, entry: Entry | None, workspace: str = "") -> dict[str, Any]:
    return {"type": type_, "key": key, "value": entry.value if entry else None, "workspace": workspace,
            "version": entry.version if entry else None, "if_version": None}


def _get(request: Request, ctx: Context) -> Outcome:
    response = empty_response(ctx.version)
    workspace = request["workspace"]
    for k in request["keys"]:
        _check_name("type", k["type"], ctx.limits, allow_empty=True)
        _check_name("key", k["key"], ctx.limits, allow_empty=True)
        entry = ctx.reader.get(ItemKey(workspace, k["type"], k["key"])) if k["type"] and k["key"] else None
        response["values"].append(_value(k["type"], k["key"], entry))
    return Outcome(response)


def _list(request: Request, ctx: Context) -> Outcome:
    response = empty_response(ctx.version)
    if request["type"]:
        _check_name("type", request["type"], ctx.limits)
        response["directory"] = [key for key, _ in ctx.reader.scan_type(request["workspace"], request["type"])]
    return Outcome(response)


def _getvalues(request: Request, ctx: Context) -> Outcome:
    response = empty_response(ctx.version)
    type_ = request["type"]
    if type_:
        _check_name("type", type_, ctx.limits)
        scan = ctx.reader.scan_type(request["workspace"], type_)
        response["values"] = [_value(type_, key, entry) for key, entry in scan]
    return Outcome(response)


def _all_workspaces(keys_only: bool) -> Callable[[Request, Context], Outcome]:
    def handle(request: Request, ctx: Context) -> Outcome:
        response = empty_response(ctx.version)
        type_ = request["type"]
        if type_:
            _check_name("type", type_, ctx.limits)
            for workspace, key, entry in ctx.reader.scan_all_workspaces(type_):
                value = _value(type_, key, entry, workspace)
                if keys_only:
                    value["value"] = ""
                response["values"].append(value)
        return Outcome(response)

    return handle


def _config(request: Request, ctx: Context) -> Outcome:
    response = empty_response(ctx.version)
    response["config"] = workspace_config(ctx.reader, request["workspace"])
    return Outcome(response)


# --- writes ------------------------------------------------------------------------------------


def _put(request: Request, ctx: Context) -> Outcome:
    limits = ctx.limits
    workspace = request["workspace"]
    values = request["values"]
    _check_count(values, limits)
    items = [(_item(workspace, v["type"], v["key"], limits), v) for v in values]
    wanted: dict[ItemKey, str] = {}
    for item, v in items:
        if v["value"] is None:
            raise BadRequest(f"value of {item.type}/{item.key} is null; use delete to remove a key")
        size = len(v["value"].encode())
        if size > limits.max_value_bytes:
            raise TooLarge(f"value of {item.type}/{item.key} is {size} bytes; the limit is {limits.max_value_bytes}")
        wanted.pop(item, None)  # a repeated key: the last entry wins, at its last position
        wanted[item] = v["value"]
    _check_preconditions(ctx.reader, ((item, v["if_version"]) for item, v in items))
    check_put(ctx.reader, workspace, wanted)
    return _write(request, ctx, {item: Entry(value, ctx.version + 1) for item, value in wanted.items()})


def _delete(request: Request, ctx: Context) -> Outcome:
    workspace = request["workspace"]
    keys = request["keys"]
    _check_count(keys, ctx.limits)
    items = [(_item(workspace, k["type"], k["key"], ctx.limits), k["if_version"]) for k in keys]
    _check_preconditions(ctx.reader, items)
    return _write(request, ctx, {item: None for item, _ in items})


def _write(request: Request, ctx: Context, changes: dict[ItemKey, Entry | None]) -> Outcome:
    """The log records (items, then the commit marker) and the history Mutation of one write."""
    new_version = Version(ctx.version + 1)
    records: list[OutRecord] = []
    history: list[dict[str, Any]] = []
    for item, entry in changes.items():
        before = ctx.reader.get(item)
        records.append(put_record(item, entry.value, new_version) if entry else delete_record(item, new_version))
        history.append({"type": item.type, "key": item.key, "value": entry.value if entry else None,
                        "previous": before.value if before else None})
    mutation = seal({"version": new_version, "timestamp_ms": ctx.now_ms, "request_id": ctx.request_id,
                     "actor": ctx.actor, "actor_verified": ctx.actor_verified, "workspace": request["workspace"],
                     "operation": request["operation"], "changes": history}, ctx.prev_hash)
    records.append(marker_record(new_version, chain_head=mutation["hash"]))
    return Outcome(empty_response(new_version), records, mutation, changes, new_version)


def _check_count(items: list[Any], limits: Limits) -> None:
    if len(items) > limits.max_items:
        raise TooLarge(f"request has {len(items)} items; the limit is {limits.max_items}")


def _check_preconditions(reader: ViewReader, wanted: Iterable[tuple[ItemKey, int | None]]) -> None:
    """All ``if_version`` preconditions hold, or Conflict names every one that does not."""
    failed = []
    for item, if_version in wanted:
        if if_version is None:
            continue
        entry = reader.get(item)
        current = entry.version if entry else 0
        if current != if_version:
            failed.append(f"{item.type}/{item.key} is at version {current}, expected {if_version}")
    if failed:
        raise Conflict("; ".join(failed))


def _item(workspace: str, type_: str, key: str, limits: Limits) -> ItemKey:
    _check_name("type", type_, limits)
    _check_name("key", key, limits)
    return ItemKey(workspace, type_, key)


def _check_name(kind: str, name: str, limits: Limits, *, allow_empty: bool = False) -> None:
    """A malformed name is a bad request; an over-long one is too large (like a value over its limit)."""
    if allow_empty and name == "":
        return
    problem = model.name_problem(kind, name)
    if problem:
        raise BadRequest(problem)
    size = len(name.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_name_bytes:
        raise TooLarge(f"{kind} name {name[:40]!r}... is {size} bytes; the limit is {limits.max_name_bytes}")


_HANDLERS: dict[str, Callable[[Request, Context], Outcome]] = {
    model.GET: _get,
    model.LIST: _list,
    model.GETVALUES: _getvalues,
    model.GETVALUES_ALL_WS: _all_workspaces(keys_only=False),
    model.GETKEYS_ALL_WS: _all_workspaces(keys_only=True),
    model.CONFIG: _config,
    model.PUT: _put,
    model.DELETE: _delete,
}
