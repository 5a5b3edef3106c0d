"""Policy patterns grant no more than their rule says (docs/design.md §14.2, issue 21 item 4).

The all-workspace reads and ``config`` need read on *every* workspace (or type). A rule grants that
only through a pattern that matches every name; the model checks "every name" against a universe
holding the empty name (which any glob element other than ``*`` misses) and the generated ones.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventconfig.codec import default_codec
from eventconfig.errors import Forbidden
from eventconfig.writer.auth import Identity
from eventconfig.writer.policy import Policy, matches_every_name

codec = default_codec()
BOB = Identity("bob", True)
globs = st.text(alphabet="ab_*?[]!-", min_size=1, max_size=6)
names = st.text(alphabet="ab_*?[]!-", min_size=1, max_size=6)


def request(operation: str, workspace: str, **fields: object) -> dict:
    return codec.decode("ConfigRequest", codec.encode("ConfigRequest", {"operation": operation, "workspace": workspace,
                                                                         **fields}))


def grants_every(pattern: str, universe: list[str]) -> bool:
    """The model: the pattern matches every name of a universe that holds the empty name."""
    return all(fnmatchcase(name, pattern) for name in ["", *universe])


def policy(workspaces: list[str], types: list[str]) -> Policy:
    return Policy.parse({"rules": [{"who": "bob", "workspaces": workspaces, "types": types, "access": "read"}]})


def allowed(rules: Policy, req: dict) -> bool:
    try:
        rules.check(BOB, req)
    except Forbidden:
        return False
    return True


@given(pattern=globs, universe=st.lists(names, max_size=8))
def test_a_pattern_matches_every_name_exactly_when_the_model_says_so(pattern, universe):
    assert matches_every_name(pattern) == grants_every(pattern, universe)


@given(patterns=st.lists(globs, min_size=1, max_size=3), type_=names, universe=st.lists(names, max_size=8))
def test_an_all_workspace_read_is_allowed_exactly_when_a_pattern_matches_every_workspace(patterns, type_, universe):
    rules = policy(patterns, ["*"])
    expected = any(grants_every(p, universe) for p in patterns)
    assert allowed(rules, request("getvalues-all-ws", "", type=type_)) == expected
    assert allowed(rules, request("getkeys-all-ws", "", type=type_)) == expected
    if expected:  # sound: what "every workspace" grants, each workspace grants
        assert all(rules.allows(BOB, "read", name, type_) for name in universe)


@given(workspace=names, ws_patterns=st.lists(globs, min_size=1, max_size=3),
       type_patterns=st.lists(globs, min_size=1, max_size=3), universe=st.lists(names, max_size=8))
def test_config_is_allowed_exactly_when_the_workspace_matches_and_a_type_pattern_matches_every_type(
        workspace, ws_patterns, type_patterns, universe):
    rules = policy(ws_patterns, type_patterns)
    expected = (any(fnmatchcase(workspace, p) for p in ws_patterns)
                and any(grants_every(p, universe) for p in type_patterns))
    assert allowed(rules, request("config", workspace)) == expected
    if expected:
        assert all(rules.allows(BOB, "read", workspace, name) for name in universe)


@given(workspace=names, type_=names, ws_patterns=st.lists(globs, min_size=1, max_size=3),
       type_patterns=st.lists(globs, min_size=1, max_size=3))
def test_a_read_of_one_type_agrees_with_fnmatch(workspace, type_, ws_patterns, type_patterns):
    rules = policy(ws_patterns, type_patterns)
    expected = any(fnmatchcase(workspace, p) for p in ws_patterns) and any(fnmatchcase(type_, p) for p in type_patterns)
    assert allowed(rules, request("list", workspace, type=type_)) == expected
    assert rules.may_read_in(BOB, workspace) == any(fnmatchcase(workspace, p) for p in ws_patterns)


@pytest.mark.parametrize("pattern", ["[!_]*", "?", "?*", "a*", "*a", "[*]", "*?"])
def test_a_pattern_that_misses_some_name_grants_neither_all_workspace_reads_nor_config(pattern):
    """The hole of issue 21: these matched the literal string ``*`` and so granted everything."""
    with pytest.raises(Forbidden, match=r"may not read \*/prompt"):
        policy([pattern], ["*"]).check(BOB, request("getvalues-all-ws", "", type="prompt"))
    with pytest.raises(Forbidden, match=r"may not read acme/\*"):
        policy(["*"], [pattern]).check(BOB, request("config", "acme"))
    policy(["*"], ["*"]).check(BOB, request("getvalues-all-ws", "", type="prompt"))
    policy(["**"], ["**"]).check(BOB, request("config", "acme"))
