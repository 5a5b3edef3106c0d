"""docs/design.md §6: the writer answers a read only after its transactions holding the requests before
the read have committed; a failed one means it may be fenced, so the reads behind it are dropped (the
next holder of the role reads them again) instead of being answered from a view that may be stale."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from aiokafka.errors import KafkaConnectionError

from eventconfig.kafka.records import OutRecord
from eventconfig.settings import Settings
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch
from eventconfig.writer.reads import ReadAnswerer
from eventconfig.codec import default_codec
from tests.support import wait_until

codec = default_codec()


def reads(*offsets: int, now_ms: int = 0) -> list:
    raw = [RawRequest(o, codec.encode("ConfigRequest", {"operation": "config", "workspace": "w"}),
                      [("id", f"r{o}".encode())]) for o in offsets]
    return process_batch(raw, DictReader(), {}, 0, BatchConfig(), now_ms=now_ms).reads


def answerer() -> ReadAnswerer:
    return ReadAnswerer(Settings.load({"topic_prefix": "unit"}), materializer=None, config=BatchConfig())  # type: ignore[arg-type]


def test_each_read_waits_for_the_transactions_begun_before_it():
    waiting = answerer()
    waiting.add(reads(1), commits=0)
    waiting.add(reads(2), commits=2)
    assert [(r.offset, r.commits) for r in waiting.waiting()] == [(1, 0), (2, 2)]
    assert [r.ready(0, 1) for r in waiting.waiting()] == [True, False]
    assert [r.ready(0, 2) for r in waiting.waiting()] == [True, True]


def test_a_failed_transaction_drops_the_reads_behind_it_and_refuses_later_ones_until_a_new_activation():
    waiting = answerer()
    waiting.add(reads(1), commits=1)
    waiting.committed()
    waiting.add(reads(2), commits=2)
    waiting.add(reads(3), commits=3)
    waiting.abandon()  # transaction 2 failed: 3 never commits either
    assert waiting.offsets() == [1], "only the read whose transactions committed may still be answered"
    waiting.add(reads(4), commits=3)
    assert waiting.offsets() == [1], "nothing after the failed transaction is held"
    waiting.clear()
    waiting.add(reads(5), commits=1)
    assert waiting.offsets() == [5]
    assert not waiting.waiting()[0].ready(0, 0), "a new activation counts its own transactions from zero"


class _View:
    """The materializer as the answerer sees it: a version and snapshots (empty here)."""

    version = 0

    class store:  # noqa: N801 - mirrors Materializer.store
        @staticmethod
        @contextlib.contextmanager
        def snapshot() -> Iterator[DictReader]:
            yield DictReader()

    async def changed(self, timeout: float) -> None:
        await asyncio.sleep(timeout)


class _FailingOnce:
    """A sender whose first send runs ``during`` and then fails as a lost connection would."""

    def __init__(self, during: Callable[[], None]) -> None:
        self.during: Callable[[], None] | None = during
        self.sent: list[bytes] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, records: Mapping[str, Sequence[OutRecord]]) -> None:
        if self.during is not None:
            during, self.during = self.during, None
            during()
            raise KafkaConnectionError("lost")
        self.sent.extend(dict(r.headers)["id"] for out in records.values() for r in out)


async def test_a_read_dropped_while_its_round_was_being_sent_stays_dropped_when_the_send_is_retried():
    """abandon() during a failed send: the read it dropped must not come back with the round's answers
    (it would be answered ``timeout`` at its deadline instead of by the next holder of the role)."""
    settings = Settings.load({"topic_prefix": "unit"})
    waiting: ReadAnswerer
    sender = _FailingOnce(lambda: waiting.abandon())
    waiting = ReadAnswerer(settings, _View(), BatchConfig(), sender=sender)  # type: ignore[arg-type]
    now_ms = int(time.time() * 1000)  # the reads' deadlines lie ahead
    waiting.add(reads(1, now_ms=now_ms), commits=0)  # answerable now
    waiting.add(reads(2, now_ms=now_ms), commits=1)  # waits for a transaction that is going to fail
    await waiting.start()
    try:
        await wait_until(lambda: sender.sent == [b"r1"], 10, "the answer to read 1 was never sent again")
        assert waiting.offsets() == [], "read 2 came back after abandon() dropped it"
    finally:
        await waiting.stop()
