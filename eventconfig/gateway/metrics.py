"""Prometheus metrics of the gateway (served at ``/metrics`` with the process's other metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("eventconfig_gateway_requests_total", "HTTP requests answered by the gateway.",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("eventconfig_gateway_request_seconds", "Time to answer an HTTP request (not streams).",
                         ["method", "route"],
                         buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WATCH_STREAMS = Gauge("eventconfig_gateway_watch_streams", "Open /v1/watch event streams.")
