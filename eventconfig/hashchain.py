"""The history's hash chain format, pure (docs/design.md §14.3): how a ``Mutation`` is sealed.

Each ``Mutation`` carries ``prev_hash`` (the ``hash`` of the one before it) and ``hash``: the hex
SHA-256 of a canonical encoding of its chained fields, ``prev_hash`` included. The writer seals each
successful write after the chain head it holds; :mod:`eventconfig.audit.chain` checks a history.

Example::

    sealed = seal(mutation, prev_hash=head)
    head = sealed["hash"]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# The fields a hash covers are fixed by this format number: a Mutation field added later is chained
# only under a new number, so records already written keep hashing the same.
CHAIN_FORMAT = 1


def canonical_bytes(mutation: Mapping[str, Any]) -> bytes:
    """The bytes a Mutation's hash is taken over: its chained fields as compact, ASCII-only JSON."""
    changes = [[c["type"], c["key"], c["value"], c["previous"]] for c in mutation["changes"]]
    fields = [CHAIN_FORMAT, int(mutation["version"]), int(mutation["timestamp_ms"]), mutation["request_id"],
              mutation["actor"], bool(mutation.get("actor_verified", False)), mutation["workspace"],
              mutation["operation"], changes, mutation.get("prev_hash", "")]
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode()


def mutation_hash(mutation: Mapping[str, Any]) -> str:
    """Hex SHA-256 of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(mutation)).hexdigest()


def seal(mutation: Mapping[str, Any], prev_hash: str) -> dict[str, Any]:
    """``mutation`` chained after ``prev_hash``: with its ``prev_hash`` and ``hash`` set."""
    sealed = {**mutation, "prev_hash": prev_hash}
    sealed["hash"] = mutation_hash(sealed)
    return sealed
