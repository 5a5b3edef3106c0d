"""The history's hash chain: sealing links each Mutation to the one before, and a walk names the first
version where a record was altered, inserted, dropped or reordered (docs/design.md §14.3)."""

from __future__ import annotations

import pytest

from eventconfig.audit.chain import ALTERED, DROPPED, INSERTED, REORDERED, UNCHAINED, ChainCheck
from eventconfig.codec import default_codec
from eventconfig.hashchain import mutation_hash, seal

codec = default_codec()


def mutation(version: int, value: str = "v") -> dict:
    return {"version": version, "timestamp_ms": 1000 + version, "request_id": f"r{version}", "actor": "ann",
            "actor_verified": False, "workspace": "w", "operation": "put",
            "changes": [{"type": "t", "key": "k", "value": value, "previous": None}]}


def chain(n: int, head: str = "") -> list[dict]:
    sealed = []
    for version in range(1, n + 1):
        sealed.append(seal(mutation(version), head))
        head = sealed[-1]["hash"]
    return sealed


def walk(mutations: list[dict | bytes], marker: tuple[int, str] | None = None,
         anchor: tuple[int, str] | None = None):
    check = ChainCheck(marker, anchor=anchor)
    for offset, m in enumerate(mutations):
        check.feed(offset, m if isinstance(m, bytes) else codec.encode("Mutation", m))
    return check.finish()


def test_an_intact_chain_passes_and_reports_its_head():
    history = chain(4)
    report = walk(history, marker=(4, history[-1]["hash"]))
    assert report.ok and report.head == history[-1]["hash"] and (report.first_chained, report.last_version) == (1, 4)
    assert report.lines() == [f"OK: history chain intact from version 1 to 4 (4 records); head 4:{report.head}"]


def test_every_field_of_a_mutation_is_covered_by_its_hash():
    base = seal(mutation(1), "")
    for field, other in [("version", 2), ("timestamp_ms", 5), ("request_id", "x"), ("actor", "eve"),
                         ("actor_verified", True), ("workspace", "x"), ("operation", "delete"),
                         ("changes", []), ("prev_hash", "00")]:
        assert mutation_hash({**base, field: other}) != base["hash"], field


def test_records_written_before_the_chain_are_accepted_and_the_chain_starts_after_them():
    legacy = {**mutation(1), "prev_hash": "", "hash": ""}
    report = walk([legacy, *chain(3)[1:]])
    assert report.ok and report.first_chained == 2


@pytest.mark.parametrize("forge, kind, version", [
    (lambda h: [h[0], {**h[1], "changes": []}, *h[2:]], ALTERED, 2),
    (lambda h: [h[0], h[1], b"\xc3\x01garbage", *h[2:]], ALTERED, 3),
    (lambda h: [h[0], h[2], h[3]], DROPPED, 3),
    (lambda h: [h[0], h[2], h[1], h[3]], REORDERED, 3),
    (lambda h: [h[0], h[1], h[1], h[2], h[3]], INSERTED, 2),
    (lambda h: [h[0], {**h[1], "hash": "", "prev_hash": ""}, *h[2:]], UNCHAINED, 2),
    # A forged record re-sealed after its predecessor still does not match the next one's prev_hash.
    (lambda h: [h[0], seal({**h[1], "actor": "eve"}, h[0]["hash"]), *h[2:]], DROPPED, 3),
])
def test_the_first_bad_version_is_named(forge, kind, version):
    history = chain(4)
    report = walk(forge(history), marker=(4, history[-1]["hash"]))
    assert report.first_bad is not None
    assert (report.first_bad.kind, report.first_bad.version) == (kind, version)
    assert report.lines()[0].startswith(f"FAILED: history chain broken at version {version}")


def test_a_whole_chain_re_sealed_after_a_forgery_is_caught_by_the_log_markers_head():
    genuine = chain(3)
    forged = [genuine[0], *chain(3, genuine[0]["hash"])[1:]]  # same versions, new content from version 2 on
    forged[1] = seal({**mutation(2, "evil")}, genuine[0]["hash"])
    forged[2] = seal(mutation(3), forged[1]["hash"])
    assert walk(forged).ok, "without an anchor a re-sealed chain is self-consistent"
    report = walk(forged, marker=(3, genuine[-1]["hash"]))
    assert report.first_bad is not None and (report.first_bad.kind, report.first_bad.version) == (ALTERED, 3)


def test_records_appended_past_the_markers_version_or_missing_at_the_end_are_caught():
    history = chain(4)
    appended = walk([*history, seal(mutation(5), history[-1]["hash"])], marker=(4, history[-1]["hash"]))
    assert appended.first_bad is not None and (appended.first_bad.kind, appended.first_bad.version) == (INSERTED, 5)
    assert appended.lines() == ["FAILED: history chain broken at version 5 (offset 4): inserted: the log's last "
                                "commit marker is version 4: the history continues past it (a record not written "
                                "by the writer)"], "the forged record is named with its offset"
    truncated = walk(history[:3], marker=(4, history[-1]["hash"]))
    assert truncated.first_bad is not None and (truncated.first_bad.kind, truncated.first_bad.version) == (DROPPED, 4)


def test_an_anchor_kept_by_an_auditor_catches_a_chain_re_sealed_in_both_topics():
    genuine = chain(3)
    forged = [genuine[0], seal(mutation(2, "evil"), genuine[0]["hash"])]
    forged.append(seal(mutation(3), forged[1]["hash"]))
    assert walk(forged, marker=(3, forged[-1]["hash"])).ok, "history and log rewritten together"
    report = walk(forged, marker=(3, forged[-1]["hash"]), anchor=(2, genuine[1]["hash"]))
    assert report.first_bad is not None and (report.first_bad.kind, report.first_bad.version) == (ALTERED, 2)
    assert walk(genuine, anchor=(2, genuine[1]["hash"])).ok
    missing = walk(genuine, anchor=(9, genuine[1]["hash"]))
    assert missing.first_bad is not None and (missing.first_bad.kind, missing.first_bad.version) == (DROPPED, 9)


def test_a_gap_in_the_versions_is_reported_as_dropped_even_when_the_chain_links():
    history = chain(2)
    skipped = seal(mutation(5), history[-1]["hash"])  # chained to version 2, but 3 and 4 never existed
    report = walk([*history, skipped], marker=(5, skipped["hash"]))
    assert report.first_bad is not None and (report.first_bad.kind, report.first_bad.version) == (DROPPED, 5)
    assert "versions 3 to 4 are missing" in report.lines()[0]


def test_a_version_above_the_bound_is_altered():
    huge = seal({**mutation(2**63 - 1), "timestamp_ms": 1}, chain(1)[0]["hash"])
    report = walk([*chain(1), huge])
    assert report.first_bad is not None and (report.first_bad.kind, report.first_bad.offset) == (ALTERED, 1)
    assert "outside 0..9007199254740991" in report.lines()[0]
