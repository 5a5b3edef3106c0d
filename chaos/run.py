"""The orchestration of a chaos run: cluster, deployment, clients, rounds of faults, then the model check.

Example::

    figures = await run_chaos(ChaosSpec(workdir=Path("/tmp/chaos"), seed=7, rounds=10))
    print("\\n".join(figures.table()))
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from chaos import model
from chaos.faults import FAULTS, OFFSETS_TOPIC, TXN_STATE_TOPIC, schedule
from chaos.load import TYPE, LoadSpec, workspace_of
from chaos.observers import ObserverSpec
from chaos.processes import ChaosError, Child, service_env
from eventconfig.audit.views import verify_view
from eventconfig.client import ConfigClient
from eventconfig.codec import default_codec
from eventconfig.errors import TopologyError
from eventconfig.kafka.reading import read_whole
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.localbroker import LocalBroker
from eventconfig.logrecords import decode_record
from eventconfig.settings import Settings

codec = default_codec()
# The fail-over settings docs/operations.md recommends where the brokers allow 3 s group sessions
# (the local cluster does); the rest of the recommendation is eventconfig's defaults.
TUNED = {"EVENTCONFIG_WRITER_SESSION_TIMEOUT_MS": "3000", "EVENTCONFIG_WRITER_HEARTBEAT_INTERVAL_MS": "500"}
_CHECKOUT = Path(__file__).resolve().parent.parent  # where `chaos` and `eventconfig` are imported from


@dataclass
class ChaosSpec:
    """The size and pace of one run; the defaults are the full run of ``make chaos``."""

    workdir: Path
    seed: int = 7
    rounds: int = 10
    kinds: list[str] = field(default_factory=list)  # empty: every fault kind
    writers: int = 8
    cas_writers: int = 3
    readers: int = 3
    subscribers: int = 20
    views: int = 2
    settle_s: float = 4.0  # normal load between faults
    broker_down_s: float = 5.0
    pause_s: float = 10.0  # longer than the session timeout of the writer's group (TUNED)
    client_pause_s: float = 15.0
    min_acks: int = 0  # after the rounds, more rounds until this many writes were acknowledged
    base_port: int = 0  # 0: free ports


class Deployment:
    """The running pieces a fault acts on: the cluster, the service processes, the views."""

    def __init__(self, spec: ChaosSpec, broker: LocalBroker, settings: Settings) -> None:
        self.spec = spec
        self.broker = broker
        self.settings = settings
        self.rng = random.Random(spec.seed + 1)
        self.serves: list[Child] = []
        self.observers: list[Child] = []  # the subscribers' process and the views'
        self.observer_specs: list[ObserverSpec] = []
        self.views: list[Child] = []
        self.loads: list[Child] = []  # the last one is the client a fault pauses
        self.events = [spec.workdir / f"calls-{i}.jsonl" for i in range(2)]
        self.counters: dict[str, Any] = {}
        self.admin: AIOKafkaAdminClient | None = None
        self.watcher: AIOKafkaAdminClient | None = None  # short requests: a frozen node delays a look by 1 s
        self.notes: list[str] = []
        self.phases: dict[str, float] = {}  # of the current round: seconds from the fault to each phase

    def calls(self) -> list[model.Call]:
        """Every call the load processes recorded so far."""
        return [model.Call.from_json(json.loads(line)) for path in self.events if path.exists()
                for line in path.read_text().splitlines()]

    def env(self, data_dir: Path) -> dict[str, str]:
        """A child's environment: this deployment's settings, and this checkout first on the path."""
        path = os.pathsep.join(p for p in (str(_CHECKOUT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, "EVENTCONFIG_PROJECTOR_LINGER_MS": "100", **TUNED}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        return service_env(self.settings, data_dir, env)

    async def active(self, role: str, timeout: float = 60.0) -> Child:
        """The live service process that most recently took ``role`` (waiting for a take-over)."""
        deadline = time.monotonic() + timeout
        while True:
            alive = [s for s in self.serves if s.alive and s.last_active(role)]
            if alive:
                return max(alive, key=lambda s: s.last_active(role))
            if time.monotonic() > deadline:
                raise ChaosError(f"no live process took the {role} role within {timeout:.0f} s")
            await asyncio.sleep(0.2)

    async def leader(self, topic: str, admin: AIOKafkaAdminClient | None = None) -> int:
        admin = admin or self.admin
        assert admin is not None
        [described] = await admin.describe_topics([topic])
        return int(described["partitions"][0]["leader"])

    async def leader_moved(self, topic: str, node: int, timeout: float = 60.0) -> float | None:
        """Seconds until ``topic``'s leader is another node than ``node`` (None: not within ``timeout``)."""
        started = time.time()
        while time.time() - started < timeout:
            try:
                if await self.leader(topic, self.watcher) not in (node, -1):
                    return time.time() - started
            except Exception:  # noqa: BLE001 - the metadata request went to the dead node: ask again
                pass
            await asyncio.sleep(0.1)
        return None

    async def note_moved(self, watcher: asyncio.Task[float | None] | None, topic: str | None) -> None:
        """Record the measured leadership move of this round's fault, if it was seen."""
        if watcher is None:
            return
        if not watcher.done():
            watcher.cancel()
        elif (seconds := watcher.result()) is not None:
            name = "transaction coordinator moved" if topic == TXN_STATE_TOPIC else "log leader moved"
            self.phases[name] = seconds

    def writer_activations(self) -> list[tuple[float, float]]:
        """(when, how long it took) of every activation of the writer role, in every service process."""
        return sorted(a for serve in self.serves for a in serve.activations("writer"))

    async def wait_replicated(self, timeout: float) -> None:
        """Until every partition of the deployment and of Kafka's internal topics has 3 in-sync replicas."""
        assert self.admin is not None
        topics = [*vars(self.settings.topics).values(), TXN_STATE_TOPIC, OFFSETS_TOPIC]
        deadline = time.monotonic() + timeout
        while True:
            try:
                described = await self.admin.describe_topics(topics)
                short = [f"{t['topic']}-{p['partition']}" for t in described for p in t["partitions"]
                         if len(p["isr"]) < 3] + [t["topic"] for t in described if t["error_code"]]
            except Exception as exc:  # noqa: BLE001 - metadata of a recovering cluster: ask again
                short = [repr(exc)]
            if not short:
                return
            if time.monotonic() > deadline:
                raise ChaosError(f"partitions not fully replicated after {timeout:.0f} s: {short[:5]}")
            await asyncio.sleep(0.5)

    async def revive(self, after: str) -> None:
        """Restart any service process that exited on its own (noted: it should not happen)."""
        for serve in self.serves:
            if not serve.alive:
                code = serve.proc.returncode if serve.proc else None
                self.notes.append(f"{serve.name} exited with code {code} during or after {after}")
                await serve.start()


async def run_chaos(spec: ChaosSpec) -> model.Figures:
    """Run every round, then collect and check; the cluster and every process are stopped in the end."""
    started = time.monotonic()
    spec.workdir.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(spec.workdir / "cluster", nodes=3, port=spec.base_port)
    bootstrap = await asyncio.to_thread(broker.start, 240.0)
    # No replication pair: `topics create` chooses 3 replicas, 2 in sync, from the cluster (checked by
    # wait_replicated, which wants 3 in-sync replicas of every partition).
    settings = Settings.load({"bootstrap_servers": bootstrap, "topic_prefix": f"chaos-{uuid.uuid4().hex[:8]}",
                              "data_dir": spec.workdir / "data"}, env={})
    dep = Deployment(spec, broker, settings)
    try:
        await _start(dep)
        faults, load_start, load_end = await _strike(dep)
        recorded = await _collect(dep, faults, load_start, load_end)
        recorded.run_seconds = time.monotonic() - started
        return model.check(recorded)
    finally:
        for child in [*dep.serves, *dep.observers, *dep.loads]:
            await child.stop()
        for admin in (dep.admin, dep.watcher):
            if admin is not None:
                await admin.close()
        await asyncio.to_thread(broker.stop)


async def _start(dep: Deployment) -> None:
    """Topics, the two service processes, then the observers and the load, each ready before the next."""
    spec, settings, work = dep.spec, dep.settings, dep.spec.workdir
    await _create_topics(settings)
    dep.admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), request_timeout_ms=10_000)
    await dep.admin.start()
    dep.watcher = AIOKafkaAdminClient(**settings.kafka_kwargs(), request_timeout_ms=1_000)
    await dep.watcher.start()
    for name in ("serve-a", "serve-b"):
        dep.serves.append(Child.python(name, "eventconfig", ["--log-format", "json", "serve"],
                                       dep.env(work / name), work / f"{name}.log"))
        await dep.serves[-1].start()
    await _wait_serving(settings, 120)
    await dep.wait_replicated(120)  # the service's groups and transactions created Kafka's internal topics
    dep.observer_specs = ([ObserverSpec("subscribers", str(work / "subscribers.json"), count=spec.subscribers)]
                          if spec.subscribers else [])
    dep.observer_specs += [ObserverSpec("view", str(work / f"view-{i}.json"), path=str(work / f"view-{i}"))
                           for i in range(spec.views)]
    for i, ospec in enumerate(dep.observer_specs):
        child = Child.python(f"{ospec.kind}-{i}", "chaos.observers", [json.dumps(asdict(ospec))],
                             dep.env(work / f"observer-{i}"), work / f"observer-{i}.log", protocol=True)
        dep.observers.append(child)
        if ospec.kind == "view":
            dep.views.append(child)
        await child.start()
    for index, (load_spec, events) in enumerate(zip(load_specs(spec), dep.events)):
        events.unlink(missing_ok=True)
        load = Child.python(f"load-{index}", "chaos.load", [json.dumps(asdict(load_spec))],
                            dep.env(work / f"load-{index}"), work / f"load-{index}.log", protocol=True)
        dep.loads.append(load)
        await load.start()


def load_specs(spec: ChaosSpec) -> list[LoadSpec]:
    """Two load processes: most writers and readers in the first; a few in the second, the client that a
    fault pauses (its writes and reads in flight are answered late, after the others went on)."""
    paused_writers = max(1, spec.writers // 4)
    paused_cas = min(spec.cas_writers, max(1, spec.cas_writers // 3))
    paused_readers = max(1, spec.readers // 3)
    shares = [(spec.writers - paused_writers, spec.cas_writers - paused_cas, spec.readers - paused_readers, 0),
              (paused_writers, paused_cas, paused_readers, spec.writers - paused_writers)]
    return [LoadSpec(events=str(spec.workdir / f"calls-{i}.jsonl"), writers=writers, cas_writers=min(cas, writers),
                     readers=readers, seed=spec.seed, first_writer=first)
            for i, (writers, cas, readers, first) in enumerate(shares)]


@dataclass
class Struck:
    """A fault as it was injected: its kind, target, start (wall clock) and measured phases."""

    kind: str
    target: str
    at: float
    phases: dict[str, float]


async def _strike(dep: Deployment) -> tuple[list[Struck], float, float]:
    """The rounds (and more until ``min_acks`` writes were acknowledged): settle, one fault (ending once
    its target recovered), revive what died; then stop the load."""
    load_start = time.time()
    faults: list[Struck] = []
    plan = schedule(dep.spec.seed, dep.spec.rounds, dep.spec.kinds)
    more = iter(schedule(dep.spec.seed + 1, 10_000, dep.spec.kinds))
    while plan:
        kind = plan.pop(0)
        await asyncio.sleep(dep.spec.settle_s)
        at, dep.phases = time.time(), {}
        target = await FAULTS[kind](dep)
        faults.append(Struck(kind, target, at, dep.phases))
        print(f"round {len(faults)}: {kind} on {target} ({time.time() - at:.1f} s)", file=sys.stderr, flush=True)
        await dep.revive(kind)
        if not plan and len(model.acks_of(dep.calls())) < dep.spec.min_acks:
            plan.append(next(more))
    await asyncio.sleep(dep.spec.settle_s)
    for load in dep.loads:
        await load.tell("stop")
    dep.counters = _merged([json.loads(await load.expect("DONE", 120)) for load in dep.loads])
    return faults, load_start, time.time()


def _merged(counters: list[dict[str, Any]]) -> dict[str, Any]:
    """The load processes' counters added up (``errors`` by name)."""
    total: dict[str, Any] = {"errors": {}}
    for one in counters:
        for name, value in one.items():
            if name == "errors":
                for error, n in value.items():
                    total["errors"][error] = total["errors"].get(error, 0) + n
            else:
                total[name] = total.get(name, 0) + value
    return total


async def _collect(dep: Deployment, faults: list[Struck], load_start: float, load_end: float) -> model.Recorded:
    """Once writes stopped: every observer's state at the final version, the service's, and the topics."""
    settings, counters = dep.settings, dep.counters
    final = await _quiet_version(settings, 60)
    states = []
    for child, ospec in zip(dep.observers, dep.observer_specs):
        await child.tell(str(final))
        await child.expect("DONE", ospec.catch_up_s + 30)
        states += [model.Observer(o["name"], o["version"], o["state"], o["out_of_order"])
                   for o in json.loads(Path(ospec.out).read_text())]
    workspaces = sorted({workspace_of(w, LoadSpec.workspaces) for w in range(dep.spec.writers)})
    async with ConfigClient(settings, timeout=60) as client:
        service = {ws: await client.get_values(ws, TYPE, min_version=final) for ws in workspaces}
    report = await verify_view(settings, scratch=True)
    ends = [f.at for f in faults[1:]] + [load_end]
    calls, activations = dep.calls(), dep.writer_activations()
    return model.Recorded(
        type=TYPE,
        acks=model.acks_of(calls),
        calls=calls,
        unknown_writes=counters["unknown"],
        history=await _history(settings),
        markers=await _markers(settings),
        pokes=await _pokes(settings),
        service_state=service,
        observers=states,
        faults=[model.Fault(f.kind, f.target, f.at, until, tuple(sorted(
                    {**f.phases, **model.take_over([a for a in activations if a[0] <= until], f.at)}.items())))
                for f, until in zip(faults, ends)],
        calm=model.Fault("none", "", load_start, faults[0].at if faults else load_end),
        cas_conflicts=counters["conflicts"], reads=counters["reads"], stale_reads=counters["stale"],
        read_timeouts=counters["read_timeouts"], reads_unanswered=counters["unanswered"], verify_ok=report.ok,
        verify_summary=report.lines()[-1],
        notes=dep.notes,
    )


async def _create_topics(settings: Settings, attempts: int = 3) -> None:
    """Create the deployment's topics; a just-started cluster may take a while to show new topics."""
    for attempt in range(1, attempts + 1):
        try:
            async with admin_client(settings) as admin:
                await create_topics(admin, settings)
            return
        except TopologyError as exc:
            if attempt == attempts:
                raise
            print(f"creating topics, attempt {attempt}: {exc}; again", file=sys.stderr, flush=True)


async def _wait_serving(settings: Settings, timeout: float) -> None:
    async with ConfigClient(settings, timeout=5) as client:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await client.version()
                return
            except Exception as exc:  # noqa: BLE001 - not serving yet
                if time.monotonic() > deadline:
                    raise ChaosError(f"the service did not answer within {timeout:.0f} s: {exc}") from exc


async def _quiet_version(settings: Settings, timeout: float) -> int:
    """The version once no write lands for two seconds (late requests of timed-out clients included)."""
    async with ConfigClient(settings, timeout=timeout) as client:
        deadline = time.monotonic() + timeout
        version = await client.version()
        while time.monotonic() < deadline:
            await asyncio.sleep(2)
            now = await client.version()
            if now == version:
                return version
            version = now
    raise ChaosError(f"writes kept landing for {timeout:.0f} s after the load stopped")


async def _history(settings: Settings) -> list[model.Mutation]:
    mutations = []
    for record in await read_whole(settings, settings.topics.history):
        m = codec.decode("Mutation", record.value)
        mutations.append(model.Mutation(m["version"], m["request_id"], m["workspace"],
                                        {c["key"]: c["value"] for c in m["changes"] if c["type"] == TYPE}))
    return mutations


async def _markers(settings: Settings) -> list[int]:
    records = [decode_record(r.key, r.value, r.headers) for r in await read_whole(settings, settings.topics.log)]
    return [r.version for r in records if r.is_marker]


async def _pokes(settings: Settings) -> list[model.Poke]:
    pokes = []
    for record in await read_whole(settings, settings.topics.notify):
        poke = codec.decode("ConfigPush", record.value)
        pokes.append(model.Poke(poke["version"], {t: list(ws) for t, ws in poke["changes"].items()}))
    return pokes
