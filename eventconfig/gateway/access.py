"""What one HTTP caller may read: the service's policy (docs/design.md §14.2) applied by the gateway.

The gateway answers reads from its own view and from the history topic, not through the writer, so
it applies the policy itself: the same file (``policy_file``), the same :class:`Policy` and the same
groups (from ``auth_keyring_file``), judging the HTTP caller as the writer judges a request's actor.
The files are re-read when they change and on SIGHUP (:mod:`eventconfig.writer.rules`).
A read that names what the caller may not read is refused (403 ``forbidden``); a read that spans
workspaces or types (workspace lists, dumps, history, state, diff, watch) is filtered to what the
caller may read. Writes are judged by the writer (§14.1: the gateway delegates to the caller). Pure.

Example::

    rules = AccessRules.of(*ServiceRules.from_settings(settings).current())
    access = rules.for_caller(HttpUser("bob", verified=True))
    access.require("acme", "prompt")          # raises Problem(403) when bob may not read it
    shown = access.mutation(mutation)         # None when bob may read none of it
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from eventconfig.audit.records import Mutation
from eventconfig.audit.replay import Diff
from eventconfig.gateway.auth import HttpUser
from eventconfig.gateway.problems import Problem
from eventconfig.writer.auth import Identity as Actor
from eventconfig.writer.auth import Keyring
from eventconfig.writer.policy import READ, Policy

T = TypeVar("T")


@dataclass(frozen=True)
class AccessRules:
    """The policy and the keyring's groups of a gateway process; no policy: everyone reads everything."""

    policy: Policy | None = None
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, keyring: Keyring | None, policy: Policy | None) -> AccessRules:
        """The service's own rules (``policy_file`` and, for groups, ``auth_keyring_file``)."""
        return cls(policy, keyring.groups if keyring is not None and policy is not None else {})

    def for_caller(self, identity: HttpUser) -> ReadAccess:
        actor = Actor(identity.actor, identity.verified, self.groups.get(identity.actor, frozenset()))
        return ReadAccess(self.policy, actor)


@dataclass(frozen=True)
class ReadAccess:
    """What one caller may read; every method is a no-op without a policy or for an admin."""

    policy: Policy | None
    actor: Actor

    @property
    def unrestricted(self) -> bool:
        return self.policy is None or self.policy.is_admin(self.actor)

    def may_read(self, workspace: str, type_: str) -> bool:
        return self.policy is None or self.policy.allows(self.actor, READ, workspace, type_)

    def may_read_in(self, workspace: str) -> bool:
        return self.policy is None or self.policy.may_read_in(self.actor, workspace)

    def require(self, workspace: str, type_: str | None = None) -> None:
        """Problem 403 unless the caller may read ``type_`` of ``workspace`` (None: some type of it)."""
        allowed = self.may_read_in(workspace) if type_ is None else self.may_read(workspace, type_)
        if not allowed:
            what = workspace if type_ is None else f"{workspace}/{type_}"
            who = f"actor {self.actor.actor!r}" + ("" if self.actor.verified else " (unverified)")
            raise Problem(403, "forbidden", f"{who} may not read {what}; ask an admin to extend the policy")

    def workspaces(self, names: Iterable[str]) -> list[str]:
        """The names of the workspaces the caller may read something in."""
        return [name for name in names if self.may_read_in(name)]

    def config(self, workspace: str, config: dict[str, T]) -> dict[str, T]:
        """``{type: ...}`` of one workspace with only the types the caller may read."""
        if self.unrestricted:
            return config
        return {type_: value for type_, value in config.items() if self.may_read(workspace, type_)}

    def nested(self, workspaces: dict[str, dict[str, T]]) -> dict[str, dict[str, T]]:
        """``{workspace: {type: ...}}`` with only what the caller may read (empty workspaces dropped)."""
        if self.unrestricted:
            return workspaces
        shown = {ws: self.config(ws, config) for ws, config in workspaces.items()}
        return {ws: config for ws, config in shown.items() if config}

    def mutation(self, mutation: Mutation) -> Mutation | None:
        """The mutation with only the changes the caller may read; None when none is left."""
        if self.unrestricted:
            return mutation
        if not mutation.changes:
            return mutation if self.may_read_in(mutation.workspace) else None
        changes = tuple(c for c in mutation.changes if self.may_read(mutation.workspace, c.type))
        return replace(mutation, changes=changes) if changes else None

    def diff(self, diff: Diff) -> Diff:
        if self.unrestricted:
            return diff
        return replace(diff, changes=tuple(c for c in diff.changes
                                           if self.may_read(c.item.workspace, c.item.type)))

    def poke(self, poke: dict[str, Any]) -> dict[str, Any] | None:
        """A decoded poke with only the (workspace, type) pairs and lifecycle entries the caller may
        read; None when nothing is left (a gap in versions is no loss to a watcher, §7)."""
        if self.unrestricted:
            return poke
        changes = {t: [w for w in wss if self.may_read(w, t)] for t, wss in poke["changes"].items()}
        changes = {t: wss for t, wss in changes.items() if wss}
        lifecycle = poke.get("workspace_changes")
        if lifecycle:
            lifecycle = {kind: self.workspaces(names) for kind, names in lifecycle.items()}
            if not any(lifecycle.values()):
                lifecycle = None
        if not changes and not lifecycle:
            return None
        return {"version": poke["version"], "changes": changes, "workspace_changes": lifecycle}
