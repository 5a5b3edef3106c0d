"""Audit, pure: the eventconfig-export/1 document and the import plan (upsert-missing, overwrite)."""

from __future__ import annotations

import json

import pytest

from eventconfig.audit import FORMAT, ExportDocument, ExportFormatError, plan_import

CONFIG = {"prompt": {"system": "You are helpful", "é": "ü\n"}, "flow": {"f1": '{"a": 1}'}}


def test_a_document_round_trips_and_is_sorted_json():
    document = ExportDocument("acme", 42, CONFIG)
    text = document.to_json()
    assert json.loads(text) == {"format": FORMAT, "workspace": "acme", "version": 42, "config": CONFIG}
    assert list(json.loads(text)["config"]) == ["flow", "prompt"]
    assert ExportDocument.from_json(text) == document
    assert document.items == 3
    assert ExportDocument.from_obj({**json.loads(text), "exported_by": "later versions"}) == document


@pytest.mark.parametrize("document,why", [
    ([], "expected a JSON object"),
    ({"format": "eventconfig-export/2", "workspace": "w", "version": 1, "config": {}}, "'format' is"),
    ({"format": FORMAT, "workspace": 3, "version": 1, "config": {}}, "'workspace' must be a string"),
    ({"format": FORMAT, "workspace": "w", "version": -1, "config": {}}, "'version' must be"),
    ({"format": FORMAT, "workspace": "w", "version": True, "config": {}}, "'version' must be"),
    ({"format": FORMAT, "workspace": "w", "version": 1, "config": []}, "'config' must be"),
    ({"format": FORMAT, "workspace": "w", "version": 1, "config": {"t": ["k"]}}, "config\\['t'\\] must be"),
    ({"format": FORMAT, "workspace": "w", "version": 1, "config": {"": {}}}, "type must not be empty"),
    ({"format": FORMAT, "workspace": "w", "version": 1, "config": {"t": {"k\x00": "v"}}}, "NUL"),
    ({"format": FORMAT, "workspace": "w", "version": 1, "config": {"t": {"k": 1}}}, "t/k must be a string"),
])
def test_a_bad_document_is_refused_with_the_reason(document, why):
    with pytest.raises(ExportFormatError, match=why):
        ExportDocument.from_obj(document, "dump.json")


def test_text_that_is_not_json_names_its_source():
    with pytest.raises(ExportFormatError, match="^dump.json is not JSON"):
        ExportDocument.from_json("{", "dump.json")


def test_an_import_adds_missing_keys_and_keeps_existing_ones_unless_overwriting():
    current = {("prompt", "system"): ("Be terse", 7), ("flow", "f1"): ('{"a": 1}', 3)}
    plan = plan_import(CONFIG, current)
    assert [(i.type, i.key, i.action, i.if_version) for i in plan.items] == [
        ("flow", "f1", "unchanged", 3), ("prompt", "system", "keep", 7), ("prompt", "é", "add", 0)]
    assert plan.writes == [("prompt", "é", "ü\n", 0)]
    assert plan.summary() == "1 added, 0 overwritten, 1 unchanged, 1 existing kept (--overwrite replaces them)"
    overwrite = plan_import(CONFIG, current, overwrite=True)
    assert overwrite.writes == [("prompt", "system", "You are helpful", 7), ("prompt", "é", "ü\n", 0)]
    assert overwrite.items[1].to_json() == {"action": "overwrite", "type": "prompt", "key": "system",
                                            "old": "Be terse", "new": "You are helpful"}
    assert plan_import({}, current).writes == []
