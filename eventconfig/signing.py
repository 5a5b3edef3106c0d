"""Signed requests, the client's half (docs/design.md §14.1): Ed25519 over a canonical digest.

A client that holds its actor's private key signs each request: the ``signature`` header is the
base64 Ed25519 signature of :func:`signed_bytes`, which binds the deployment's name and the request's
value, ``id``, ``actor``, ``signed-at`` and ``deadline`` together (so a request signed for one
deployment is refused by another that shares the keyring). The writer checks it against the keyring
(:mod:`eventconfig.writer.auth`); the ``id`` is the nonce that makes a replay recognisable.

Example::

    signer = Signer.from_file("alice", "alice.key", deployment="prod")
    headers = signer.sign(value, request_headers(request_id, "alice", deadline_ms), now_ms)
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat, PublicFormat,
                                                          load_pem_private_key)

from eventconfig.errors import EventConfigError
from eventconfig.model import (ACTOR_HEADER, DEADLINE_HEADER, ID_HEADER, ON_BEHALF_OF_HEADER, SIGNATURE_HEADER,
                               SIGNED_AT_HEADER, Headers)
from eventconfig.settings import Settings

_DOMAIN_V1 = b"eventconfig-request-v1\x00"  # unbound to a deployment: accepted only in a transition window
_DOMAIN_V2 = b"eventconfig-request-v2\x00"


class KeyFileError(EventConfigError):
    """A key file is missing or does not hold an Ed25519 key."""


def signed_bytes(value: bytes, headers: Sequence[tuple[str, bytes]], deployment: str | None) -> bytes:
    """What a signature covers: a domain tag (v2: then the length-prefixed ``deployment`` name; None:
    the v1 form, bound to no deployment), SHA-256 of the value, then ``id``, ``actor``, ``signed-at``
    and ``deadline`` (each length-prefixed, empty when absent; the first of each name counts), then
    ``on-behalf-of`` only when the request has one (so requests without it sign as they always did)."""
    first: dict[str, bytes] = {}
    for name, raw in headers:
        first.setdefault(name, raw or b"")
    parts = [_DOMAIN_V1] if deployment is None else [_DOMAIN_V2, _prefixed(deployment.encode())]
    parts.append(hashlib.sha256(value).digest())
    names = (ID_HEADER, ACTOR_HEADER, SIGNED_AT_HEADER, DEADLINE_HEADER)
    for name in (*names, ON_BEHALF_OF_HEADER) if ON_BEHALF_OF_HEADER in first else names:
        parts.append(_prefixed(first.get(name, b"")))
    return b"".join(parts)


def _prefixed(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


@dataclass(frozen=True)
class Signer:
    """An actor and its private key: signs requests as that actor, for one deployment.

    ``deployment`` None signs the v1 form that no deployment is bound to; :class:`ConfigClient` binds
    such a signer to its settings' deployment (:meth:`bound`), so only direct callers of
    :meth:`sign` still produce v1 signatures."""

    actor: str
    key: Ed25519PrivateKey
    deployment: str | None = None

    @classmethod
    def from_file(cls, actor: str, path: str | Path, deployment: str | None = None) -> Signer:
        try:
            key = load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"cannot read the signing key {path}: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"the signing key {path} is not an Ed25519 private key")
        return cls(actor, key, deployment)

    def bound(self, deployment: str) -> Signer:
        """This signer, for ``deployment`` unless it already names one."""
        return self if self.deployment is not None else dataclasses.replace(self, deployment=deployment)

    def sign(self, value: bytes, headers: Headers, now_ms: int) -> Headers:
        """``headers`` with the ``actor`` set to this signer's, plus ``signed-at`` and ``signature``."""
        out = [(n, v) for n, v in headers if n not in (ACTOR_HEADER, SIGNED_AT_HEADER, SIGNATURE_HEADER)]
        out += [(ACTOR_HEADER, self.actor.encode()), (SIGNED_AT_HEADER, str(now_ms).encode())]
        signature = self.key.sign(signed_bytes(value, out, self.deployment))
        return [*out, (SIGNATURE_HEADER, base64.b64encode(signature))]


def settings_signer(settings: Settings) -> Signer | None:
    """This process's own signer (``signing_key_file`` as ``signing_actor``), or None."""
    if not settings.signing_key_file:
        return None
    if not settings.signing_actor:
        raise KeyFileError("signing_key_file needs signing_actor: the actor the key belongs to")
    return Signer.from_file(settings.signing_actor, settings.signing_key_file, settings.deployment_name)


def new_key_pair() -> tuple[bytes, str]:
    """A fresh Ed25519 key: (private key as PEM, public key as base64 for the keyring)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return pem, public_key_text(key.public_key())


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
