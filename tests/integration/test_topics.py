"""`eventconfig topics create|check`: the seven topics of docs/design.md §3, and refusal of a dangerous layout."""

from __future__ import annotations

import dataclasses

import pytest
from aiokafka.admin import NewTopic

from eventconfig.errors import TopologyError
from eventconfig.kafka.topics import topic_configs, wait_visible, admin_client, check_topics, create_topics, topic_specs
from tests.support import assert_one_line_error, eventconfig

pytestmark = pytest.mark.integration


async def test_create_makes_all_seven_topics_with_their_configs_and_is_idempotent(settings):
    async with admin_client(settings) as admin:
        created = await create_topics(admin, settings)
        assert sorted(created) == sorted(dataclasses.astuple(settings.topics))
        assert await create_topics(admin, settings) == []
        configs = await topic_configs(admin, [settings.topics.log, settings.topics.history])
    assert configs[settings.topics.log]["cleanup.policy"] == "compact"
    assert configs[settings.topics.log]["min.compaction.lag.ms"] == str(settings.log_min_compaction_lag_ms)
    assert configs[settings.topics.history]["retention.ms"] == "-1"


async def test_check_fails_when_topics_are_missing(settings):
    async with admin_client(settings) as admin:
        with pytest.raises(TopologyError, match="does not exist"):
            await check_topics(admin, settings)


async def _create_all_but_log(admin, settings, log_topic: NewTopic) -> None:
    specs = [s for s in topic_specs(settings) if s.role != "log"]
    await admin.create_topics([NewTopic(s.name, s.partitions, 1, topic_configs=s.configs) for s in specs]
                              + [log_topic])
    await wait_visible(admin, [s.name for s in specs] + [log_topic.name])


async def test_a_log_topic_with_two_partitions_is_fatal(settings):
    async with admin_client(settings) as admin:
        await _create_all_but_log(admin, settings, NewTopic(settings.topics.log, 2, 1,
                                                            topic_configs={"cleanup.policy": "compact"}))
        with pytest.raises(TopologyError, match="2 partitions"):
            await create_topics(admin, settings)


async def test_a_log_topic_without_compaction_is_fatal(settings):
    async with admin_client(settings) as admin:
        await _create_all_but_log(admin, settings, NewTopic(settings.topics.log, 1, 1,
                                                            topic_configs={"cleanup.policy": "delete"}))
        with pytest.raises(TopologyError, match="must be 'compact'"):
            await check_topics(admin, settings)


@pytest.mark.parametrize("command", ["topics check", "history", "state --at-version 0", "verify --scratch", "watch",
                                     "rebuild --path {tmp}/view"])
def test_commands_on_a_deployment_without_topics_say_so_in_one_line(settings, command, tmp_path):
    args = command.format(tmp=tmp_path).split()
    result = eventconfig(settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix, *args, cwd=tmp_path)
    assert_one_line_error(result, 1, "does not exist", "run `eventconfig topics create`")


async def test_create_without_a_replication_pair_chooses_one_the_cluster_takes_writes_with(settings):
    """The session's broker has one node: 1 replica and min.insync.replicas 1 on every topic, whatever
    the broker's own default (a cluster's is 2, which would refuse every write of a 1-replica topic)."""
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
        names = list(dataclasses.astuple(settings.topics))
        configs = await topic_configs(admin, names)
        described = await admin.describe_topics(names)
    assert {configs[name]["min.insync.replicas"] for name in names} == {"1"}
    assert {len(p["replicas"]) for t in described for p in t["partitions"]} == {1}


def test_create_refuses_more_replicas_than_brokers_in_one_line_and_creates_nothing(settings, tmp_path):
    result = eventconfig(settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix, "topics", "create",
                         "--replication-factor", "3", cwd=tmp_path)
    assert_one_line_error(result, 1, "replication factor 3 needs 3 brokers; the cluster has 1")
    check = eventconfig(settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix, "topics", "check",
                        cwd=tmp_path)
    assert_one_line_error(check, 1, "does not exist")
