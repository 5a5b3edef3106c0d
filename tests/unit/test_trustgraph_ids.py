"""TrustGraph ids (docs/design.md §13.4): with a keyring, only the front end's actor may send a request
whose id starts ``tg:``; anyone else's is dead-lettered unanswered, because the translator would pass
any answer to that id on to TrustGraph as its answer. Without a keyring, anything goes (documented)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventconfig.codec import default_codec
from eventconfig.signing import Signer, public_key_text
from eventconfig.view.reader import DictReader
from eventconfig.writer.auth import Authenticator, Keyring
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch

codec = default_codec()
NOW = 1_800_000_000_000
FRONT_END = Signer("frontend", Ed25519PrivateKey.generate(), "prod")
BOB = Signer("bob", Ed25519PrivateKey.generate(), "prod")
CONFIG = BatchConfig(trustgraph_actor="frontend")


def keyring() -> Keyring:
    return Keyring.parse({"actors": {s.actor: {"keys": [public_key_text(s.key.public_key())]}
                                     for s in (FRONT_END, BOB)}})


def request(operation: str = "put") -> bytes:
    values = [{"type": "t", "key": "k", "value": "v"}] if operation == "put" else []
    return codec.encode("ConfigRequest", {"operation": operation, "workspace": "w", "values": values})


def signed(signer: Signer, request_id: str, value: bytes, partition: bytes = b"0") -> RawRequest:
    headers = signer.sign(value, [("id", request_id.encode()), ("reply-partition", partition)], NOW)
    return RawRequest(0, value, headers)


def test_a_tg_id_signed_by_the_front_end_is_answered():
    value = request()
    result = process_batch([signed(FRONT_END, "tg:tg:w:1", value)], DictReader(), {}, 0, CONFIG, now_ms=NOW,
                           auth=Authenticator(keyring(), 300_000, "prod"))
    assert [dict(r.headers)["id"] for r in result.responses] == [b"tg:tg:w:1"] and result.version == 1


def test_a_tg_id_from_any_other_signer_or_unsigned_is_dead_lettered_unanswered_and_writes_nothing():
    put, get = request(), request("list")
    records = [signed(BOB, "tg:tg:w:1", put), signed(BOB, "tg:tg:r:2", get),
               RawRequest(2, put, [("id", b"tg:tg:w:3"), ("reply-partition", b"0"), ("actor", b"frontend")]),
               RawRequest(3, b"\xff", [("id", b"tg:tg:w:4"), ("reply-partition", b"0")]),
               signed(BOB, "bob-1", put)]
    result = process_batch(records, DictReader(), {}, 0, CONFIG, now_ms=NOW, auth=Authenticator(keyring(), 300_000, "prod"))
    assert [dict(r.headers)["id"] for r in result.responses] == [b"bob-1"], "no answer under a TrustGraph id"
    assert not result.reads, "a forged TrustGraph read is not answered later either"
    refused = [dict(r.headers) for r in result.dlq]
    assert [h["error-type"] for h in refused] == [b"Unauthenticated"] * 3 + [b"BadMarker"]
    assert b"reserved to the TrustGraph front end's actor 'frontend'" in refused[0]["error"]
    assert result.version == 1, "only bob's own write was written"


def test_without_a_keyring_a_tg_id_is_taken_from_anyone():
    result = process_batch([RawRequest(0, request(), [("id", b"tg:tg:w:1"), ("reply-partition", b"0")])],
                           DictReader(), {}, 0, CONFIG, now_ms=NOW)
    assert [dict(r.headers)["id"] for r in result.responses] == [b"tg:tg:w:1"]
