"""docs/design.md §6 and §9.3: reads answered without a transaction are still linearizable, also across a
fail-over of the writer. A read sent after a write's response arrived sees that write, whichever
process answers it: the active writer, or a fenced zombie whose view lags behind the log. A zombie
learns it is fenced when the transaction of a request before the read fails, and then drops the read.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from eventconfig.codec import default_codec
from eventconfig.kafka.transactions import TransactionalSender
from eventconfig.model import Entry, ItemKey, Version
from eventconfig.process import ConfigService
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch
from eventconfig.writer.history_tail import continuation, history_end
from eventconfig.writer.resume_point import ResumePoint, last_stamped, stamped
from tests.support import replace_paused_writer, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()
KEY = {"type": "t", "key": "k"}


async def commit_as_successor(settings, successor: TransactionalSender, value: str, next_offset: int) -> None:
    """What a writer that took over commits for one put it handled, built as the writer builds it: the
    version and hash chain continued from the log's last stamped commit marker and the history's end
    (the take-over check, writer/history_tail.py), and a commit marker stamped with ``next_offset``,
    the next request to handle. Once this returns the write is committed, i.e. its response could have
    reached a client."""
    stamp = await last_stamped(settings)
    assert stamp is not None, "the zombie's write left no stamped commit marker"
    version, chain_head = continuation(await history_end(settings), stamp.marker, stamp.marker.version)
    put = RawRequest(0, codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                                       "values": [{**KEY, "value": value}]}), [("id", b"successor")])
    before = DictReader({ItemKey("w", "t", "k"): Entry("old", version)}, version=version)
    result = process_batch([put], before, {}, Version(version), BatchConfig(), now_ms=0, chain_head=chain_head)
    await successor.commit({settings.topics.log: stamped(result.log, ResumePoint(next_offset)),
                            settings.topics.history: result.history})


async def test_a_fenced_writer_whose_view_lags_never_answers_a_read_with_a_value_older_than_an_acknowledged_write(
        settings, topics, wire, tmp_path):
    zombie = ConfigService(replace(settings, data_dir=tmp_path / "a"), projector=False)
    await zombie.start()
    successor = TransactionalSender(settings, "writer")
    try:
        await zombie.writer.wait_active(60)
        assert (await wire.put("w", ("t", "k", "old")))["version"] == 1
        await wait_until(lambda: zombie.materializer.version >= 1, 20, "the writer's view did not apply version 1")
        zombie.materializer.hold()  # its view stops following the log (a slow or stuck fetch)
        await successor.start()  # fences the running writer: from now on it is a zombie

        # The put the successor handles reaches the zombie too, and the read right behind it (one record
        # batch: one fetch). The zombie judges the put differently (its deadline passed by the zombie's
        # clock), so the put gives it no version to wait for: only its failed transaction stops the read.
        put = codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                             "values": [{**KEY, "value": "new"}]})
        get = codec.encode("ConfigRequest", {"operation": "get", "workspace": "w", "keys": [KEY]})
        answer = wire.expect("read")
        batch = wire.producer.create_batch()
        batch.append(key=None, value=put, timestamp=None, headers=[("id", b"put"), ("deadline", b"1")])
        batch.append(key=None, value=get, timestamp=None, headers=[("id", b"read")])
        sent = await (await wire.producer.send_batch(batch, settings.topics.request, partition=0))
        read_offset = sent.offset + 1
        await commit_as_successor(settings, successor, "new", read_offset)  # it handled the put, not the read

        def zombie_dropped_the_read() -> bool:
            consumed = (zombie.writer.position or 0) > read_offset
            return consumed and all(read.offset != read_offset for read in zombie.writer.reads.waiting())
        await wait_until(lambda: answer.done() or zombie_dropped_the_read(), 30,
                         "the zombie writer neither answered the read nor dropped it after its failed transaction")
        zombie.materializer.release()  # it takes the role back, catches up, reads the read again
        response = codec.decode("ConfigResponse", (await asyncio.wait_for(answer, 60)).value)
    finally:
        await successor.stop()
        await zombie.stop()
    assert response["error"] is None
    assert response["values"][0]["value"] == "new", "a read sent after version 2 was committed must see it"
    assert response["version"] >= 2


async def test_after_the_active_writer_is_paused_and_replaced_every_read_sees_the_successors_write(
        settings, topics, wire, processes, tmp_path):
    await replace_paused_writer(settings, wire, processes, tmp_path)  # "old", paused, replaced, "new", resumed
    answers = await asyncio.gather(*(wire.call("get", keys=[KEY], timeout=30) for _ in range(20)))
    assert [a["values"][0]["value"] for a in answers if a["error"] is None] == ["new"] * 20
