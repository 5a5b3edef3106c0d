"""Per-workspace permissions (docs/design.md §14.2): with a policy, a request gets only what a rule
grants its actor, reserved workspaces are written only by admins, and a refused one writes nothing."""

from __future__ import annotations


import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventconfig.codec import default_codec
from eventconfig.errors import Forbidden
from eventconfig.view.reader import DictReader
from eventconfig.writer.auth import Identity
from eventconfig.writer.batch import BatchConfig, RawRequest, answer_reads, process_batch
from eventconfig.writer.policy import Policy, PolicyError

codec = default_codec()
POLICY = Policy.parse({
    "admins": ["root", "group:platform"],
    "rules": [
        {"who": ["group:editors", "bob"], "workspaces": ["acme-*"], "types": ["prompt", "flow-*"],
         "access": "read-write"},
        {"who": "*", "workspaces": ["public"], "access": "read"},
        {"who": "auditor", "workspaces": ["*"], "types": ["*"], "access": "read"},
        {"who": "bob", "workspaces": ["__template__"], "access": "read-write"},
    ]})
BOB = Identity("bob", True)
EDITOR = Identity("eve", True, frozenset({"editors"}))
ADMIN = Identity("ann", True, frozenset({"platform"}))


def request(operation: str, workspace: str = "acme-1", **fields) -> dict:
    return codec.decode("ConfigRequest", codec.encode("ConfigRequest", {"operation": operation, "workspace": workspace,
                                                                         **fields}))


def put(workspace: str, *types: str) -> dict:
    return request("put", workspace, values=[{"type": t, "key": "k", "value": "v"} for t in types])


@pytest.mark.parametrize("identity, req", [
    (BOB, put("acme-1", "prompt", "flow-a")),
    (EDITOR, request("get", keys=[{"type": "prompt", "key": "k"}])),
    (EDITOR, request("delete", keys=[{"type": "flow-x", "key": "k"}])),
    (Identity(None), request("getvalues", "public", type="anything")),
    (Identity("auditor"), request("config", "acme-9")),
    (Identity("auditor"), request("getvalues-all-ws", "", type="prompt")),
    (ADMIN, put("__system__", "x")),
    (Identity("root"), request("getkeys-all-ws", "", type="t")),
])
def test_what_a_rule_or_admin_grants_is_allowed(identity, req):
    POLICY.check(identity, req)


@pytest.mark.parametrize("identity, req, message", [
    (BOB, put("acme-1", "prompt", "secret"), "actor 'bob' may not write acme-1/secret (put)"),
    (BOB, put("other", "prompt"), "may not write other/prompt"),
    (Identity("eve"), put("acme-1", "prompt"), "actor 'eve'"),  # the group is what granted eve
    (Identity(None), put("public", "t"), "an anonymous request may not write public/t"),
    (BOB, request("config", "acme-1"), "may not read acme-1/*"),  # not every type of the workspace
    (EDITOR, request("getvalues-all-ws", "", type="prompt"), "may not read */prompt"),
    (Identity("auditor"), put("acme-1", "prompt"), "may not write"),
    (BOB, put("__template__", "prompt"), "may not write __template__/prompt"),  # reserved: admins only
    (Identity("bob", False), put("x", "t"), "actor 'bob' (unverified)"),
])
def test_anything_else_is_forbidden_with_who_and_what(identity, req, message):
    with pytest.raises(Forbidden, match=message.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")):
        POLICY.check(identity, req)


names = st.text(alphabet="ab_-*", min_size=1, max_size=6)


@given(workspace=names, type_=names, actor=st.sampled_from(["bob", "eve", "auditor", "x"]))
def test_no_rule_ever_lets_a_non_admin_write_a_reserved_workspace(workspace, type_, actor):
    reserved = "_" + workspace
    everything = Policy.parse({"rules": [{"who": "*", "workspaces": ["*"], "types": ["*"], "access": "read-write"}]})
    assert not everything.allows(Identity(actor, True), "write", reserved, type_)
    assert everything.allows(Identity(actor, True), "read", reserved, type_)
    assert everything.allows(Identity(actor, True), "write", workspace.lstrip("_") or "w", type_)


@pytest.mark.parametrize("document, problem", [
    ([], "must be a mapping"),
    ({"rules": [{"who": "a", "workspaces": ["*"]}]}, "needs 'access'"),
    ({"rules": [{"who": [], "workspaces": ["*"], "access": "read"}]}, "'who' must be a non-empty list"),
    ({"rules": [{"who": "a", "workspaces": [""], "access": "read"}]}, "'workspaces' must be"),
])
def test_a_malformed_policy_is_refused_with_what_is_wrong(document, problem):
    with pytest.raises(PolicyError, match=problem):
        Policy.parse(document)


def test_a_forbidden_write_is_answered_forbidden_and_writes_nothing():
    value = codec.encode("ConfigRequest", put("other", "prompt"))
    allowed = codec.encode("ConfigRequest", put("acme-1", "prompt"))
    records = [RawRequest(0, value, [("id", b"no"), ("actor", b"bob")]),
               RawRequest(1, allowed, [("id", b"yes"), ("actor", b"bob")])]
    result = process_batch(records, DictReader(), {}, 0, BatchConfig(), now_ms=0, policy=POLICY)
    errors = [codec.decode("ConfigResponse", r.value)["error"] for r in result.responses]
    assert errors[0]["type"] == "forbidden" and errors[1] is None
    assert result.version == 1 and len(result.history) == 1 and not result.dlq


def test_a_read_answered_from_the_view_is_checked_against_the_policy_too():
    records = [RawRequest(i, codec.encode("ConfigRequest", request("config", workspace)), [("id", rid), ("actor", b"bob")])
               for i, (workspace, rid) in enumerate([("other", b"no"), ("public", b"yes")])]
    reads = process_batch(records, DictReader(), {}, 0, BatchConfig(), now_ms=0, policy=POLICY).reads
    answered, _ = answer_reads(reads, DictReader(), 0, BatchConfig(), 0, policy=POLICY)
    errors = [codec.decode("ConfigResponse", r.value)["error"] for r in answered.responses]
    assert errors[0]["type"] == "forbidden" and errors[1] is None
