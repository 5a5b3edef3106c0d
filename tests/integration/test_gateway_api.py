"""The HTTP gateway against a real broker and a real service: every endpoint and every error path.

One service and one gateway backend serve the whole module; two apps run on it, one in development
mode (no auth file) and one in production mode (tokens and users). Each test writes to workspaces of
its own, so the tests do not depend on each other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete

from eventconfig.audit import VersionNotFound
from eventconfig.gateway.app import GatewayServer, create_app
from eventconfig.gateway.auth import LoginChecker, hash_password, token_digest
from eventconfig.gateway.backend import Backend, HistoryReaders
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from tests.integration.gateway_http import assert_problem, next_event, sse_events, wait_started

pytestmark = pytest.mark.integration

TOKEN = "test-token-0123456789"
PASSWORD = "correct horse battery staple"


@dataclass
class Gateways:
    settings: Settings
    dev: str  # base URL of the development-mode app
    prod: str  # base URL of the production-mode app


@pytest.fixture(scope="module")
async def gateways(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateways]:
    settings = Settings.load({"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"gw{uuid.uuid4().hex[:10]}",
                              "data_dir": tmp_path_factory.mktemp("gateway") / "data", "max_value_bytes": 4096,
                              "min_version_wait_ms": 500}, env={})
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
    service = ConfigService(settings)
    await service.start()
    await service.writer.wait_active(60)
    assert service.projector is not None
    await service.projector.wait_active(60)
    backend = Backend(settings, request_timeout=20)
    await backend.start()
    production = LoginChecker.from_mapping({
        "tokens": [{"actor": "deploy-bot", "sha256": token_digest(TOKEN)}],
        "users": [{"username": "alice", "password": hash_password(PASSWORD, iterations=1000),
                   "actor": "alice@example.com"}]})
    servers = [GatewayServer(create_app(backend, auth), "127.0.0.1", 0) for auth in (LoginChecker(), production)]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        for server, task in zip(servers, tasks):
            await wait_started(server, task)
        yield Gateways(settings, *(f"http://127.0.0.1:{server.port}" for server in servers))
    finally:
        for server in servers:
            server.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await backend.stop()
        await service.stop()


@pytest.fixture
async def http(gateways: Gateways) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateways.dev, timeout=20) as client:
        yield client


@pytest.fixture
def ws(unique: str) -> str:
    return f"ws-{unique}"


def item(ws: str, type_: str, key: str) -> str:
    return f"/v1/workspaces/{ws}/config/{type_}/{key}"


# --- config --------------------------------------------------------------------------------


async def test_a_put_answers_its_version_and_a_read_with_min_version_sees_it(http, ws):
    put = await http.put(item(ws, "prompt", "system"), json={"value": '{"tone": "warm"}'})
    assert put.status_code == 200
    version = put.json()["version"]
    assert put.headers["etag"] == f'"{version}"' and put.headers["x-eventconfig-version"] == str(version)

    got = await http.get(item(ws, "prompt", "system"), params={"min_version": version})
    assert got.status_code == 200
    assert got.json() == {"workspace": ws, "type": "prompt", "key": "system", "value": '{"tone": "warm"}',
                          "version": version}
    assert got.headers["etag"] == f'"{version}"'
    assert int(got.headers["x-eventconfig-version"]) >= version

    raw = await http.put(item(ws, "prompt", "path/with/slashes"), content="plain text\n",
                         headers={"content-type": "text/plain"})
    got = await http.get(item(ws, "prompt", "path/with/slashes"), params={"min_version": raw.json()["version"]})
    assert got.json()["value"] == "plain text\n" and got.json()["key"] == "path/with/slashes"

    unchanged = await http.get(item(ws, "prompt", "system"), headers={"if-none-match": f'"{version}"'},
                               params={"min_version": version})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == f'"{version}"'


async def test_if_match_is_compare_and_set_and_a_conflict_writes_nothing(http, ws):
    first = (await http.put(item(ws, "flag", "beta"), json={"value": "on"})).json()["version"]
    second = (await http.put(item(ws, "flag", "beta"), json={"value": "off"},
                             headers={"if-match": f'"{first}"'})).json()["version"]
    stale = await http.put(item(ws, "flag", "beta"), json={"value": "mine"}, headers={"if-match": f'"{first}"'})
    body = assert_problem(stale, 412, "conflict")
    assert str(second) in body["detail"]
    assert (await http.get(item(ws, "flag", "beta"), params={"min_version": second})).json()["value"] == "off"

    assert_problem(await http.put(item(ws, "flag", "beta"), json={"value": "x"}, headers={"if-none-match": "*"}),
                   412, "conflict")
    created = await http.put(item(ws, "flag", "new"), json={"value": "x"}, headers={"if-none-match": "*"})
    assert created.status_code == 200
    weak = await http.put(item(ws, "flag", "beta"), json={"value": "w"}, headers={"if-match": f'W/"{second}"'})
    assert weak.status_code == 200


async def test_a_delete_honours_if_match_and_the_key_is_then_gone(http, ws):
    version = (await http.put(item(ws, "t", "k"), json={"value": "v"})).json()["version"]
    assert_problem(await http.delete(item(ws, "t", "k"), headers={"if-match": f'"{version - 1}"'}), 412, "conflict")
    deleted = await http.delete(item(ws, "t", "k"), headers={"if-match": f'"{version}"'})
    assert deleted.status_code == 200 and deleted.json()["version"] > version
    gone = await http.get(item(ws, "t", "k"), params={"min_version": deleted.json()["version"]})
    assert "does not exist" in assert_problem(gone, 404, "not-found")["detail"]


async def test_dump_type_listing_and_workspaces(http, ws):
    version = (await http.post(f"/v1/workspaces/{ws}/batch", json={"put": [
        {"type": "prompt", "key": "a", "value": "1"}, {"type": "prompt", "key": "b", "value": "2"},
        {"type": "flow", "key": "f", "value": "{}"}]})).json()["version"]
    await http.put(item("__reserved-test", "t", "k"), json={"value": "v"})

    dump = (await http.get(f"/v1/workspaces/{ws}/config", params={"min_version": version})).json()
    assert dump["config"] == {"flow": {"f": "{}"}, "prompt": {"a": "1", "b": "2"}} and dump["version"] >= version
    listing = (await http.get(f"/v1/workspaces/{ws}/config/prompt", params={"min_version": version})).json()
    assert [(i["key"], i["value"], i["version"]) for i in listing["items"]] == [("a", "1", version),
                                                                                ("b", "2", version)]
    assert (await http.get("/v1/workspaces/nobody-here/config")).json()["config"] == {}

    names = (await http.get("/v1/workspaces", params={"min_version": version + 1})).json()["workspaces"]
    assert ws in names and "__reserved-test" not in names
    everything = (await http.get("/v1/workspaces", params={"reserved": "true"})).json()["workspaces"]
    assert "__reserved-test" in everything


async def test_a_batch_is_one_atomic_version_and_a_failed_precondition_writes_nothing(http, ws):
    version = (await http.post(f"/v1/workspaces/{ws}/batch", json={"put": [
        {"type": "t", "key": "a", "value": "1"}, {"type": "t", "key": "b", "value": "2", "if_version": 0}]})).json()[
        "version"]
    failed = await http.post(f"/v1/workspaces/{ws}/batch", json={"put": [
        {"type": "t", "key": "a", "value": "changed"}, {"type": "t", "key": "b", "value": "x", "if_version": 1}]})
    assert_problem(failed, 412, "conflict")
    assert (await http.get(item(ws, "t", "a"), params={"min_version": version})).json()["value"] == "1"

    removed = await http.post(f"/v1/workspaces/{ws}/batch", json={"delete": [
        {"type": "t", "key": "a"}, {"type": "t", "key": "b", "if_version": version}]})
    after = (await http.get(f"/v1/workspaces/{ws}/config", params={"min_version": removed.json()["version"]})).json()
    assert after["config"] == {}

    both = await http.post(f"/v1/workspaces/{ws}/batch", json={"put": [{"type": "t", "key": "a", "value": "1"}],
                                                                "delete": [{"type": "t", "key": "b"}]})
    assert_problem(both, 400, "bad-request")
    assert_problem(await http.post(f"/v1/workspaces/{ws}/batch", json={}), 400, "bad-request")
    assert_problem(await http.post(f"/v1/workspaces/{ws}/batch", json={"put": [{"type": "t"}]}), 400, "bad-request")


async def test_bad_input_is_a_400_too_large_a_413_and_an_unreachable_version_a_504(http, ws):
    assert_problem(await http.put(item(ws, "t", "k"), json={"value": "v"}, headers={"if-match": "soon"}),
                   400, "bad-request")
    assert_problem(await http.put(item(ws, "t", "k"), content=b"{not json",
                                  headers={"content-type": "application/json"}), 400, "bad-request")
    assert_problem(await http.put(item(ws, "t", "k"), json={"value": 7}), 400, "bad-request")
    assert_problem(await http.put(item(ws, "t", "k"), content=b"\xff\xfe",
                                  headers={"content-type": "text/plain"}), 400, "bad-request")
    assert_problem(await http.put(item(ws, "t", "k"), json={"value": "v"},
                                  headers={"if-match": '"1"', "if-none-match": "*"}), 400, "bad-request")
    assert_problem(await http.put(item(ws, "t", "k"), json={"value": "v"}, headers={"if-none-match": '"3"'}),
                   400, "bad-request")
    assert_problem(await http.get(item(ws, "t", "k"), params={"min_version": -1}), 400, "bad-request")
    assert_problem(await http.put(item(ws, "t", "k"), json={"value": "x" * 5000}), 413, "too-large")
    assert_problem(await http.get(item(ws, "t", "k"), params={"min_version": 10**12}), 504, "timeout")
    assert_problem(await http.get("/v1/no-such-thing"), 404, "not-found")
    assert_problem(await http.post(item(ws, "t", "k")), 405, "method-not-allowed")
    assert (await http.get(item(ws, "t", "missing"))).status_code == 404


# --- history, state, diff ------------------------------------------------------------------


async def _three_versions(http: httpx.AsyncClient, ws: str) -> list[int]:
    versions = []
    for value in ("one", "two", "three"):
        versions.append((await http.put(item(ws, "prompt", "system"), json={"value": value},
                                        headers={"x-eventconfig-actor": "bob"})).json()["version"])
    return versions


async def test_history_filters_paginates_and_names_the_unverified_actor(http, ws):
    v1, v2, v3 = await _three_versions(http, ws)
    await http.put(item(ws, "prompt", "other"), json={"value": "x"})

    page = await http.get("/v1/history", params={"workspace": ws, "key": "system", "limit": 2})
    body = page.json()
    assert [m["version"] for m in body["items"]] == [v1, v2]
    assert body["items"][0]["actor"] == "unverified:bob"
    assert body["items"][1]["changes"] == [{"type": "prompt", "key": "system", "previous": "one", "value": "two"}]
    assert body["next"].startswith("/v1/history?") and page.headers["link"] == f'<{body["next"]}>; rel="next"'
    rest = (await http.get(body["next"])).json()
    assert [m["version"] for m in rest["items"]] == [v3] and rest["next"] is None

    newest = (await http.get("/v1/history", params={"workspace": ws, "order": "desc", "limit": 2})).json()
    assert [m["version"] for m in newest["items"]] == [v3 + 1, v3]
    assert newest["items"][0]["actor"] == "anonymous"
    older = (await http.get(newest["next"])).json()
    assert [m["version"] for m in older["items"]] == [v2, v1]

    ranged = (await http.get("/v1/history", params={"workspace": ws, "from_version": v2, "to_version": v2})).json()
    assert [m["version"] for m in ranged["items"]] == [v2]
    since = ranged["items"][0]["time"]
    timed = (await http.get("/v1/history", params={"workspace": ws, "key": "system", "since": since})).json()
    assert [m["version"] for m in timed["items"]][0] >= v2

    for asc_or_desc in ("asc", "desc"):  # past the head a listing selects nothing: empty, not an error
        beyond = await http.get("/v1/history", params={"from_version": 10**9, "order": asc_or_desc})
        assert (beyond.status_code, beyond.json()) == (200, {"items": [], "next": None})

    assert_problem(await http.get("/v1/history", params={"since": "yesterday-ish"}), 400, "bad-request")
    assert_problem(await http.get("/v1/history", params={"from_version": 5, "to_version": 4}), 400, "bad-request")
    assert_problem(await http.get("/v1/history", params={"limit": 0}), 400, "bad-request")
    assert_problem(await http.get("/v1/history", params={"order": "sideways"}), 400, "bad-request")


async def test_state_at_a_version_or_time_and_the_diff_of_two_versions(http, ws):
    v1, v2, v3 = await _three_versions(http, ws)
    at = (await http.get("/v1/state", params={"at_version": v2, "workspace": ws})).json()
    assert at["version"] == v2 and at["config"] == {"prompt": {"system": "two"}} and at["time"].endswith("Z")
    at_time = (await http.get("/v1/state", params={"at_time": at["timestamp_ms"], "workspace": ws})).json()
    assert at_time["config"]["prompt"]["system"] in ("two", "three")  # v3 may share v2's millisecond
    everything = (await http.get("/v1/state", params={"at_version": v3})).json()
    assert everything["workspaces"][ws] == {"prompt": {"system": "three"}}

    diff = (await http.get("/v1/diff", params={"from": v1, "to": v3, "workspace": ws})).json()
    assert diff["changed"] == [{"kind": "changed", "workspace": ws, "type": "prompt", "key": "system",
                                "old": "one", "new": "three"}]
    assert diff["added"] == diff["removed"] == []

    assert_problem(await http.get("/v1/state"), 400, "bad-request")
    assert_problem(await http.get("/v1/state", params={"at_version": 1, "at_time": "2026-01-01"}), 400, "bad-request")
    assert_problem(await http.get("/v1/state", params={"at_time": "not a time"}), 400, "bad-request")
    assert_problem(await http.get("/v1/diff", params={"from": 1}), 400, "bad-request")
    assert_problem(await http.get("/v1/diff", params={"from": 1, "to": 10**9}), 404, "not-found")


async def test_history_readers_are_reused_and_one_that_failed_is_replaced(gateways):
    readers = HistoryReaders(gateways.settings, size=1)
    try:
        async with readers.reader() as first:
            pass
        with pytest.raises(VersionNotFound):
            async with readers.reader() as again:
                assert again is first
                await again.diff(1, 10**9)
        with pytest.raises(RuntimeError):
            async with readers.reader() as kept:
                assert kept is first  # an audit answer leaves the reader usable
                raise RuntimeError("the caller went away")
        async with readers.reader() as fresh:
            assert fresh is not first
            assert (await fresh.held()).end_offset >= 0
    finally:
        await readers.close()


# --- watch ---------------------------------------------------------------------------------


async def test_watch_streams_pokes_filtered_by_workspace_and_resumes_from_last_event_id(http, ws):
    other = f"{ws}-other"
    async with http.stream("GET", "/v1/watch", params={"workspace": ws}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        ready = await next_event(events, "ready")
        assert ready["event"] == "ready" and ready["id"] == ready["data"]["version"]
        await http.put(item(other, "t", "k"), json={"value": "not mine"})
        first = (await http.put(item(ws, "t", "k"), json={"value": "1"})).json()["version"]
        poke = await next_event(events, "poke")
        assert poke == {"event": "poke", "id": first,
                        "data": {"version": first, "changes": {"t": [ws]}, "workspace_changes": None}}
    second = (await http.put(item(ws, "t", "k"), json={"value": "2"})).json()["version"]
    third = (await http.put(item(ws, "u", "k"), json={"value": "3"})).json()["version"]

    async with http.stream("GET", "/v1/watch", params={"workspace": ws, "type": "t"},
                           headers={"last-event-id": str(first)}) as response:
        events = sse_events(response)
        assert (await next_event(events, "ready"))["id"] == first
        missed = await next_event(events, "replayed poke")
        assert missed["id"] == second  # the poke of `third` is of type u: filtered out
        fourth = (await http.put(item(ws, "t", "k"), json={"value": "4"})).json()["version"]
        assert (await next_event(events, "live poke"))["id"] == fourth > third

    assert_problem(await http.get("/v1/watch", headers={"last-event-id": "yesterday"}), 400, "bad-request")


async def delete_every_poke_so_far(settings: Settings) -> None:
    """What notify-topic retention does to old pokes, now."""
    tp = TopicPartition(settings.topics.notify, 0)
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        end = await end_offset(consumer, tp)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(end)})
    finally:
        await admin.close()


async def test_watch_asks_for_a_resync_when_retention_deleted_pokes_after_last_event_id(http, gateways, ws):
    first = (await http.put(item(ws, "t", "k"), json={"value": "1"})).json()["version"]
    last = (await http.put(item(ws, "t", "k"), json={"value": "2"})).json()["version"]
    async with http.stream("GET", "/v1/watch", params={"workspace": ws, "from_version": first}) as response:
        events = sse_events(response)
        assert (await next_event(events, "ready"))["id"] == first
        assert (await next_event(events, "poke"))["id"] == last  # now `last` has been poked
    await delete_every_poke_so_far(gateways.settings)

    async with http.stream("GET", "/v1/watch", headers={"last-event-id": str(first)}) as response:
        resync = await next_event(sse_events(response), "resync")
        assert resync["event"] == "resync" and resync["id"] >= last
        assert f"after version {first}" in resync["data"]["reason"]
    async with http.stream("GET", "/v1/watch", headers={"last-event-id": str(resync["id"])}) as response:
        events = sse_events(response)
        assert (await next_event(events, "ready"))["event"] == "ready"  # nothing after it was deleted
        newer = (await http.put(item(ws, "t", "k"), json={"value": "3"})).json()["version"]
        assert (await next_event(events, "poke"))["id"] == newer


# --- authentication ------------------------------------------------------------------------


async def test_production_mode_needs_credentials_and_records_the_verified_actor(gateways, ws):
    async with httpx.AsyncClient(base_url=gateways.prod, timeout=20) as prod:
        missing = await prod.put(item(ws, "t", "k"), json={"value": "v"})
        assert_problem(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert_problem(await prod.get("/v1/workspaces"), 401, "unauthorized")
        assert_problem(await prod.get("/v1/workspaces", headers={"authorization": "Bearer wrong"}),
                       401, "unauthorized")
        assert_problem(await prod.get("/v1/workspaces", headers={"authorization": "Digest x"}), 401, "unauthorized")
        wrong_password = base64.b64encode(b"alice:guess").decode()
        assert_problem(await prod.get("/v1/workspaces", headers={"authorization": f"Basic {wrong_password}"}),
                       401, "unauthorized")

        bearer = {"authorization": f"Bearer {TOKEN}", "x-eventconfig-actor": "mallory"}
        by_token = await prod.put(item(ws, "t", "k"), json={"value": "v"}, headers=bearer)
        assert by_token.status_code == 200
        basic = {"authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}
        by_user = await prod.put(item(ws, "t", "k"), json={"value": "w"}, headers=basic)
        assert (await prod.get("/v1/whoami", headers=basic)).json() == {
            "actor": "alice@example.com", "verified": True, "mode": "production"}

        history = (await prod.get("/v1/history", params={"workspace": ws}, headers=bearer)).json()["items"]
        assert [(m["version"], m["actor"]) for m in history] == [
            (by_token.json()["version"], "deploy-bot"), (by_user.json()["version"], "alice@example.com")]
        assert (await prod.get("/healthz")).status_code == 200  # operators' endpoints stay open


async def test_development_mode_says_nobody_is_verified(http):
    assert (await http.get("/v1/whoami")).json() == {"actor": "anonymous", "verified": False, "mode": "development"}
    me = (await http.get("/v1/whoami", headers={"x-eventconfig-actor": "bob"})).json()
    assert me["actor"] == "unverified:bob" and me["verified"] is False


# --- operations, OpenAPI, console ------------------------------------------------------------


async def test_health_readiness_metrics_openapi_and_the_console_are_served(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = (await http.get("/readyz")).json()
    assert ready["status"] == "ready" and isinstance(ready["version"], int)
    await http.get("/v1/workspaces")
    metrics = (await http.get("/metrics")).text
    assert 'eventconfig_gateway_requests_total{method="GET",route="/v1/workspaces",status="200"}' in metrics

    spec = (await http.get("/openapi.json")).json()
    assert set(spec["paths"]) >= {
        "/v1/workspaces", "/v1/workspaces/{workspace}/config", "/v1/workspaces/{workspace}/config/{type}",
        "/v1/workspaces/{workspace}/config/{type}/{key}", "/v1/workspaces/{workspace}/batch", "/v1/history",
        "/v1/state", "/v1/diff", "/v1/watch", "/v1/whoami", "/healthz", "/readyz", "/metrics"}
    assert set(spec["paths"]["/v1/workspaces/{workspace}/config/{type}/{key}"]) == {"get", "put", "delete"}

    console = await http.get("/")
    assert console.status_code == 200 and "<title>eventconfig console</title>" in console.text
    for asset in ("console.js", "diff.js", "console.css"):
        assert (await http.get(f"/static/{asset}")).status_code == 200
    assert "cdn" not in console.text.lower() and "https://" not in console.text


# --- validated config (docs/design.md §5.5) --------------------------------------------------


async def test_a_value_its_schema_refuses_is_a_422_with_the_path_and_drafts_are_checked_first(http, ws, unique):
    type_ = f"prompt-{unique}"
    schema = {"type": "object", "required": ["text"], "properties": {"temperature": {"type": "number"}}}
    written = await http.put(item("__schemas__", type_, f"{ws}*"), json={"value": json.dumps(schema)})
    version = written.json()["version"]

    refused = await http.put(item(ws, type_, "p"), json={"value": '{"text": "t", "temperature": "hot"}'})
    body = assert_problem(refused, 422, "invalid-value")
    assert body["path"] == "$.temperature" and body["item"] == f"{type_}/p"
    assert body["detail"] == f"{type_}/p at $.temperature: 'hot' is not of type 'number' (schema {type_}@{ws}*)"
    batch = await http.post(f"/v1/workspaces/{ws}/batch", json={"put": [
        {"type": type_, "key": "ok", "value": '{"text": "t"}'}, {"type": type_, "key": "bad", "value": "[]"}]})
    assert assert_problem(batch, 422, "invalid-value")["item"] == f"{type_}/bad"
    assert (await http.get(item(ws, type_, "ok"), params={"min_version": version})).status_code == 404

    shown = await http.get(f"/v1/workspaces/{ws}/schemas/{type_}", params={"min_version": version})
    assert shown.json()["schemas"] == [{"workspaces": f"{ws}*", "schema": schema, "version": version}]
    elsewhere = await http.get(f"/v1/workspaces/other-{ws}/schemas/{type_}", params={"min_version": version})
    assert elsewhere.json()["schemas"] == []

    draft = {"type": type_, "key": "p", "value": '{"text": 1, "temperature": []}'}
    checked = await http.post(f"/v1/workspaces/{ws}/validate", json=draft, params={"min_version": version})
    assert assert_problem(checked, 422, "invalid-value")["path"] == "$.temperature"
    draft["value"] = '{"text": "t"}'
    checked = await http.post(f"/v1/workspaces/{ws}/validate", json=draft, params={"min_version": version})
    assert checked.json() == {"valid": True, "version": checked.json()["version"], "schemas": [f"{ws}*"]}
    assert (await http.put(item(ws, type_, "p"), json={"value": '{"text": "t"}'})).status_code == 200
