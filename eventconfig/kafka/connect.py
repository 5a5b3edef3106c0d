"""Starting and stopping aiokafka clients so that a failed start is a typed error and leaves nothing open.

aiokafka raises its own errors when no bootstrap server answers (within ``request_timeout_ms``), and a
client whose ``start()`` failed still holds resources until it is stopped. :func:`started` handles both.

Example::

    async with started(committed_consumer(settings), settings) as consumer:
        await consumer.topics()
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError

from eventconfig.errors import KafkaUnavailable
from eventconfig.settings import Settings

C = TypeVar("C")


@asynccontextmanager
async def started(client: C, settings: Settings) -> AsyncIterator[C]:
    """``client`` started (see :func:`start`), and always closed on exit."""
    await start(client, settings)
    try:
        yield client
    finally:
        await close(client)


async def start(client: Any, settings: Settings) -> None:
    """Start ``client``; if that fails, close it again and raise KafkaUnavailable for a Kafka error."""
    try:
        await start_or_close(client)
    except (KafkaError, TimeoutError) as exc:
        raise unavailable(settings, exc) from exc


async def start_or_close(client: Any) -> None:
    """Start ``client``; if that fails (or is cancelled), close it again and re-raise as it was."""
    try:
        await client.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await close(client)
        raise


async def close(client: Any) -> None:
    """Stop a consumer or producer, or close an admin client."""
    stop = getattr(client, "stop", None) or client.close
    await stop()


def unavailable(settings: Settings, exc: BaseException) -> KafkaUnavailable:
    """The one-line error for a Kafka client error or timeout while talking to ``settings``' cluster."""
    if isinstance(exc, KafkaConnectionError):
        # aiokafka only logs why each bootstrap server failed; a refused login or certificate ends here too.
        check = ("is the broker running and the address right?" if settings.security_protocol == "PLAINTEXT"
                 else "is the broker running, the address right, and are the credentials and the CA good?")
        return KafkaUnavailable(f"cannot reach Kafka at {settings.bootstrap_servers}: no bootstrap server "
                                f"answered ({check})")
    return KafkaUnavailable(f"Kafka at {settings.bootstrap_servers} did not answer: {describe(exc)}")


def describe(exc: BaseException) -> str:
    """``ErrorName: text`` once (aiokafka's errors already start with their name), ``ErrorName`` if no text."""
    name, text = type(exc).__name__, str(exc)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"
