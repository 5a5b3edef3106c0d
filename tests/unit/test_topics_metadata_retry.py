"""`check_topics` rides out a broker of a cluster that just died, and names what it could not read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka.errors import NodeNotReadyError, UnknownError

from eventconfig.errors import TopologyError
from eventconfig.kafka import topics as topics_module
from eventconfig.kafka.topics import check_topics, topic_specs
from eventconfig.settings import Settings

SETTINGS = Settings.load({"topic_prefix": "t"}, env={})


class FlakyAdmin:
    """Answers like a healthy cluster after ``failures`` calls that hit a dead node."""

    def __init__(self, failures: int, error: Exception | None = None, replicas: int = 1,
                 min_insync: int | None = None) -> None:
        self.failures = failures
        self.replicas = replicas
        self.min_insync = min_insync
        self.error = error or NodeNotReadyError("node 2 is not ready")
        self.calls = 0

    async def describe_topics(self, names: list[str]) -> list[dict]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        specs = {s.name: s.partitions for s in topic_specs(SETTINGS)}  # the response topic has several
        return [{"topic": n, "error_code": 0,
                 "partitions": [{"partition": p, "replicas": list(range(self.replicas))} for p in range(specs[n])]}
                for n in names]

    async def describe_configs(self, resources: list) -> list:
        extra = {} if self.min_insync is None else {"min.insync.replicas": str(self.min_insync)}
        configs = {s.name: {**s.configs, **extra} for s in topic_specs(SETTINGS)}
        return [SimpleNamespace(resources=[(0, None, 2, r.name, [(k, v) for k, v in configs[r.name].items()])
                                           for r in resources])]


async def test_a_dead_node_in_the_metadata_is_retried_until_another_answers():
    admin = FlakyAdmin(failures=2)
    assert await check_topics(admin, SETTINGS) == []  # type: ignore[arg-type]
    assert admin.calls == 3


async def test_a_non_retriable_error_is_a_topology_error_at_once():
    admin = FlakyAdmin(failures=1, error=UnknownError("boom"))
    with pytest.raises(TopologyError, match="cannot read the topics' metadata"):
        await check_topics(admin, SETTINGS)  # type: ignore[arg-type]
    assert admin.calls == 1


async def test_a_cluster_that_stays_unreachable_is_reported_after_the_deadline(monkeypatch):
    monkeypatch.setattr(topics_module, "_RETRY_FOR_S", 0.0)
    with pytest.raises(TopologyError, match="node 2 is not ready"):
        await check_topics(FlakyAdmin(failures=100), SETTINGS)  # type: ignore[arg-type]


async def test_a_topic_that_needs_more_in_sync_replicas_than_it_has_is_refused():
    assert await check_topics(FlakyAdmin(0, replicas=3, min_insync=2), SETTINGS) == []  # type: ignore[arg-type]
    with pytest.raises(TopologyError, match=r"t.request \(request\) has min.insync.replicas=2 but 1 replicas"):
        await check_topics(FlakyAdmin(0, replicas=1, min_insync=2), SETTINGS)  # type: ignore[arg-type]
