"""Structured logging: one line per event, ``key=value`` fields (text) or one JSON object (json).

Call sites pass fields through ``extra={"fields": {...}}`` or plain %-formatting; both render.

Example::

    log.info("caught up", extra={"fields": {"version": 42, "offset": 97}})
    # 2026-11-28T03:00:00 INFO eventconfig.view caught up version=42 offset=97
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name} {record.getMessage()}"
        fields: dict[str, Any] = getattr(record, "fields", {})
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


class _TransientCoordinatorErrors(logging.Filter):
    """aiokafka logs ERROR while a fresh broker creates its offsets topic, then retries and succeeds;
    an operator should not read that as a failure, so it is shown as a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and "GroupCoordinatorNotAvailable" in record.getMessage():
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _BootstrapAttempts(logging.Filter):
    """aiokafka logs each bootstrap server it fails to reach; when none answers the caller gets (and a
    command prints) one error naming the address, and when another answers nothing failed. Shown at DEBUG."""

    _PREFIXES = ("Unable connect to", "Unable to request metadata from")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self._PREFIXES):
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for a CLI process (stderr, so stdout stays for data)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(_TransientCoordinatorErrors())
    logging.getLogger("aiokafka").addFilter(_BootstrapAttempts())  # aiokafka.client logs as "aiokafka"
