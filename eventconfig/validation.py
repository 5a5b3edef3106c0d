"""Validated config, pure: the JSON Schemas kept in the store and the check of a put against them.

A schema is an item of the reserved workspace ``__schemas__``: its type is the config type it
governs and its key a workspace glob (``*``: every workspace), its value a JSON Schema (draft 2020-12
unless its ``$schema`` names another draft). A value put to ``(workspace, type)`` must be JSON that
every schema of that type whose glob matches the workspace accepts (docs/design.md §5.5). Schemas
live in the store so that they are versioned, audited, exported and replayed like the config itself.

Example::

    check_put(reader, "acme", {ItemKey("acme", "prompt", "system"): '{"text": 1}'})  # InvalidValue
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from jsonschema import exceptions as jsonschema_errors
from jsonschema import validators

from eventconfig.errors import InvalidValue
from eventconfig.model import Entry, ItemKey
from eventconfig.view.reader import ViewReader

SCHEMAS_WORKSPACE = "__schemas__"
_DEFAULT_DRAFT = validators.Draft202012Validator
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The path of a problem as this module writes it (see json_path): for readers that parse a message.
PATH_PATTERN = r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\['(?:[^'\\]|\\.)*'\])*"


@dataclass(frozen=True)
class Problem:
    """The first problem of an invalid value: which item, where in its JSON, what, under which schema."""

    item: ItemKey
    path: str
    reason: str
    schema_key: str  # the workspace glob of the schema that refused it ("" when the value is not JSON)

    def message(self) -> str:
        """The ``invalid-value`` message: ``<type>/<key> at <path>: <reason>`` (docs/design.md §5.5)."""
        where = f" (schema {self.item.type}@{self.schema_key})" if self.schema_key else ""
        return f"{self.item.type}/{self.item.key} at {self.path}: {self.reason}{where}"


def json_path(parts: Iterable[str | int]) -> str:
    """``$``, then ``.name`` for identifier keys, ``[n]`` for indexes and ``['k']`` for other keys."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}"
        else:
            path += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path


@lru_cache(maxsize=256)
def compiled(schema_text: str) -> Any:
    """The validator of a schema's text, compiled once per distinct text (so once per schema version).

    Raises ``ValueError`` with the reason when the text is not a usable schema.
    """
    try:
        schema = json.loads(schema_text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(schema, (dict, bool)):
        raise ValueError("a JSON Schema is an object or a boolean")
    cls = validators.validator_for(schema, default=_DEFAULT_DRAFT)
    try:
        cls.check_schema(schema)
    except jsonschema_errors.SchemaError as exc:
        raise ValueError(f"not a valid {cls.__name__} schema at {json_path(exc.absolute_path)}: "
                         f"{exc.message}") from None
    return cls(schema)


def shown(schema_text: str) -> Any:
    """A stored schema as JSON to show, or its text when it is not JSON (stored before the writer checked)."""
    try:
        return json.loads(schema_text)
    except ValueError:
        return schema_text


def schema_problem(item: ItemKey, text: str) -> Problem | None:
    """Why ``text`` cannot be stored as the schema ``item`` of ``__schemas__``, or None."""
    try:
        compiled(text)
    except ValueError as exc:
        return Problem(item, "$", str(exc), "")
    return None


def schemas_for(reader: ViewReader, workspace: str, type_: str) -> Iterator[tuple[str, Entry]]:
    """``(glob, entry)`` of every schema of ``type_`` whose glob matches ``workspace``."""
    if workspace == SCHEMAS_WORKSPACE:
        return
    for glob, entry in reader.scan_type(SCHEMAS_WORKSPACE, type_):
        if fnmatchcase(workspace, glob):
            yield glob, entry


def value_problem(item: ItemKey, value: str, schemas: Iterable[tuple[str, str]]) -> Problem | None:
    """The first problem of ``value`` under ``schemas`` (jsonschema's most relevant error), or None."""
    schemas = list(schemas)
    if not schemas:
        return None
    try:
        instance = json.loads(value)
    except ValueError as exc:
        return Problem(item, "$", f"not JSON: {exc}", "")
    for glob, text in schemas:
        try:
            validator = compiled(text)
        except ValueError as exc:  # stored before the writer checked schemas, or by hand: refuse, say why
            return Problem(item, "$", f"its schema is unusable: {exc}", glob)
        error = jsonschema_errors.best_match(validator.iter_errors(instance))
        if error is not None:
            return Problem(item, json_path(error.absolute_path), error.message, glob)
    return None


_MESSAGE = re.compile(rf"(?P<item>.*?) at (?P<path>{PATH_PATTERN}): ", re.DOTALL)


def problem_fields(message: str) -> dict[str, str] | None:
    """``{"item": "<type>/<key>", "path": ...}`` read back from an ``invalid-value`` message, or None."""
    match = _MESSAGE.match(message)
    return None if match is None else {"item": match["item"], "path": match["path"]}


def check_put(reader: ViewReader, workspace: str, values: Mapping[ItemKey, str]) -> None:
    """Raise InvalidValue for the first item of a put that its schemas refuse (nothing is written)."""
    by_type: dict[str, list[tuple[str, str]]] = {}
    for item, value in values.items():
        if workspace == SCHEMAS_WORKSPACE:
            problem = schema_problem(item, value)
        else:
            if item.type not in by_type:
                by_type[item.type] = [(glob, entry.value) for glob, entry in schemas_for(reader, workspace, item.type)]
            problem = value_problem(item, value, by_type[item.type])
        if problem is not None:
            raise InvalidValue(problem.message())
