"""Delegated requests (docs/design.md §14.1): a signed request made by one actor for another.

The HTTP gateway authenticates its callers itself, then signs their writes as its own identity with
an ``on-behalf-of`` header (covered by the signature) naming the caller. The writer acts on such a
request as the named actor (the policy judges it, the history records it, verified) only when the
keyring lets the signer delegate to that name::

    actors:
      gateway: {keys: ["..."], delegates: ["*@example.com", ops-bot]}   # glob patterns of names

A glob reaches only names that are not keyring actors themselves: an actor that signs for itself
(an admin, the bootstrapper) is delegated to only when the list names it exactly, so a stolen
gateway key cannot speak for them through ``*``. Pure: no I/O.

Example::

    patterns = delegate_patterns(entry.get("delegates"), "actor 'gateway'")
    acts_as = delegate("gateway", b"alice", patterns, keyring_actors)    # "alice", or Unauthenticated
"""

from __future__ import annotations

from collections.abc import Collection
from fnmatch import fnmatchcase
from typing import Any

from eventconfig.errors import EventConfigError, Unauthenticated

MAX_DELEGATE_BYTES = 256  # the name goes into the history record, like the 'actor' header


class DelegationError(EventConfigError):
    """A keyring's ``delegates`` entry is malformed."""


def delegate_patterns(value: Any, where: str) -> tuple[str, ...]:
    """The keyring entry's ``delegates``: a list of non-empty name patterns (absent: none)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DelegationError(f"{where}: 'delegates' must be a list of actor names or glob patterns")
    return tuple(value)


def delegate(signer: str, on_behalf_of: bytes | None, patterns: tuple[str, ...],
             keyring_actors: Collection[str]) -> str:
    """The actor a request verified as ``signer`` acts as: ``signer`` itself without an
    ``on-behalf-of`` header, else the named actor if ``patterns`` let ``signer`` delegate to it."""
    if on_behalf_of is None:
        return signer
    try:
        name = on_behalf_of.decode("utf-8")
    except UnicodeDecodeError:
        raise Unauthenticated("the 'on-behalf-of' header is not UTF-8") from None
    if not name or len(on_behalf_of) > MAX_DELEGATE_BYTES:
        raise Unauthenticated(f"the 'on-behalf-of' header must be 1 to {MAX_DELEGATE_BYTES} bytes")
    if name != signer and not _may_delegate(name, patterns, keyring_actors):
        raise Unauthenticated(f"actor {signer[:64]!r} may not act on behalf of {name[:64]!r}: the keyring's "
                              f"'delegates' of {signer[:64]!r} do not name it")
    return name


def _may_delegate(name: str, patterns: tuple[str, ...], keyring_actors: Collection[str]) -> bool:
    if name in patterns:
        return True
    return name not in keyring_actors and any(fnmatchcase(name, p) for p in patterns)
