"""`serve --metrics-port`: Prometheus metrics of requests, latency, roles and the view."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import urllib.request

import pytest

from eventconfig.errors import ServiceStartError
from eventconfig.localbroker.broker import free_port
from eventconfig.process import ConfigService
from eventconfig.view import ViewStore
from tests.support import wait_until

pytestmark = pytest.mark.integration


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


async def test_metrics_count_requests_and_show_roles_and_the_view_version(settings, topics, wire):
    port = free_port()
    service = ConfigService(dataclasses.replace(settings, metrics_port=port))
    await service.start()
    try:
        await service.writer.wait_active(60)
        await wire.put("w", ("t", "k", "v"))
        await wire.call("nonsense", "w")
        scraped: list[str] = []

        async def view_gauge_refreshed() -> bool:  # the gauge is refreshed every second
            scraped[:] = [await asyncio.to_thread(scrape, port)]
            return "eventconfig_view_version 1.0" in scraped[0]

        await wait_until(view_gauge_refreshed, 10, "eventconfig_view_version did not reach 1.0", interval=0.2)
    finally:
        await service.stop()
    text = scraped[0]
    assert 'eventconfig_requests_total{operation="put",outcome="ok"}' in text
    assert 'eventconfig_requests_total{operation="nonsense",outcome="bad-operation"}' in text
    assert 'eventconfig_role_active{role="writer"} 1.0' in text
    assert "eventconfig_request_latency_seconds_bucket" in text
    assert "eventconfig_view_version 1.0" in text
    assert 'eventconfig_log_lag_records{view="service"} 0.0' in text


async def test_a_metrics_port_in_use_fails_start_with_a_typed_error_and_stops_what_started(settings, topics):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        service = ConfigService(dataclasses.replace(settings, metrics_port=port))
        with pytest.raises(ServiceStartError, match=f"cannot serve metrics on port {port}"):
            await service.start()
    leftovers = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()
                 and t.get_name().startswith(("materializer", "writer", "view", "projector"))]
    assert leftovers == [], "no component of the failed start keeps running"
    ViewStore.open(settings.data_dir / "view").close()  # the view's RocksDB lock was released
    again = ConfigService(settings)  # and the same data dir serves a new start
    await again.start()
    await again.stop()
