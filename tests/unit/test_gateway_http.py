"""The gateway's pure HTTP pieces: conditional headers, problem documents, event framing and resume rules."""

from __future__ import annotations

import pytest

from eventconfig.audit import OutOfRetention, VersionNotFound
from eventconfig.client.client import ClientError
from eventconfig.errors import (BadRequest, ConfigError, Conflict, Forbidden, ReadTimeout, RequestError, RequestTimeout,
                                TooLarge, Unauthenticated)
from eventconfig.gateway.auth import Unauthorized
from eventconfig.gateway.problems import PROBLEM_JSON, Problem, problem_for
from eventconfig.gateway.routes_config import precondition
from eventconfig.gateway.watch import last_event_id, needs_resync, select, sse


@pytest.mark.parametrize("if_match, if_none_match, expected", [
    (None, None, None), ('"7"', None, 7), ('W/"7"', None, 7), ("7", None, 7), (' "0" ', None, 0), (None, "*", 0)])
def test_conditional_headers_become_if_version(if_match, if_none_match, expected):
    assert precondition(if_match, if_none_match) == expected


@pytest.mark.parametrize("if_match, if_none_match", [('"a"', None), ('"1", "2"', None), ("*", None),
                                                     (None, '"3"'), ('"1"', "*")])
def test_other_conditional_headers_are_bad_requests(if_match, if_none_match):
    with pytest.raises(Problem) as raised:
        precondition(if_match, if_none_match)
    assert (raised.value.status, raised.value.error_type) == (400, "bad-request")


@pytest.mark.parametrize("error, status, error_type", [
    (Conflict("at 9"), 412, "conflict"), (TooLarge("big"), 413, "too-large"), (BadRequest("no"), 400, "bad-request"),
    (ReadTimeout("slow"), 504, "timeout"), (RequestTimeout("slow write"), 504, "timeout"),
    (ConfigError("bug"), 500, "config-error"),
    (Unauthorized("who"), 401, "unauthorized"), (VersionNotFound("v9"), 404, "not-found"),
    (ClientError("no kafka"), 503, "unavailable"), (OutOfRetention("gone", 5, 1000), 410, "out-of-retention"),
    (Forbidden("not yours"), 403, "forbidden"), (Unauthenticated("bad signature"), 401, "unauthenticated"),
])
def test_service_errors_map_to_statuses_and_keep_their_error_type(error, status, error_type):
    problem = problem_for(error)
    assert (problem.status, problem.error_type) == (status, error_type)
    body = problem.body("/v1/x")
    assert body["type"] == f"urn:eventconfig:error:{error_type}" and body["instance"] == "/v1/x"
    assert body["detail"] and body["title"]


def test_an_unknown_wire_error_type_passes_through_as_a_bad_gateway():
    error = RequestError("from a newer service")
    error.wire_type = "brand-new"
    problem = problem_for(error)
    assert (problem.status, problem.error_type, problem.detail) == (502, "brand-new", "from a newer service")


def test_problem_responses_carry_their_media_type_and_extras():
    response = problem_for(OutOfRetention("gone", 5, 1000)).response("/v1/history")
    assert response.media_type == PROBLEM_JSON and b'"first_version":5' in response.body
    assert problem_for(Unauthorized("who")).response("/").headers["www-authenticate"].startswith("Bearer")


def test_server_sent_events_are_framed_with_the_version_as_id():
    assert sse("poke", {"version": 3}, id=3) == b'id: 3\nevent: poke\ndata: {"version":3}\n\n'
    assert sse("ready", {"a": "x\ny"}) == b'event: ready\ndata: {"a":"x\\ny"}\n\n'


@pytest.mark.parametrize("beginning, first_held, last_seen, current, resync", [
    (0, 5, 1, 9, False),      # nothing was ever deleted: pokes 2..4 just never existed
    (10, 5, 4, 9, False),     # the first held poke follows the last one seen
    (10, 5, 3, 9, True),      # poke 4 may have been deleted
    (10, None, 9, 9, False),  # everything deleted, but the client saw everything the view has
    (10, None, 8, 9, True),
])
def test_resuming_needs_a_resync_only_when_retention_may_have_deleted_a_newer_poke(
        beginning, first_held, last_seen, current, resync):
    assert needs_resync(beginning, first_held, last_seen, current) is resync


def test_pokes_are_narrowed_to_the_watched_workspace_and_types():
    poke = {"version": 4, "changes": {"prompt": ["a", "b"], "flow": ["b"]}, "workspace_changes": None}
    assert select(poke, None, set()) == poke
    assert select(poke, "a", set()) == {"version": 4, "changes": {"prompt": ["a"]}, "workspace_changes": None}
    assert select(poke, "b", {"flow"})["changes"] == {"flow": ["b"]}
    assert select(poke, "c", set()) is None
    lifecycle = {"version": 5, "changes": {}, "workspace_changes": {"created": ["c"], "deleted": []}}
    assert select(lifecycle, "c", set()) == lifecycle
    assert select(lifecycle, "a", set()) is None


def test_last_event_id_wins_over_from_version_and_must_be_a_version():
    assert last_event_id(None, 4) == 4
    assert last_event_id(" 7 ", 4) == 7
    assert last_event_id("", None) is None
    with pytest.raises(Problem):
        last_event_id("-1", None)
