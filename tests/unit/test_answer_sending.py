"""docs/design.md §4.6, §5.4: answers sent outside a transaction (the writer's reads and the read topic's)
go out together; after the broker refuses one, each request's alone, and the request whose answer is
refused is dead-lettered as ``Unproducible`` (or skipped when that is refused too) instead of costing
the other requests their answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eventconfig.codec import default_codec
from eventconfig.kafka.records import OutRecord
from eventconfig.kafka.transactions import RecordRefused
from eventconfig.view.reader import DictReader
from eventconfig.writer.answer_sending import Answer, answered_reads, read_answers, send_answers
from eventconfig.writer.batch import BatchConfig, RawRequest, answer_reads, process_batch

codec = default_codec()
BIG = b"x" * 100


class Broker:
    """Takes every record it is sent except those over ``limit`` bytes on ``refusing`` topics; a send with
    one of those fails with RecordRefused (after the others were taken, as a real broker may)."""

    def __init__(self, refusing: Sequence[str] = ("response",), limit: int = 50) -> None:
        self.refusing, self.limit = refusing, limit
        self.sends = 0
        self.taken: dict[str, list[bytes | None]] = {}

    async def send(self, records: Mapping[str, Sequence[OutRecord]]) -> None:
        self.sends += 1
        refused = False
        for topic, out in records.items():
            for record in out:
                if topic in self.refusing and len(record.value or b"") + sum(len(v) for _, v in record.headers) > self.limit:
                    refused = True
                else:
                    self.taken.setdefault(topic, []).append(record.value if topic == "response" else record.headers)
        if refused:
            raise RecordRefused("MessageSizeTooLargeError")

    def answered(self) -> list[bytes | None]:
        """The responses taken, each once (one sent again after a refusal is a harmless duplicate)."""
        return list(dict.fromkeys(self.taken.get("response", [])))


def answer(offset: int, value: bytes, outcome: str = "ok") -> Answer:
    rid = f"r{offset}".encode()
    return Answer(RawRequest(offset, None, [("id", rid)]), {"response": [OutRecord(rid, value, [("id", rid)])]},
                  [("get", outcome)])


async def test_answers_go_out_in_one_send_and_count_their_outcomes():
    broker = Broker()
    counted = await send_answers(broker, "dlq", [answer(1, b"a"), answer(2, b"b", "forbidden")], source="read")
    assert broker.sends == 1 and broker.taken["response"] == [b"a", b"b"]
    assert counted == [("get", "ok"), ("get", "forbidden")]


async def test_after_a_refusal_each_answer_goes_alone_and_the_refused_one_is_dead_lettered_in_its_place():
    broker = Broker()
    counted = await send_answers(broker, "dlq", [answer(1, b"a"), answer(2, BIG), answer(3, b"c")], source="read")
    assert broker.answered() == [b"a", b"c"], "the other requests are answered"
    (dead,) = broker.taken["dlq"]
    headers = dict(dead)
    assert (headers["id"], headers["error-type"], headers["source-offset"]) == (b"r2", b"Unproducible", b"2")
    assert b"MessageSizeTooLarge" in headers["error"]
    assert counted == [("get", "ok"), ("?", "dlq"), ("get", "ok")], "the refused one counts as dead-lettered only"


async def test_a_request_whose_dead_letter_is_refused_too_is_skipped():
    broker = Broker(refusing=("response", "dlq"), limit=20)
    counted = await send_answers(broker, "dlq", [answer(1, b"a"), answer(2, BIG)], source="read")
    assert broker.answered() == [b"a"] and "dlq" not in broker.taken
    assert counted == [("get", "ok"), ("?", "skipped")]


async def test_a_request_with_nothing_to_send_sends_nothing():
    broker = Broker()
    quiet = Answer(RawRequest(7, None, []), {"response": [], "dlq": []}, [])
    assert await send_answers(broker, "dlq", [quiet], source="read") == [] and broker.sends == 0


async def test_a_bad_request_whose_dead_letter_is_refused_is_dead_lettered_unproducible():
    """The read topic's refusals: a bounded dead letter the DLQ topic refuses gives way to the minimal one."""
    bad = RawRequest(4, b"not avro" * 10, [("id", b"junk")])
    result = process_batch([bad], DictReader(), {}, 0, BatchConfig(), now_ms=0, reads_only=True)
    broker = Broker(refusing=("dlq",), limit=60)
    counted = await send_answers(broker, "dlq", [Answer(bad, {"response": result.responses, "dlq": result.dlq},
                                                        result.outcomes)], source="read")
    assert [dict(headers)["error-type"] for headers in broker.taken["dlq"]] == [b"Unproducible"]
    (response,) = broker.answered()
    assert codec.decode("ConfigResponse", response)["error"]["type"] == "config-error", \
        "its answer, which the broker took, went out"
    assert counted == [("?", "dlq")]


def test_read_answers_pair_each_answered_read_with_its_response_and_outcome():
    raw = [RawRequest(o, codec.encode("ConfigRequest", {"operation": "config", "workspace": "w",
                                                         **({"min_version": 9} if o == 2 else {})}),
                      [("id", f"r{o}".encode())]) for o in (1, 2, 3)]
    reads = process_batch(raw, DictReader(), {}, 0, BatchConfig(), now_ms=0).reads
    result, later = answer_reads(reads, DictReader(), 0, BatchConfig(), now_ms=1)
    answers = read_answers(answered_reads(reads, later), result, "response")
    assert [(a.request.offset, a.request.headers, a.outcomes) for a in answers] == [
        (1, [("id", b"r1")], [("config", "ok")]), (3, [("id", b"r3")], [("config", "ok")])]
    assert [dict(r.headers)["id"] for a in answers for r in a.records["response"]] == [b"r1", b"r3"]
