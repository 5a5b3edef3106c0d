"""The pokes the writer makes of its own writes (docs/design.md §7): the same as the projector's, in
version order, with every commit marker of the transaction flagged so the projector makes none again."""

from __future__ import annotations

from eventconfig.codec import default_codec
from eventconfig.kafka.records import OutRecord
from eventconfig.logrecords import delete_record, marker_record, put_record
from eventconfig.model import POKED_HEADER, VERSION_HEADER, ItemKey
from eventconfig.push.writes import LogProjection, WriterPokes
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch

codec = default_codec()


def request(workspace: str, operation: str = "put", *items: tuple[str, str, str]) -> RawRequest:
    body = {"operation": operation, "workspace": workspace}
    if operation == "put":
        body["values"] = [{"type": t, "key": k, "value": v} for t, k, v in items]
    else:
        body["keys"] = [{"type": t, "key": k} for t, k, _ in items]
    return RawRequest(0, codec.encode("ConfigRequest", body), [("id", f"{workspace}-{operation}".encode())])


BATCH = [request("w", "put", ("t1", "a", "1"), ("t2", "b", "2")),
         request("_reserved", "put", ("t", "k", "v")),  # reserved only: no poke
         request("x", "put"),  # no items: no poke
         request("__workspaces__", "put", ("workspace", "acme", "{}")),
         request("w", "delete", ("t3", "missing", ""))]


class Consumed:
    """An OutRecord as the projector consumes it."""

    def __init__(self, offset: int, record: OutRecord) -> None:
        self.offset, self.key, self.value, self.headers = offset, record.key, record.value, record.headers


def consumed(log: list[OutRecord]) -> list[Consumed]:
    return [Consumed(offset, record) for offset, record in enumerate(log)]


def projected(log: list[OutRecord], previous_version: int | None = 0) -> list[tuple[dict, bool]]:
    projection = LogProjection(previous_version=previous_version)
    return [(poke, poked) for _, poke, poked in map(projection.add, consumed(log)) if poke is not None]


def test_the_writers_pokes_are_the_projectors_pokes_of_the_same_log_in_version_order():
    result = process_batch(BATCH, DictReader(), {}, 10, BatchConfig(), 0)
    writer = WriterPokes()
    writer.previous_version = 9  # the notify topic's last poke, read at take-over
    flagged, notify = writer(result.log, result.writes)
    pokes = [codec.decode("ConfigPush", r.value) for r in notify]
    assert [(p["previous_version"], p["version"]) for p in pokes] == [(9, 11), (11, 14), (14, 15)]
    assert writer.previous_version == 15, "the next transaction's first poke names the last of these"
    assert pokes == [poke for poke, _ in projected(result.log, previous_version=9)]
    assert [dict(r.headers)[VERSION_HEADER] for r in notify] == [b"11", b"14", b"15"]
    assert pokes[1] == {"version": 14, "changes": {}, "workspace_changes": {"created": ["acme"], "deleted": []},
                        "items": [], "previous_version": 11}


def test_every_commit_marker_is_flagged_and_nothing_else_changes():
    result = process_batch(BATCH, DictReader(), {}, 0, BatchConfig(), 0)
    flagged, _ = WriterPokes()(result.log, result.writes)
    marker = codec.encode_log_key("", "", "")
    assert [(r.key, r.value) for r in flagged] == [(r.key, r.value) for r in result.log]
    assert [(POKED_HEADER, b"1") in r.headers for r in flagged] == [r.key == marker for r in result.log]
    assert all(poked for _, poked in projected(flagged)), "the projector makes none of these pokes again"
    assert not any(poked for _, poked in projected(result.log)), "unflagged versions are the projector's"


def test_a_flagged_marker_after_items_of_older_versions_is_the_projectors_poke():
    """Compaction removed the markers of versions 3 and 4: the flagged marker of 5 completes them too."""
    log = [put_record(ItemKey("w", "t", "a"), "1", 3), delete_record(ItemKey("w", "u", "b"), 4),
           put_record(ItemKey("w", "t", "c"), "2", 5), marker_record(5)]
    flagged, _ = WriterPokes()(log, [])
    ((poke, poked),) = projected(flagged)
    assert not poked and (poke["version"], poke["changes"]) == (5, {"t": ["w"], "u": ["w"]})


def test_a_flagged_marker_after_items_whose_pokes_were_made_is_the_writers():
    """A projector that resumes long after compaction removed the markers of versions 3 and 4, whose
    pokes are on the notify topic already (its last poke is 4): the writer made the poke of 5."""
    log = [put_record(ItemKey("w", "t", "a"), "1", 3), delete_record(ItemKey("w", "u", "b"), 4),
           put_record(ItemKey("w", "t", "c"), "2", 5), marker_record(5)]
    flagged, _ = WriterPokes()(log, [])
    ((_, poked),) = projected(flagged, previous_version=4)
    assert poked, "the projector would poke version 5 a second time"


def test_unpoked_tells_whether_a_version_still_waits_for_the_projector():
    pokes = WriterPokes()
    old = process_batch(BATCH[:1], DictReader(), {}, 0, BatchConfig(), 0)
    new = process_batch(BATCH[1:], DictReader(), {}, 1, BatchConfig(), 0)
    new_log, _ = pokes(new.log, new.writes)
    assert pokes.unpoked(consumed([*old.log, *new_log])), "version 1 of an older writer has no poke yet"
    assert not pokes.unpoked(consumed(new_log))
    reserved = process_batch(BATCH[1:3], DictReader(), {}, 0, BatchConfig(), 0)
    assert not pokes.unpoked(consumed(reserved.log)), "versions without a poke to make do not wait"
    assert not pokes.unpoked([])
