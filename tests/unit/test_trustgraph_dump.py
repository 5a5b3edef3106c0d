"""Reading a TrustGraph config dump for ``eventconfig import``."""

from __future__ import annotations

import pytest

from eventconfig.audit import ExportDocument, ExportFormatError
from eventconfig.trustgraph.dump import is_dump, read_dump


def test_a_dump_is_one_document_per_workspace_with_workspaces_last() -> None:
    documents, skipped = read_dump({
        "__workspaces__": {"workspace": {"acme": '{"enabled": true}'}},
        "default": {"prompt": {"system": "hi"}, "flow": {"f": "{}"}},
        "__template__": {"prompt": {"system": "t"}},
    })
    assert documents == [ExportDocument("__template__", 0, {"prompt": {"system": "t"}}),
                         ExportDocument("default", 0, {"prompt": {"system": "hi"}, "flow": {"f": "{}"}}),
                         ExportDocument("__workspaces__", 0, {"workspace": {"acme": '{"enabled": true}'}})]
    assert skipped == []


def test_null_values_are_skipped_and_named() -> None:
    documents, skipped = read_dump({"w": {"prompt": {"a": None, "b": "kept"}, "empty": {"x": None}}})
    assert documents == [ExportDocument("w", 0, {"prompt": {"b": "kept"}, "empty": {}})]
    assert skipped == ["w/prompt/a", "w/empty/x"]


def test_exports_and_dumps_are_told_apart() -> None:
    assert not is_dump({"format": "eventconfig-export/1", "workspace": "w", "version": 1, "config": {}})
    assert is_dump({"default": {}}) and is_dump({"format": {"prompt": {}}})  # a workspace called "format"
    assert not is_dump([1])


@pytest.mark.parametrize("document, why", [
    ([], "expected a JSON object"),
    ({"w": "text"}, "['w'] must be an object"),
    ({"": {}}, "workspace must not be empty"),
    ({"w": {"prompt": ["a"]}}, "['w']['prompt'] must be an object"),
    ({"w": {"prompt": {"a": 1}}}, "the value of prompt/a must be a string"),
    ({"w": {"prompt": {"": "v"}}}, "key must not be empty"),
])
def test_anything_else_is_refused_with_the_reason(document: object, why: str) -> None:
    with pytest.raises(ExportFormatError, match="dump.json is not a TrustGraph config dump") as caught:
        read_dump(document, "dump.json")
    assert why in str(caught.value)
