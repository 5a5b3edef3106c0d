"""Validated config, as a specification (docs/design.md §5.5): schemas in ``__schemas__`` refuse invalid
puts whole, without a broker."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventconfig.errors import InvalidValue, error_from_wire
from eventconfig.model import Entry, ItemKey
from eventconfig.validation import PATH_PATTERN, compiled, json_path, problem_fields
from eventconfig.view.reader import DictReader
from tests.unit.test_handler import handle, request, value

PROMPT = json.dumps({"type": "object", "required": ["text"],
                     "properties": {"text": {"type": "string"}, "temperature": {"type": "number"}}})
ACME_ONLY = json.dumps({"type": "object", "properties": {"owner": {"const": "acme"}}})


def store(**schemas: str) -> DictReader:
    """A store whose ``__schemas__`` holds ``{glob: text}`` for type ``prompt``."""
    items = {ItemKey("__schemas__", "prompt", glob.replace("STAR", "*")): Entry(text, 1)
             for glob, text in schemas.items()}
    items[ItemKey("w", "prompt", "old")] = Entry("not json at all", 1)
    return DictReader(items, version=1)


def put(workspace: str, *values: dict, reader: DictReader):
    return handle(request("put", workspace, values=list(values)), reader)


class TestPutsAgainstSchemas:
    def test_a_valid_value_is_written(self):
        outcome = put("w", value("prompt", "p", '{"text": "hi", "temperature": 0.2}'), reader=store(STAR=PROMPT))
        assert outcome.version == 2

    def test_an_invalid_value_is_refused_naming_the_key_and_the_path_and_nothing_is_written(self):
        with pytest.raises(InvalidValue) as refused:
            put("w", value("prompt", "p", '{"text": "hi", "temperature": "hot"}'), reader=store(STAR=PROMPT))
        assert refused.value.message.startswith("prompt/p at $.temperature: 'hot' is not of type 'number'")
        assert refused.value.wire_type == "invalid-value"

    def test_one_invalid_item_refuses_the_whole_batch(self):
        with pytest.raises(InvalidValue, match=r"prompt/bad at \$: 'text' is a required property"):
            put("w", value("prompt", "good", '{"text": "x"}'), value("prompt", "bad", "{}"),
                reader=store(STAR=PROMPT))

    def test_a_value_that_is_not_json_is_refused(self):
        with pytest.raises(InvalidValue, match=r"prompt/p at \$: not JSON"):
            put("w", value("prompt", "p", "text: hi"), reader=store(STAR=PROMPT))

    def test_types_without_a_schema_are_untouched(self):
        assert put("w", value("flow", "f", "anything, not JSON"), reader=store(STAR=PROMPT)).version == 2

    def test_a_schema_applies_only_to_the_workspaces_its_glob_matches(self):
        reader = store(**{"acme-STAR": ACME_ONLY})
        assert put("other", value("prompt", "p", '{"owner": "x"}'), reader=reader).version == 2
        with pytest.raises(InvalidValue, match=r"at \$\.owner: 'acme' was expected \(schema prompt@acme-\*\)"):
            put("acme-eu", value("prompt", "p", '{"owner": "x"}'), reader=reader)

    def test_every_schema_that_applies_must_accept(self):
        reader = store(STAR=PROMPT, **{"acme-STAR": ACME_ONLY})
        with pytest.raises(InvalidValue, match="prompt@acme-"):
            put("acme-eu", value("prompt", "p", '{"text": "t", "owner": "x"}'), reader=reader)
        assert put("acme-eu", value("prompt", "p", '{"text": "t", "owner": "acme"}'), reader=reader).version == 2

    def test_deletes_are_never_validated(self):
        reader = store(STAR=PROMPT)
        assert handle(request("delete", "w", keys=[{"type": "prompt", "key": "old"}]), reader).version == 2


class TestSchemasThemselves:
    def test_a_schema_that_is_not_a_json_schema_is_refused(self):
        with pytest.raises(InvalidValue, match=r"prompt/\* at \$: not a valid Draft202012Validator schema at "
                                               r"\$\.type: 'strnig' is not valid"):
            put("__schemas__", value("prompt", "*", '{"type": "strnig"}'), reader=DictReader())

    def test_a_schema_that_is_not_json_is_refused(self):
        with pytest.raises(InvalidValue, match="not JSON"):
            put("__schemas__", value("prompt", "*", "{"), reader=DictReader())

    def test_a_valid_schema_is_stored(self):
        assert put("__schemas__", value("prompt", "*", PROMPT), reader=DictReader()).version == 1

    def test_a_stored_schema_that_cannot_be_used_refuses_the_put_and_says_why(self):
        with pytest.raises(InvalidValue, match="its schema is unusable"):
            put("w", value("prompt", "p", "{}"), reader=store(STAR='{"type": 3}'))

    def test_a_schema_is_compiled_once_per_text(self):
        assert compiled(PROMPT) is compiled(PROMPT)


class TestPaths:
    def test_the_path_names_indexes_identifiers_and_other_keys_unambiguously(self):
        assert json_path([]) == "$"
        assert json_path(["a", 0, "b c", "it's", "x\\y"]) == "$.a[0]['b c']['it\\'s']['x\\\\y']"

    @given(st.lists(st.one_of(st.integers(min_value=0), st.text())))
    def test_every_path_is_matched_whole_by_the_documented_pattern(self, parts):
        assert re.fullmatch(PATH_PATTERN, json_path(parts))

    def test_a_message_read_back_gives_its_item_and_path(self):
        message = "prompt/a at b at $['x: y'].z: 3 is not of type 'string' at $.q: oops (schema prompt@*)"
        assert problem_fields(message) == {"item": "prompt/a at b", "path": "$['x: y'].z"}
        assert problem_fields("no path here") is None

    def test_the_client_raises_invalid_value_for_the_wire_type(self):
        assert isinstance(error_from_wire("invalid-value", "x"), InvalidValue)
