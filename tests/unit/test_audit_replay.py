"""Audit, pure: history records, queries and retention checks, state replay and diffs against a dict model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventconfig.audit import (Change, HeldHistory, HistoryGap, HistoryQuery, Mutation, OutOfRetention,
                               VersionNotFound, diff_states, diff_versions, format_time, parse_time, replay_state)
from eventconfig.codec import default_codec
from eventconfig.model import Entry, ItemKey

Model = dict[ItemKey, Entry]

# A write: (workspace, [(type, key, value or None for a delete)]).
writes = st.lists(st.tuples(st.sampled_from(["w1", "w2", "_sys"]),
                            st.lists(st.tuples(st.sampled_from(["t", "u"]), st.sampled_from(["a", "b", "c"]),
                                               st.one_of(st.none(), st.sampled_from(["1", "2", ""]))),
                                     max_size=4)),
                  max_size=25)


def simulate(ops: list[tuple[str, list[tuple[str, str, str | None]]]], times: list[int] | None = None
             ) -> tuple[list[Mutation], list[Model]]:
    """Mutations as the writer makes them (previous = value before), and the model after each version."""
    model: Model = {}
    states: list[Model] = [{}]
    mutations = []
    for version, (workspace, items) in enumerate(ops, start=1):
        last: dict[tuple[str, str], str | None] = {}
        for type_, key, value in items:  # a repeated key: the last entry wins
            last.pop((type_, key), None)
            last[(type_, key)] = value
        changes = []
        for (type_, key), value in last.items():
            item = ItemKey(workspace, type_, key)
            before = model.get(item)
            changes.append(Change(type_, key, value, before.value if before else None))
            if value is None:
                model.pop(item, None)
            else:
                model[item] = Entry(value, version)
        stamp = times[version - 1] if times else 1_000 * version
        mutations.append(Mutation(version, stamp, f"r{version}", None, workspace,
                                  "put" if all(v is not None for v in last.values()) else "delete", tuple(changes)))
        states.append(dict(model))
    return mutations, states


def values(model: Model) -> dict[ItemKey, str]:
    return {item: entry.value for item, entry in model.items()}


@settings(max_examples=60, deadline=None)
@given(writes)
def test_the_state_at_every_version_equals_the_model_with_per_key_versions(ops):
    mutations, states = simulate(ops)
    for version, expected in enumerate(states):
        state = replay_state(mutations, at_version=version)
        assert state.version == version
        assert state.items == expected
        only_w1 = replay_state(mutations, at_version=version, workspace="w1")
        assert only_w1.items == {i: e for i, e in expected.items() if i.workspace == "w1"}


@settings(max_examples=40, deadline=None)
@given(writes)
def test_the_diff_between_any_two_versions_is_the_diff_of_the_model_states(ops):
    mutations, states = simulate(ops)
    for a in range(len(states)):
        for b in range(len(states)):
            diff = diff_versions(mutations, a, b)
            assert list(diff.changes) == diff_states(values(states[a]), values(states[b]))
            assert (diff.from_version, diff.to_version) == (a, b)
    if len(states) > 2:
        scoped = diff_versions(mutations, 0, len(states) - 1, workspace="w2")
        assert all(c.item.workspace == "w2" for c in scoped.changes)


def test_a_diff_needs_only_the_mutations_after_its_older_version():
    mutations, states = simulate([("w", [("t", "a", "1")]), ("w", [("t", "a", "2"), ("t", "b", "x")]),
                                  ("w", [("t", "a", None)]), ("w", [("t", "b", "x")])])
    diff = diff_versions(mutations[2:], 2, 4)  # versions 1 and 2 are "deleted by retention"
    assert [(c.kind, c.item.key, c.old, c.new) for c in diff.changes] == [("removed", "a", "2", None)]
    assert diff.to_json()["removed"] == [{"kind": "removed", "workspace": "w", "type": "t", "key": "a",
                                          "old": "2", "new": None}]
    assert diff_versions(mutations, 3, 3).changes == ()


def test_the_state_at_a_time_is_the_prefix_before_the_first_later_mutation():
    ops = [("w", [("t", "k", str(i))]) for i in range(1, 6)]
    mutations, states = simulate(ops, times=[100, 200, 300, 250, 400])  # a clock that went back
    assert replay_state(mutations, at_time_ms=50).items == {}
    assert replay_state(mutations, at_time_ms=200).items == states[2]
    assert replay_state(mutations, at_time_ms=299).version == 2
    assert replay_state(mutations, at_time_ms=300).version == 4, "version 4 (250) belongs to the prefix"
    latest = replay_state(mutations, at_time_ms=10**13)
    assert latest.version == 5 and latest.timestamp_ms == 400 and "version 5" in latest.describe()


def test_gaps_and_repeats_are_refused_and_a_missing_version_is_named():
    mutations, _ = simulate([("w", [("t", "k", "v")])] * 4)
    with pytest.raises(HistoryGap, match="skips to version 3 after version 1"):
        replay_state([mutations[0], mutations[2]], at_version=3)
    with pytest.raises(HistoryGap, match="repeats version 2"):
        replay_state([mutations[0], mutations[1], mutations[1]], at_version=3)
    with pytest.raises(VersionNotFound, match="version 9 does not exist: the history ends at version 4"):
        replay_state(mutations, at_version=9)
    with pytest.raises(VersionNotFound):
        diff_versions(mutations, 9, 2)


def test_state_renders_like_dump():
    mutations, _ = simulate([("w", [("t", "b", "2"), ("t", "a", "1"), ("s", "x", "y")]), ("v", [("t", "a", "z")])])
    state = replay_state(mutations, at_version=2)
    assert state.config("w") == {"s": {"x": "y"}, "t": {"a": "1", "b": "2"}}
    assert list(state.workspaces()) == ["v", "w"]
    assert state.config("nobody") == {}


# --- queries and retention ------------------------------------------------------------------------


def mutation(version: int, ts: int = 0, workspace: str = "w", *changes: tuple[str, str]) -> Mutation:
    return Mutation(version, ts or version * 1000, f"r{version}", "alice", workspace, "put",
                    tuple(Change(t, k, "v", None) for t, k in changes))


def test_queries_filter_by_workspace_version_time_type_and_key():
    history = [mutation(1, 0, "w", ("t", "a"), ("u", "a")), mutation(2, 0, "x", ("t", "a")),
               mutation(3, 0, "w", ("t", "b")), mutation(4, 0, "w")]

    def shown(query: HistoryQuery) -> list[tuple[int, list[str]]]:
        picked = [query.select(m) for m in history]
        return [(m.version, [f"{c.type}/{c.key}" for c in m.changes]) for m in picked if m is not None]

    assert shown(HistoryQuery()) == [(1, ["t/a", "u/a"]), (2, ["t/a"]), (3, ["t/b"]), (4, [])]
    assert shown(HistoryQuery(workspace="w", type="t")) == [(1, ["t/a"]), (3, ["t/b"])]
    assert shown(HistoryQuery(key="a")) == [(1, ["t/a", "u/a"]), (2, ["t/a"])]
    assert shown(HistoryQuery(from_version=2, to_version=3)) == [(2, ["t/a"]), (3, ["t/b"])]
    assert shown(HistoryQuery(since_ms=2000, until_ms=2000)) == [(2, ["t/a"])]
    assert HistoryQuery(to_version=3).past_end(history[3]) and not HistoryQuery().past_end(history[3])
    assert HistoryQuery(since_ms=5).bounded_below and not HistoryQuery(key="a").bounded_below
    # A listing is a filter: bounds past the last version (4) select nothing, or everything up to it.
    assert shown(HistoryQuery(from_version=5)) == [] and shown(HistoryQuery(from_version=5, to_version=9)) == []
    assert shown(HistoryQuery(from_version=3, to_version=9)) == [(3, ["t/b"]), (4, [])]
    assert not any(HistoryQuery(to_version=9).past_end(m) for m in history)


def test_retention_is_checked_only_when_the_request_needs_deleted_versions():
    whole = HeldHistory(0, 10, mutation(1))
    whole.require(version=1, time_ms=0, purpose="x")
    assert not whole.truncated and "starts at version 1" in whole.describe()
    cut = HeldHistory(40, 90, mutation(17, 1_700_000_000_000))
    assert cut.truncated
    cut.require(version=17, purpose="x")
    cut.require(time_ms=1_700_000_000_001, purpose="x")
    cut.require(purpose="an unbounded listing")
    with pytest.raises(OutOfRetention) as caught:
        cut.require(version=3, purpose="history from version 3")
    message = str(caught.value)
    assert message.startswith("history from version 3 needs history that retention has deleted")
    assert "earliest mutation still held is version 17 at 2023-11-14T22:13:20.000Z" in message
    assert caught.value.first_version == 17 and caught.value.first_timestamp_ms == 1_700_000_000_000
    with pytest.raises(OutOfRetention):
        cut.require(time_ms=1_700_000_000_000, purpose="x")  # version 16 may share that millisecond
    emptied = HeldHistory(12, 12, None)
    assert emptied.truncated and "offset 12" in emptied.describe()
    with pytest.raises(OutOfRetention, match="no mutation is held any more"):
        emptied.require(version=1, purpose="the state")
    HeldHistory(0, 0, None).require(version=1, purpose="x")  # never written: nothing was deleted


# --- records and times ---------------------------------------------------------------------------


def test_a_mutation_reads_back_from_its_avro_record():
    codec = default_codec()
    wire = {"version": 7, "timestamp_ms": 1_769_860_800_123, "request_id": "r", "actor": None, "workspace": "w",
            "operation": "delete", "changes": [{"type": "t", "key": "k", "value": None, "previous": "old"}]}
    m = Mutation.from_wire(codec.decode("Mutation", codec.encode("Mutation", wire)), offset=12)
    assert m == Mutation(7, 1_769_860_800_123, "r", None, "w", "delete", (Change("t", "k", None, "old"),), 12)
    assert m.to_json()["time"] == "2026-01-31T12:00:00.123Z"
    assert m.to_json()["changes"] == [{"type": "t", "key": "k", "previous": "old", "value": None}]


@pytest.mark.parametrize("text,ms", [
    ("1769860800000", 1_769_860_800_000),
    ("2026-01-31T12:00:00Z", 1_769_860_800_000),
    ("2026-01-31T12:00:00.5", 1_769_860_800_500),
    ("2026-01-31T14:00:00+02:00", 1_769_860_800_000),
    ("2026-01-31", 1_769_817_600_000),
])
def test_times_are_iso_8601_or_epoch_ms(text, ms):
    assert parse_time(text) == ms


def test_a_bad_time_says_which_forms_are_accepted():
    with pytest.raises(ValueError, match="ISO-8601 .* or epoch milliseconds"):
        parse_time("yesterday")
    assert format_time(parse_time("2026-01-31T12:00:00.007Z")) == "2026-01-31T12:00:00.007Z"


def test_random_times_round_trip():
    rng = random.Random(5)
    for _ in range(100):
        ms = rng.randrange(0, 4_000_000_000_000)
        assert parse_time(format_time(ms)) == ms
