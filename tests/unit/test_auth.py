"""Verified actors (docs/design.md §14.1): a request signed with its actor's key is accepted once, and
an unsigned, badly signed, stale or replayed one is refused with `unauthenticated` and a DLQ record."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventconfig.codec import default_codec
from eventconfig.errors import Unauthenticated
from eventconfig.settings import Settings
from eventconfig.signing import KeyFileError, Signer, new_key_pair, public_key_text, settings_signer
from eventconfig.view.reader import DictReader
from eventconfig.writer.auth import Authenticator, Keyring, KeyringError
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch

codec = default_codec()
NOW = 1_800_000_000_000
WINDOW = 300_000
ALICE = Signer("alice", Ed25519PrivateKey.generate(), "prod")
MALLORY = Signer("alice", Ed25519PrivateKey.generate(), "prod")  # claims to be alice, with her own key


def keyring() -> Keyring:
    return Keyring.parse({"actors": {"alice": {"keys": [public_key_text(ALICE.key.public_key())],
                                               "groups": ["admins"]}}})


def put(value: str = "v") -> bytes:
    return codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                          "values": [{"type": "t", "key": "k", "value": value}]})


def signed(request_id: str, value: bytes, signer: Signer = ALICE, at: int = NOW) -> list[tuple[str, bytes]]:
    return signer.sign(value, [("id", request_id.encode())], at)


def test_a_signed_request_is_verified_as_its_actor_with_the_actors_groups():
    auth, value = Authenticator(keyring(), WINDOW, "prod"), put()
    identity = auth.verify(value, signed("r1", value), "r1", 0, NOW)
    assert (identity.actor, identity.verified, identity.groups) == ("alice", True, frozenset({"admins"}))


@pytest.mark.parametrize("headers, reason", [
    (lambda v: [("id", b"r1"), ("actor", b"alice")], "authentication is required"),
    (lambda v: signed("r1", v, MALLORY), "does not match any key"),
    (lambda v: signed("r1", put("other")), "does not match any key"),  # signature of another value
    (lambda v: [(n, b"bob" if n == "actor" else r) for n, r in signed("r1", v)], "not in the service's keyring"),
    (lambda v: [(n, b"r2" if n == "id" else r) for n, r in signed("r1", v)], "does not match any key"),
    (lambda v: signed("r1", v, at=NOW - WINDOW - 1), "outside the 300 s window"),
    (lambda v: signed("r1", v, at=NOW + WINDOW + 1), "outside the 300 s window"),
    (lambda v: [(n, b"soon" if n == "signed-at" else r) for n, r in signed("r1", v)], "epoch milliseconds"),
    (lambda v: [(n, b"!!" if n == "signature" else r) for n, r in signed("r1", v)], "not base64"),
])
def test_unsigned_badly_signed_or_stale_requests_are_refused_with_the_reason(headers, reason):
    value = put()
    with pytest.raises(Unauthenticated, match=reason):
        Authenticator(keyring(), WINDOW, "prod").verify(value, headers(value), "r1", 0, NOW)


def test_a_replay_at_another_offset_is_refused_but_a_redo_at_the_same_offset_is_not():
    auth, value = Authenticator(keyring(), WINDOW, "prod"), put()
    headers = signed("r1", value)
    auth.verify(value, headers, "r1", 10, NOW)
    auth.verify(value, headers, "r1", 10, NOW + 5)  # the same record handled again after an aborted transaction
    with pytest.raises(Unauthenticated, match="replay: .* already received at offset 10"):
        auth.verify(value, headers, "r1", 11, NOW + 10)


def test_a_new_writer_that_observed_the_topic_refuses_replays_of_what_its_predecessor_accepted():
    value = put()
    headers = signed("r1", value)
    successor = Authenticator(keyring(), WINDOW, "prod")
    successor.observe(headers, "r1", 10, NOW)
    successor.observe([("id", b"r9"), ("actor", b"alice")], "r9", 11, NOW)  # unsigned: refused then, not kept
    assert len(successor) == 1
    with pytest.raises(Unauthenticated, match="replay"):
        successor.verify(value, headers, "r1", 50, NOW + 1)


def test_memory_is_bounded_by_the_window():
    auth, value = Authenticator(keyring(), WINDOW, "prod"), put()
    auth.verify(value, signed("r1", value), "r1", 0, NOW)
    auth.forget_expired(NOW + WINDOW + 1)
    assert len(auth) == 0


@pytest.mark.parametrize("document, problem", [
    ({}, "'actors' mapping"),
    ({"actors": {"a": {"groups": ["g"]}}}, "needs a 'keys' list"),
    ({"actors": {"a": {"keys": ["nope"]}}}, "not a base64 Ed25519 public key"),
    ({"actors": {"a": {"keys": [base64.b64encode(b"short").decode()]}}}, "not a base64 Ed25519 public key"),
])
def test_a_malformed_keyring_is_refused_with_what_is_wrong(document, problem):
    with pytest.raises(KeyringError, match=problem):
        Keyring.parse(document)


def test_the_batch_refuses_an_unauthenticated_request_with_a_dlq_record_and_records_verified_actors():
    good, bad = put("good"), put("bad")
    records = [RawRequest(0, good, signed("ok", good)),
               RawRequest(1, bad, signed("forged", bad, MALLORY)),
               RawRequest(2, good, signed("ok", good))]  # a captured copy of the first, sent again
    result = process_batch(records, DictReader(), {}, 0, BatchConfig(), now_ms=NOW,
                           auth=Authenticator(keyring(), WINDOW, "prod"))
    answers = [codec.decode("ConfigResponse", r.value)["error"] for r in result.responses]
    assert answers[0] is None and [a["type"] for a in answers[1:]] == ["unauthenticated", "unauthenticated"]
    assert [dict(r.headers)["error-type"] for r in result.dlq] == [b"Unauthenticated", b"Unauthenticated"]
    assert result.version == 1 and len(result.history) == 1, "nothing of the refused requests was written"
    mutation = codec.decode("Mutation", result.history[0].value)
    assert (mutation["actor"], mutation["actor_verified"]) == ("alice", True)


def test_without_authentication_actors_are_taken_as_claimed_and_marked_unverified():
    value = put()
    result = process_batch([RawRequest(0, value, [("id", b"r"), ("actor", b"anyone")])], DictReader(), {}, 0,
                           BatchConfig(), now_ms=NOW)
    mutation = codec.decode("Mutation", result.history[0].value)
    assert (mutation["actor"], mutation["actor_verified"]) == ("anyone", False)


def test_unreadable_key_files_fail_with_one_clear_error(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(KeyFileError, match="cannot read the signing key"):
        Signer.from_file("alice", bad)
    with pytest.raises(KeyFileError, match="needs signing_actor"):
        settings_signer(Settings(signing_key_file=str(bad)))
    with pytest.raises(KeyringError, match="cannot read the keyring"):
        Keyring.load(tmp_path / "missing.yaml")


def test_a_key_pair_from_new_key_pair_signs_what_the_keyring_verifies(tmp_path):
    pem, public = new_key_pair()
    (tmp_path / "k.pem").write_bytes(pem)
    signer = Signer.from_file("alice", tmp_path / "k.pem", "prod")
    value = put()
    auth = Authenticator(Keyring.parse({"actors": {"alice": {"keys": [public]}}}), WINDOW, "prod")
    assert auth.verify(value, signed("r1", value, signer), "r1", 0, NOW).verified


def test_a_signature_is_bound_to_its_deployment_and_v1_is_accepted_only_in_the_transition_window():
    value = put()
    for_prod = signed("r1", value)
    with pytest.raises(Unauthenticated, match="for deployment 'staging'"):
        Authenticator(keyring(), WINDOW, "staging").verify(value, for_prod, "r1", 0, NOW)
    unbound = signed("r2", value, Signer(ALICE.actor, ALICE.key))  # v1: names no deployment
    assert unbound != signed("r2", value, ALICE.bound("staging"))
    with pytest.raises(Unauthenticated, match="does not match any key"):
        Authenticator(keyring(), WINDOW, "prod").verify(value, unbound, "r2", 0, NOW)
    upgrading = Authenticator(keyring(), WINDOW, "prod", v1_until_ms=NOW + 1)
    assert upgrading.verify(value, unbound, "r2", 0, NOW).verified
    assert upgrading.verify(value, for_prod, "r1", 1, NOW).verified  # v2 too, of course
    with pytest.raises(Unauthenticated):  # the window is over
        Authenticator(keyring(), WINDOW, "prod", v1_until_ms=NOW).verify(value, unbound, "r2", 0, NOW)


def test_a_signer_keeps_the_deployment_it_names_and_is_bound_when_it_names_none():
    assert ALICE.bound("staging").deployment == "prod"
    assert Signer(ALICE.actor, ALICE.key).bound("staging").deployment == "staging"


def test_an_actor_whose_keys_are_all_revoked_keeps_its_groups_and_signs_nothing():
    ring = Keyring.parse({"actors": {"alice": {"keys": [], "groups": ["admins"]}}})
    assert ring.groups["alice"] == frozenset({"admins"})
    value = put()
    with pytest.raises(Unauthenticated, match="every key of actor 'alice' is revoked"):
        Authenticator(ring, WINDOW, "prod").verify(value, signed("r1", value), "r1", 0, NOW)
