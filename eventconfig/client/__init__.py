"""Clients of the config service: ``ConfigClient`` (request/response), ``ConfigSubscriber`` (pokes
plus fetches) and ``LocalView`` (an embedded materialized view)."""

from eventconfig.client.client import VERSION_PROBE_WORKSPACE, ClientError, ConfigClient
from eventconfig.client.local_view import LocalView
from eventconfig.client.subscriber import ConfigSubscriber
from eventconfig.client.wire import ConfigItem, Versioned, build_request, check_response, request_headers

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
