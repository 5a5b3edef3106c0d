"""ConfigClient: the request/response client of the config service (docs/design.md §4 and §5).

Each call sends one ``ConfigRequest`` to the request topic with a fresh ``id`` header and waits for
the ``ConfigResponse`` with the same ``id`` on the response topic. A client reads ONE response
partition, picked at random among the topic's partitions (or given), and names it in every request's
``reply-partition`` header, so it reads only the answers of the clients that share its partition
(docs/design.md §4.3). Its position there is resolved at the end *before* the first request leaves,
so no response can slip past it. It reads ``read_committed`` because the writer produces
responses inside its transactions. Its Kafka clients live in a connection hub (``hub.py``) that the
process's other clients and subscribers of the same settings share unless ``share_connections=False``.
The wire mapping itself is pure and lives in ``wire.py``.

Example::

    async with ConfigClient(settings, actor="ops") as client:
        version = await client.put("default", "prompt", "system", "You are helpful")
        await client.get("default", "prompt", "system", min_version=version)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from eventconfig.client.hub import ClientError, ConnectionHub, acquire, kafka_unreachable, release
from eventconfig.client.wire import (ConfigItem, Versioned, build_request, check_response, new_request_id,
                                     request_headers, response_items)
from eventconfig.codec import Codec, default_codec
from eventconfig.errors import ReadTimeout, RequestTimeout, TooLarge
from eventconfig.model import (CONFIG, DELETE, GET, GETKEYS_ALL_WS, GETVALUES, GETVALUES_ALL_WS, LIST, PUT,
                               WRITE_OPERATIONS)
from eventconfig.settings import Settings
from eventconfig.signing import Signer, settings_signer

__all__ = ["VERSION_PROBE_WORKSPACE", "ClientError", "ConfigClient", "kafka_unreachable"]
# The workspace `version()` reads: a `get` of no keys there costs one round trip and no data.
VERSION_PROBE_WORKSPACE = "__system__"


# --- the client ------------------------------------------------------------------------------


class ConfigClient:
    """An asyncio client of the config service; safe for many concurrent calls.

        async with ConfigClient(settings) as client:
            await client.get_all("default")
    """

    def __init__(self, settings: Settings, *, timeout: float = 30.0, actor: str | None = None,
                 codec: Codec | None = None, reply_partition: int | None = None,
                 signer: Signer | None = None, share_connections: bool = True) -> None:
        """``reply_partition``: the response partition to read (None: a random one of the topic's).
        ``signer`` (default: from ``settings.signing_key_file``) signs every request as its actor,
        which then replaces ``actor`` (docs/design.md §14.1). ``share_connections``: use the Kafka
        connections this process's other clients of the same settings use (``hub.py``); False: its own."""
        self.settings = settings
        self.timeout = timeout
        signer = signer or settings_signer(settings)
        self.signer = signer.bound(settings.deployment_name) if signer else None  # v2: for this deployment
        self.actor = self.signer.actor if self.signer else actor
        self._codec = codec or default_codec()
        self._share = share_connections
        self._hub: ConnectionHub | None = None
        self._in_flight: set[str] = set()  # this client's requests awaiting an answer
        self._wanted_partition = reply_partition

    async def __aenter__(self) -> ConfigClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def reply_partition(self) -> int | None:
        """The response partition read, once started."""
        return self._hub.reply_partition if self._hub else None

    @property
    def responses_read(self) -> int:
        """Records its consumer read on its reply partition: its own answers, those of the clients
        sharing its connections, and those of other clients that picked the same partition."""
        return self._hub.responses_read if self._hub else 0

    @property
    def hub(self) -> ConnectionHub:
        """Its Kafka connections (a subscriber reads its pokes through the same consumer)."""
        if self._hub is None:
            raise ClientError("ConfigClient is not started; use `async with ConfigClient(...)` or await start()")
        return self._hub

    async def start(self) -> None:
        """Connect, and position the response reader at the end before any request can be sent."""
        if self._hub is None:
            self._hub = await acquire(self.settings, self._wanted_partition, share=self._share)

    def _attach(self, producer: Any, consumer: Any, reply_partition: int | None = None) -> None:
        """Adopt started Kafka clients as a private hub (tests pass fakes here)."""
        self._hub = ConnectionHub.adopt(self.settings, producer, consumer, reply_partition)
        self._hub.users = 1

    async def stop(self) -> None:
        """Fail this client's pending calls, then let go of its connections."""
        hub, self._hub = self._hub, None
        if hub is not None:
            hub.fail(list(self._in_flight), ClientError("ConfigClient stopped"))
            await release(hub)

    # --- low level --------------------------------------------------------------------------

    async def request(self, operation: str, workspace: str = "", *, keys: Iterable[Any] = (), type: str = "",
                      values: Iterable[Any] = (), min_version: int | None = None,
                      timeout: float | None = None) -> dict[str, Any]:
        """Send one request, return its decoded ``ConfigResponse``; an error response raises.

            response = await client.request("list", "default", type="prompt")
            response["directory"], response["version"]
        """
        message = build_request(operation, workspace, keys=keys, type=type, values=values, min_version=min_version)
        hub = self._hub
        if hub is None:
            raise ClientError("ConfigClient is not started; use `async with ConfigClient(...)` or await start()")
        if hub.failure is not None:
            raise hub.failure
        value = self._codec.encode("ConfigRequest", message)
        request_id = new_request_id()
        future = hub.expect(request_id)  # before sending: the response may beat send_and_wait's return
        self._in_flight.add(request_id)
        limit = self.timeout if timeout is None else timeout
        # The writer drops the request (answers `timeout`) once we have stopped waiting for it.
        deadline_ms = int((time.time() + limit) * 1000) if limit is not None else None
        headers = request_headers(request_id, self.actor, deadline_ms, hub.reply_partition)
        if self.signer is not None:
            headers = self.signer.sign(value, headers, int(time.time() * 1000))
        try:
            async with asyncio.timeout(limit):
                await hub.send(self.settings.topics.request, value, headers)
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
            hub.forget(request_id)
            self._in_flight.discard(request_id)
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

