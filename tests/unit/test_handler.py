"""Request handling, as a specification: docs/design.md §5 operations and errors, without a broker."""

from __future__ import annotations

import pytest

from eventconfig.codec import default_codec
from eventconfig.errors import BadOperation, BadRequest, Conflict, TooLarge
from eventconfig.hashchain import mutation_hash
from eventconfig.logrecords import decode_record
from eventconfig.model import CHAIN_HEAD_HEADER, Entry, ItemKey
from eventconfig.view.reader import DictReader
from eventconfig.writer.handler import Context, Limits, handle_request


def request(operation: str, workspace: str = "w", **fields) -> dict:
    """A request as the codec decodes it: every field present, defaults filled."""
    return default_codec().decode("ConfigRequest", default_codec().encode("ConfigRequest", {
        "operation": operation, "workspace": workspace, **fields}))


def value(type_: str, key: str, val: str | None, **extra) -> dict:
    return {"type": type_, "key": key, "value": val, **extra}


def handle(req: dict, reader: DictReader | None = None, limits: Limits = Limits()):
    reader = reader or DictReader()
    return handle_request(req, Context(reader, limits, reader.version, now_ms=1000, request_id="r1", actor="ann"))


STORE = DictReader({
    ItemKey("w", "prompt", "b"): Entry("B", 2),
    ItemKey("w", "prompt", "a"): Entry("A", 1),
    ItemKey("w", "flow", "f"): Entry("F", 3),
    ItemKey("other", "prompt", "x"): Entry("X", 4),
    ItemKey("__template__", "prompt", "t"): Entry("T", 5),
}, version=5)


class TestWorkspaceAndOperationChecks:
    @pytest.mark.parametrize("operation", ["get", "list", "getvalues", "config", "put", "delete", "nonsense"])
    def test_workspace_is_required_first_even_for_unknown_operations(self, operation):
        with pytest.raises(BadRequest, match=": Workspace is required$"):
            handle(request(operation, workspace=""))

    @pytest.mark.parametrize("operation", ["getvalues-all-ws", "getkeys-all-ws"])
    def test_all_workspace_operations_need_no_workspace(self, operation):
        assert handle(request(operation, workspace="", type="prompt"), STORE).response["error"] is None

    def test_unknown_operation_with_a_workspace_is_bad_operation(self):
        with pytest.raises(BadOperation, match=": Bad operation$"):
            handle(request("frobnicate"))


class TestReads:
    def test_get_keeps_request_order_and_duplicates_and_reports_missing_as_null(self):
        keys = [{"type": "prompt", "key": "b"}, {"type": "prompt", "key": "missing"}, {"type": "prompt", "key": "b"}]
        response = handle(request("get", keys=keys), STORE).response
        assert [(v["key"], v["value"], v["version"]) for v in response["values"]] == [
            ("b", "B", 2), ("missing", None, None), ("b", "B", 2)]
        assert response["version"] == 5
        assert all(v["workspace"] == "" for v in response["values"])

    def test_list_is_sorted_and_scoped_to_workspace_and_type(self):
        assert handle(request("list", type="prompt"), STORE).response["directory"] == ["a", "b"]
        assert handle(request("list", type="unknown"), STORE).response["directory"] == []

    def test_getvalues_is_sorted_by_key_with_type_filled_and_workspace_empty(self):
        values = handle(request("getvalues", type="prompt"), STORE).response["values"]
        assert [(v["type"], v["key"], v["value"], v["workspace"]) for v in values] == [
            ("prompt", "a", "A", ""), ("prompt", "b", "B", "")]

    def test_getvalues_all_ws_covers_every_workspace_including_reserved(self):
        values = handle(request("getvalues-all-ws", workspace="", type="prompt"), STORE).response["values"]
        assert [(v["workspace"], v["key"], v["value"]) for v in values] == [
            ("__template__", "t", "T"), ("other", "x", "X"), ("w", "a", "A"), ("w", "b", "B")]

    def test_getkeys_all_ws_is_the_same_listing_with_empty_values(self):
        values = handle(request("getkeys-all-ws", workspace="", type="prompt"), STORE).response["values"]
        assert [(v["workspace"], v["key"], v["value"]) for v in values][0] == ("__template__", "t", "")

    def test_config_dumps_one_workspace_and_is_empty_for_an_unknown_one(self):
        assert handle(request("config"), STORE).response["config"] == {
            "flow": {"f": "F"}, "prompt": {"a": "A", "b": "B"}}
        assert handle(request("config", workspace="nobody"), STORE).response["config"] == {}

    def test_reads_write_nothing(self):
        outcome = handle(request("config"), STORE)
        assert (outcome.log_records, outcome.mutation, outcome.version) == ([], None, None)


class TestWrites:
    def test_put_adds_one_version_and_ends_its_log_records_with_a_commit_marker(self):
        outcome = handle(request("put", values=[value("t1", "a", "1"), value("t2", "c", "3")]), STORE)
        assert outcome.version == 6 and outcome.response["version"] == 6
        decoded = [decode_record(r.key, r.value, r.headers) for r in outcome.log_records]
        assert [(r.item, r.value, r.version) for r in decoded] == [
            (ItemKey("w", "t1", "a"), "1", 6), (ItemKey("w", "t2", "c"), "3", 6), (ItemKey("", "", ""), "", 6)]

    def test_an_empty_put_still_adds_a_version(self):
        outcome = handle(request("put"), STORE)
        assert outcome.version == 6 and len(outcome.log_records) == 1  # the commit marker alone

    def test_the_last_entry_wins_for_a_repeated_key_and_request_workspace_is_authoritative(self):
        outcome = handle(request("put", values=[value("t", "k", "first", workspace="elsewhere"),
                                                value("t", "k", "second")]))
        assert outcome.changes == {ItemKey("w", "t", "k"): Entry("second", 1)}

    def test_delete_of_missing_keys_succeeds_and_still_writes_tombstones(self):
        outcome = handle(request("delete", keys=[{"type": "prompt", "key": "a"}, {"type": "t", "key": "nope"}]), STORE)
        assert outcome.version == 6
        assert outcome.changes == {ItemKey("w", "prompt", "a"): None, ItemKey("w", "t", "nope"): None}
        assert [r.value for r in outcome.log_records[:2]] == [None, None]

    def test_the_mutation_records_who_when_and_previous_values(self):
        outcome = handle(request("put", values=[value("prompt", "a", "A2"), value("prompt", "n", "N")]), STORE)
        assert outcome.mutation is not None
        assert {k: v for k, v in outcome.mutation.items() if k != "hash"} == {
            "version": 6, "timestamp_ms": 1000, "request_id": "r1", "actor": "ann", "actor_verified": False,
            "workspace": "w", "operation": "put", "prev_hash": "", "changes": [
                {"type": "prompt", "key": "a", "value": "A2", "previous": "A"},
                {"type": "prompt", "key": "n", "value": "N", "previous": None}]}

    def test_the_mutation_is_chained_to_the_previous_head_and_its_marker_carries_the_new_head(self):
        ctx = Context(DictReader(), Limits(), 5, 1000, "r1", "ann", prev_hash="ab" * 32)
        outcome = handle_request(request("put", values=[value("prompt", "a", "A2")]), ctx)
        assert outcome.mutation is not None
        assert outcome.mutation["prev_hash"] == "ab" * 32
        assert outcome.mutation["hash"] == mutation_hash(outcome.mutation)
        assert outcome.log_records[-1].headers == [(CHAIN_HEAD_HEADER, outcome.mutation["hash"].encode())]


class TestPreconditions:
    def test_if_version_matching_the_key_version_succeeds(self):
        assert handle(request("put", values=[value("prompt", "a", "x", if_version=1)]), STORE).version == 6

    def test_if_version_zero_means_must_not_exist(self):
        assert handle(request("put", values=[value("prompt", "new", "x", if_version=0)]), STORE).version == 6
        with pytest.raises(Conflict, match="prompt/a is at version 1, expected 0"):
            handle(request("put", values=[value("prompt", "a", "x", if_version=0)]), STORE)

    def test_one_failed_precondition_fails_the_whole_request(self):
        with pytest.raises(Conflict):
            handle(request("put", values=[value("prompt", "a", "x", if_version=1),
                                          value("prompt", "b", "y", if_version=1)]), STORE)

    def test_delete_preconditions(self):
        with pytest.raises(Conflict):
            handle(request("delete", keys=[{"type": "prompt", "key": "b", "if_version": 1}]), STORE)


class TestLimitsAndNames:
    def test_a_value_over_the_limit_is_too_large(self):
        with pytest.raises(TooLarge, match="limit is 8"):
            handle(request("put", values=[value("t", "k", "123456789")]), limits=Limits(max_value_bytes=8))

    def test_too_many_items_is_too_large(self):
        with pytest.raises(TooLarge, match="3 items"):
            handle(request("put", values=[value("t", str(i), "v") for i in range(3)]), limits=Limits(max_items=2))

    @pytest.mark.parametrize("type_, key, problem", [("", "k", "type must not be empty"),
                                                     ("t", "", "key must not be empty"),
                                                     ("t\x00x", "k", "NUL")])
    def test_bad_names_are_bad_requests(self, type_, key, problem):
        with pytest.raises(BadRequest, match=problem):
            handle(request("put", values=[value(type_, key, "v")]))

    @pytest.mark.parametrize("req", [
        request("put", values=[value("t", "k" * 9, "v")]),
        request("put", values=[value("t" * 9, "k", "v")]),
        request("put", workspace="w" * 9, values=[value("t", "k", "v")]),
        request("delete", keys=[{"type": "t", "key": "é" * 5}]),
        request("get", keys=[{"type": "t", "key": "k" * 9}]),
        request("list", type="t" * 9),
        request("getvalues-all-ws", workspace="", type="t" * 9),
        request("config", workspace="w" * 9),
    ])
    def test_a_name_over_the_limit_is_too_large_in_every_operation(self, req):
        with pytest.raises(TooLarge, match="is (9|10) bytes; the limit is 8"):
            handle(req, STORE, limits=Limits(max_name_bytes=8))

    def test_a_name_at_the_limit_is_accepted(self):
        outcome = handle(request("put", workspace="w" * 8, values=[value("t" * 8, "é" * 4, "v")]),
                         limits=Limits(max_name_bytes=8))
        assert outcome.version == 1

    def test_a_nul_in_the_workspace_is_a_bad_request(self):
        with pytest.raises(BadRequest, match="NUL"):
            handle(request("config", workspace="a\x00b"))

    def test_a_null_value_is_a_bad_request(self):
        with pytest.raises(BadRequest, match="null"):
            handle(request("put", values=[value("t", "k", None)]))
