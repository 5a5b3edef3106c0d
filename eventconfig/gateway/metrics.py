"""Prometheus metrics of the gateway (served at ``/metrics`` with the process's other metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("eventconfig_gateway_requests_total", "HTTP requests answered by the gateway.",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("eventconfig_gateway_request_seconds", "Time to answer an HTTP request (not streams).",
                         ["method", "route"],
                         buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WATCH_STREAMS = Gauge("eventconfig_gateway_watch_streams", "Open /v1/watch event streams.")
WATCH_CONSUMERS = Gauge("eventconfig_gateway_watch_consumers",
                        "Open consumers of the notify topic: the watch hub's, and one per resume older than its ring.")
WATCH_RING_POKES = Gauge("eventconfig_gateway_watch_ring_pokes", "Recent pokes the watch hub holds in memory.")
WATCH_RESUMES = Counter("eventconfig_gateway_watch_resumes_total",
                        "Streams resumed by Last-Event-ID, by where the pokes came from (memory, topic).",
                        ["source"])
WATCH_LAGGING = Counter("eventconfig_gateway_watch_lagging_total",
                        "Pokes dropped for a stream whose client read too slowly (it got a resync).")
WATCH_HUB_FAILURES = Counter("eventconfig_gateway_watch_hub_failures_total",
                             "Times the watch hub's notify consumer failed and was reconnected.")
