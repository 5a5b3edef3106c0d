"""`serve --metrics-port`: Prometheus metrics of requests, latency, roles and the view."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request

import pytest

from eventconfig.localbroker.broker import free_port
from eventconfig.service import ConfigService

pytestmark = pytest.mark.integration


async def test_metrics_count_requests_and_show_roles_and_the_view_version(settings, topics, wire):
    port = free_port()
    service = ConfigService(dataclasses.replace(settings, metrics_port=port))
    await service.start()
    try:
        await service.writer.wait_active(60)
        await wire.put("w", ("t", "k", "v"))
        await wire.call("nonsense", "w")
        await asyncio.sleep(1.2)  # the view gauge is refreshed every second
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    finally:
        await service.stop()
    assert 'eventconfig_requests_total{operation="put",outcome="ok"}' in text
    assert 'eventconfig_requests_total{operation="nonsense",outcome="bad-operation"}' in text
    assert 'eventconfig_role_active{role="writer"} 1.0' in text
    assert "eventconfig_request_latency_seconds_bucket" in text
    assert "eventconfig_view_version 1.0" in text
    assert 'eventconfig_log_lag_records{view="service"} 0.0' in text
