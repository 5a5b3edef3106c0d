"""`eventconfig broker` on a run dir whose nodes are not running: clear one-line answers, no JVM needed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventconfig.cli.main import cli
from eventconfig.localbroker import DOWN, BrokerError, BrokerState, LocalBroker, NodeState
from eventconfig.localbroker.processes import start_ticks


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    """A run dir that once held a 3-node cluster, all of whose nodes are gone."""
    state = BrokerState("cid", [NodeState(i, 29090 + i, 39090 + i, dead_pid()) for i in (1, 2, 3)])
    (tmp_path / "broker.json").write_text(json.dumps(state.to_json()))
    return tmp_path


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["broker", *args])


def test_status_of_a_broker_whose_nodes_are_all_down_says_none_runs(cluster_dir: Path):
    result = invoke("status", "--run-dir", str(cluster_dir))
    assert result.exit_code == 1
    assert result.output.strip() == "error: no broker running"


def test_fault_commands_name_the_node_that_is_not_running_or_does_not_exist(cluster_dir: Path):
    down = invoke("kill", "--run-dir", str(cluster_dir), "--node", "2")
    assert (down.exit_code, down.output.strip()) == (1, "error: node 2 is not running")
    unknown = invoke("pause", "--run-dir", str(cluster_dir), "--node", "9")
    assert (unknown.exit_code, unknown.output.strip()) == (1, "error: no node 9; this broker has nodes 1, 2, 3")
    assert "Traceback" not in down.output + unknown.output


def test_a_run_dir_keeps_its_node_count(cluster_dir: Path):
    with pytest.raises(BrokerError, match="holds a 3-node broker; stop it and give another --run-dir for a 1-node"):
        LocalBroker(cluster_dir, nodes=1).start()


def test_the_layout_written_before_clusters_existed_reads_as_one_node(tmp_path: Path):
    (tmp_path / "broker.json").write_text(json.dumps({"pid": 0, "port": 9092, "controller_port": 9093,
                                                      "cluster_id": "cid"}))
    state = LocalBroker(tmp_path).layout()
    assert state == BrokerState("cid", [NodeState(1, 9092, 9093, 0)])
    assert LocalBroker.node_status(state.nodes[0]) == DOWN
    assert state.bootstrap == "127.0.0.1:9092"


def test_a_port_held_by_another_process_is_named_before_any_node_starts(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("start", "--run-dir", str(tmp_path / "broker"), "--port", str(port), "--timeout", "5")
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"error: port {port} on 127.0.0.1 is in use by another process")



def sleeper(*argv: str) -> subprocess.Popen[bytes]:
    """A live process, its own group leader, that no broker started (returned once it runs ``argv``)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv], start_new_session=True)
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 10
    while b"time.sleep(60)" not in cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)  # between fork and exec the child still shows the parent's command line
    return proc


def layout_with(tmp_path: Path, node: NodeState) -> Path:
    (tmp_path / "broker.json").write_text(json.dumps(BrokerState("cid", [node]).to_json()))
    return tmp_path


@pytest.mark.parametrize(("argv", "later"), [((), None), (("kafka.Kafka",), 1)],
                         ids=["old layout, other command line", "kafka.Kafka, other start time"])
def test_stop_and_kill_never_signal_a_process_that_got_a_nodes_pid_since(tmp_path: Path, argv, later):
    stranger = sleeper(*argv)
    try:
        started = 0 if later is None else start_ticks(stranger.pid) + later
        run_dir = layout_with(tmp_path, NodeState(1, 29091, 39091, stranger.pid, started))

        assert not LocalBroker(run_dir).stop(timeout=1)
        killed = invoke("kill", "--run-dir", str(run_dir), "--node", "1")

        assert (killed.exit_code, killed.output.strip()) == (1, "error: node 1 is not running")
        assert stranger.poll() is None, "a process the broker did not start was signalled"
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("old_layout", [False, True])
def test_kill_signals_the_process_it_started(tmp_path: Path, old_layout):
    node_process = sleeper("kafka.Kafka")
    started = 0 if old_layout else start_ticks(node_process.pid)
    run_dir = layout_with(tmp_path, NodeState(1, 29091, 39091, node_process.pid, started))

    assert LocalBroker(run_dir).kill()
    node_process.wait(10)  # reaped by the broker's liveness check already, or now
    assert start_ticks(node_process.pid) == 0, "the node's process still exists"
