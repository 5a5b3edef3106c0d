"""Verified actors and permissions on the real broker (docs/design.md §14.1, §14.2): a service with a
keyring and a policy records signed writers as verified, refuses unsigned, forged and replayed
requests (also after a fail-over) with `unauthenticated` and a DLQ record, and a write outside the
policy with `forbidden`, writing nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from eventconfig.client import ConfigClient
from eventconfig.codec import default_codec
from eventconfig.errors import Forbidden
from eventconfig.settings import Settings
from eventconfig.signing import Signer, new_key_pair
from tests.support import resend, running_service, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


def identity(tmp_path: Path, actor: str) -> tuple[Path, str]:
    pem, public = new_key_pair()
    path = tmp_path / f"{actor}.pem"
    path.write_bytes(pem)
    return path, public


@pytest.fixture
def secured(settings: Settings, tmp_path: Path) -> Settings:
    """The deployment with a keyring (alice, bob) and a policy: alice is an admin, bob may write acme-*."""
    keys = {actor: identity(tmp_path, actor) for actor in ("alice", "bob")}
    keyring = tmp_path / "keyring.json"
    keyring.write_text(json.dumps({"actors": {a: {"keys": [public]} for a, (_, public) in keys.items()}}))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"admins": ["alice"], "rules": [
        {"who": "bob", "workspaces": ["acme-*"], "access": "read-write"}]}))
    return dataclasses.replace(settings, auth_keyring_file=str(keyring), policy_file=str(policy),
                               signing_key_file=str(keys["alice"][0]), signing_actor="alice")


async def test_signed_writes_are_verified_and_unsigned_forged_replayed_or_forbidden_ones_refused(
        secured: Settings, topics, wire, tmp_path: Path):
    bob = Signer.from_file("bob", tmp_path / "bob.pem")
    async with running_service(secured):
        async with ConfigClient(secured) as alice:
            await alice.put("__system__", "t", "k", "admin")
        async with ConfigClient(secured, signer=bob) as client:
            with pytest.raises(Forbidden, match="actor 'bob' may not write other/t"):
                await client.put("other", "t", "k", "v")
            await client.put("acme-1", "t", "k", "bob")

        unsigned = await wire.call("put", "acme-1", actor="bob", values=[{"type": "t", "key": "k", "value": "x"}])
        assert unsigned["error"]["type"] == "unauthenticated"
        assert "authentication is required" in unsigned["error"]["message"]

        # A captured request, sent again byte for byte: refused as a replay.
        requests = await wire.read_topic(secured.topics.request)
        captured = [r for r in requests
                    if dict(r.headers).get("actor") == b"bob" and "signature" in dict(r.headers)][-1]
        await resend(secured, captured)
        replay_id = dict(captured.headers)["id"].decode()
        await wait_until(lambda: count_dlq(wire, secured, replay_id, 1), 30,
                         "the replay was not dead-lettered as Unauthenticated")
    # ...and after a fail-over, by a writer that never saw the original.
    async with running_service(secured):
        await resend(secured, captured)
        await wait_until(lambda: count_dlq(wire, secured, replay_id, 2), 30,
                         "both replays were not dead-lettered as Unauthenticated")

    history = [codec.decode("Mutation", r.value) for r in await wire.read_topic(secured.topics.history)]
    assert [(m["workspace"], m["actor"], m["actor_verified"]) for m in history] == [
        ("__system__", "alice", True), ("acme-1", "bob", True)], "nothing refused was written"


async def count_dlq(wire, settings: Settings, request_id: str, expected: int) -> bool:  # type: ignore[no-untyped-def]
    records = await wire.read_topic(settings.topics.dlq)
    replays = [r for r in records if dict(r.headers).get("id") == request_id.encode()
               and dict(r.headers).get("error-type") == b"Unauthenticated"
               and b"replay" in dict(r.headers).get("error", b"")]
    return len(replays) == expected
