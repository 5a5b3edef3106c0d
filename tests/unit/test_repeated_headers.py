"""One rule for repeated headers (docs/design.md §4.3, §13.5): a request that carries a header of the
contract more than once is dead-lettered unanswered, by the writer and by the TrustGraph forwarder alike."""

from __future__ import annotations

import json

import pytest

from eventconfig.codec import default_codec
from eventconfig.model import REQUEST_HEADERS, repeated_header
from eventconfig.trustgraph.forwarding import forward_batch
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch

codec = default_codec()
PUT = codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                     "values": [{"type": "t", "key": "k", "value": "v"}]})
CLEAN = [("id", b"r1"), ("actor", b"alice"), ("deadline", b"9" * 13), ("reply-partition", b"0"),
         ("signed-at", b"1"), ("signature", b"c2ln"), ("on-behalf-of", b"bob")]


def repeating(name: str, first: bytes = b"1", second: bytes = b"2") -> list[tuple[str, bytes]]:
    return [*((n, v) for n, v in CLEAN if n != name), (name, first), ("other", b"x"), (name, second)]


def test_the_rule_names_the_first_repeated_header_of_the_contract_and_ignores_others() -> None:
    assert set(REQUEST_HEADERS) == {n for n, _ in CLEAN}
    assert repeated_header(CLEAN) is None
    assert repeated_header([*CLEAN, ("trace", b"a"), ("trace", b"b")]) is None, "other headers may repeat"
    assert repeated_header([("deadline", b"1"), ("actor", b"a"), ("actor", b"b"), ("deadline", b"2")]) == "actor"


@pytest.mark.parametrize("name", REQUEST_HEADERS)
def test_the_writer_dead_letters_a_request_with_a_repeated_header_unanswered_and_does_nothing(name: str) -> None:
    result = process_batch([RawRequest(7, PUT, repeating(name))], DictReader(), {}, 0, BatchConfig(), now_ms=0)
    assert (result.log, result.history, result.responses, result.reads) == ([], [], [], [])
    (dead,) = result.dlq
    headers = dict(dead.headers)
    assert headers["error-type"] == (b"DuplicateId" if name == "id" else b"DuplicateHeader")
    assert headers["error"] == f"request has 2 {name!r} headers; at most one is allowed".encode()
    assert headers["source-offset"] == b"7"


@pytest.mark.parametrize("name", REQUEST_HEADERS)
def test_the_trustgraph_forwarder_refuses_it_the_same_way(name: str) -> None:
    body = json.dumps({"operation": "config", "workspace": "w"}).encode()
    out = forward_batch([RawRequest(3, body, repeating(name, b"one", b"two"))], "tg", "tg.request.config", 1 << 20)
    assert (out.requests, out.responses) == ([], []), "neither forwarded nor answered (not with the first id)"
    (dead,) = out.dlq
    headers = dict(dead.headers)
    assert headers["error-type"] == (b"DuplicateId" if name == "id" else b"DuplicateHeader")
    assert headers["source-topic"] == b"tg.request.config"
