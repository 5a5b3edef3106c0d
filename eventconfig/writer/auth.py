"""Verified actors, the writer's half (docs/design.md §14.1): who sent a request, not who it claims.

With a keyring configured (``auth_keyring_file``), a request must carry ``actor``, ``signed-at`` and a
``signature`` made with one of that actor's keys over :func:`eventconfig.signing.signed_bytes`;
``signed-at`` must be within ``auth_window_ms`` of the writer's clock, the signed bytes name this
deployment (v2; the unbound v1 form only before ``auth_v1_signatures_until_ms``), and the same (actor, id) is
accepted once: a copy at another offset of the request topic is a replay. What was accepted within
the window is remembered here; a newly active writer rebuilds it from the request topic
(:meth:`Authenticator.observe`), so a replay is refused across a fail-over too. Pure apart from that
memory; no I/O.

Example::

    auth = Authenticator(Keyring.load(path), window_ms=300_000, deployment="prod")
    identity = auth.verify(value, headers, offset, now_ms)    # raises Unauthenticated
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from eventconfig.errors import EventConfigError, Unauthenticated
from eventconfig.model import ACTOR_HEADER, ON_BEHALF_OF_HEADER, SIGNATURE_HEADER, SIGNED_AT_HEADER, repeated_header
from eventconfig.settings import Settings
from eventconfig.signing import signed_bytes
from eventconfig.writer.delegation import delegate, delegate_patterns


class KeyringError(EventConfigError):
    """The keyring file cannot be read or is malformed."""


@dataclass(frozen=True)
class Identity:
    """Who a request is from: the actor, whether that was verified, and the actor's groups."""

    actor: str | None
    verified: bool = False
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Keyring:
    """The actors the service trusts: each one's public keys (several while rotating) and groups."""

    keys: Mapping[str, tuple[Ed25519PublicKey, ...]]
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    delegates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # who may act for whom (delegation.py)

    @classmethod
    def load(cls, path: str | Path) -> Keyring:
        """From YAML or JSON: ``{actors: {<name>: {keys: [<base64 raw public key>], groups: [..], delegates: [..]}}}``.
        An actor whose ``keys`` list is empty signs nothing (every key revoked) but keeps its groups."""
        return cls.parse(read_document(path, "keyring", KeyringError), str(path))

    @classmethod
    def parse(cls, document: Any, source: str = "the keyring") -> Keyring:
        actors = document.get("actors") if isinstance(document, dict) else None
        if not isinstance(actors, dict):
            raise KeyringError(f"{source} must be a mapping with an 'actors' mapping")
        keys: dict[str, tuple[Ed25519PublicKey, ...]] = {}
        groups: dict[str, frozenset[str]] = {}
        delegates: dict[str, tuple[str, ...]] = {}
        for name, entry in actors.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("keys"), list):
                raise KeyringError(f"{source}: actor {name!r} needs a 'keys' list (empty: every key revoked)")
            keys[str(name)] = tuple(_public_key(k, f"{source}: actor {name!r}") for k in entry["keys"])
            groups[str(name)] = frozenset(map(str, entry.get("groups") or ()))
            delegates[str(name)] = delegate_patterns(entry.get("delegates"), f"{source}: actor {name!r}")
        return cls(keys, groups, delegates)


def read_document(path: str | Path, what: str, error: type[EventConfigError]) -> Any:
    """The content of a YAML (or JSON) file; ``error`` says which ``what`` could not be read."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(f"cannot read the {what} {path}: {exc}") from None


def _public_key(text: Any, where: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(str(text), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise KeyringError(f"{where}: {str(text)[:60]!r} is not a base64 Ed25519 public key ({exc})") from None


def authenticator(settings: Settings, keyring: Keyring | None) -> Authenticator | None:
    """The writer's authenticator: None (actors are only claimed) unless a keyring is configured."""
    if keyring is None:
        return None
    return Authenticator(keyring, settings.auth_window_ms, settings.deployment_name,
                         v1_until_ms=settings.auth_v1_signatures_until_ms)


class Authenticator:
    """Checks signatures against a keyring and refuses replays within the window.

    ``keyring`` may be replaced between requests (the file changed, docs/design.md §14.4): each
    request is judged by the keyring in place when it is verified."""

    def __init__(self, keyring: Keyring, window_ms: int, deployment: str, *, v1_until_ms: int = 0) -> None:
        self.keyring = keyring
        self.window_ms = window_ms
        self.deployment = deployment
        self.v1_until_ms = v1_until_ms  # until then, v1 signatures (bound to no deployment) are accepted too
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}  # (actor, id) -> (offset, signed-at)
        self._pruned_at = 0

    def verify(self, value: bytes, headers: Sequence[tuple[str, bytes]], request_id: str, offset: int,
               now_ms: int) -> Identity:
        """The verified identity of the request at ``offset``; Unauthenticated says why not."""
        first = _first(headers)
        actor = first.get(ACTOR_HEADER, b"").decode("utf-8", errors="replace")
        if SIGNATURE_HEADER not in first or not actor:
            raise Unauthenticated("authentication is required: sign the request as a known actor "
                                  "('actor', 'signed-at' and 'signature' headers)")
        keys = self.keyring.keys.get(actor)
        if keys is None:
            raise Unauthenticated(f"actor {actor[:64]!r} is not in the service's keyring")
        signed_at = _epoch_ms(first.get(SIGNED_AT_HEADER))
        if abs(now_ms - signed_at) > self.window_ms:
            raise Unauthenticated(f"the request was signed {(now_ms - signed_at) / 1000:+.0f} s from the writer's "
                                  f"clock, outside the {self.window_ms // 1000} s window")
        try:
            signature = base64.b64decode(first[SIGNATURE_HEADER], validate=True)
        except (binascii.Error, ValueError):
            raise Unauthenticated("the 'signature' header is not base64") from None
        if not keys:
            raise Unauthenticated(f"every key of actor {actor[:64]!r} is revoked")
        if not self._signed(keys, signature, value, headers, now_ms):
            raise Unauthenticated(f"the signature does not match any key of actor {actor[:64]!r} "
                                  f"for deployment {self.deployment[:64]!r}")
        seen = self._seen.get((actor, request_id))
        if seen is not None and seen[0] != offset:
            raise Unauthenticated(f"replay: request {request_id[:64]!r} of actor {actor[:64]!r} was already "
                                  f"received at offset {seen[0]}")
        self._seen[(actor, request_id)] = (offset, signed_at)
        acts_as = delegate(actor, first.get(ON_BEHALF_OF_HEADER), self.keyring.delegates.get(actor, ()), self.keyring.keys)
        return Identity(acts_as, True, self.keyring.groups.get(acts_as, frozenset()))

    def _signed(self, keys: Sequence[Ed25519PublicKey], signature: bytes, value: bytes,
                headers: Sequence[tuple[str, bytes]], now_ms: int) -> bool:
        """A v2 signature for this deployment, or (in the transition window of a rolling upgrade) a v1 one."""
        forms = [self.deployment] if now_ms >= self.v1_until_ms else [self.deployment, None]
        return any(_valid(key, signature, signed_bytes(value, headers, form)) for form in forms for key in keys)

    def observe(self, headers: Sequence[tuple[str, bytes]], request_id: str, offset: int, now_ms: int) -> None:
        """Remember a signed request a previous writer already took (read back after a fail-over).

        The signature is not checked again (that would cost a verify per request of the window at
        every fail-over): a forged copy earlier in the topic could only block a request whose ``id``
        its sender has not yet made public."""
        if repeated_header(headers) is not None:  # refused unread (docs/design.md §4.3): never accepted
            return
        first = _first(headers)
        actor = first.get(ACTOR_HEADER, b"").decode("utf-8", errors="replace")
        if SIGNATURE_HEADER not in first or actor not in self.keyring.keys:
            return
        try:
            signed_at = _epoch_ms(first.get(SIGNED_AT_HEADER))
        except Unauthenticated:
            return
        if abs(now_ms - signed_at) <= self.window_ms:
            self._seen.setdefault((actor, request_id), (offset, signed_at))

    def forget_expired(self, now_ms: int) -> None:
        """Drop what the window check alone now refuses (at most every tenth of the window): memory
        stays bounded by request rate x window."""
        if now_ms - self._pruned_at < self.window_ms // 10:
            return
        self._pruned_at = now_ms
        horizon = now_ms - self.window_ms
        self._seen = {k: v for k, v in self._seen.items() if v[1] >= horizon}

    def __len__(self) -> int:
        return len(self._seen)


def _first(headers: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    first: dict[str, bytes] = {}
    for name, raw in headers:
        first.setdefault(name, raw or b"")
    return first


def _epoch_ms(raw: bytes | None) -> int:
    text = (raw or b"").decode("ascii", errors="replace")
    if not (text.isdigit() and len(text) <= 18):
        raise Unauthenticated("the 'signed-at' header must be epoch milliseconds as decimal digits")
    return int(text)


def _valid(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
        return True
    except InvalidSignature:
        return False
