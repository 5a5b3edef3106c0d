"""KafkaTopology: the topics of docs/design.md §3, created before anything else can run (pre-gate).

It needs only Kafka: the config service cannot start until these topics exist, which is why this
initialiser runs before the service gate (TrustGraph's PulsarTopology waited for the very service it
was meant to enable). Missing topics are created with their configs; existing ones are checked, and a
dangerous layout (a multi-partition log or history, a log without compaction) fails clearly and keeps
failing on every wake until an operator fixes it. Existing topics are never altered.

Example (bootstrap file)::

    - class: eventconfig.bootstrap.initialisers.KafkaTopology
      name: kafka-topology
      flag: v1
      params: {replication_factor: 3, min_insync_replicas: 2}
"""

from __future__ import annotations

import dataclasses
from typing import Any

from eventconfig.bootstrap.base import Flag, InitContext, Initialiser
from eventconfig.kafka.topics import admin_client, create_topics


class KafkaTopology(Initialiser):
    """Create the missing topics of this deployment and check all of them (no config service needed)."""

    wait_for_services = False

    def __init__(self, *, replication_factor: int | None = None, min_insync_replicas: int | None = None) -> None:
        # None: the deployment's settings decide (EVENTCONFIG_REPLICATION_FACTOR ...).
        self.overrides: dict[str, Any] = {}
        for name, value, least in (("replication_factor", replication_factor, 1),
                                   ("min_insync_replicas", min_insync_replicas, 0)):
            if value is None:
                continue
            if type(value) is not int or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
            self.overrides[name] = value

    async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
        settings = dataclasses.replace(ctx.settings, **self.overrides)
        async with admin_client(settings) as admin:
            created = await create_topics(admin, settings)  # raises TopologyError on a dangerous layout
        if created:
            ctx.logger.info("topics created", extra={"fields": {"created": ",".join(sorted(created))}})
        else:
            ctx.logger.info("all topics exist with a safe layout; nothing created")
