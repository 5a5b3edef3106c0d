"""docs/design.md §6: the writer answers a read only after its transactions holding the requests before
the read have committed; a failed one means it may be fenced, so the reads behind it are dropped (the
next holder of the role reads them again) instead of being answered from a view that may be stale."""

from __future__ import annotations

from eventconfig.settings import Settings
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch
from eventconfig.writer.reads import ReadAnswerer
from eventconfig.codec import default_codec

codec = default_codec()


def reads(*offsets: int) -> list:
    raw = [RawRequest(o, codec.encode("ConfigRequest", {"operation": "config", "workspace": "w"}),
                      [("id", f"r{o}".encode())]) for o in offsets]
    return process_batch(raw, DictReader(), {}, 0, BatchConfig(), now_ms=0).reads


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
