"""Test harness: one real Kafka broker per test session, unique topic and group names per test.

Set ``KAFKA_BOOTSTRAP_SERVERS`` to run the integration tests against an existing broker instead.
When an integration test fails, the tail of the broker's log is attached to its report.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

# hypothesis's pytest plugin imports hypothesis at the end of a session that ran none of its tests;
# pytest's assertion rewriting then parses it there, which CPython 3.11.7 can fail with "SystemError:
# AST constructor recursion depth mismatch" after the tests passed. Importing it first avoids that.
import hypothesis  # noqa: F401
import pytest

from eventconfig.localbroker import LocalBroker, prewarm
from eventconfig.settings import Settings

_broker: LocalBroker | None = None


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the session's broker (started here unless one is given)."""
    global _broker
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    _broker = LocalBroker(Path(tmp_path_factory.mktemp("kafka")), heap_mb=768)
    bootstrap = _broker.start()
    asyncio.run(prewarm(bootstrap))
    try:
        yield bootstrap
    finally:
        _broker.stop()


@pytest.fixture
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker of the test's own (free port, own folder) that it may crash and restart. Never the
    session's: recovering every partition the session created after a kill -9 is slow, and a broker
    that came back late would fail every later test. Pair it with ``settings_on_local_broker``."""
    dedicated = LocalBroker(Path(tmp_path_factory.mktemp("crash-kafka")), heap_mb=512)
    try:
        asyncio.run(prewarm(dedicated.start()))
        yield dedicated
    finally:
        dedicated.stop()


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker of its own in secure mode (SASL/SCRAM, ACLs enforced) for the security tests; always
    started here, as the shared development broker is a plain one."""
    broker = LocalBroker(Path(tmp_path_factory.mktemp("secure-kafka")), heap_mb=512, secure=True)
    try:
        asyncio.run(prewarm(broker.start(), **broker.admin_kwargs()))
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def settings_on_local_broker(local_broker: LocalBroker, unique: str, tmp_path: Path) -> Settings:
    """Like ``settings``, on the ``local_broker``; a test module uses it as its ``settings``."""
    state = local_broker.status()
    assert state is not None, "the local broker is not running"
    return deployment_settings(state.bootstrap, unique, tmp_path)


@pytest.fixture
def unique() -> str:
    """A short random suffix for topic, group and transactional id names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(kafka_bootstrap: str, unique: str, tmp_path: Path) -> Settings:
    """Settings of a fresh deployment: its own topics, groups, transactional ids and data dir."""
    return deployment_settings(kafka_bootstrap, unique, tmp_path)


def deployment_settings(bootstrap: str, unique: str, tmp_path: Path) -> Settings:
    # A few response partitions: every test routes its answers, and the broker keeps few partitions.
    return Settings.load({"bootstrap_servers": bootstrap, "topic_prefix": f"t{unique}",
                          "data_dir": tmp_path / "data", "response_partitions": 4,
                          "read_partitions": 2}, env={})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.failed and _broker is not None and "kafka_bootstrap" in getattr(item, "fixturenames", ()):
        report.sections.append(("Kafka broker log (tail)", _broker.log_tail(60)))


@pytest.fixture
async def service(settings: Settings):
    """A running config service (writer + view) on freshly created topics of this test's deployment."""
    from tests.support import running_service

    async with running_service(settings) as running:
        yield running
