"""Least-privilege Kafka ACLs of a deployment's roles, derived from its settings (pure, no I/O).

Each role gets exactly what its processes do (docs/operations.md "Access control"):

* ``service`` (``serve``, ``project``): reads requests and reads (the readers' group), writes responses, log, history, notify and
  DLQ, reads back the log and history it rebuilds its state from and the notify topic's last poke
  (the writer and projector read it when they take their role), and holds the fixed consumer
  groups and transactional ids of its exclusive roles (writer, projector, TrustGraph front end).
* ``client`` (``ConfigClient``, ``ConfigSubscriber``, ``watch``, put/get/...): writes requests and reads,
  reads responses and pokes; consumer groups of its own prefix ``<deployment>.client.``.
* ``viewer`` (``LocalView``, the materializer): reads the log and its configs.
* ``auditor`` (history, state, diff, verify, export): reads history and log, writes nothing.
* ``admin`` (topics create, bootstrap, import): everything on the deployment's topics, groups and
  transactional ids, nothing cluster-wide (ACLs themselves are applied by a super user).

Operations follow Kafka's implications: READ or WRITE imply DESCRIBE, ALL implies everything.

Example::

    for acl in plan(settings, ["client"], "User:app"):
        print(acl.line())
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from eventconfig.errors import EventConfigError
from eventconfig.settings import Settings, TrustGraphTopics

ROLES = ("service", "client", "viewer", "auditor", "admin")
CLIENT_GROUP_ROLE = "client."  # client groups: <deployment>.client.<anything>


class AclError(EventConfigError):
    """ACLs could not be planned, read or created."""


@dataclass(frozen=True)
class Acl:
    """One ALLOW binding: ``principal`` may do ``operation`` on the resource, from any host."""

    resource_type: str  # TOPIC, GROUP, TRANSACTIONAL_ID, CLUSTER
    pattern: str  # LITERAL or PREFIXED
    resource_name: str
    operation: str  # READ, WRITE, DESCRIBE_CONFIGS, CREATE, ALL ...
    principal: str
    permission: str = "ALLOW"
    host: str = "*"

    def line(self) -> str:
        """How ``acls plan`` prints it: one binding per line, columns aligned."""
        return (f"{self.principal}  {self.permission}  {self.operation:<16}  {self.resource_type:<16}  "
                f"{self.pattern:<8}  {self.resource_name}")


def plan(settings: Settings, roles: Iterable[str], principal: str) -> list[Acl]:
    """The sorted, duplicate-free bindings that let ``principal`` play ``roles`` in ``settings``' deployment."""
    if not principal.startswith("User:") or principal == "User:":
        raise AclError(f"principal {principal!r} must look like User:<name>")
    grants: set[tuple[str, str, str, str]] = set()
    for role in roles:
        if role not in _PLANNERS:
            raise AclError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        grants.update(_PLANNERS[role](settings))
    return sorted((Acl(rtype, pattern, name, op, principal) for rtype, pattern, name, op in grants), key=_order)


def _order(acl: Acl) -> tuple[int, str, str, str]:
    """Topics first, then groups, then transactional ids; by name within each."""
    return _TYPE_ORDER.index(acl.resource_type), acl.resource_name, acl.pattern, acl.operation


_TYPE_ORDER = ("TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER")


Grant = tuple[str, str, str, str]  # resource type, pattern, name, operation


def _topic(name: str, *operations: str) -> list[Grant]:
    return [("TOPIC", "LITERAL", name, op) for op in operations]


def _service(s: Settings) -> list[Grant]:
    t = s.topics
    roles = ["writer", "projector"]
    grants = [*_topic(t.request, "READ"), *_topic(t.response, "WRITE"), *_topic(t.log, "READ", "WRITE"),
              *_topic(t.history, "READ", "WRITE"), *_topic(t.notify, "READ", "WRITE"), *_topic(t.dlq, "WRITE"),
              *_topic(t.read, "READ")]
    # The startup check reads every topic's configs (docs/design.md §3).
    grants += [g for name in (t.request, t.response, t.log, t.history, t.notify, t.dlq, t.read)
               for g in _topic(name, "DESCRIBE_CONFIGS")]
    # Every serve process answers reads of the read topic as a member of one group (docs/design.md §6).
    grants.append(("GROUP", "LITERAL", s.readers_group, "READ"))
    if s.trustgraph_topicspace:
        tg = TrustGraphTopics.of(s.trustgraph_topicspace)
        roles += [f"trustgraph.{s.trustgraph_topicspace}.forwarder", f"trustgraph.{s.trustgraph_topicspace}.translator"]
        # The forwarder turns TrustGraph requests into eventconfig requests; the translator turns
        # eventconfig's responses into TrustGraph's; the projector also pokes TrustGraph's notify topic.
        grants += [*_topic(tg.request, "READ"), *_topic(t.request, "WRITE"), *_topic(t.response, "READ"),
                   *_topic(tg.response, "WRITE"), *_topic(tg.notify, "WRITE")]
        grants += [g for name in (tg.request, tg.response, tg.notify)
                   for g in _topic(name, "CREATE", "DESCRIBE_CONFIGS")]
    grants += [("GROUP", "LITERAL", s.group_id(role), "READ") for role in roles]
    grants += [("TRANSACTIONAL_ID", "LITERAL", s.transactional_id(role), "WRITE") for role in roles]
    return grants


def _client(s: Settings) -> list[Grant]:
    t = s.topics
    return [*_topic(t.request, "WRITE"), *_topic(t.read, "WRITE"), *_topic(t.response, "READ"), *_topic(t.notify, "READ"),
            ("GROUP", "PREFIXED", s.group_id(CLIENT_GROUP_ROLE), "READ")]


def _viewer(s: Settings) -> list[Grant]:
    return _topic(s.topics.log, "READ", "DESCRIBE_CONFIGS")


def _auditor(s: Settings) -> list[Grant]:
    return [*_topic(s.topics.log, "READ", "DESCRIBE_CONFIGS"), *_topic(s.topics.history, "READ")]


def _admin(s: Settings) -> list[Grant]:
    grants = [("TOPIC", "PREFIXED", f"{s.topic_prefix}.", "ALL"),
              ("GROUP", "PREFIXED", f"{s.deployment_name}.", "ALL"),
              ("TRANSACTIONAL_ID", "PREFIXED", f"{s.deployment_name}.", "ALL")]
    if s.trustgraph_topicspace:
        tg = TrustGraphTopics.of(s.trustgraph_topicspace)
        grants += [g for name in (tg.request, tg.response, tg.notify) for g in _topic(name, "ALL")]
    return grants


_PLANNERS = {"service": _service, "client": _client, "viewer": _viewer, "auditor": _auditor, "admin": _admin}
