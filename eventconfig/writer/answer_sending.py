"""Sending answers outside a transaction, and singling out the request whose answer the broker refuses
(docs/design.md §4.6, §5.4).

The answers to reads (the writer's, :mod:`eventconfig.writer.reads`, and every ``serve`` process's on
the read topic, :mod:`eventconfig.writer.read_server`) go out many per send through a plain idempotent
producer. A record the broker refuses for good (:class:`~eventconfig.kafka.transactions.RecordRefused`,
e.g. over the response topic's ``max.message.bytes``) would be refused again on every resend, and the
clients of the other answers would time out. So after a refusal each request's records are sent alone;
a request whose records are refused even alone is dead-lettered as ``Unproducible`` (its offset and
``id`` only) and not answered, or skipped when the broker refuses that dead letter too: what the writer
does for a request whose own transaction is refused (:mod:`eventconfig.writer.refusals`).

Example::

    answers = [Answer(request, {topics.response: result.responses, topics.dlq: result.dlq}, result.outcomes)]
    for operation, outcome in await send_answers(sender, topics.dlq, answers, source=topics.read):
        metrics.REQUESTS.labels(operation, outcome).inc()
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from eventconfig import model
from eventconfig.kafka.records import OutRecord
from eventconfig.kafka.transactions import RecordRefused
from eventconfig.writer.batch import BatchResult, RawRequest, Waiting, unproducible

log = logging.getLogger(__name__)


class Sender(Protocol):
    """What sends records outside a transaction (:class:`~eventconfig.kafka.transactions.PlainSender`)."""

    async def send(self, records: Mapping[str, Sequence[OutRecord]]) -> None: ...


@dataclass(frozen=True)
class Answer:
    """What one request sends (topic → records) and counts once they are sent: ``(operation, outcome)``
    pairs. ``request`` names it (offset, ``id`` header) in a dead letter should its records be refused."""

    request: RawRequest
    records: Mapping[str, Sequence[OutRecord]]
    outcomes: Sequence[tuple[str, str]]


def answered_reads(reads: Sequence[Waiting], later: Sequence[Waiting]) -> list[Waiting]:
    """The reads of ``reads`` that :func:`~eventconfig.writer.batch.answer_reads` answered (not left ``later``)."""
    waiting = {id(read) for read in later}
    return [read for read in reads if id(read) not in waiting]


def read_answers(answered: Sequence[Waiting], result: BatchResult, response_topic: str) -> list[Answer]:
    """The answers of :func:`~eventconfig.writer.batch.answer_reads`: one response and one outcome for
    each read it answered, in order."""
    return [Answer(RawRequest(read.offset, None, [(model.ID_HEADER, read.request_id.encode())]),
                   {response_topic: [response]}, [outcome])
            for read, response, outcome in zip(answered, result.responses, result.outcomes, strict=True)]


async def send_answers(sender: Sender, dlq_topic: str, answers: Sequence[Answer], source: str) -> list[tuple[str, str]]:
    """Send every answer's records; after a refusal, each answer alone (``source``: the topic the requests
    came from, for the log). Returns what to count: each answer's outcomes, or ``("?", "dlq")`` /
    ``("?", "skipped")`` for a request whose records were refused. Other Kafka errors propagate: the
    caller sends again (a read answered twice is harmless, docs/design.md §6)."""
    records: dict[str, list[OutRecord]] = {}
    for answer in answers:
        for topic, out in answer.records.items():
            records.setdefault(topic, []).extend(out)
    if any(records.values()):
        try:
            await sender.send(records)
        except RecordRefused as exc:
            log.warning("the broker refused an answer; sending each request's answer alone", extra={"fields": {
                "topic": source, "requests": len(answers), "error": str(exc)}})
            return [outcome for answer in answers for outcome in await _alone(sender, dlq_topic, answer, source)]
    return [outcome for answer in answers for outcome in answer.outcomes]


async def _alone(sender: Sender, dlq_topic: str, answer: Answer, source: str) -> Sequence[tuple[str, str]]:
    """Send one request's records; refused, dead-letter the request (or, refused too, skip it)."""
    if not any(answer.records.values()):
        return answer.outcomes
    try:
        await sender.send(answer.records)
        return answer.outcomes
    except RecordRefused as exc:
        reason = str(exc)
    try:
        await sender.send({dlq_topic: [unproducible(answer.request, reason)]})
        outcome = "dlq"
    except RecordRefused:
        outcome = "skipped"
    log.error("the broker refused the answer to a request; it goes to the DLQ" if outcome == "dlq" else
              "the broker refused the answer to a request and its dead letter; it is skipped",
              extra={"fields": {"topic": source, "offset": answer.request.offset, "error": reason,
                                "outcome": outcome}})
    return [("?", outcome)]
