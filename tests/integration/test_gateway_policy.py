"""The HTTP gateway under a keyring and a policy, on the real broker (issue 21 items 1, 4 and 6).

One secured service (keyring + policy) and one gateway that signs as ``gateway`` on behalf of the
callers it authenticates. ``alice`` may read and write ``acme-*``; ``bob`` may only read type
``prompt`` there; ``root`` is the admin that seeds the data. Every read endpoint shows bob only
what the policy grants him, writes are judged and recorded as the HTTP caller, the service's
``forbidden``/``unauthenticated`` are 403/401, pattern rules grant no more than they say, failed
logins are rate-limited, and newest-first history pages read from the end of the topic.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from eventconfig.audit import HistoryQuery, HistoryReader
from eventconfig.client import ConfigClient
from eventconfig.errors import Forbidden
from eventconfig.gateway.app import GatewayServer, create_app
from eventconfig.gateway.auth import LoginChecker, hash_password
from eventconfig.gateway.backend import Backend
from eventconfig.gateway.throttle import LoginThrottle
from eventconfig.settings import Settings
from eventconfig.signing import Signer, new_key_pair
from tests.integration.gateway_http import assert_problem, next_event, sse_events, wait_started
from tests.support import running_service, wait_until

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
USERS = {"alice": "alice", "bob": "bob", "rooty": "root"}  # username -> actor; rooty names a keyring actor


@dataclass
class Deployment:
    settings: Settings
    url: str  # the gateway
    throttled_url: str  # the same gateway with a login limit of 3 failures a minute
    root: ConfigClient  # the admin, signing for itself
    carol: ConfigClient  # signing for herself, under a rule of patterns that miss some names
    seeded: int  # the version after the seed


def _identity(root: Path, actor: str) -> tuple[Path, str]:
    pem, public = new_key_pair()
    path = root / f"{actor}.pem"
    path.write_bytes(pem)
    return path, public


def _settings(kafka_bootstrap: str, root: Path) -> tuple[Settings, dict[str, Path]]:
    keys = {actor: _identity(root, actor) for actor in ("gateway", "root", "carol")}
    keyring = {"actors": {actor: {"keys": [public]} for actor, (_, public) in keys.items()}}
    keyring["actors"]["gateway"]["delegates"] = ["*"]
    policy = {"admins": ["root"], "rules": [
        {"who": "alice", "workspaces": ["acme-*"], "access": "read-write"},
        {"who": "bob", "workspaces": ["acme-*"], "types": ["prompt"], "access": "read"},
        {"who": "carol", "workspaces": ["[!_]*"], "types": ["?*"], "access": "read"},
        # What an operator had to grant the gateway while it wrote as itself: now it grants no caller anything.
        {"who": "gateway", "workspaces": ["*"], "access": "read-write"}]}
    (root / "keyring.json").write_text(json.dumps(keyring))
    (root / "policy.json").write_text(json.dumps(policy))
    settings = Settings.load({"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"gp{uuid.uuid4().hex[:10]}",
                              "data_dir": root / "data", "response_partitions": 4, "min_version_wait_ms": 5000,
                              "auth_keyring_file": str(root / "keyring.json"),
                              "policy_file": str(root / "policy.json")}, env={})
    return settings, {actor: path for actor, (path, _) in keys.items()}


@pytest.fixture(scope="module")
async def deployment(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    settings, keys = _settings(kafka_bootstrap, tmp_path_factory.mktemp("gateway-policy"))
    users = [{"username": name, "password": hash_password(PASSWORD, iterations=1000), "actor": actor}
             for name, actor in USERS.items()]
    async with running_service(settings):
        gateway_settings = dataclasses.replace(settings, signing_key_file=str(keys["gateway"]), signing_actor="gateway")
        backend = Backend(gateway_settings, request_timeout=20)
        await backend.start()
        apps = [create_app(backend, LoginChecker.from_mapping({"users": users}, throttle))
                for throttle in (LoginThrottle(1000, 60), LoginThrottle(3, 60))]
        servers = [GatewayServer(app, "127.0.0.1", 0) for app in apps]
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        root = ConfigClient(settings, signer=Signer.from_file("root", keys["root"]))
        carol = ConfigClient(settings, signer=Signer.from_file("carol", keys["carol"]))
        try:
            for server, task in zip(servers, tasks):
                await wait_started(server, task)
            await root.start()
            await carol.start()
            await root.put_many("acme-1", [("prompt", "a", "1"), ("secret", "s", "hidden")])
            seeded = await root.put("other", "prompt", "x", "not bob's")
            yield Deployment(settings, *(f"http://127.0.0.1:{s.port}" for s in servers), root, carol, seeded)
        finally:
            await carol.stop()
            await root.stop()
            for server in servers:
                server.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            await backend.stop()


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture
async def bob(deployment: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=deployment.url, headers=basic("bob"), timeout=30) as client:
        yield client


@pytest.fixture
async def alice(deployment: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=deployment.url, headers=basic("alice"), timeout=30) as client:
        yield client


# --- reads: refused when they name what the caller may not read, filtered when they span ----------


async def test_item_type_and_dump_reads_are_403_outside_what_the_policy_grants(bob, deployment):
    at = {"min_version": deployment.seeded}
    assert (await bob.get("/v1/workspaces/acme-1/config/prompt/a", params=at)).json()["value"] == "1"
    for path in ("/v1/workspaces/acme-1/config/secret/s", "/v1/workspaces/acme-1/config/secret/missing",
                 "/v1/workspaces/other/config/prompt/x", "/v1/workspaces/acme-1/config/secret",
                 "/v1/workspaces/other/config"):
        body = assert_problem(await bob.get(path, params=at), 403, "forbidden")
        assert "actor 'bob' may not read" in body["detail"]
    dump = (await bob.get("/v1/workspaces/acme-1/config", params=at)).json()
    assert dump["config"] == {"prompt": {"a": "1"}}  # not the secret type
    names = (await bob.get("/v1/workspaces", params={**at, "reserved": "true"})).json()["workspaces"]
    assert names == ["acme-1"]


async def test_history_state_and_diff_show_only_what_the_caller_may_read(bob, deployment):
    history = (await bob.get("/v1/history")).json()["items"]
    assert [(m["workspace"], [c["type"] for c in m["changes"]]) for m in history] == [("acme-1", ["prompt"])]
    desc = (await bob.get("/v1/history", params={"order": "desc"})).json()["items"]
    assert desc == history
    for path, params in (("/v1/history", {"workspace": "other"}), ("/v1/history", {"workspace": "acme-1",
                                                                                    "type": "secret"}),
                         ("/v1/state", {"at_version": deployment.seeded, "workspace": "other"}),
                         ("/v1/diff", {"from": 0, "to": deployment.seeded, "workspace": "other"})):
        assert_problem(await bob.get(path, params=params), 403, "forbidden")
    state = (await bob.get("/v1/state", params={"at_version": deployment.seeded})).json()
    assert state["workspaces"] == {"acme-1": {"prompt": {"a": "1"}}}
    one = (await bob.get("/v1/state", params={"at_version": deployment.seeded, "workspace": "acme-1"})).json()
    assert one["config"] == {"prompt": {"a": "1"}}
    diff = (await bob.get("/v1/diff", params={"from": 0, "to": deployment.seeded})).json()
    assert [(c["workspace"], c["type"]) for c in diff["added"]] == [("acme-1", "prompt")]


async def test_watch_sends_the_caller_only_pokes_of_what_it_may_read(bob, deployment):
    assert_problem(await bob.get("/v1/watch", params={"workspace": "other"}), 403, "forbidden")
    async with bob.stream("GET", "/v1/watch") as response:
        events = sse_events(response)
        assert (await next_event(events, "ready"))["event"] == "ready"
        await deployment.root.put("other", "prompt", "x", "changed")
        await deployment.root.put("acme-1", "secret", "s", "changed")
        mine = await deployment.root.put("acme-1", "prompt", "a", "2")
        poke = await next_event(events, "poke")
        assert poke["id"] == mine and poke["data"]["changes"] == {"prompt": ["acme-1"]}


async def test_streams_of_different_callers_on_one_gateway_each_keep_their_own_filter(alice, bob, deployment):
    async with bob.stream("GET", "/v1/watch") as bobs, alice.stream("GET", "/v1/watch") as alices:
        bob_events, alice_events = sse_events(bobs), sse_events(alices)
        await next_event(bob_events, "ready")
        await next_event(alice_events, "ready")
        secret = await deployment.root.put("acme-1", "secret", "s", "again")
        prompt = await deployment.root.put("acme-1", "prompt", "a", "again")
        assert (await next_event(alice_events, "poke"))["data"]["changes"] == {"secret": ["acme-1"]}
        assert (await next_event(alice_events, "poke"))["id"] == prompt
        poke = await next_event(bob_events, "poke")  # bob may read prompts only: secret's poke is not his
        assert poke["id"] == prompt > secret and poke["data"]["changes"] == {"prompt": ["acme-1"]}


# --- writes: judged and recorded as the HTTP caller -------------------------------------------


async def test_a_write_through_the_gateway_is_recorded_as_the_caller_verified(alice, deployment):
    written = await alice.put("/v1/workspaces/acme-2/config/prompt/k", json={"value": "by alice"})
    assert written.status_code == 200, written.text
    version = written.json()["version"]
    async with HistoryReader(deployment.settings) as reader:
        [mutation] = [m async for m in reader.read(HistoryQuery(from_version=version, to_version=version))]
    assert (mutation.actor, mutation.actor_verified, mutation.workspace) == ("alice", True, "acme-2")


async def test_the_writer_judges_the_caller_not_the_gateway_and_its_refusals_are_403_and_401(bob, deployment):
    refused = await bob.put("/v1/workspaces/acme-1/config/prompt/a", json={"value": "bob may only read"})
    assert "actor 'bob' may not write acme-1/prompt" in assert_problem(refused, 403, "forbidden")["detail"]
    async with httpx.AsyncClient(base_url=deployment.url, headers=basic("rooty"), timeout=30) as rooty:
        # The gateway may delegate to "*", but a glob never reaches root, an actor with keys of its own.
        refused = await rooty.put("/v1/workspaces/__system__/config/t/k", json={"value": "as root?"})
    body = assert_problem(refused, 401, "unauthenticated")
    assert "may not act on behalf of 'root'" in body["detail"] and refused.headers["www-authenticate"]


# --- patterns ---------------------------------------------------------------------------------


async def test_pattern_rules_that_miss_some_name_grant_neither_all_workspace_reads_nor_config(deployment):
    """carol's rule is workspaces ``[!_]*``, types ``?*``: both matched the literal ``*`` before."""
    with pytest.raises(Forbidden, match=r"may not read \*/prompt"):
        await deployment.carol.get_values_all_workspaces("prompt")
    with pytest.raises(Forbidden, match=r"may not read \*/prompt"):
        await deployment.carol.get_keys_all_workspaces("prompt")
    with pytest.raises(Forbidden, match=r"may not read acme-1/\*"):
        await deployment.carol.get_all("acme-1")
    assert list(await deployment.carol.get_values("acme-1", "prompt", min_version=deployment.seeded)) == ["a"]


# --- gateway limits ----------------------------------------------------------------------------


async def test_failed_logins_are_limited_per_user_with_retry_after_and_unknown_users_count_alike(deployment):
    async with httpx.AsyncClient(base_url=deployment.throttled_url, timeout=30) as http:
        for _ in range(3):
            assert_problem(await http.get("/v1/whoami", headers=basic("alice", "guess")), 401, "unauthorized")
        locked = await http.get("/v1/whoami", headers=basic("alice"))  # the right password, too late
        assert_problem(locked, 429, "too-many-requests")
        assert 0 < int(locked.headers["retry-after"]) <= 60
        # The address is over its limit as well, whoever logs in from it now, known or not.
        assert_problem(await http.get("/v1/whoami", headers=basic("nobody", "x")), 429, "too-many-requests")


async def test_history_pages_newest_first_follow_next_links_and_read_from_the_end(alice, deployment):
    versions = [(await alice.put(f"/v1/workspaces/acme-pages/config/prompt/k{i}", json={"value": str(i)})).json()[
        "version"] for i in range(7)]
    seen: list[int] = []
    url: str | None = "/v1/history?workspace=acme-pages&order=desc&limit=3"
    while url is not None:
        page = (await alice.get(url)).json()
        seen += [m["version"] for m in page["items"]]
        url = page["next"]
    assert seen == versions[::-1]

    read: list[tuple[int, int]] = []
    async with HistoryReader(deployment.settings) as reader:
        stream = reader.newest_first(HistoryQuery(to_version=versions[3]), window=2,
                                     progress=lambda _, done, total: read.append((done, total)))
        newest = [await anext(stream) for _ in range(2)]
        await stream.aclose()
    assert [m.version for m in newest] == [versions[3], versions[3] - 1]
    assert read and read[-1][0] < read[-1][1] / 2, f"read {read[-1][0]} of {read[-1][1]} offsets for two mutations"


async def test_a_changed_policy_file_applies_to_the_gateways_reads_without_a_restart(bob, deployment):
    """docs/design.md §14.4: the gateway re-reads the policy file (and the keyring's groups) when it changes."""
    path = Path(deployment.settings.policy_file)
    original = path.read_text()
    item = "/v1/workspaces/other/config/prompt/x"
    at = {"min_version": deployment.seeded}
    assert_problem(await bob.get(item, params=at), 403, "forbidden")
    policy = json.loads(original)
    policy["rules"].append({"who": "bob", "workspaces": ["other"], "access": "read"})
    try:
        path.write_text(json.dumps(policy))
        await wait_until(lambda: _status(bob, item, at, 200), 30, "the gateway did not apply the changed policy")
    finally:
        path.write_text(original)
    await wait_until(lambda: _status(bob, item, at, 403), 30, "the gateway did not apply the restored policy")


async def _status(client: httpx.AsyncClient, path: str, params: dict[str, int], status: int) -> bool:
    return (await client.get(path, params=params)).status_code == status
