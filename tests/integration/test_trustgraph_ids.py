"""TrustGraph ids on the real broker (docs/design.md §13.4): with authentication on, a request whose id
has the front end's form `tg:<ts>:r:<id>` is taken only from the front end's own actor. Another
signer's is dead-lettered and never answered, so the translator never publishes it to TrustGraph as
TrustGraph's answer to that id; the front end's own requests are answered as before."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from eventconfig.codec import default_codec
from eventconfig.settings import Settings
from eventconfig.signing import Signer, new_key_pair
from eventconfig.trustgraph.wire import TrustGraphTopics
from tests.integration.test_trustgraph import read_all
from tests.support import running_service, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


def keyring(tmp_path: Path, actors: tuple[str, ...]) -> tuple[Path, dict[str, Path]]:
    keys, public = {}, {}
    for actor in actors:
        pem, public[actor] = new_key_pair()
        keys[actor] = tmp_path / f"{actor}.pem"
        keys[actor].write_bytes(pem)
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps({"actors": {a: {"keys": [k]} for a, k in public.items()}}))
    return path, keys


async def answers(settings: Settings, topic: str) -> dict[str, bytes]:
    """Every answer on TrustGraph's response topic, read as TrustGraph reads it (uncommitted too), by id."""
    return {dict(r.headers).get("id", b"").decode(): r.value or b"" for r in await read_all(settings, topic)}


async def test_a_tg_id_signed_by_anyone_but_the_front_end_is_refused_and_never_reaches_trustgraph(
        settings: Settings, topics, wire, tmp_path: Path):
    topicspace = f"tg{uuid.uuid4().hex[:8]}"
    path, keys = keyring(tmp_path, ("frontend", "bob"))
    secured = dataclasses.replace(settings, auth_keyring_file=str(path), signing_key_file=str(keys["frontend"]),
                                  signing_actor="frontend", trustgraph_topicspace=topicspace)
    tg = TrustGraphTopics.of(topicspace)
    forged, genuine = f"forged-{uuid.uuid4()}", f"genuine-{uuid.uuid4()}"
    async with running_service(secured):
        bob = Signer.from_file("bob", keys["bob"], secured.deployment_name)
        value = codec.encode("ConfigRequest", {"operation": "config", "workspace": "w"})
        await wire.send_raw(value, bob.sign(value, [("id", f"tg:{topicspace}:r:{forged}".encode()),
                                                    ("reply-partition", b"0")], int(time.time() * 1000)))
        # Then a real TrustGraph request, through the front end: answered after the forged one would be.
        producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap_servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(tg.request, json.dumps({"operation": "config", "workspace": "w"}).encode(),
                                         headers=[("id", genuine.encode())])
        finally:
            await producer.stop()

        async def answered() -> bool:
            return genuine in await answers(secured, tg.response)
        await wait_until(answered, 60, "the front end's own request was not answered")
        got = await answers(secured, tg.response)
        assert json.loads(got[genuine])["error"] is None
        assert forged not in got, "TrustGraph was given an answer to an id the front end never forwarded"
        dead = [dict(r.headers) for r in await wire.read_topic(secured.topics.dlq)]
        refused = [h for h in dead if h.get("id") == f"tg:{topicspace}:r:{forged}".encode()]
        assert len(refused) == 1 and refused[0]["error-type"] == b"Unauthenticated"
        assert b"reserved to the TrustGraph front end's actor 'frontend'" in refused[0]["error"]


async def test_a_read_answered_twice_reaches_trustgraph_once_also_across_a_translator_take_over(
        settings: Settings, topics, wire, tmp_path: Path):
    """The writer answers a read again after its fail-over (docs/design.md §6): two responses to one
    forwarded id on partition 0. The translator passes on the first only, also after it took over."""
    topicspace = f"tg{uuid.uuid4().hex[:8]}"
    deployment = dataclasses.replace(settings, trustgraph_topicspace=topicspace)
    tg = TrustGraphTopics.of(topicspace)
    twice, marker = f"twice-{uuid.uuid4()}", f"marker-{uuid.uuid4()}"

    async def respond(trustgraph_id: str, directory: list[str]) -> None:
        response = codec.encode("ConfigResponse", {"version": 1, "values": [], "directory": directory,
                                                   "config": {}, "error": None})
        await wire.producer.send_and_wait(deployment.topics.response, response, partition=0,
                                          headers=[("id", f"tg:{topicspace}:r:{trustgraph_id}".encode())])

    async def answered(trustgraph_id: str) -> bool:
        return trustgraph_id in await answers(deployment, tg.response)

    async with running_service(deployment):
        await respond(twice, ["first"])
        await respond(twice, ["second"])
        await respond(marker, [])  # answered after both: once it is there, both were handled
        await wait_until(lambda: answered(marker), 60, "the translator answered nothing")
    async with running_service(dataclasses.replace(deployment, data_dir=tmp_path / "next")):  # a new translator
        await respond(twice, ["third"])
        await respond(marker + "-2", [])
        await wait_until(lambda: answered(marker + "-2"), 60, "the new translator answered nothing")
    got = [json.loads(r.value) for r in await read_all(deployment, tg.response)
           if dict(r.headers).get("id") == twice.encode()]
    assert [a["directory"] for a in got] == [["first"]], "one answer per id, the first"
