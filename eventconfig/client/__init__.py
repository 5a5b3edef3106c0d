"""Clients of the config service: ``ConfigClient`` (request/response), ``ConfigSubscriber`` (pokes
plus fetches) and ``LocalView`` (an embedded materialized view).

Each client loads on first use of its name, so ``from eventconfig.client import ConfigClient`` does
not load the local view's rocksdict, and the pure :mod:`.wire` loads no Kafka client (docs/design.md §11).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventconfig.client.wire import ConfigItem, Versioned, build_request, check_response, request_headers
from eventconfig.lazy import lazy_attributes

if TYPE_CHECKING:
    from eventconfig.client.client import VERSION_PROBE_WORKSPACE, ClientError, ConfigClient
    from eventconfig.client.local_view import LocalView
    from eventconfig.client.subscriber import ConfigSubscriber

_LAZY = {
    **{name: "eventconfig.client.client" for name in ("VERSION_PROBE_WORKSPACE", "ClientError", "ConfigClient")},
    "LocalView": "eventconfig.client.local_view",
    "ConfigSubscriber": "eventconfig.client.subscriber",
}

__all__ = [
    "VERSION_PROBE_WORKSPACE",
    "ClientError",
    "ConfigClient",
    "ConfigItem",
    "ConfigSubscriber",
    "LocalView",
    "Versioned",
    "build_request",
    "check_response",
    "request_headers",
]

__getattr__ = lazy_attributes(globals(), _LAZY)
