"""The export format and the import plan (pure).

An export is one JSON document::

    {"format": "eventconfig-export/1", "workspace": "acme", "version": 42,
     "config": {"prompt": {"system": "You are helpful"}, "flow": {"f1": "{...}"}}}

``workspace`` and ``version`` say where and as of when it was taken; values are the stored strings,
verbatim. Readers accept extra top-level fields (later additions) and reject anything else that
does not match.

An import is planned against the target's current items and then written as ONE ``put`` (one
version) whose items carry ``if_version`` preconditions, so a concurrent change makes the whole
import fail with nothing written instead of silently overwriting it.

Example::

    doc = ExportDocument.from_json(text)
    plan = plan_import(doc.config, current={("prompt", "system"): ("old", 7)}, overwrite=False)
    plan.writes     # [("flow", "f1", "{...}", 0)]   ("prompt/system" exists: kept)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eventconfig.audit.errors import ExportFormatError
from eventconfig.model import name_problem

FORMAT = "eventconfig-export/1"

Config = dict[str, dict[str, str]]


@dataclass(frozen=True)
class ExportDocument:
    """One workspace's configuration as of one version."""

    workspace: str
    version: int
    config: Config

    def to_json(self) -> str:
        document = {"format": FORMAT, "workspace": self.workspace, "version": self.version,
                    "config": {t: dict(sorted(kv.items())) for t, kv in sorted(self.config.items())}}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    @property
    def items(self) -> int:
        return sum(len(kv) for kv in self.config.values())

    @classmethod
    def from_json(cls, text: str, source: str = "the input") -> ExportDocument:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ExportFormatError(f"{source} is not JSON: {exc}") from None
        return cls.from_obj(document, source)

    @classmethod
    def from_obj(cls, document: Any, source: str = "the input") -> ExportDocument:
        def bad(why: str) -> ExportFormatError:
            return ExportFormatError(f"{source} is not an {FORMAT} document: {why}")

        if not isinstance(document, dict):
            raise bad("expected a JSON object")
        if document.get("format") != FORMAT:
            raise bad(f"'format' is {document.get('format')!r}")
        workspace, version, config = document.get("workspace"), document.get("version"), document.get("config")
        if not isinstance(workspace, str):
            raise bad("'workspace' must be a string")
        if type(version) is not int or version < 0:
            raise bad("'version' must be a non-negative integer")
        if not isinstance(config, dict):
            raise bad("'config' must be an object {type: {key: value}}")
        return cls(workspace, version, check_config(config, bad))


def check_config(config: dict[Any, Any], bad: Callable[[str], ExportFormatError], where: str = "config") -> Config:
    """``config`` as ``{type: {key: value}}`` with valid names and string values, or ``bad(why)`` raised."""
    for type_, values in config.items():
        problem = name_problem("type", type_)
        if problem or not isinstance(values, dict):
            raise bad(problem or f"{where}[{type_!r}] must be an object {{key: value}}")
        for key, value in values.items():
            problem = name_problem("key", key)
            if problem or not isinstance(value, str):
                raise bad(problem or f"the value of {type_}/{key} must be a string (the stored text)")
    return {t: dict(kv) for t, kv in config.items()}


ADD, OVERWRITE, UNCHANGED, KEEP = "add", "overwrite", "unchanged", "keep"


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """What an import does with one key: add it, overwrite it, leave it (same value), or keep the target's."""

    type: str
    key: str
    action: str
    old: str | None
    new: str
    if_version: int  # the key's current version (0: must not exist) when the put is sent

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "type": self.type, "key": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ImportPlan:
    items: tuple[PlannedItem, ...]

    @property
    def writes(self) -> list[tuple[str, str, str, int]]:
        """``(type, key, value, if_version)`` of the one put; empty when nothing changes."""
        return [(i.type, i.key, i.new, i.if_version) for i in self.items if i.action in (ADD, OVERWRITE)]

    def count(self, action: str) -> int:
        return sum(i.action == action for i in self.items)

    def summary(self) -> str:
        parts = [f"{self.count(ADD)} added", f"{self.count(OVERWRITE)} overwritten",
                 f"{self.count(UNCHANGED)} unchanged"]
        if self.count(KEEP):
            parts.append(f"{self.count(KEEP)} existing kept (--overwrite replaces them)")
        return ", ".join(parts)


def plan_import(config: Mapping[str, Mapping[str, str]], current: Mapping[tuple[str, str], tuple[str, int]],
                *, overwrite: bool = False) -> ImportPlan:
    """Decide each key of ``config`` against ``current`` ``{(type, key): (value, version)}`` of the target.

    Missing keys are added; existing keys with another value are overwritten only with ``overwrite``.
    """
    planned = []
    for type_ in sorted(config):
        for key in sorted(config[type_]):
            new = config[type_][key]
            existing = current.get((type_, key))
            if existing is None:
                planned.append(PlannedItem(type_, key, ADD, None, new, 0))
                continue
            old, version = existing
            action = UNCHANGED if old == new else OVERWRITE if overwrite else KEEP
            planned.append(PlannedItem(type_, key, action, old, new, version))
    return ImportPlan(tuple(planned))
