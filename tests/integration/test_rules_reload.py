"""Keys and rules that change, on the real broker (docs/design.md §14.1, §14.4): a key made by
``eventconfig keys new`` signs a client's writes; a key revoked with ``eventconfig keys revoke`` and a
policy change apply to the running writer without a restart, and a standby that started with the old
keyring refuses the revoked key once it takes over; a ``serve`` process re-reads the keyring on
SIGHUP and keeps the previous rules when the file no longer parses; a request signed for one
deployment is refused by another that shares the keyring."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest

from eventconfig.client import ConfigClient
from eventconfig.codec import default_codec
from eventconfig.errors import Forbidden, Unauthenticated
from eventconfig.kafka.reading import read_whole
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from eventconfig.signing import new_key_pair
from tests.support import eventconfig, resend, running_service, start_process, wait_serving, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()
RELOAD_S = 30  # far above the 2 s the writer takes to notice a changed file on a busy machine


@pytest.fixture
def secured(settings: Settings, tmp_path: Path) -> Settings:
    """A keyring with alice (an admin, her key in alice.pem) and bob (made by `eventconfig keys new`,
    bob.pem), a policy letting bob write acme-*; the deployment signs as alice."""
    pem, alice = new_key_pair()
    (tmp_path / "alice.pem").write_bytes(pem)
    keyring, policy = tmp_path / "keyring.json", tmp_path / "policy.json"
    keyring.write_text(json.dumps({"actors": {"alice": {"keys": [alice], "groups": ["admins"]}}}))
    made = eventconfig("127.0.0.1:1", "keys", "new", "bob", "--key-file", "bob.pem", "--keyring", str(keyring),
                       cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    write_policy(policy, bob_writes=["acme-*"])
    return dataclasses.replace(settings, auth_keyring_file=str(keyring), policy_file=str(policy),
                               signing_key_file=str(tmp_path / "alice.pem"), signing_actor="alice")


def write_policy(path: Path, bob_writes: list[str]) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({"admins": ["alice"], "rules": [
        {"who": "bob", "workspaces": bob_writes, "access": "read-write"}]}))
    os.replace(temp, path)


def as_bob(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, signing_key_file=str(tmp_path / "bob.pem"), signing_actor="bob")


async def refused(client: ConfigClient, workspace: str, error: type[Exception]) -> bool:
    """Whether a put to ``workspace`` is refused with ``error`` (False when it was written)."""
    try:
        await client.put(workspace, "t", "k", "v")
    except error:
        return True
    return False


async def written(client: ConfigClient, workspace: str) -> bool:
    return not await refused(client, workspace, Forbidden)


async def test_a_revoked_key_and_a_policy_change_apply_without_a_restart_and_after_a_take_over(
        secured: Settings, tmp_path: Path) -> None:
    standby = ConfigService(dataclasses.replace(secured, data_dir=tmp_path / "standby"))
    keyring = Path(secured.auth_keyring_file)
    try:
        async with running_service(secured):
            await standby.start()  # reads the keyring now, while bob's key is in it
            async with ConfigClient(as_bob(secured, tmp_path)) as bob:
                await bob.put("acme-1", "t", "k", "bob")  # the key `keys new` made signs
                with pytest.raises(Forbidden):
                    await bob.put("other", "t", "k", "v")
                write_policy(Path(secured.policy_file), bob_writes=["acme-*", "other"])
                await wait_until(lambda: written(bob, "other"), RELOAD_S,
                                 "the running writer did not apply the changed policy")
            # Bob's key revoked in a way no look at the file notices (see swap_unseen): only a
            # standby that reads the file afresh when it takes over refuses it.
            swap_unseen(keyring, "bob")
        await standby.writer.wait_active(60)
        async with ConfigClient(as_bob(secured, tmp_path)) as bob:
            with pytest.raises(Unauthenticated, match="does not match any key of actor 'bob'"):
                await bob.put("acme-1", "t", "k", "after fail-over")
        # A key revoked with `eventconfig keys revoke` while the writer runs: refused without a restart.
        async with ConfigClient(secured) as alice:
            await alice.put("acme-1", "t", "k", "alice")
            revoked = eventconfig("127.0.0.1:1", "keys", "revoke", "alice", "--keyring", str(keyring), cwd=tmp_path)
            assert revoked.returncode == 0, revoked.stderr
            await wait_until(lambda: refused(alice, "acme-1", Unauthenticated), RELOAD_S,
                             "the running writer still accepts the revoked key")
    finally:
        await standby.stop()


def swap_unseen(keyring: Path, actor: str) -> None:
    """Replace ``actor``'s key by another of the same length, in place, the modification time put back:
    the file's inode, size and modification time stay, so only an explicit re-read (SIGHUP, take-over)
    sees the change."""
    stat, document = keyring.stat(), json.loads(keyring.read_text())
    document["actors"][actor]["keys"] = [new_key_pair()[1]]
    text = (json.dumps(document, indent=2) + "\n").encode()  # as `eventconfig keys` writes it
    assert len(text) == stat.st_size
    with open(keyring, "r+b") as out:
        out.write(text)
    os.utime(keyring, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = keyring.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns)


async def test_a_serve_process_rereads_the_keyring_on_sighup_and_keeps_it_when_the_file_is_broken(
        secured: Settings, tmp_path: Path, topics, wire, processes, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("auth_keyring_file", "policy_file"):
        monkeypatch.setenv(f"EVENTCONFIG_{name.upper()}", getattr(secured, name))
    log = tmp_path / "serve.log"
    serve = start_process(secured, "serve", tmp_path / "serve", log)
    processes.append(serve)
    await wait_serving(wire)
    keyring = Path(secured.auth_keyring_file)
    async with ConfigClient(as_bob(secured, tmp_path)) as bob, ConfigClient(secured) as alice:
        await bob.put("acme-1", "t", "k", "before")

        swap_unseen(keyring, "bob")  # only SIGHUP reads it
        serve.send_signal(signal.SIGHUP)
        await wait_until(lambda: refused(bob, "acme-1", Unauthenticated), RELOAD_S,
                         "the serve process did not re-read the keyring on SIGHUP")

        # A file that no longer parses: one error line, the previous keyring stays in force.
        keyring.write_text('{"actors": ')
        serve.send_signal(signal.SIGHUP)
        await wait_until(lambda: "the keyring file did not reload" in log.read_text(), RELOAD_S,
                         "the broken keyring was not reported")
        await alice.put("acme-2", "t", "k", "still")
        with pytest.raises(Unauthenticated):
            await bob.put("acme-1", "t", "k", "still revoked")
    assert serve.poll() is None, "SIGHUP does not stop serve"


async def test_a_request_signed_for_one_deployment_is_refused_by_another_sharing_the_keyring(
        secured: Settings, tmp_path: Path, topics, wire) -> None:
    other = dataclasses.replace(secured, topic_prefix=f"{secured.topic_prefix}-b", data_dir=tmp_path / "b")
    assert other.deployment_name != secured.deployment_name
    async with running_service(secured):
        async with ConfigClient(secured) as alice:
            await alice.put("acme-1", "t", "k", "for a")
    captured = [r for r in await wire.read_topic(secured.topics.request)
                if dict(r.headers).get("actor") == b"alice"][-1]
    request_id = dict(captured.headers)["id"]
    async with running_service(other):
        await resend(other, captured)

        async def dead_lettered() -> bool:
            return any(dict(r.headers).get("id") == request_id and b"for deployment" in dict(r.headers)["error"]
                       for r in await read_whole(other, other.topics.dlq))

        await wait_until(dead_lettered, 30, "deployment b did not refuse a request signed for deployment a")
        async with ConfigClient(other) as alice:  # its own requests are signed for it
            await alice.put("acme-1", "t", "k", "for b")
    history = [codec.decode("Mutation", r.value) for r in await read_whole(other, other.topics.history)]
    assert request_id.decode() not in {m["request_id"] for m in history}, "nothing of the replay was written"
