"""Security on a real secured broker (SASL/SCRAM-SHA-512, StandardAuthorizer, no ACL = denied).

Each test has its own deployment (topic prefix) on the session's secure broker; the users are the
broker's role users (``service``, ``client``, ``viewer``, ``auditor``, ``admin``) and its super user.
After ``acls apply`` every process works with its role's ACLs alone, and what a role must not do is
refused by the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (GroupAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError,
                             TransactionalIdAuthorizationFailed)

from eventconfig.client import ConfigClient, ConfigSubscriber, LocalView
from eventconfig.kafka.acl_plan import plan
from eventconfig.kafka.acls import apply, describe
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.localbroker import LocalBroker
from eventconfig.localbroker.secure import CA_FILE, ROLE_USERS, SUPER_USER
from eventconfig.settings import Settings
from tests.support import assert_one_line_error, eventconfig, start_process, wait_until

pytestmark = pytest.mark.integration


class Deployment:
    """One deployment on the secure broker, seen as any of its users."""

    def __init__(self, broker: LocalBroker, prefix: str, root: Path) -> None:
        state, creds = broker.status(), broker.credentials()
        assert state is not None and creds is not None, "the secure broker is not running"
        self.bootstrap, self.creds, self.prefix, self.root = state.bootstrap, creds, prefix, root
        self.tls_bootstrap, self.ca_file = f"127.0.0.1:{state.tls_port}", broker.run_dir / CA_FILE

    def settings(self, user: str) -> Settings:
        return Settings.load({"bootstrap_servers": self.bootstrap, "topic_prefix": self.prefix,
                              "data_dir": self.root / user}, env=self.creds.environment(user))

    async def cli(self, user: str | None, *args: str, password: str | None = None, tls: bool = False,
                  ca_file: str | None = None) -> subprocess.CompletedProcess[str]:
        """``eventconfig ARGS`` connecting as ``user`` (None: without credentials), with its own password
        unless ``password`` is given; ``tls``: to the SASL_SSL listener, trusting ``ca_file`` (default:
        the broker's CA)."""
        env = {"EVENTCONFIG_TOPIC_PREFIX": self.prefix, "EVENTCONFIG_DATA_DIR": str(self.root / (user or "anon")),
               **(self.creds.environment(user, self.ca_file if tls else None) if user else {})}
        if password is not None:
            env["EVENTCONFIG_SASL_PASSWORD"] = password
        if ca_file is not None:
            env["EVENTCONFIG_SSL_CAFILE"] = ca_file
        return await asyncio.to_thread(eventconfig, self.tls_bootstrap if tls else self.bootstrap, "--log-level",
                                       "WARNING", *args, cwd=self.root, env=env)


@pytest.fixture
def deployment(secure_broker: LocalBroker, unique: str, tmp_path: Path) -> Deployment:
    return Deployment(secure_broker, f"s{unique}", tmp_path)


@pytest.fixture
async def granted(deployment: Deployment) -> Deployment:
    """Every role user holds its role's ACLs (applied by the super user); the admin created the topics."""
    root = deployment.settings(SUPER_USER)
    async with admin_client(root) as admin:
        for role in ROLE_USERS:
            await apply(admin, plan(root, [role], f"User:{role}"))
    admin_settings = deployment.settings("admin")
    async with admin_client(admin_settings) as admin:
        await create_topics(admin, admin_settings)
    return deployment


async def refused_produce(settings: Settings, topic: str) -> KafkaError | None:
    """The error producing one record to ``topic`` ends in (None when it was written)."""
    producer = AIOKafkaProducer(**settings.kafka_kwargs(), request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"forged")
        return None
    except KafkaError as exc:
        return exc
    finally:
        await producer.stop()


async def refused_transactional_id(settings: Settings, transactional_id: str) -> KafkaError | None:
    producer = AIOKafkaProducer(**settings.kafka_kwargs(), transactional_id=transactional_id,
                                request_timeout_ms=10_000)
    try:
        await producer.start()
        return None
    except KafkaError as exc:
        return exc
    finally:
        await producer.stop()


async def test_acls_apply_creates_the_plan_once_and_only_a_super_user_may_apply(deployment: Deployment) -> None:
    args = ("acls", "apply", "--role", "client", "--role", "viewer", "--principal", "User:app")
    wanted = plan(deployment.settings(SUPER_USER), ["client", "viewer"], "User:app")

    planned = await deployment.cli(None, *args[:1], "plan", *args[2:])
    assert planned.returncode == 0 and planned.stdout.splitlines() == [acl.line() for acl in wanted]
    first = await deployment.cli(SUPER_USER, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == f"{len(wanted)} created, 0 already present"
    again = await deployment.cli(SUPER_USER, *args)
    assert again.stdout.splitlines() == [f"0 created, {len(wanted)} already present"], "apply is idempotent"
    async with admin_client(deployment.settings(SUPER_USER)) as admin:
        assert await describe(admin, "User:app") >= set(wanted)

    assert_one_line_error(await deployment.cli("client", *args), 1, "needs DESCRIBE and ALTER on the cluster")


async def test_a_client_cannot_write_log_history_or_notify_nor_act_as_the_writer(granted: Deployment) -> None:
    client = granted.settings("client")
    topics = client.topics
    assert await refused_produce(client, topics.request) is None, "a client writes requests"
    for topic in (topics.log, topics.history, topics.notify, topics.response, topics.dlq):
        assert isinstance(await refused_produce(client, topic), TopicAuthorizationFailedError), topic
    for role in ("writer", "projector"):
        refused = await refused_transactional_id(client, client.transactional_id(role))
        assert isinstance(refused, TransactionalIdAuthorizationFailed), f"{role}: {refused!r}"
    intruder = AIOKafkaConsumer(**client.kafka_kwargs(), group_id=client.group_id("writer"))
    await intruder.start()
    try:
        intruder.subscribe([topics.request])
        with pytest.raises(GroupAuthorizationFailedError):  # joining would steal the writer's partition
            await asyncio.wait_for(intruder.getone(), 20)
    finally:
        await intruder.stop()


async def test_an_auditor_reads_log_and_history_and_can_write_nothing(granted: Deployment) -> None:
    auditor = granted.settings("auditor")
    for topic in vars(auditor.topics).values():
        assert isinstance(await refused_produce(auditor, topic), TopicAuthorizationFailedError), topic
    refused = await refused_transactional_id(auditor, auditor.transactional_id("writer"))
    assert isinstance(refused, TransactionalIdAuthorizationFailed), repr(refused)
    history = await granted.cli("auditor", "history", "--format", "json")
    assert history.returncode == 0 and json.loads(history.stdout) == [], history.stderr


async def test_clients_without_credentials_or_with_a_wrong_password_are_refused(granted: Deployment) -> None:
    assert_one_line_error(await granted.cli(None, "get", "-t", "t", "-k", "k", "--timeout", "5"), 3)
    wrong = await granted.cli("client", "get", "-t", "t", "-k", "k", password="not-the-password")
    # aiokafka reports a failed SASL handshake as "unable to bootstrap" (the cause is only logged).
    assert_one_line_error(wrong, 3, "cannot reach Kafka")


async def test_the_tls_listener_serves_clients_that_trust_the_brokers_ca_and_only_those(granted: Deployment) -> None:
    checked = await granted.cli("admin", "topics", "check", tls=True)
    assert checked.returncode == 0 and f"{granted.prefix}.log" in checked.stdout, checked.stderr
    history = await granted.cli("auditor", "history", "--format", "json", tls=True)
    assert (history.returncode, history.stdout.strip()) == (0, "[]"), history.stderr
    untrusted = await granted.cli("auditor", "history", tls=True, ca_file="")  # the system's CAs only
    assert_one_line_error(untrusted, 3, "cannot reach Kafka", "are the credentials and the CA good?")


@contextlib.contextmanager
def service_processes(granted: Deployment, tmp_path: Path, run: str = "") -> Iterator[None]:
    """``serve --no-projector`` and ``project`` as the service user; their logs are printed if the body
    fails, and both must stop cleanly."""
    service = granted.settings("service")
    processes = [start_process(service, "serve", tmp_path / f"service-view{run}", tmp_path / "serve.log",
                               "--no-projector"),
                 start_process(service, "project", tmp_path / f"projector-view{run}", tmp_path / "project.log")]
    try:
        yield
    except BaseException:
        for name in ("serve.log", "project.log"):
            print(f"--- {name}\n{(tmp_path / name).read_text(errors='replace')[-4000:]}")
        raise
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            assert process.wait(30) == 0, "serve and project stop cleanly"


async def test_every_process_works_with_its_role_acls_alone(granted: Deployment, tmp_path: Path) -> None:
    with service_processes(granted, tmp_path):
        await _exercise_every_role(granted, tmp_path)


async def test_a_writer_and_projector_that_take_over_after_pokes_work_with_the_service_acls(
        granted: Deployment, tmp_path: Path) -> None:
    """Both roles read the notify topic's last poke when they take over (design.md §7): once it holds
    pokes, a restarted writer and projector must still be allowed to read it."""
    client_settings = granted.settings("client")

    async def ignore(*_: Any) -> None:
        pass

    for run, value in enumerate(("hello", "bonjour")):  # the second run takes over a notify topic with a poke
        with service_processes(granted, tmp_path, str(run)):
            async with ConfigClient(client_settings, timeout=60) as client:
                subscriber = ConfigSubscriber(client_settings)
                subscriber.on_change(ignore, types=["prompt"])
                await subscriber.start(timeout=60)
                try:
                    version = await client.put("w", "prompt", "greeting", value)
                    await wait_until(lambda: subscriber.version >= version, 30, f"the poke of version {version}")
                finally:
                    await subscriber.stop()


async def _exercise_every_role(granted: Deployment, tmp_path: Path) -> None:
    client_settings = granted.settings("client")
    async with ConfigClient(client_settings, timeout=60) as client:
        first = await client.put("w", "prompt", "greeting", "hello")  # waits for the writer to become active
        seen: list[tuple[str, Any, int]] = []

        async def record(workspace: str, config: Any, version: int) -> None:
            seen.append((workspace, config, version))

        subscriber = ConfigSubscriber(client_settings)
        subscriber.on_change(record, types=["prompt"])
        await subscriber.start(timeout=30)
        try:
            second = await client.put("w", "prompt", "greeting", "bonjour")
            await wait_until(lambda: subscriber.version >= second, 30, "the subscriber saw the poke of the put")
        finally:
            await subscriber.stop()
        assert seen[-1] == ("w", {"prompt": {"greeting": "bonjour"}}, second)

    put = await granted.cli("client", "put", "-w", "w", "-t", "prompt", "-k", "cli", "--value", "from the CLI")
    assert put.returncode == 0, put.stderr
    got = await granted.cli("client", "get", "-w", "w", "-t", "prompt", "-k", "cli")
    assert (got.returncode, got.stdout) == (0, "from the CLI\n"), got.stderr

    view = LocalView(granted.settings("viewer"), tmp_path / "viewer-view")
    await view.start(timeout=60)
    try:
        assert await view.wait_for_version(second, 30), "the viewer's local view caught up"
        assert view.get("w", "prompt", "greeting") == "bonjour"
    finally:
        await view.stop()

    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"flow": {"rag": "3"}}))
    spec = tmp_path / "bootstrap.json"
    core = "eventconfig.bootstrap.initialisers"
    spec.write_text(json.dumps({"initialisers": [
        {"class": f"{core}.KafkaTopology", "name": "topology", "flag": "v1", "params": {}},
        {"class": f"{core}.TemplateSeed", "name": "seed", "flag": "v1", "params": {"config_file": str(seed)}}]}))
    booted = await granted.cli("admin", "bootstrap", "-c", str(spec), "--once")
    assert booted.returncode == 0, booted.stdout + booted.stderr

    history = await granted.cli("auditor", "history", "-w", "w", "--format", "json")
    assert history.returncode == 0, history.stderr
    assert [m["version"] for m in json.loads(history.stdout)][:2] == [first, second]
    state = await granted.cli("auditor", "state", "--at-version", str(first), "-w", "w")
    assert state.returncode == 0 and "hello" in state.stdout, state.stderr
    diff = await granted.cli("auditor", "diff", "--from", str(first), "--to", str(second), "--format", "json")
    assert diff.returncode == 0 and "bonjour" in diff.stdout, diff.stderr
    verify = await granted.cli("auditor", "verify", "--scratch")
    assert verify.returncode == 0, verify.stdout + verify.stderr
