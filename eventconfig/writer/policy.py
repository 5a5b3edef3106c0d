"""Per-workspace permissions, pure (docs/design.md §14.2): may this actor do this request?

A policy file (``policy_file``, YAML or JSON) names the admins and a list of rules::

    admins: [alice, "group:platform"]          # everything, and the only writers of reserved workspaces
    rules:
      - who: ["group:prompt-editors", bob]      # an actor, "group:<name>" (groups from the keyring), "*"
        workspaces: ["acme-*"]                  # glob patterns (fnmatch, case-sensitive)
        types: ["prompt", "flow-*"]             # default ["*"]
        access: read-write                      # read | write | read-write

With a policy, whatever no rule grants is refused (``forbidden``, nothing written). Reserved
workspaces (``_`` prefix) are written only by admins (the bootstrapper's identity belongs there),
whatever the rules say. ``config`` needs read on every type of its workspace; the all-workspace
reads need read on their type in every workspace. A rule grants "every" only through a pattern that
matches every name: one made of ``*`` alone (``*``, ``**``). Any other pattern (``[!_]*``, ``?``,
``a*``) misses some name, so it never grants "every", whatever name it is compared with.
Without authentication the policy judges the claimed actor, so it only guards against mistakes.

Example::

    policy = Policy.load("policy.yaml")
    policy.check(Identity("bob", True, frozenset({"prompt-editors"})), request)   # raises Forbidden
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from eventconfig import model
from eventconfig.errors import EventConfigError, Forbidden
from eventconfig.writer.auth import Identity, read_document

READ, WRITE = "read", "write"
_ACCESS = {"read": frozenset({READ}), "write": frozenset({WRITE}), "read-write": frozenset({READ, WRITE})}


class PolicyError(EventConfigError):
    """The policy file cannot be read or is malformed."""


@dataclass(frozen=True)
class Rule:
    who: tuple[str, ...]
    workspaces: tuple[str, ...]
    types: tuple[str, ...]
    access: frozenset[str]

    def grants(self, identity: Identity, access: str, workspace: str | None, type_: str | None) -> bool:
        """Whether this rule grants ``access`` on ``workspace``/``type_``; None stands for *every* name."""
        return (access in self.access and _is(identity, self.who)
                and _covers(self.workspaces, workspace) and _covers(self.types, type_))

    def reaches(self, identity: Identity, access: str, workspace: str) -> bool:
        """Whether this rule grants ``access`` on some type of ``workspace``."""
        return access in self.access and _is(identity, self.who) and _covers(self.workspaces, workspace)


@dataclass(frozen=True)
class Policy:
    admins: tuple[str, ...]
    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        return cls.parse(read_document(path, "policy", PolicyError), str(path))

    @classmethod
    def parse(cls, document: Any, source: str = "the policy") -> Policy:
        if not isinstance(document, dict):
            raise PolicyError(f"{source} must be a mapping with 'admins' and 'rules'")
        rules = []
        for i, rule in enumerate(document.get("rules") or ()):
            where = f"{source}: rule {i + 1}"
            if not isinstance(rule, dict) or rule.get("access") not in _ACCESS:
                raise PolicyError(f"{where} needs 'access': read, write or read-write")
            rules.append(Rule(_names(rule.get("who"), f"{where} 'who'"),
                              _names(rule.get("workspaces"), f"{where} 'workspaces'"),
                              _names(rule.get("types", ["*"]), f"{where} 'types'"), _ACCESS[rule["access"]]))
        return cls(_names(document.get("admins") or [], f"{source} 'admins'", empty=True), tuple(rules))

    def is_admin(self, identity: Identity) -> bool:
        return _is(identity, self.admins)

    def allows(self, identity: Identity, access: str, workspace: str | None, type_: str | None) -> bool:
        """``access`` on ``workspace``/``type_``, where None means every workspace (or every type):
        granted only by one rule whose pattern matches every name (see :func:`matches_every_name`)."""
        if self.is_admin(identity):
            return True
        if access == WRITE and (workspace is None or model.is_reserved(workspace)):
            return False
        return any(rule.grants(identity, access, workspace, type_) for rule in self.rules)

    def may_read_in(self, identity: Identity, workspace: str) -> bool:
        """Whether ``identity`` may read at least one type of ``workspace`` (lists show only those)."""
        return self.is_admin(identity) or any(rule.reaches(identity, READ, workspace) for rule in self.rules)

    def check(self, identity: Identity, request: dict[str, Any]) -> None:
        """Forbidden unless the policy allows ``identity`` everything ``request`` touches."""
        operation, workspace = request["operation"], request["workspace"]
        if operation not in model.READ_OPERATIONS | model.WRITE_OPERATIONS:
            return  # answered bad-operation by the handler
        needed: list[tuple[str, str | None, str | None]]
        if operation in model.WRITE_OPERATIONS:
            entries = request["values"] if operation == model.PUT else request["keys"]
            needed = [(WRITE, workspace, t) for t in sorted({e["type"] for e in entries})] or [(WRITE, workspace, "")]
        elif operation in model.ALL_WORKSPACE_OPERATIONS:
            needed = [(READ, None, request["type"])]
        elif operation == model.CONFIG:
            needed = [(READ, workspace, None)]
        elif operation == model.GET:
            needed = [(READ, workspace, t) for t in sorted({k["type"] for k in request["keys"]})]
        else:
            needed = [(READ, workspace, request["type"])]
        for access, ws, type_ in needed:
            if not self.allows(identity, access, ws, type_):
                raise Forbidden(f"{_who(identity)} may not {_what(access, ws, type_)} ({operation}); "
                                "ask an admin to extend the policy")


def matches_every_name(pattern: str) -> bool:
    """True when the glob ``pattern`` matches every name: exactly when it is made of ``*`` alone.

    Every other element of a glob (a character, ``?``, ``[...]``) consumes one character, so a
    pattern holding one misses the empty name, or names of other lengths or characters.
    """
    return bool(pattern) and set(pattern) == {"*"}


def _covers(patterns: Iterable[str], name: str | None) -> bool:
    """Whether ``patterns`` match ``name``; for None (every name), whether one matches every name."""
    if name is None:
        return any(matches_every_name(p) for p in patterns)
    return any(fnmatchcase(name, p) for p in patterns)


def _what(access: str, workspace: str | None, type_: str | None) -> str:
    where = "*" if workspace is None else workspace
    if type_ is None:
        return f"{access} {where}/*"
    return f"{access} {where}/{type_ or '*'}" if type_ or access == WRITE else f"{access} {where}"


def _is(identity: Identity, names: Iterable[str]) -> bool:
    for name in names:
        if name == "*" or (identity.actor is not None and name == identity.actor):
            return True
        if name.startswith("group:") and name[len("group:"):] in identity.groups:
            return True
    return False


def _who(identity: Identity) -> str:
    if identity.actor is None:
        return "an anonymous request"
    return f"actor {identity.actor!r}" + ("" if identity.verified else " (unverified)")


def _names(value: Any, where: str, *, empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not (value or empty) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where} must be a non-empty list of non-empty strings")
    return tuple(value)
