"""The core initialisers: Kafka topics (pre-gate), the template workspace, and workspaces made from it."""

from eventconfig.bootstrap.initialisers.kafka_topology import KafkaTopology
from eventconfig.bootstrap.initialisers.template_seed import TEMPLATE_WORKSPACE, TemplateSeed
from eventconfig.bootstrap.initialisers.workspace_init import WorkspaceInit

__all__ = ["TEMPLATE_WORKSPACE", "KafkaTopology", "TemplateSeed", "WorkspaceInit"]
