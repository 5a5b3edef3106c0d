"""Prometheus metrics of a service process (one registry per process; served when a port is set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter("eventconfig_requests_total", "Requests handled by the writer.", ["operation", "outcome"])
READ_TOPIC_ANSWERS = Counter("eventconfig_read_topic_answers_total",
                             "Requests of the read topic this process handled, by outcome (dlq, skipped: its answer refused, "
                             "not answered).", ["outcome"])
READ_TOPIC_PARTITIONS = Gauge("eventconfig_read_topic_partitions",
                              "Partitions of the read topic the readers' group gives this process now.")
BATCH_SECONDS = Histogram("eventconfig_batch_seconds", "Handling plus transaction commit of one request batch.",
                          buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
BATCH_SIZE = Histogram("eventconfig_batch_requests", "Requests per group-commit batch.",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
REQUEST_LATENCY = Histogram("eventconfig_request_latency_seconds",
                            "From the request's Kafka timestamp to the commit of its response.",
                            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
VIEW_VERSION = Gauge("eventconfig_view_version", "Last complete version applied to the local view.")
WRITER_VERSION = Gauge("eventconfig_writer_version", "Last version committed by this writer.")
LOG_LAG = Gauge("eventconfig_log_lag_records",
                "Log records not yet applied to a view (`service`: the service's own, `local`: a LocalView).",
                ["view"])
ROLE_ACTIVE = Gauge("eventconfig_role_active", "1 while this process holds the role (writer, projector).",
                    ["role"])
ROLE_REFUSING = Gauge("eventconfig_role_refusing", "1 while the role refuses to take over because committed state "
                      "does not hold together (writer: the history does not end at the log's last marker).", ["role"])
TRANSACTION_FAILURES = Counter("eventconfig_transaction_failures_total", "Transactions that failed, by role.",
                               ["role", "reason"])
CLIENT_KAFKA_CLIENTS = Gauge(
    "eventconfig_client_kafka_clients",
    "Kafka consumers and producers open for this process's ConfigClients and ConfigSubscribers (one "
    "consumer per connection hub, a producer once it has sent).", ["kind"])
CLIENT_STALL_REFRESHES = Counter(
    "eventconfig_client_stall_refreshes_total",
    "Kafka metadata refreshes of a ConfigClient/ConfigSubscriber connection hub because a request stayed "
    "unanswered for client_stalled_request_ms: `ok`, or `failed` (no broker answered).", ["outcome"])
POKES = Counter("eventconfig_pokes_total", "ConfigPush records produced by the projector.")
SUBSCRIBER_FETCHES = Counter(
    "eventconfig_subscriber_fetches_total",
    "Requests ConfigSubscribers sent for state: `start`, `no-items` (a poke over the item cap or of the "
    "older generation), `not-held` (a pair no map is held for), `missed-poke` (a gap: everything held).",
    ["reason"])
SUBSCRIBER_FETCH_FAILURES = Counter(
    "eventconfig_subscriber_fetch_failures_total",
    "Failed ConfigSubscriber fetches: `transient` and `unexpected` ones are retried, `permanent` ones skip "
    "that (type, workspace) until its next change.", ["kind"])
RULES_RELOAD_FAILURES = Counter(
    "eventconfig_rules_reload_failures_total",
    "Changed keyring or policy files that could not be read; the previous rules stay in force.", ["file"])
PROJECTOR_VERSION = Gauge("eventconfig_projector_version", "Last version the projector has handled.")


def serve_metrics(port: int) -> None:
    """Expose /metrics on ``port`` (all interfaces, as Prometheus scrapers expect)."""
    start_http_server(port)
