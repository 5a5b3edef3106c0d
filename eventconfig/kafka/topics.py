"""The topics of docs/design.md §3: their specs, creation, and the startup check that refuses a bad layout.

A log or history topic with more than one partition, a log topic that is not compacted, or a topic
whose ``min.insync.replicas`` exceeds its replicas (no ``acks=all`` write could succeed) would
silently break ordering, history or every write; :func:`check_topics` turns those into a fatal
:class:`TopologyError`. Softer differences (retention) are returned as warnings. Unless the settings
name them, the replication factor and ``min.insync.replicas`` come from the cluster's broker count
(:func:`replication_for`).

Example::

    async with admin_client(settings) as admin:
        await create_topics(admin, settings)        # creates what is missing, then checks all
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from eventconfig.errors import TopologyError
from eventconfig.kafka.adapter import topics_seen_by_every_broker
from eventconfig.kafka.connect import started
from eventconfig.settings import DAY_MS, Settings

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_UNKNOWN_TOPIC = 3
_RETRY_FOR_S = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class TopicSpec:
    """What one topic must look like: partitions, whether others are tolerated, and its configs."""

    role: str
    name: str
    partitions: int  # created with
    configs: dict[str, str] = field(default_factory=dict)
    exact_partitions: bool = True  # False: any count is allowed (response topic), fewer with a warning
    must_compact: bool = False
    optional: bool = False  # missing: a warning (a deployment made before the topic existed), not an error


@dataclass(frozen=True)
class Replication:
    """Replicas per partition and the in-sync replicas an ``acks=all`` write needs."""

    factor: int
    min_insync: int


def replication_for(brokers: int, factor: int = 0, min_insync: int = 0) -> Replication:
    """The pair a deployment's topics get on a cluster of ``brokers``: ``factor`` and ``min_insync``
    when given (0: choose), else 3 replicas (fewer on a smaller cluster) and a majority in sync, so one
    broker may fail without stopping writes (1 of 1, 1 of 2, 2 of 3). A pair that cannot take writes
    is a TopologyError."""
    factor = factor or min(3, brokers)
    min_insync = min_insync or (factor // 2 + 1 if factor >= 3 else 1)
    if factor > brokers:
        raise TopologyError(f"replication factor {factor} needs {factor} brokers; the cluster has {brokers} "
                            f"(give --replication-factor {brokers} or less)")
    if min_insync > factor:
        raise TopologyError(f"min.insync.replicas {min_insync} is more than the replication factor {factor}: "
                            "no write could ever be acknowledged")
    return Replication(factor, min_insync)


async def cluster_replication(admin: AIOKafkaAdminClient, settings: Settings) -> Replication:
    """:func:`replication_for` the brokers the cluster lists now (a fenced or stopped one is not listed)."""
    brokers = len((await _retrying(admin.describe_cluster))["brokers"])
    return replication_for(brokers, settings.replication_factor, settings.min_insync_replicas)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The seven topics of a deployment with the configs docs/design.md §3 gives them."""
    names = settings.topics
    common = {"max.message.bytes": str(settings.max_message_bytes)}
    if settings.min_insync_replicas:
        common["min.insync.replicas"] = str(settings.min_insync_replicas)

    def delete(retention_ms: int) -> dict[str, str]:
        return {**common, "cleanup.policy": "delete", "retention.ms": str(retention_ms)}

    return [
        TopicSpec("request", names.request, 1, delete(DAY_MS)),
        TopicSpec("response", names.response, settings.response_partitions, delete(3600 * 1000),
                  exact_partitions=False),
        TopicSpec("log", names.log, 1, {
            **common,
            "cleanup.policy": "compact",
            "min.compaction.lag.ms": str(settings.log_min_compaction_lag_ms),
            "delete.retention.ms": str(settings.log_delete_retention_ms),
        }, must_compact=True),
        TopicSpec("history", names.history, 1, delete(settings.history_retention_ms)),
        TopicSpec("notify", names.notify, 1, delete(DAY_MS)),
        TopicSpec("dlq", names.dlq, 1, delete(7 * DAY_MS)),
        TopicSpec("read", names.read, settings.read_partitions, delete(3600 * 1000), exact_partitions=False,
                  optional=True),
    ]


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit; KafkaUnavailable when no broker answers."""
    admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), request_timeout_ms=settings.request_timeout_ms)
    async with started(admin, settings):
        yield admin


async def create_topics(admin: AIOKafkaAdminClient, settings: Settings) -> list[str]:
    """Create the missing topics (replication from :func:`cluster_replication`), then check all of
    them; returns the names created."""
    replication = await cluster_replication(admin, settings)
    settings = dataclasses.replace(settings, replication_factor=replication.factor,
                                   min_insync_replicas=replication.min_insync)
    specs = topic_specs(settings)
    response = await admin.create_topics([
        NewTopic(s.name, s.partitions, replication.factor, topic_configs=s.configs) for s in specs
    ])
    created = []
    for name, code, message in response.topic_errors:
        if code == 0:
            created.append(name)
            log.info("created topic %s", name)
        elif code != _TOPIC_ALREADY_EXISTS:
            raise TopologyError(f"could not create topic {name}: error {code} {message or ''}".strip())
    await wait_visible(admin, [s.name for s in specs])
    await check_topics(admin, settings)
    return created


async def wait_visible(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    """New topics reach each broker's metadata a moment after CreateTopics returns; wait until every
    broker lists them, so that no client started next is told they do not exist."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await topics_seen_by_every_broker(admin, names):
            return
        if asyncio.get_running_loop().time() > deadline:
            return  # check_topics reports what is still missing
        await asyncio.sleep(0.1)


async def check_topics(admin: AIOKafkaAdminClient, settings: Settings,
                       roles: Collection[str] | None = None) -> list[str]:
    """Raise TopologyError for a missing topic or a dangerous layout; return soft warnings.
    ``roles`` limits the check (e.g. ``{"log"}`` for a process that only reads the log)."""
    specs = [s for s in topic_specs(settings) if roles is None or s.role in roles]
    names = [s.name for s in specs]
    described = {t["topic"]: t for t in await _retrying(lambda: admin.describe_topics(names))}
    problems: list[str] = []
    warnings: list[str] = []
    replicas: dict[str, int] = {}
    for spec in specs:
        topic = described.get(spec.name)
        if topic is None or topic["error_code"] == _UNKNOWN_TOPIC:
            if spec.optional:
                warnings.append(f"topic {spec.name} ({spec.role}) does not exist; run `eventconfig topics create` "
                                "to add it (until then only the active writer answers reads)")
                continue
            problems.append(f"topic {spec.name} ({spec.role}) does not exist; run `eventconfig topics create`")
            continue
        count = len(topic["partitions"])
        replicas[spec.name] = min((len(p["replicas"]) for p in topic["partitions"]), default=0)
        if spec.exact_partitions and count != spec.partitions:
            problems.append(f"topic {spec.name} ({spec.role}) has {count} partitions; it must have exactly "
                            f"{spec.partitions} to keep one total order")
        elif count < spec.partitions:
            warnings.append(f"topic {spec.name} ({spec.role}) has {count} partitions ({spec.role}_partitions is "
                            f"{spec.partitions}): " + (f"each client reads the answers of about 1/{count} of the fleet"
                                                       if spec.role == "response" else
                                                       f"at most {count} serve processes answer reads"))
    if problems:
        raise TopologyError("; ".join(problems))
    specs = [s for s in specs if s.name in replicas]
    actual = await topic_configs(admin, [s.name for s in specs])
    for spec in specs:
        configs = actual.get(spec.name, {})
        min_insync = int(configs.get("min.insync.replicas", "1"))
        if min_insync > replicas[spec.name]:
            raise TopologyError(f"topic {spec.name} ({spec.role}) has min.insync.replicas={min_insync} but "
                                f"{replicas[spec.name]} replicas: no write can be acknowledged; lower "
                                "min.insync.replicas or add replicas")
        policy = configs.get("cleanup.policy", "")
        if spec.must_compact and "compact" not in policy.split(","):
            raise TopologyError(f"topic {spec.name} ({spec.role}) has cleanup.policy={policy!r}; it must be "
                                "'compact' or the latest value of old keys is deleted by retention")
        if spec.must_compact and "delete" in policy.split(","):
            raise TopologyError(f"topic {spec.name} ({spec.role}) also has 'delete' in cleanup.policy; "
                                "retention would drop live keys")
        for key, wanted in spec.configs.items():
            have = configs.get(key)
            if have is not None and have != wanted:
                warnings.append(f"topic {spec.name}: {key}={have} (expected {wanted})")
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


async def topic_exists(admin: AIOKafkaAdminClient, name: str) -> bool:
    """Whether ``name`` exists (an optional topic: the read topic of an older deployment may not)."""
    described = await _retrying(lambda: admin.describe_topics([name]))
    return any(t["topic"] == name and t["error_code"] != _UNKNOWN_TOPIC for t in described)


async def log_delete_retention_ms(admin: AIOKafkaAdminClient, settings: Settings) -> int:
    """The log topic's actual ``delete.retention.ms`` (how long a missed tombstone stays readable);
    the setting, with a warning, when the topic's configs cannot be read (e.g. no DescribeConfigs ACL)."""
    topic = settings.topics.log
    try:
        return int((await topic_configs(admin, [topic]))[topic]["delete.retention.ms"])
    except (KafkaError, TopologyError, KeyError, ValueError) as exc:
        log.warning("cannot read delete.retention.ms of the log topic; using the setting", extra={"fields": {
            "topic": topic, "error": repr(exc), "log_delete_retention_ms": settings.log_delete_retention_ms}})
        return settings.log_delete_retention_ms


async def topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
    responses = await _retrying(lambda: admin.describe_configs(resources))
    result: dict[str, dict[str, str]] = {}
    for response in responses:
        for error_code, error_message, _type, name, entries in response.resources:
            if error_code:
                raise TopologyError(f"cannot read configs of topic {name}: {error_message}")
            result[name] = {entry[0]: entry[1] for entry in entries}
    return result


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """Retry a metadata call while the cluster recovers: on a replicated cluster the admin client
    may pick a broker that just died (it stays in the metadata until the controller fences it)."""
    deadline = asyncio.get_running_loop().time() + _RETRY_FOR_S
    while True:
        try:
            return await call()
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or asyncio.get_running_loop().time() > deadline:
                raise TopologyError(f"cannot read the topics' metadata: {exc}") from exc
            log.warning("reading topic metadata failed (%s); retrying", exc)
            await asyncio.sleep(0.5)
