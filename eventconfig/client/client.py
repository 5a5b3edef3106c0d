"""ConfigClient: the request/response client of the config service (docs/design.md §4 and §5).

Each call sends one ``ConfigRequest`` to the request topic with a fresh ``id`` header and waits for
the ``ConfigResponse`` with the same ``id`` on the response topic. A client reads ONE response
partition, picked at random among the topic's partitions (or given), and names it in every request's
``reply-partition`` header, so it reads only the answers of the clients that share its partition
(docs/design.md §4.3). Its position there is resolved at the end *before* the first request leaves,
so no response can slip past it. It reads ``read_committed`` because the writer produces
responses inside its transactions. The wire mapping itself is pure and lives in ``wire.py``.

Example::

    async with ConfigClient(settings, actor="ops") as client:
        version = await client.put("default", "prompt", "system", "You are helpful")
        await client.get("default", "prompt", "system", min_version=version)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from eventconfig.client.wire import (ConfigItem, Versioned, build_request, check_response, header_value,
                                     new_request_id, request_headers, response_items)
from eventconfig.codec import Codec, default_codec
from eventconfig.errors import EventConfigError, ReadTimeout, RequestTimeout, TooLarge
from eventconfig.kafka.reading import IDLE_FETCH_WAIT_MS, committed_consumer
from eventconfig.model import (CONFIG, DELETE, GET, GETKEYS_ALL_WS, GETVALUES, GETVALUES_ALL_WS, ID_HEADER, LIST, PUT,
                               READ_OPERATIONS, WRITE_OPERATIONS)
from eventconfig.settings import Settings
from eventconfig.signing import Signer, settings_signer

log = logging.getLogger(__name__)
# The workspace `version()` reads: a `get` of no keys there costs one round trip and no data.
VERSION_PROBE_WORKSPACE = "__system__"


class ClientError(EventConfigError):
    """The client cannot talk to Kafka (not started, stopped, topics missing, reader died)."""


def kafka_unreachable(settings: Settings, exc: Exception) -> ClientError:
    """What a Kafka error while starting a client (or subscriber, or local view) becomes."""
    return ClientError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}")


# --- the client ------------------------------------------------------------------------------


class ConfigClient:
    """An asyncio client of the config service; safe for many concurrent calls.

        async with ConfigClient(settings) as client:
            await client.get_all("default")
    """

    def __init__(self, settings: Settings, *, timeout: float = 30.0, actor: str | None = None,
                 codec: Codec | None = None, reply_partition: int | None = None,
                 signer: Signer | None = None) -> None:
        """``reply_partition``: the response partition to read (None: a random one of the topic's).
        ``signer`` (default: from ``settings.signing_key_file``) signs every request as its actor,
        which then replaces ``actor`` (docs/design.md §14.1)."""
        self.settings = settings
        self.timeout = timeout
        self.signer = signer or settings_signer(settings)
        self.actor = self.signer.actor if self.signer else actor
        self._codec = codec or default_codec()
        self._producer: Any = None
        self._consumer: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._failure: EventConfigError | None = None
        self._wanted_partition = reply_partition
        self.reply_partition: int | None = None  # the partition read, once started
        self.responses_read = 0  # records consumed, its own answers and those of clients sharing its partition
        self.read_topic = settings.topics.request  # where reads go, once started (docs/design.md §6)
        self._writes_in_flight = 0  # while any, reads go to the request topic: behind those writes

    async def __aenter__(self) -> ConfigClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, and position the response reader at the end before any request can be sent."""
        if self._reader is not None:
            return
        s, topics = self.settings, self.settings.topics
        producer = AIOKafkaProducer(**s.kafka_kwargs(), acks="all", enable_idempotence=True, linger_ms=0,
                                    max_request_size=s.max_message_bytes, request_timeout_ms=s.request_timeout_ms)
        consumer = committed_consumer(s, request_timeout_ms=s.request_timeout_ms, fetch_max_wait_ms=IDLE_FETCH_WAIT_MS)
        try:
            await producer.start()
            await consumer.start()
            known = await consumer.topics()
            missing = [t for t in (topics.request, topics.response) if t not in known]
            if missing:
                raise ClientError(f"topic(s) {', '.join(missing)} do not exist; run `eventconfig topics create`")
            self.read_topic = self._read_topic(known)
            partition = self._pick_partition(sorted(await producer.partitions_for(topics.response)))
            tp = TopicPartition(topics.response, partition)
            consumer.assign([tp])
            await consumer.seek_to_end(tp)
            await consumer.position(tp)  # resolve now: a lazy position could land after our first response
        except BaseException as exc:
            await _stop_quietly(producer, consumer)
            if isinstance(exc, KafkaError):
                raise kafka_unreachable(s, exc) from exc
            raise
        self._attach(producer, consumer, partition)

    def _read_topic(self, known: set[str]) -> str:
        """The read topic when reads should go there and it exists; else the request topic (an older
        deployment, whose writer answers them as before)."""
        topics = self.settings.topics
        if not self.settings.client_reads_on_read_topic:
            return topics.request
        if topics.read not in known:
            log.warning("the read topic %s does not exist; reads go to the request topic (run `eventconfig topics "
                        "create` to add it)", topics.read)
            return topics.request
        return topics.read

    def _pick_partition(self, partitions: list[int]) -> int:
        if self._wanted_partition is None:
            return random.choice(partitions)
        if self._wanted_partition not in partitions:
            raise ClientError(f"the response topic {self.settings.topics.response} has no partition "
                              f"{self._wanted_partition} (it has {len(partitions)})")
        return self._wanted_partition

    def _attach(self, producer: Any, consumer: Any, reply_partition: int | None = None) -> None:
        """Adopt started Kafka clients and start the response reader (tests pass fakes here)."""
        self._producer, self._consumer, self._failure = producer, consumer, None
        self.reply_partition = reply_partition
        self._reader = asyncio.create_task(self._read_responses(), name="eventconfig-client-responses")

    async def stop(self) -> None:
        """Fail pending calls, then close the Kafka clients."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        self._fail_pending(ClientError("ConfigClient stopped"))
        producer, consumer, self._producer, self._consumer = self._producer, self._consumer, None, None
        await _stop_quietly(producer, consumer)

    async def _read_responses(self) -> None:
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    self.responses_read += len(records)
                    for record in records:
                        self._deliver(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dead reader must not leave callers waiting for their timeout
            log.error("response reader stopped: %r", exc)
            self._failure = ClientError(f"response reader stopped: {type(exc).__name__}: {exc}")
            self._fail_pending(self._failure)

    def _deliver(self, record: Any) -> None:
        request_id = header_value(record.headers, ID_HEADER)
        future = self._pending.pop(request_id, None) if request_id else None
        if future is None or future.done():
            return  # another client's response, or one whose caller gave up
        try:
            if record.value is None:
                raise ClientError(f"empty response to request {request_id}")
            future.set_result(self._codec.decode("ConfigResponse", record.value))
        except EventConfigError as exc:
            future.set_exception(exc)

    def _fail_pending(self, error: EventConfigError) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    # --- low level --------------------------------------------------------------------------

    async def request(self, operation: str, workspace: str = "", *, keys: Iterable[Any] = (), type: str = "",
                      values: Iterable[Any] = (), min_version: int | None = None,
                      timeout: float | None = None) -> dict[str, Any]:
        """Send one request, return its decoded ``ConfigResponse``; an error response raises.

            response = await client.request("list", "default", type="prompt")
            response["directory"], response["version"]
        """
        message = build_request(operation, workspace, keys=keys, type=type, values=values, min_version=min_version)
        if self._failure is not None:
            raise self._failure
        if self._producer is None:
            raise ClientError("ConfigClient is not started; use `async with ConfigClient(...)` or await start()")
        value = self._codec.encode("ConfigRequest", message)
        request_id = new_request_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future  # before sending: the response may beat send_and_wait's return
        limit = self.timeout if timeout is None else timeout
        # The writer drops the request (answers `timeout`) once we have stopped waiting for it.
        deadline_ms = int((time.time() + limit) * 1000) if limit is not None else None
        headers = request_headers(request_id, self.actor, deadline_ms, self.reply_partition)
        if self.signer is not None:
            headers = self.signer.sign(value, headers, int(time.time() * 1000))
        # A read goes to the read topic unless a write of this client is in flight: on the request topic
        # the writer answers it after that write, so a client's put then get keep their order.
        read = operation in READ_OPERATIONS
        topic = self.read_topic if read and not self._writes_in_flight else self.settings.topics.request
        self._writes_in_flight += 0 if read else 1
        try:
            async with asyncio.timeout(limit):
                await self._producer.send_and_wait(topic, value, headers=headers)
                response = await future
        except TimeoutError:
            write = operation in WRITE_OPERATIONS
            unknown = " The write may still be applied: check the version or value before retrying." if write else ""
            raise (RequestTimeout if write else ReadTimeout)(
                f"no response to {operation!r} request {request_id} within {limit:g} s; "
                f"is the eventconfig service running?{unknown}") from None
        except MessageSizeTooLargeError as exc:
            raise TooLarge(f"{operation!r} request of {len(value)} bytes is over the message size limit "
                           f"({self.settings.max_message_bytes} bytes)") from exc
        except KafkaError as exc:
            raise ClientError(f"cannot send {operation!r} request: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)
            self._writes_in_flight -= 0 if read else 1
        return dict(check_response(response))

    # --- high level: reads (every read accepts min_version: wait until the view reached it) --

    async def get_many_versioned(self, workspace: str, keys: Iterable[Any], *,
                                 min_version: int | None = None) -> Versioned[list[ConfigItem]]:
        """Items in request order (duplicates kept; a missing key has value and version None).

            got = await client.get_many_versioned("default", [("prompt", "a"), ("prompt", "b")])
            got.value[0].value, got.version
        """
        response = await self.request(GET, workspace, keys=keys, min_version=min_version)
        return Versioned(response_items(response, workspace), response["version"])

    async def get_many(self, workspace: str, keys: Iterable[Any], *,
                       min_version: int | None = None) -> list[ConfigItem]:
        """Like get_many_versioned, without the global version."""
        return (await self.get_many_versioned(workspace, keys, min_version=min_version)).value

    async def get_item(self, workspace: str, type: str, key: str, *,
                       min_version: int | None = None) -> ConfigItem | None:
        """One item with the version at which it last changed, or None when missing.

            item = await client.get_item("default", "prompt", "system")
            await client.put("default", "prompt", "system", "new", if_version=item.version)
        """
        [item] = await self.get_many(workspace, [(type, key)], min_version=min_version)
        return None if item.value is None else item

    async def get(self, workspace: str, type: str, key: str, *, min_version: int | None = None) -> str | None:
        """The value, or None when the key is missing.

            await client.get("default", "prompt", "system")   # 'You are helpful' or None
        """
        item = await self.get_item(workspace, type, key, min_version=min_version)
        return None if item is None else item.value

    async def keys_versioned(self, workspace: str, type: str, *,
                             min_version: int | None = None) -> Versioned[list[str]]:
        """Keys of one type, ascending, with the global version they reflect."""
        response = await self.request(LIST, workspace, type=type, min_version=min_version)
        return Versioned(list(response["directory"]), response["version"])

    async def keys(self, workspace: str, type: str, *, min_version: int | None = None) -> list[str]:
        """Keys of one type, ascending (``[]`` for an unknown type).

            await client.keys("default", "prompt")   # ['system', 'template-index']
        """
        return (await self.keys_versioned(workspace, type, min_version=min_version)).value

    async def get_values_versioned(self, workspace: str, type: str, *,
                                   min_version: int | None = None) -> Versioned[dict[str, str]]:
        """``{key: value}`` of one type in key order, with the global version."""
        response = await self.request(GETVALUES, workspace, type=type, min_version=min_version)
        return Versioned({v["key"]: v["value"] for v in response["values"]}, response["version"])

    async def get_values(self, workspace: str, type: str, *, min_version: int | None = None) -> dict[str, str]:
        """``{key: value}`` of one type in key order.

            await client.get_values("default", "prompt")   # {'system': '...'}
        """
        return (await self.get_values_versioned(workspace, type, min_version=min_version)).value

    async def get_values_all_workspaces_versioned(self, type: str, *, min_version: int | None = None
                                                  ) -> Versioned[list[ConfigItem]]:
        """Every item of one type in every workspace (reserved ones too), by (workspace, key)."""
        response = await self.request(GETVALUES_ALL_WS, type=type, min_version=min_version)
        return Versioned(response_items(response), response["version"])

    async def get_values_all_workspaces(self, type: str, *, min_version: int | None = None) -> list[ConfigItem]:
        """Every item of one type in every workspace (reserved ones too), by (workspace, key).

            [(i.workspace, i.key, i.value) for i in await client.get_values_all_workspaces("flow")]
        """
        return (await self.get_values_all_workspaces_versioned(type, min_version=min_version)).value

    async def get_keys_all_workspaces_versioned(self, type: str, *, min_version: int | None = None
                                                ) -> Versioned[list[tuple[str, str]]]:
        """``(workspace, key)`` of one type everywhere, without values (small responses)."""
        response = await self.request(GETKEYS_ALL_WS, type=type, min_version=min_version)
        return Versioned([(v["workspace"], v["key"]) for v in response["values"]], response["version"])

    async def get_keys_all_workspaces(self, type: str, *, min_version: int | None = None) -> list[tuple[str, str]]:
        """``(workspace, key)`` of one type everywhere, sorted.

            await client.get_keys_all_workspaces("flow")   # [('acme', 'f1'), ('default', 'f1')]
        """
        return (await self.get_keys_all_workspaces_versioned(type, min_version=min_version)).value

    async def workspaces_for_type(self, type: str, *, min_version: int | None = None) -> set[str]:
        """Workspaces holding at least one item of ``type`` (a helper TrustGraph's client has)."""
        return {ws for ws, _ in await self.get_keys_all_workspaces(type, min_version=min_version) if ws}

    async def get_all_versioned(self, workspace: str, *, min_version: int | None = None
                                ) -> Versioned[dict[str, dict[str, str]]]:
        """The whole workspace ``{type: {key: value}}`` with the global version."""
        response = await self.request(CONFIG, workspace, min_version=min_version)
        return Versioned({t: dict(kv) for t, kv in response["config"].items()}, response["version"])

    async def get_all(self, workspace: str, *, min_version: int | None = None) -> dict[str, dict[str, str]]:
        """The whole workspace ``{type: {key: value}}``; ``{}`` means it has no config.

            (await client.get_all("default")).get("prompt", {})
        """
        return (await self.get_all_versioned(workspace, min_version=min_version)).value

    async def version(self) -> int:
        """The current global version: a ``get`` of no keys in ``__system__`` (no data, no name checks).

            v = await client.version()
        """
        return (await self.request(GET, VERSION_PROBE_WORKSPACE))["version"]

    # --- high level: writes (each call is one request: one new version) ---------------------

    async def put_many(self, workspace: str, items: Iterable[Any]) -> int:
        """Put many items in ONE request (atomic, one version); returns the new version.

            await client.put_many("default", [("prompt", "a", "1"), ("prompt", "b", "2", 0)])
        """
        return (await self.request(PUT, workspace, values=items))["version"]

    async def put(self, workspace: str, type: str, key: str, value: str, *, if_version: int | None = None) -> int:
        """Set one value; ``if_version`` makes it a compare-and-set (0 = must not exist yet).

            v = await client.put("default", "prompt", "system", "You are helpful", if_version=0)
        """
        return await self.put_many(workspace, [(type, key, value, if_version)])

    async def delete_many(self, workspace: str, keys: Iterable[Any]) -> int:
        """Delete many keys in ONE request (missing keys are fine); returns the new version.

            await client.delete_many("default", [("prompt", "a"), ("prompt", "b", 7)])
        """
        return (await self.request(DELETE, workspace, keys=keys))["version"]

    async def delete(self, workspace: str, type: str, key: str, *, if_version: int | None = None) -> int:
        """Delete one key; ``if_version`` requires it to be at that version (0 = must not exist).

            v = await client.delete("default", "prompt", "system")
        """
        return await self.delete_many(workspace, [(type, key, if_version)])


async def _stop_quietly(*clients: Any) -> None:
    for client in clients:
        if client is not None:
            with contextlib.suppress(Exception):
                await client.stop()
