"""Clients of the config service: the request/response ``ConfigClient`` and its wire mapping."""

from eventconfig.client.client import VERSION_PROBE_WORKSPACE, ClientError, ConfigClient
from eventconfig.client.wire import ConfigItem, Versioned, build_request, check_response, request_headers

__all__ = [
    "VERSION_PROBE_WORKSPACE",
    "ClientError",
    "ConfigClient",
    "ConfigItem",
    "Versioned",
    "build_request",
    "check_response",
    "request_headers",
]
