"""Delegated requests (docs/design.md §14.1): the gateway signs as itself for a caller it verified; the
writer acts as that caller only when the keyring lets the gateway delegate to it, and the signature
covers the delegation (neither added nor removed unnoticed)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventconfig.codec import default_codec
from eventconfig.errors import Unauthenticated
from eventconfig.gateway.auth import HttpUser as Caller
from eventconfig.gateway.backend import DelegatingSigner, acting_as
from eventconfig.signing import Signer, public_key_text
from eventconfig.writer.auth import Authenticator, Keyring, KeyringError
from eventconfig.writer.delegation import DelegationError, delegate, delegate_patterns

codec = default_codec()
NOW = 1_800_000_000_000
GATEWAY = Signer("gateway", Ed25519PrivateKey.generate(), "prod")
ADMIN = Signer("root", Ed25519PrivateKey.generate(), "prod")


def keyring(delegates: list[str] | None = None) -> Keyring:
    gateway: dict = {"keys": [public_key_text(GATEWAY.key.public_key())]}
    if delegates is not None:
        gateway["delegates"] = delegates
    return Keyring.parse({"actors": {"gateway": gateway, "root": {"keys": [public_key_text(ADMIN.key.public_key())]},
                                     "alice@example.com": {"keys": [public_key_text(ADMIN.key.public_key())],
                                                           "groups": ["editors"]}}})


VALUE = codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                       "values": [{"type": "t", "key": "k", "value": "v"}]})


def for_caller(caller: Caller, request_id: str = "r1") -> list[tuple[str, bytes]]:
    signer = DelegatingSigner(GATEWAY.actor, GATEWAY.key, "prod")
    with acting_as(caller):
        return signer.sign(VALUE, [("id", request_id.encode()), ("actor", caller.actor.encode())], NOW)


def verify(headers: list[tuple[str, bytes]], ring: Keyring, request_id: str = "r1"):  # type: ignore[no-untyped-def]
    return Authenticator(ring, 300_000, "prod").verify(VALUE, headers, request_id, 0, NOW)


def test_a_delegated_request_acts_as_the_caller_verified_with_the_callers_groups():
    identity = verify(for_caller(Caller("alice@example.com", verified=True)), keyring(["alice@example.com"]))
    assert (identity.actor, identity.verified, identity.groups) == ("alice@example.com", True, frozenset({"editors"}))
    identity = verify(for_caller(Caller("bob@example.com", verified=True)), keyring(["*@example.com"]))
    assert (identity.actor, identity.verified) == ("bob@example.com", True)


def test_an_unverified_caller_is_not_named_so_the_write_is_the_gateways_own():
    headers = for_caller(Caller("unverified:bob", verified=False))
    assert "on-behalf-of" not in dict(headers)
    assert verify(headers, keyring(["*"])).actor == "gateway"


@pytest.mark.parametrize("delegates, caller, reason", [
    (None, "bob", "may not act on behalf of 'bob'"),       # no 'delegates': the gateway acts only as itself
    (["*@example.com"], "bob", "may not act on behalf of 'bob'"),
    (["*"], "root", "may not act on behalf of 'root'"),    # a glob never reaches an actor that signs for itself
    (["*"], "x" * 300, "1 to 256 bytes"),
])
def test_a_delegation_the_keyring_does_not_grant_is_unauthenticated(delegates, caller, reason):
    with pytest.raises(Unauthenticated, match=reason):
        verify(for_caller(Caller(caller, verified=True)), keyring(delegates))


def test_an_actor_that_signs_for_itself_is_reached_only_when_named_exactly():
    assert verify(for_caller(Caller("root", verified=True)), keyring(["root"])).actor == "root"
    assert delegate("gateway", b"gateway", (), {"gateway"}) == "gateway"
    assert delegate("gateway", None, (), {"gateway"}) == "gateway"


def test_the_signature_covers_the_delegation_so_it_can_be_neither_added_removed_nor_changed():
    ring = keyring(["*"])
    delegated = for_caller(Caller("alice", verified=True))
    own = for_caller(Caller("alice", verified=False))
    for forged in ([h for h in delegated if h[0] != "on-behalf-of"],                    # removed
                   [*own, ("on-behalf-of", b"alice")],                                  # added
                   [(n, b"mallory" if n == "on-behalf-of" else v) for n, v in delegated]):  # changed
        with pytest.raises(Unauthenticated, match="does not match any key"):
            verify(forged, ring)


def test_a_malformed_delegates_entry_is_refused_when_the_keyring_is_read():
    with pytest.raises(DelegationError, match="'delegates' must be a list"):
        keyring("*")  # type: ignore[arg-type]
    assert delegate_patterns(None, "x") == ()
    with pytest.raises(KeyringError):
        Keyring.parse({"actors": {"gateway": {"keys": "not a list"}}})
