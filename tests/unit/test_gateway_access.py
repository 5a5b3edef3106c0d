"""What the gateway shows a caller under a policy (docs/design.md §14.2): reads naming something the
caller may not read are 403, reads spanning workspaces or types are filtered (pure, no server)."""

from __future__ import annotations

import pytest

from eventconfig.audit.records import Change, Mutation
from eventconfig.audit.replay import Diff, KeyChange
from eventconfig.gateway.access import AccessRules
from eventconfig.gateway.auth import HttpUser
from eventconfig.gateway.problems import Problem
from eventconfig.model import ItemKey
from eventconfig.writer.policy import Policy

RULES = AccessRules(Policy.parse({"admins": ["root"], "rules": [
    {"who": "group:editors", "workspaces": ["acme-*"], "types": ["prompt"], "access": "read"},
    {"who": "bob", "workspaces": ["public"], "access": "read"}]}), {"eve": frozenset({"editors"})})
EVE = RULES.for_caller(HttpUser("eve", verified=True))


def test_a_read_of_a_type_or_workspace_not_granted_is_a_403_naming_who_and_what():
    EVE.require("acme-1", "prompt")
    EVE.require("acme-1")
    for workspace, type_, what in [("acme-1", "secret", "acme-1/secret"), ("other", None, "other")]:
        with pytest.raises(Problem) as raised:
            EVE.require(workspace, type_)
        assert (raised.value.status, raised.value.error_type) == (403, "forbidden")
        assert f"actor 'eve' may not read {what}" in raised.value.detail


def test_lists_dumps_and_state_show_only_what_the_caller_may_read():
    assert EVE.workspaces(["acme-1", "other", "public"]) == ["acme-1"]
    assert EVE.config("acme-1", {"prompt": {"k": "v"}, "secret": {"k": "s"}}) == {"prompt": {"k": "v"}}
    nested = {"acme-1": {"prompt": {"k": "v"}, "secret": {}}, "other": {"prompt": {"k": "x"}}}
    assert EVE.nested(nested) == {"acme-1": {"prompt": {"k": "v"}}}
    root = RULES.for_caller(HttpUser("root", verified=True))
    assert root.nested(nested) == nested and AccessRules().for_caller(HttpUser("x", False)).nested(nested) == nested


def test_history_and_diff_keep_only_readable_changes():
    mutation = Mutation(3, 0, "r", "bob", "acme-1", "put",
                        (Change("prompt", "a", "1", None), Change("secret", "b", "2", None)))
    assert [c.type for c in EVE.mutation(mutation).changes] == ["prompt"]
    assert EVE.mutation(Mutation(4, 0, "r", "bob", "other", "put", (Change("prompt", "a", "1", None),))) is None
    diff = Diff(1, 3, None, (KeyChange(ItemKey("acme-1", "prompt", "a"), None, "1"),
                             KeyChange(ItemKey("acme-1", "secret", "b"), None, "2")))
    assert [c.item.type for c in EVE.diff(diff).changes] == ["prompt"]


def test_pokes_keep_only_readable_pairs_and_lifecycle_and_vanish_when_empty():
    poke = {"version": 7, "changes": {"prompt": ["acme-1", "other"], "secret": ["acme-1"]},
            "workspace_changes": {"created": ["acme-2", "other"], "deleted": []}, "items": ["never passed on"]}
    assert EVE.poke(poke) == {"version": 7, "changes": {"prompt": ["acme-1"]},
                              "workspace_changes": {"created": ["acme-2"], "deleted": []}}
    assert EVE.poke({"version": 8, "changes": {"secret": ["acme-1"]}, "workspace_changes": None}) is None
    bob = RULES.for_caller(HttpUser("bob", verified=True))
    assert bob.poke({"version": 9, "changes": {}, "workspace_changes": {"created": ["x"], "deleted": []}}) is None
