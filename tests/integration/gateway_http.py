"""What the gateway's integration tests share: starting a server, problem documents, event streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from eventconfig.gateway.app import GatewayServer

PROBLEM = "application/problem+json"


async def wait_started(server: GatewayServer, task: asyncio.Task[None], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("the gateway server stopped before it started")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the gateway server did not start within {timeout} s")
        await asyncio.sleep(0.02)


def assert_problem(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    """The response is a problem document of RFC 9457 with the service's error type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["error_type"] == error_type
    assert body["type"] == f"urn:eventconfig:error:{error_type}"
    assert body["title"] and body["detail"] and body["instance"] == response.request.url.path
    return body


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parsed events of a text/event-stream response: {"event", "id", "data"}."""
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if "event" in event:
                yield event
            event = {}
        elif line.startswith("id: "):
            event["id"] = int(line[4:])
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])


async def next_event(events: AsyncIterator[dict[str, Any]], what: str, timeout: float = 15) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(anext(events), timeout)
    except TimeoutError:
        raise AssertionError(f"no {what} event within {timeout} s") from None
