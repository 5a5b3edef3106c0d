"""Dump a TrustGraph deployment's config for ``eventconfig import``: {workspace: {type: {key: value}}}.

Run it against the TrustGraph config service you are replacing, before you stop it, with
trustgraph-base installed (``pip install trustgraph-base``)::

    python examples/trustgraph_dump.py --bootstrap-servers kafka:9092 -o trustgraph-dump.json
    eventconfig import -i trustgraph-dump.json --dry-run

Workspaces are found in ``__workspaces__`` (TrustGraph's registry), plus the reserved ones and
``default``; name any other with ``--workspace``. Each is read with the ``config`` operation, so
the dump holds exactly what TrustGraph's own clients see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from trustgraph.base.async_config_client import AsyncConfigClient
from trustgraph.base.async_kafka_backend import AsyncKafkaBackend
from trustgraph.schema import ConfigRequest

ALWAYS = ["__template__", "__system__", "__workspaces__", "default"]


async def dump(bootstrap_servers: str, topicspace: str, extra: list[str]) -> dict[str, dict[str, dict[str, str]]]:
    backend = AsyncKafkaBackend(bootstrap_servers=bootstrap_servers)
    client = await AsyncConfigClient.create(backend, f"request:{topicspace}:config", f"response:{topicspace}:config",
                                            timeout=30)
    try:
        registered = await client.request(ConfigRequest(operation="getkeys-all-ws", type="workspace"), timeout=30)
        if registered.error:
            raise RuntimeError(f"{registered.error.type}: {registered.error.message}")
        found = {v.key for v in registered.values if v.workspace == "__workspaces__"}
        result = {}
        for workspace in sorted(found | set(ALWAYS) | set(extra)):
            config = await client.get_all(workspace, timeout=30)
            if config:
                result[workspace] = config
        return result
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--topicspace", default="tg", help="TrustGraph topicspace (default: tg)")
    parser.add_argument("--workspace", action="append", default=[], help="another workspace to include")
    parser.add_argument("--output", "-o", default="-", help="file to write ('-': standard output)")
    args = parser.parse_args()
    try:
        document = asyncio.run(dump(args.bootstrap_servers, args.topicspace, args.workspace))
    except (RuntimeError, asyncio.TimeoutError) as exc:
        sys.exit(f"error: {exc or 'no answer from the TrustGraph config service'}")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    print(f"dumped {sum(len(kv) for c in document.values() for kv in c.values())} items of "
          f"{len(document)} workspaces", file=sys.stderr)


if __name__ == "__main__":
    main()
