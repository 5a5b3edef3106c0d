"""A real Apache Kafka broker (KRaft, one node or a small cluster) for development, tests and benchmarks.

The broker jars come from Maven Central through Maven (``pom.xml`` beside this file) into a cache
folder, once; later starts need no network. Each node runs as a detached JVM; the layout (cluster
id, each node's ports and pid) lives in ``<run_dir>/broker.json``, so ``start``, ``stop``, ``status``
and the fault commands (``kill``, ``pause``, ``resume``, ``restart`` of one node) can be separate
commands, and a second ``start`` of a running broker is a no-op.

Example::

    broker = LocalBroker(Path(".eventconfig/broker"), port=9092)
    bootstrap = broker.start()      # resolves jars if needed, formats storage, waits until ready
    broker.stop()

    cluster = LocalBroker(Path(".eventconfig/cluster"), nodes=3, port=19092)   # ports 19092-19094
    cluster.start()                 # RF 3 and min.insync.replicas 2, internal topics included
    cluster.kill(node=2)            # a crash of one node; cluster.start() brings it back
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eventconfig.errors import EventConfigError
from eventconfig.localbroker.processes import free_port, is_process, port_taken, signal_group, start_ticks, stopped
from eventconfig.localbroker.secure import Credentials

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
_MAIN_CLASS = "kafka.Kafka"  # in every node's command line
_RESOURCES = resources.files("eventconfig.localbroker")
_G1_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
    "-XX:+ExitOnOutOfMemoryError",
]


class BrokerError(EventConfigError):
    """The local broker could not be provisioned, started or stopped."""


def default_cache_dir() -> Path:
    """Where the broker jars are cached: ``$EVENTCONFIG_CACHE_DIR`` or ``~/.cache/eventconfig``."""
    base = os.environ.get("EVENTCONFIG_CACHE_DIR") or Path.home() / ".cache" / "eventconfig"
    return Path(base) / f"kafka-{KAFKA_VERSION}"


def _cluster_id() -> str:
    """Kafka's own id format: URL-safe base64 of a UUID, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def provision(cache_dir: Path | None = None) -> Path:
    """Resolve the broker jars into ``cache_dir/lib`` (through Maven, once) and return that folder."""
    cache_dir = cache_dir or default_cache_dir()
    lib = cache_dir / "lib"
    if (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return lib
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is needed once to fetch the Kafka broker jars; install it first")
    cache_dir.mkdir(parents=True, exist_ok=True)
    pom = cache_dir / "pom.xml"
    pom.write_text(_RESOURCES.joinpath("pom.xml").read_text())
    log.info("resolving Apache Kafka %s jars through Maven into %s (first run only)", KAFKA_VERSION, lib)
    started = time.monotonic()
    proc = subprocess.run(
        ["mvn", "-B", "-q", "-f", str(pom), "package", f"-Dkafka.lib.dir={lib}"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BrokerError(f"mvn failed to resolve the Kafka jars:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    log.info("Kafka jars resolved in %.1f s", time.monotonic() - started)
    return lib


@dataclass
class NodeState:
    """One node of the broker: its id, ports and (while it runs) its process id and start time."""

    id: int
    port: int
    controller_port: int
    pid: int = 0
    started: int = 0  # the process's start time (ticks after boot); 0: written before this was kept

    @property
    def running(self) -> bool:
        """True while the stored process id is still this node's JVM (not a process that got the id since)."""
        return is_process(self.pid, self.started, _MAIN_CLASS)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class BrokerState:
    """What a broker leaves in ``broker.json``: its cluster id and its nodes."""

    cluster_id: str
    nodes: list[NodeState]
    secure: bool = False  # SASL/SCRAM, TLS and ACLs (secure.py); one node only
    tls_port: int = 0  # secure mode: the SASL_SSL listener

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def port(self) -> int:
        """The first node's port (a single-node broker's only port; a cluster's base port)."""
        return self.nodes[0].port

    @property
    def pid(self) -> int:
        """The first node's process id (a single-node broker's only one)."""
        return self.nodes[0].pid

    def node(self, node_id: int) -> NodeState:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise BrokerError(f"no node {node_id}; this broker has nodes {', '.join(str(n.id) for n in self.nodes)}")

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BrokerState:
        mode = {"secure": raw.get("secure", False), "tls_port": raw.get("tls_port", 0)}
        if "nodes" not in raw:  # written by a single-node broker before clusters existed
            return cls(raw["cluster_id"], [NodeState(1, raw["port"], raw["controller_port"], raw.get("pid", 0))],
                       **mode)
        return cls(raw["cluster_id"], [NodeState(**node) for node in raw["nodes"]], **mode)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


UP, PAUSED, DOWN = "up", "paused", "down"


class LocalBroker:
    """A Kafka broker of one or more KRaft nodes whose data, logs and state live under ``run_dir``.

    A single node keeps everything directly in ``run_dir``; a cluster gives each node ``node-<id>/``.
    Every node is broker and controller; the nodes form one static controller quorum.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        port: int = 0,
        nodes: int | None = None,
        heap_mb: int | None = None,
        cache_dir: Path | None = None,
        secure: bool | None = None,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.port = port
        self.nodes = nodes  # None: whatever the run dir holds, one node for a new one
        self.heap_mb = heap_mb
        self.cache_dir = cache_dir
        self.secure = secure  # None: whatever the run dir holds, plain for a new one

    # --- paths ---------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.run_dir / "broker.json"

    def node_dir(self, node_id: int, node_count: int) -> Path:
        return self.run_dir if node_count == 1 else self.run_dir / f"node-{node_id}"

    # --- lifecycle -----------------------------------------------------------------------------

    def layout(self) -> BrokerState | None:
        """The nodes this run dir holds (running or not), or None for a fresh run dir."""
        if not self.state_file.exists():
            return None
        return BrokerState.from_json(json.loads(self.state_file.read_text()))

    def status(self) -> BrokerState | None:
        """The layout of the broker while at least one of its nodes runs, else None."""
        state = self.layout()
        if state is None or not any(node.running for node in state.nodes):
            return None
        return state

    @staticmethod
    def node_status(node: NodeState) -> str:
        """``up``, ``paused`` (SIGSTOP) or ``down``."""
        if not node.running:
            return DOWN
        return PAUSED if stopped(node.pid) else UP

    def start(self, timeout: float = 90.0) -> str:
        """Start every node that is down (or find them running); return the bootstrap once all serve.

        A stopped broker may move to another ``port``; a running one says it must be stopped first.
        """
        state = self.layout()
        running = [n for n in state.nodes if n.running] if state else []
        if state is not None:
            self._refuse_to_change(state, bool(running))
        if not running:
            state = self._layout(state)
            for node in state.nodes:
                _check_ports(state, node)
        assert state is not None
        lib = provision(self.cache_dir)
        if not running:
            self._configure(lib, state)
        started = time.monotonic()
        for node in state.nodes:
            if not node.running:
                self._launch(lib, state, node)
        self.state_file.write_text(json.dumps(state.to_json()))
        for node in state.nodes:
            _wait_ready(node, timeout, self.log_tail, self.admin_kwargs())
        log.info("Kafka broker ready at %s in %.1f s", state.bootstrap, time.monotonic() - started)
        return state.bootstrap

    def stop(self, timeout: float = 30.0, node: int | None = None) -> bool:
        """Stop the node (or every node) gracefully: SIGTERM, then SIGKILL after ``timeout``;
        False if none ran."""
        targets = self._running(node)
        for target in targets:
            signal_group(target.pid, signal.SIGTERM)
            signal_group(target.pid, signal.SIGCONT)  # a paused node must wake to see the SIGTERM
        deadline = time.monotonic() + timeout
        while any(t.running for t in targets) and time.monotonic() < deadline:
            time.sleep(0.1)
        stuck = [t for t in targets if t.running]
        if stuck:
            log.warning("node(s) %s did not stop in %.0f s; killing them", [t.id for t in stuck], timeout)
            self._kill(stuck)
        return bool(targets)

    def kill(self, node: int | None = None) -> bool:
        """Kill the node (or every node) at once (SIGKILL), as a crash would; False if none ran."""
        targets = self._running(node)
        self._kill(targets)
        return bool(targets)

    def pause(self, node: int) -> bool:
        """Freeze a node (SIGSTOP), as a long GC pause or a hung machine would; False if it is down."""
        return self._signal(node, signal.SIGSTOP)

    def resume(self, node: int) -> bool:
        """Let a paused node run again (SIGCONT); False if it is down."""
        return self._signal(node, signal.SIGCONT)

    def restart(self, node: int, timeout: float = 90.0) -> str:
        """Stop one node gracefully (if it runs), start it again and wait until it serves."""
        self.stop(node=node)
        return self.start(timeout)

    def credentials(self) -> Credentials | None:
        """The users and passwords of a secure broker (None for a plain one)."""
        return Credentials.load(self.run_dir)

    def admin_kwargs(self) -> dict[str, Any]:
        """aiokafka connection arguments of the super user (none for a plain broker)."""
        creds = self.credentials()
        return creds.client_kwargs() if creds else {}

    def log_tail(self, lines: int = 80) -> str:
        """The last lines of each node's log, for failing tests and start errors."""
        state = self.layout()
        count = len(state.nodes) if state else 1
        ids = [n.id for n in state.nodes] if state else [1]
        tails = []
        for node_id in ids:
            tail = _tail(self.node_dir(node_id, count) / "logs", lines // count)
            tails.append(tail if count == 1 else f"--- node {node_id} ---\n{tail}")
        return "\n".join(tails)

    # --- internals -----------------------------------------------------------------------------

    def _refuse_to_change(self, state: BrokerState, running: bool) -> None:
        """A run dir keeps its node count and mode; a running broker keeps its ports (say why, never ignore)."""
        if self.secure not in (None, state.secure):
            raise BrokerError(f"{self.run_dir} holds a {'secure' if state.secure else 'plain'} broker; "
                              "use another --run-dir to switch modes")
        if self.nodes not in (None, len(state.nodes)):
            raise BrokerError(f"{self.run_dir} holds a {len(state.nodes)}-node broker; stop it and give another "
                              f"--run-dir for a {self.nodes}-node one")
        if running and self.port not in (0, state.port):
            raise BrokerError(f"a broker already runs from {self.run_dir} on port {state.port}; stop it first "
                              f"(eventconfig broker stop --run-dir {self.run_dir}) to move it to port {self.port}")

    def _running(self, node: int | None) -> list[NodeState]:
        state = self.layout()
        if state is None:
            return []
        targets = state.nodes if node is None else [state.node(node)]
        return [t for t in targets if t.running]

    def _signal(self, node: int, sig: signal.Signals) -> bool:
        targets = self._running(node)
        for target in targets:
            signal_group(target.pid, sig)
        return bool(targets)

    @staticmethod
    def _kill(targets: list[NodeState]) -> None:
        for target in targets:
            signal_group(target.pid, signal.SIGKILL)
        for target in targets:
            while target.running:
                time.sleep(0.05)

    def _heap_mb(self, count: int) -> int:
        return self.heap_mb or (512 if count == 1 else 384)

    def _common_flags(self, lib: Path, node_dir: Path) -> list[str]:
        return [f"-Dlog4j2.configurationFile={node_dir / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={node_dir / 'logs'}", "-cp", f"{lib}/*"]

    def _launch(self, lib: Path, state: BrokerState, node: NodeState) -> None:
        _check_ports(state, node)
        node_dir = self.node_dir(node.id, len(state.nodes))
        (node_dir / "logs").mkdir(parents=True, exist_ok=True)
        heap = self._heap_mb(len(state.nodes))
        with open(node_dir / "logs" / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                ["java", f"-Xms{heap}m", f"-Xmx{heap}m", *_G1_FLAGS, *self._common_flags(lib, node_dir),
                 "kafka.Kafka", str(node_dir / "server.properties")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        node.pid, node.started = proc.pid, start_ticks(proc.pid)

    def _layout(self, previous: BrokerState | None) -> BrokerState:
        """The nodes and their ports: an earlier run's (keeping its cluster id and controller ports,
        moving the broker ports to ``port`` if given), or a new layout."""
        count = len(previous.nodes) if previous else (self.nodes or 1)
        if self.secure and count > 1:
            raise BrokerError("a secure broker runs one node; start the cluster without --secure")
        state = previous or BrokerState(_cluster_id(), [NodeState(i, 0, free_port()) for i in range(1, count + 1)],
                                        secure=bool(self.secure), tls_port=free_port() if self.secure else 0)
        for index, node in enumerate(state.nodes):
            if self.port:
                node.port = self.port + index
            elif not node.port:
                node.port = free_port()
        return state

    def _configure(self, lib: Path, state: BrokerState) -> None:
        """Write every node's configs and format its storage on first use (later starts keep data)."""
        count = len(state.nodes)
        voters = ",".join(f"{n.id}@127.0.0.1:{n.controller_port}" for n in state.nodes)
        template = _RESOURCES.joinpath("server.properties.template").read_text()
        formats = []
        for node in state.nodes:
            node_dir = self.node_dir(node.id, count)
            node_dir.mkdir(parents=True, exist_ok=True)
            (node_dir / "log4j2.properties").write_text(_RESOURCES.joinpath("log4j2.properties").read_text())
            properties = template.format(
                node_id=node.id, voters=voters, port=node.port, controller_port=node.controller_port,
                data_dir=node_dir / "data", replicas=min(count, 3), min_isr=2 if count >= 3 else 1)
            scram: list[str] = []
            if state.secure:
                creds = Credentials.load_or_create(self.run_dir)
                properties += creds.server_properties(node.port, state.tls_port, node.controller_port, self.run_dir)
                scram = creds.format_args()
            (node_dir / "server.properties").write_text(properties)
            os.chmod(node_dir / "server.properties", 0o600)  # secure mode: it holds the super user's password
            formats.append(subprocess.Popen(
                ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", *self._common_flags(lib, node_dir),
                 "kafka.tools.StorageTool", "format", "-t", state.cluster_id, "-c",
                 str(node_dir / "server.properties"), "--ignore-formatted", *scram],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for fmt in formats:
            output, _ = fmt.communicate()
            if fmt.returncode != 0:
                raise BrokerError(f"formatting Kafka storage failed:\n{output}")


def _tail(logs: Path, lines: int) -> str:
    for path in (logs / "server.log", logs / "stdout.log"):
        if path.exists():
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no broker log yet)"


def _check_ports(state: BrokerState, node: NodeState) -> None:
    """Say which port is taken before a JVM fails on it with a bind error deep in its log."""
    for port in (node.port, node.controller_port, state.tls_port):
        reason = port_taken(port) if port else None
        if reason is not None:
            raise BrokerError(f"port {port} on 127.0.0.1 is in use by another process ({reason}); "
                              "choose another --port")


def _wait_ready(node: NodeState, timeout: float, log_tail: Callable[[], str], kwargs: dict[str, Any]) -> None:
    """Wait for the PLAINTEXT port (opened only once the node is unfenced), then one metadata call."""
    deadline = time.monotonic() + timeout
    while True:
        if not node.running:
            raise BrokerError(f"Kafka node {node.id} exited during start; its log ends with:\n{log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", node.port), timeout=0.5).close()
            asyncio.run(_describe_cluster(node.bootstrap, kwargs))
            return
        except (OSError, asyncio.TimeoutError, EventConfigError) as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"Kafka node {node.id} not ready after {timeout:.0f} s ({exc}); "
                                  f"log:\n{log_tail()}") from exc
            time.sleep(0.25)


async def _describe_cluster(bootstrap: str, kwargs: dict[str, Any]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **kwargs)
    try:
        await admin.start()
        await admin.describe_cluster()
    except KafkaError as exc:
        raise BrokerError(str(exc)) from exc
    finally:
        await admin.close()


async def prewarm(bootstrap: str, **kwargs: Any) -> None:
    """Create the broker's transaction-state and consumer-offsets topics now (first use costs a
    second or two), so the first transactional producer or consumer group of a test does not pay.
    ``kwargs``: connection arguments (a secure broker's :meth:`LocalBroker.admin_kwargs`)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    name = f"eventconfig-prewarm-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=name, **kwargs)
    await producer.start()
    await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=name, **kwargs)
    await consumer.start()
    await consumer.stop()
