"""Domain types shared by the writer, the view, the projector and the clients (pure, no I/O).

The store is a flat map ``(workspace, type, key) -> value`` with one global version. Each stored
value remembers the version at which it last changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, NewType

# Operations of docs/design.md §5.
GET = "get"
LIST = "list"
GETVALUES = "getvalues"
GETVALUES_ALL_WS = "getvalues-all-ws"
GETKEYS_ALL_WS = "getkeys-all-ws"
CONFIG = "config"
PUT = "put"
DELETE = "delete"

READ_OPERATIONS = frozenset({GET, LIST, GETVALUES, GETVALUES_ALL_WS, GETKEYS_ALL_WS, CONFIG})
WRITE_OPERATIONS = frozenset({PUT, DELETE})
ALL_WORKSPACE_OPERATIONS = frozenset({GETVALUES_ALL_WS, GETKEYS_ALL_WS})

WORKSPACES_WORKSPACE = "__workspaces__"
WORKSPACE_TYPE = "workspace"

# Request header names of the wire contract.
ID_HEADER = "id"
ACTOR_HEADER = "actor"
VERSION_HEADER = "version"
ERROR_HEADER = "error"
ERROR_TYPE_HEADER = "error-type"
# Optional: UTF-8 decimal epoch milliseconds after which the caller no longer waits for the answer.
DEADLINE_HEADER = "deadline"
# Signed requests (docs/design.md §14.1): base64 Ed25519 signature, and when it was made (epoch ms).
SIGNATURE_HEADER = "signature"
SIGNED_AT_HEADER = "signed-at"
# A signed request made for someone else (the HTTP gateway for its caller): the actor it acts for (§14.1).
ON_BEHALF_OF_HEADER = "on-behalf-of"
# On each commit marker: the hash of that write's Mutation, the head of the history's chain (§14.3).
CHAIN_HEAD_HEADER = "chain-head"
# Request ids the TrustGraph front end forwards under (docs/design.md §13.4); with a keyring, its actor's alone.
TRUSTGRAPH_ID_PREFIX = "tg:"
# Optional: UTF-8 decimal number of the response partition the answer goes to (docs/design.md §4.3).
REPLY_PARTITION_HEADER = "reply-partition"
# On the last commit marker of a writer transaction: where the next writer resumes the request topic.
REQUEST_OFFSET_HEADER = "request-offset"
PARKED_HEADER = "parked"
# On a commit marker: the writer wrote this version's poke in the write's own transaction (docs/design.md §7).
POKED_HEADER = "poked"

# A Kafka record's headers as eventconfig builds them: (name, raw value) pairs in order.
Headers = list[tuple[str, bytes]]

# The request headers the contract defines: a request carries each of them at most once (§4.3).
REQUEST_HEADERS = (ID_HEADER, ACTOR_HEADER, SIGNED_AT_HEADER, SIGNATURE_HEADER, DEADLINE_HEADER,
                   REPLY_PARTITION_HEADER, ON_BEHALF_OF_HEADER)


def repeated_header(headers: Iterable[tuple[str, object]]) -> str | None:
    """The first request header of the contract that ``headers`` hold more than once, or None.

    Readers differ in which copy they take (the first, the last, a dict's), so a request with a repeated
    one is refused, unanswered, wherever it arrives (docs/design.md §4.3, §13.5)."""
    seen: set[str] = set()
    for name, _ in headers:
        if name in REQUEST_HEADERS:
            if name in seen:
                return name
            seen.add(name)
    return None


# Distinct to the type checker, plain ints at run time: swapping a log position and a config version
# (both counters, both in the view's meta) is a type error.
Offset = NewType("Offset", int)  # a position in a Kafka partition: the next record to read
Version = NewType("Version", int)  # a config version: the number of the last complete write (docs/design.md §6)
# The highest version anything accepts (2^53 - 1, exact in every JSON reader): a record claiming more is
# refused, so nothing a topic holds can bring a version near the 64-bit limit of Avro's long (§6).
MAX_VERSION = 2**53 - 1


class ItemKey(NamedTuple):
    """Address of one value: names are non-empty and contain no NUL (the view's key separator)."""

    workspace: str
    type: str
    key: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored value and the version at which it last changed."""

    value: str
    version: int


# The commit marker's key: names are never empty, so it cannot collide with an item.
MARKER_KEY = ItemKey("", "", "")


def is_reserved(workspace: str) -> bool:
    """Reserved workspaces (``__template__``, ``__system__`` ...) never appear in pokes."""
    return workspace.startswith("_")


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` cannot be a workspace/type/key, or None when it can."""
    if not isinstance(name, str):
        return f"{kind} must be a string"
    if not name:
        return f"{kind} must not be empty"
    if "\x00" in name:
        return f"{kind} {name!r} contains a NUL character"
    return None
