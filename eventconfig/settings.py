"""One settings object for every eventconfig process, from CLI flags, environment and defaults.

Precedence: a CLI flag that was given wins over ``EVENTCONFIG_<NAME>`` in the environment, which wins
over the default. ``KAFKA_BOOTSTRAP_SERVERS`` is honoured as a fallback for the bootstrap servers, as
most Kafka tooling does.

Example::

    settings = Settings.load({"bootstrap_servers": "kafka:9092"})
    settings.topics.log            # 'eventconfig.log'
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventconfig.errors import EventConfigError

DAY_MS = 24 * 3600 * 1000
# Room a produced record keeps beside its value for key, headers and framing (see max_response_bytes).
RECORD_OVERHEAD_BYTES = 64 * 1024
# Upper bound of the id, actor and name limits: an echoed id (key and header) stays well inside the room.
MAX_HEADER_LIMIT = 16 * 1024


class SettingsError(EventConfigError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class TopicNames:
    """The seven topics of one deployment, derived from a prefix."""

    request: str
    response: str
    log: str
    history: str
    notify: str
    dlq: str
    read: str  # reads answered by every serve process (docs/design.md §6); optional: older deployments lack it

    @classmethod
    def from_prefix(cls, prefix: str) -> TopicNames:
        return cls(**{f.name: f"{prefix}.{f.name}" for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class TrustGraphTopics:
    """The config queues of one TrustGraph topicspace (``class:ts:config`` -> ``ts.class.config``)."""

    request: str
    response: str
    notify: str

    @classmethod
    def of(cls, topicspace: str) -> TrustGraphTopics:
        return cls(f"{topicspace}.request.config", f"{topicspace}.response.config", f"{topicspace}.notify.config")


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to reach Kafka, name its topics and keep its local view."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "eventconfig"
    # Consumer groups and transactional ids derive from this, so deployments sharing a cluster
    # never fence each other. Defaults to the topic prefix.
    deployment: str = ""
    data_dir: Path = Path(".eventconfig/data")
    # Topics created get these; 0: chosen from the cluster's broker count (eventconfig.kafka.topics).
    replication_factor: int = 0
    min_insync_replicas: int = 0
    # The log keeps every version for at least this long before compaction (the audit window).
    log_min_compaction_lag_ms: int = 7 * DAY_MS
    # Tombstones stay readable this long after compaction; a view offline longer must rebuild. This
    # is what `topics create` gives the log topic; views read the topic's actual value.
    log_delete_retention_ms: int = DAY_MS
    history_retention_ms: int = -1
    # Partitions `topics create` gives the response topic. Each client reads one of them, so it reads
    # the answers of about fleet/partitions other clients: size it to the fleet (docs/operations.md).
    response_partitions: int = 32
    # Partitions `topics create` gives the read topic: at most this many serve processes share its reads.
    read_partitions: int = 8
    # ConfigClient sends reads to the read topic (any serve process answers them) instead of the request
    # topic (only the active writer answers them): 0 no, anything else yes. It falls back to the request
    # topic when the deployment has no read topic.
    client_reads_on_read_topic: int = 1
    max_message_bytes: int = 10 * 1024 * 1024
    max_value_bytes: int = 512 * 1024
    max_items_per_request: int = 10_000
    # Longest workspace, type or key name (UTF-8 bytes); longer names are refused with too-large.
    max_name_bytes: int = 1024
    # Longest request ``id`` header the writer echoes; a request with a longer one cannot be
    # answered and goes to the DLQ.
    max_id_bytes: int = 256
    # Longest ``actor`` header (it is stored in the history); longer is refused with too-large.
    max_actor_bytes: int = 256
    min_version_wait_ms: int = 5_000
    # Fail-over (docs/operations.md#fail-over). A Kafka request unanswered this long is sent again after
    # a metadata refresh: a frozen broker costs about this much more than a crashed one (whose
    # connections fail at once), so keep it just above the brokers' broker.session.timeout.ms.
    request_timeout_ms: int = 5_000
    # Every client refreshes its metadata this often: a consumer learns of a leader that moved away
    # from a frozen broker no later than this (only producers refresh on a timed-out request).
    metadata_max_age_ms: int = 5_000
    # The group session of each exclusive role (writer, projector ...): a standby takes over this long
    # after the active process stops heartbeating. Brokers refuse a session below their
    # group.min.session.timeout.ms (6000 by default; the local broker allows 1000).
    writer_session_timeout_ms: int = 6_000
    writer_heartbeat_interval_ms: int = 1_500
    # A transaction left open by a killed writer or forwarder is aborted by Kafka after this long, unless
    # a successor fences it first; until then it holds back every read_committed reader.
    transaction_timeout_ms: int = 10_000
    batch_max_requests: int = 500
    # Group commit: once several requests arrive together, wait this long for more to share the
    # transaction (a lone client never waits).
    writer_linger_ms: int = 8
    # The projector gathers this long after the first new log records, so one transaction carries
    # the pokes of several writer transactions.
    projector_linger_ms: int = 5
    # The projector merges pokes of a batch into one when it is further behind the log than this.
    projector_merge_lag_records: int = 1000
    # A poke carries the changed items while their bytes (names and values) stay within this, so
    # subscribers need not ask the writer; over it they fetch. 0: no items, pokes in the older
    # schema generation that subscribers before items read (docs/design.md §7, operations.md).
    poke_items_max_bytes: int = 64 * 1024
    # The long poll of a client's one Kafka consumer (answers and pokes): new data ends it at once,
    # so this bounds only the empty fetches of an idle client (one per this many ms). At most half of
    # request_timeout_ms is used (a fetch must be answered within that).
    client_fetch_wait_ms: int = 5_000
    # How often a client's connection hub refreshes its Kafka metadata unasked. Kafka's own default:
    # each refresh lists every partition of the response topic, and a fleet of subscribers refreshing
    # every few seconds spends its CPU decoding them. A failed or timed-out request refreshes at once,
    # so a moved leader is still found within a request timeout (operations.md, fail-over).
    client_metadata_max_age_ms: int = 300_000
    # A client's request unanswered this long makes its connection hub refresh the Kafka metadata at
    # once, from every broker together, and again every two such periods while requests stay
    # unanswered: a leader that moved away from a frozen broker is found within about two of them
    # after Kafka fenced it. Idle hubs refresh nothing (operations.md, fail-over).
    client_stalled_request_ms: int = 1_000
    # The writer writes the pokes of its writes in their own transaction (one transaction per write);
    # false leaves every poke to the projector, as before (two transactions per write).
    writer_pokes: bool = True
    # How long opening a view retries while it is locked (a process still shutting down) or the system
    # refuses (permission, disk full, file limit) before giving up with an error; a view is never
    # deleted for either.
    view_open_wait_ms: int = 15_000
    # RocksDB memory of each view (the service's and every LocalView's): a block cache shared by its
    # column families, and per family up to view_max_write_buffers memtables of view_write_buffer_bytes.
    view_block_cache_bytes: int = 128 * 1024 * 1024
    view_write_buffer_bytes: int = 64 * 1024 * 1024
    view_max_write_buffers: int = 3
    # Hot items a LocalView keeps in process memory in front of RocksDB (exact; an item enters on its
    # second read miss, the older half leaves when full); 0: none.
    local_view_cache_items: int = 100_000
    metrics_port: int = 0  # 0: no metrics endpoint
    # Serve TrustGraph's JSON config protocol on <topicspace>.{request,response,notify}.config; "" = off.
    trustgraph_topicspace: str = ""
    # Verified actors (docs/design.md §14.1): the keyring of actors' public keys and groups; "" = off.
    auth_keyring_file: str = ""
    # A signed request's signed-at must be this close to the writer's clock; replays are refused within it.
    auth_window_ms: int = 300_000
    # Until this epoch-ms time the writer also accepts v1 signatures, bound to no deployment (a rolling
    # upgrade from clients that sign v1, docs/design.md §14.1); 0 = v2 only.
    auth_v1_signatures_until_ms: int = 0
    # This process's own identity for the requests it sends (bootstrapper, TrustGraph front end, CLI).
    signing_key_file: str = ""
    signing_actor: str = ""
    # Per-workspace permissions (docs/design.md §14.2); "" = everyone may do everything.
    policy_file: str = ""
    # The HTTP gateway refuses logins (429) for a user or address with this many failures in the window.
    gateway_login_failures: int = 10
    gateway_login_window_ms: int = 60_000
    # The gateway's watch hub: recent pokes kept in memory for resumes; pokes one stream may queue.
    gateway_watch_ring_pokes: int = 10_000
    gateway_watch_queue_pokes: int = 1_000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``overrides`` (None values mean "not given"), then env, then defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"EVENTCONFIG_{f.name.upper()}")
            if raw is None and f.name == "bootstrap_servers":
                raw = env.get("KAFKA_BOOTSTRAP_SERVERS")
            if raw is not None:
                values[f.name] = _convert(f, raw)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.bootstrap_servers:
            raise SettingsError("bootstrap_servers is empty")
        if not self.topic_prefix or any(c not in _TOPIC_CHARS for c in self.topic_prefix):
            raise SettingsError(f"topic prefix {self.topic_prefix!r} may only use letters, digits, '.', '_' and '-'")
        if any(c not in _TOPIC_CHARS for c in self.trustgraph_topicspace):
            raise SettingsError(f"TrustGraph topicspace {self.trustgraph_topicspace!r} may only use letters, "
                                "digits, '.', '_' and '-'")
        if min(self.auth_window_ms, self.gateway_login_failures, self.gateway_login_window_ms) <= 0:
            raise SettingsError("auth_window_ms, gateway_login_failures and gateway_login_window_ms must be positive")
        if min(self.gateway_watch_ring_pokes, self.gateway_watch_queue_pokes) <= 0:
            raise SettingsError("gateway_watch_ring_pokes and gateway_watch_queue_pokes must be positive")
        if not 0 < self.writer_heartbeat_interval_ms < self.writer_session_timeout_ms:
            raise SettingsError("writer_heartbeat_interval_ms must be positive and below writer_session_timeout_ms")
        if min(self.request_timeout_ms, self.metadata_max_age_ms, self.transaction_timeout_ms) <= 0:
            raise SettingsError("request_timeout_ms, metadata_max_age_ms and transaction_timeout_ms must be positive")
        if min(self.replication_factor, self.min_insync_replicas) < 0:
            raise SettingsError("replication_factor and min_insync_replicas may not be negative (0: from the cluster)")
        if not 0 <= self.poke_items_max_bytes <= self.max_message_bytes // 2:
            raise SettingsError("poke_items_max_bytes must be between 0 and half of max_message_bytes, "
                                f"got {self.poke_items_max_bytes}")
        if self.client_fetch_wait_ms <= 0:
            raise SettingsError(f"client_fetch_wait_ms must be positive, got {self.client_fetch_wait_ms}")
        if self.client_metadata_max_age_ms <= 0:
            raise SettingsError(f"client_metadata_max_age_ms must be positive, got {self.client_metadata_max_age_ms}")
        if self.client_stalled_request_ms <= 0:
            raise SettingsError(f"client_stalled_request_ms must be positive, got {self.client_stalled_request_ms}")
        if self.read_partitions < 1:
            raise SettingsError(f"read_partitions must be at least 1, got {self.read_partitions}")
        if self.response_partitions < 1:
            raise SettingsError(f"response_partitions must be at least 1, got {self.response_partitions}")
        limits = ("max_value_bytes", "max_items_per_request", "max_name_bytes", "max_id_bytes", "max_actor_bytes")
        if any(getattr(self, name) <= 0 for name in limits):
            raise SettingsError(f"{', '.join(limits)} must be positive")
        if max(self.max_name_bytes, self.max_id_bytes, self.max_actor_bytes) > MAX_HEADER_LIMIT:
            raise SettingsError(f"max_name_bytes, max_id_bytes and max_actor_bytes may be at most {MAX_HEADER_LIMIT}")
        if min(self.view_block_cache_bytes, self.local_view_cache_items) < 0:
            raise SettingsError("view_block_cache_bytes and local_view_cache_items may not be negative")
        if self.view_write_buffer_bytes < 1024 * 1024 or self.view_max_write_buffers < 2:
            raise SettingsError("view_write_buffer_bytes must be at least 1 MiB and view_max_write_buffers at least 2")
        # A log record (three names and a value) must fit a record with room to spare.
        if self.max_value_bytes + 3 * self.max_name_bytes >= self.max_response_bytes:
            raise SettingsError("max_value_bytes (plus three names) must be well below max_message_bytes")

    @property
    def max_response_bytes(self) -> int:
        """Largest record value the writer produces: the broker's record limit less room for the
        key and headers, which are bounded by the id, actor and name limits."""
        return self.max_message_bytes - RECORD_OVERHEAD_BYTES

    @property
    def topics(self) -> TopicNames:
        return TopicNames.from_prefix(self.topic_prefix)

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.topic_prefix

    def group_id(self, role: str) -> str:
        """Consumer group of one role (``writer``, ``projector`` ...) of this deployment."""
        return f"{self.deployment_name}.{role}"

    @property
    def readers_group(self) -> str:
        """The consumer group of every serve process over the read topic (docs/design.md §6)."""
        return self.group_id("readers")

    def transactional_id(self, role: str) -> str:
        """Fixed transactional id of one role: a new active process fences the previous one."""
        return f"{self.deployment_name}.{role}.tx"

    def kafka_kwargs(self) -> dict[str, Any]:
        """Connection arguments shared by every aiokafka client (bootstrap, metadata refresh, SASL, SSL)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "metadata_max_age_ms": self.metadata_max_age_ms,
        }
        if self.sasl_mechanism:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        if self.security_protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = self._ssl_context()
        return kwargs

    def _ssl_context(self) -> ssl.SSLContext:
        """What aiokafka's ``create_ssl_context`` builds, from the standard library: settings stay free
        of aiokafka, so the pure core that reads them loads no Kafka client (docs/design.md §11)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ssl_cafile or None)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        return context


_TOPIC_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
    try:
        if kind == "int":
            return int(raw)
        if kind == "Path":
            return Path(raw)
        if kind == "bool":
            return {"true": True, "1": True, "false": False, "0": False}[raw.strip().lower()]
    except KeyError as exc:
        raise SettingsError(f"EVENTCONFIG_{f.name.upper()}={raw!r} is not true or false") from exc
    except ValueError as exc:
        raise SettingsError(f"EVENTCONFIG_{f.name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
