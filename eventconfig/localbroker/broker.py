"""A real single-node Apache Kafka broker (KRaft) for development, tests and benchmarks.

The broker jars come from Maven Central through Maven (``pom.xml`` beside this file) into a cache
folder, once; later starts need no network. The broker runs as a detached JVM whose state (pid,
ports, cluster id) lives in ``<run_dir>/broker.json``, so ``start`` and ``stop`` can be separate
commands and a second ``start`` of a running broker is a no-op.

Example::

    broker = LocalBroker(Path(".eventconfig/broker"), port=9092)
    bootstrap = broker.start()      # resolves jars if needed, formats storage, waits until ready
    broker.stop()
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
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eventconfig.errors import EventConfigError
from eventconfig.localbroker.secure import Credentials

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
class BrokerState:
    """What a running broker leaves in ``broker.json``."""

    pid: int
    port: int
    controller_port: int
    cluster_id: str
    secure: bool = False  # SASL/SCRAM, TLS and ACLs (secure.py)
    tls_port: int = 0  # secure mode: the SASL_SSL listener

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


class LocalBroker:
    """One Kafka broker process whose data, logs and state live under ``run_dir``."""

    def __init__(
        self,
        run_dir: Path,
        *,
        port: int = 0,
        heap_mb: int = 512,
        cache_dir: Path | None = None,
        secure: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.port = port
        self.heap_mb = heap_mb
        self.cache_dir = cache_dir
        self.secure = secure

    # --- paths ---------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.run_dir / "broker.json"

    @property
    def log_file(self) -> Path:
        """The broker's own log (log4j2), the file to read when something goes wrong."""
        return self.run_dir / "logs" / "server.log"

    @property
    def stdout_file(self) -> Path:
        return self.run_dir / "logs" / "stdout.log"

    # --- lifecycle -----------------------------------------------------------------------------

    def status(self) -> BrokerState | None:
        """The state of the running broker, or None when none runs from this folder."""
        if not self.state_file.exists():
            return None
        state = BrokerState(**json.loads(self.state_file.read_text()))
        if not _alive(state.pid):
            return None
        return state

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker (or find it running) and return its bootstrap address once it serves."""
        running = self.status()
        if running is not None:
            _wait_ready(running, timeout, self)
            return running.bootstrap
        lib = provision(self.cache_dir)
        state = self._prepare(lib)
        started = time.monotonic()
        self.stdout_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_file, "ab") as out:
            proc = subprocess.Popen(
                ["java", f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", *_G1_FLAGS, *self._common_flags(lib),
                 "kafka.Kafka", str(self.run_dir / "server.properties")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        state.pid = proc.pid
        self.state_file.write_text(json.dumps(asdict(state)))
        _wait_ready(state, timeout, self)
        log.info("Kafka broker ready at %s in %.1f s (pid %d)", state.bootstrap, time.monotonic() - started, proc.pid)
        return state.bootstrap

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker gracefully (SIGTERM, then SIGKILL after ``timeout``); False if none ran."""
        state = self.status()
        if state is None:
            return False
        _signal_group(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(state.pid):
            log.warning("broker did not stop in %.0f s; killing it", timeout)
            _signal_group(state.pid, signal.SIGKILL)
            while _alive(state.pid):
                time.sleep(0.05)
        return True

    def kill(self) -> bool:
        """Kill the broker at once (SIGKILL), as a crash would; False if none ran."""
        state = self.status()
        if state is None:
            return False
        _signal_group(state.pid, signal.SIGKILL)
        while _alive(state.pid):
            time.sleep(0.05)
        return True

    def credentials(self) -> Credentials | None:
        """The users and passwords of a secure broker (None for a plain one)."""
        return Credentials.load(self.run_dir)

    def admin_kwargs(self) -> dict[str, Any]:
        """aiokafka connection arguments of the super user (none for a plain broker)."""
        creds = self.credentials()
        return creds.client_kwargs() if creds else {}

    def log_tail(self, lines: int = 80) -> str:
        """The last lines of the broker log, for failing tests and start errors."""
        for path in (self.log_file, self.stdout_file):
            if path.exists():
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no broker log yet)"

    # --- internals -----------------------------------------------------------------------------

    def _common_flags(self, lib: Path) -> list[str]:
        log4j = self.run_dir / "log4j2.properties"
        return [f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={self.run_dir / 'logs'}",
                "-cp", f"{lib}/*"]

    def _prepare(self, lib: Path) -> BrokerState:
        """Write the configs and format storage on first use; later starts keep data and ports."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        previous = json.loads(self.state_file.read_text()) if self.state_file.exists() else None
        if previous is not None and previous.get("secure", False) != self.secure:
            raise BrokerError(f"{self.run_dir} holds a {'secure' if previous.get('secure') else 'plain'} broker; "
                              "use another --run-dir to switch modes")
        if previous is not None and (self.port in (0, previous["port"])):
            state = BrokerState(**previous)
        else:
            state = BrokerState(pid=0, port=self.port or free_port(), controller_port=free_port(),
                                cluster_id=_cluster_id(), secure=self.secure,
                                tls_port=free_port() if self.secure else 0)
        (self.run_dir / "log4j2.properties").write_text(_RESOURCES.joinpath("log4j2.properties").read_text())
        template = _RESOURCES.joinpath("server.properties.template").read_text()
        properties = template.format(port=state.port, controller_port=state.controller_port,
                                     data_dir=self.run_dir / "data")
        scram: list[str] = []
        if self.secure:
            creds = Credentials.load_or_create(self.run_dir)
            properties += creds.server_properties(state.port, state.tls_port, state.controller_port, self.run_dir)
            scram = creds.format_args()
        (self.run_dir / "server.properties").write_text(properties)
        os.chmod(self.run_dir / "server.properties", 0o600)  # secure mode: it holds the super user's password
        fmt = subprocess.run(
            ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", *self._common_flags(lib), "kafka.tools.StorageTool",
             "format", "-t", state.cluster_id, "-c", str(self.run_dir / "server.properties"), "--ignore-formatted",
             *scram],
            capture_output=True, text=True,
        )
        if fmt.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
        return state


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _wait_ready(state: BrokerState, timeout: float, broker: LocalBroker) -> None:
    """Wait for the PLAINTEXT port (opened only once the broker is unfenced), then one metadata call."""
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(state.pid):
            raise BrokerError(f"the Kafka broker exited during start; its log ends with:\n{broker.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", state.port), timeout=0.5).close()
            asyncio.run(_describe_cluster(state.bootstrap, broker.admin_kwargs()))
            return
        except (OSError, asyncio.TimeoutError, EventConfigError) as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"broker not ready after {timeout:.0f} s ({exc}); log:\n{broker.log_tail()}") from exc
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
