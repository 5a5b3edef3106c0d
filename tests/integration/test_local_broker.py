"""`eventconfig broker start` on a run dir that already holds a broker, asked for another port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from click.testing import CliRunner

from eventconfig.cli.main import cli
from eventconfig.localbroker import LocalBroker
from eventconfig.localbroker.processes import free_port

pytestmark = pytest.mark.integration


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def topic_exists(bootstrap: str, name: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return name in await admin.list_topics()
    finally:
        await admin.close()


def test_a_running_broker_says_why_it_cannot_move_and_a_stopped_one_moves_with_its_data(tmp_path: Path):
    run_dir = tmp_path / "broker"
    first, second = free_port(), free_port()
    broker = LocalBroker(run_dir, port=first, heap_mb=256)
    assert broker.start() == f"127.0.0.1:{first}"
    try:
        asyncio.run(create_topic(f"127.0.0.1:{first}", "kept"))

        refused = CliRunner().invoke(cli, ["broker", "start", "--run-dir", str(run_dir), "--port", str(second)])
        assert refused.exit_code == 1
        assert refused.output.strip().startswith(f"error: a broker already runs from {run_dir.resolve()} on port "
                                                 f"{first}; stop it first"), refused.output
        assert LocalBroker(run_dir).status() is not None, "the running broker is left alone"

        broker.stop()
        moved = LocalBroker(run_dir, port=second, heap_mb=256)
        assert moved.start() == f"127.0.0.1:{second}"
        assert asyncio.run(topic_exists(f"127.0.0.1:{second}", "kept")), "the data moved with the port"
        restarted = CliRunner().invoke(cli, ["broker", "start", "--run-dir", str(run_dir)])
        assert (restarted.exit_code, restarted.output.splitlines()[-1]) == (0, f"127.0.0.1:{second}"), \
            "without --port, start finds the broker where it now runs"
    finally:
        LocalBroker(run_dir).stop()
