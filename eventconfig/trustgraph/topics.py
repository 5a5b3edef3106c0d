"""The TrustGraph config topics: reused when they exist, else created with TrustGraph's layout.

TrustGraph's Kafka backend never creates these topics itself, and on a broker with auto-creation off
its consumers fail on a missing one, so the front end creates the missing ones (1 partition,
``retention.ms`` 5 minutes, as TrustGraph lays them out). The forwarder reads the one partition of
TrustGraph's request topic, so a request topic with more is a startup error; the translator reads
partition 0 of eventconfig's response topic, whatever its partition count.

Example::

    async with admin_client(settings) as admin:
        limit = await ensure_topics(admin, settings, TrustGraphTopics.of("tg"))
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from eventconfig.errors import TopologyError
from eventconfig.kafka.topics import cluster_replication, topic_configs, wait_visible
from eventconfig.settings import Settings
from eventconfig.trustgraph.wire import TrustGraphTopics

log = logging.getLogger(__name__)

RETENTION_MS = 5 * 60 * 1000  # TrustGraph's retention for request, response and notify queues
_FRAMING_BYTES = 4096  # record and batch overhead next to a body


async def ensure_topics(admin: AIOKafkaAdminClient, settings: Settings, topics: TrustGraphTopics) -> int:
    """Create the missing topics, check the layout; return the largest TrustGraph response body."""
    names = [topics.request, topics.response, topics.notify]
    missing = [name for name, partitions in (await _partitions(admin, names)).items() if partitions is None]
    if missing:
        replication = await cluster_replication(admin, settings)
        configs = {"retention.ms": str(RETENTION_MS), "max.message.bytes": str(settings.max_message_bytes),
                   "min.insync.replicas": str(replication.min_insync)}
        result = await admin.create_topics([NewTopic(n, 1, replication.factor, topic_configs=configs)
                                            for n in missing])
        for name, code, message in result.topic_errors:
            if code not in (0, 36):  # 36: created meanwhile by someone else
                raise TopologyError(f"could not create TrustGraph topic {name}: error {code} {message or ''}".strip())
        log.info("created TrustGraph topics", extra={"fields": {"topics": missing}})
        await wait_visible(admin, missing)
    found = await _partitions(admin, [*names, settings.topics.response])
    _require_one_partition(found, topics.request, "the TrustGraph request topic")
    if found[settings.topics.response] is None:
        raise TopologyError(f"topic {settings.topics.response} (eventconfig's response topic) does not exist")
    if found[topics.response] is None or found[topics.notify] is None:
        raise TopologyError(f"TrustGraph topics {topics.response} / {topics.notify} are not visible after creation")
    response_limit = (await topic_configs(admin, [topics.response])).get(topics.response, {}).get("max.message.bytes")
    return min(int(response_limit or settings.max_message_bytes), settings.max_message_bytes) - _FRAMING_BYTES


async def _partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int | None]:
    """Partition count of each topic, None for one that does not exist."""
    described = {t["topic"]: t for t in await admin.describe_topics(names)}
    return {name: len(described[name]["partitions"])
            if name in described and described[name]["error_code"] == 0 else None for name in names}


def _require_one_partition(found: dict[str, int | None], name: str, what: str) -> None:
    count = found.get(name)
    if count is None:
        raise TopologyError(f"topic {name} ({what}) does not exist")
    if count != 1:
        raise TopologyError(f"topic {name} ({what}) has {count} partitions; the TrustGraph front end needs exactly 1 "
                            "(TrustGraph's own layout): recreate it with one partition")
