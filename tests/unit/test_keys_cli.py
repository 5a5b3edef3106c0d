"""``eventconfig keys new|list|revoke`` as the real process: the key file signs what the edited keyring
verifies, the file keeps its format and its other entries, and every error is one line and a
documented exit code (eventconfig.cli.common)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from eventconfig.cli.common import EXIT_ERROR, EXIT_USAGE
from eventconfig.codec import default_codec
from eventconfig.signing import Signer, new_key_pair
from eventconfig.writer.auth import Authenticator, Keyring
from eventconfig.writer.keyring_file import fingerprint
from tests.support import assert_one_line_error, eventconfig

BOOTSTRAP = "127.0.0.1:1"  # never contacted: keys works on files only
NOW = 1_800_000_000_000


def keys(tmp_path: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return eventconfig(BOOTSTRAP, "keys", *args, cwd=tmp_path, env=env)


def test_a_new_key_signs_what_the_keyring_it_was_added_to_verifies(tmp_path: Path) -> None:
    _, gateway_key = new_key_pair()
    keyring = tmp_path / "keyring.json"
    keyring.write_text(json.dumps({"actors": {"gateway": {"keys": [gateway_key], "groups": ["edge"],
                                                          "delegates": ["*@example.com"], "note": "kept"}}}))
    made = keys(tmp_path, "new", "alice", "--keyring", str(keyring))
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / "alice.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    document = json.loads(keyring.read_text())  # still JSON, the gateway's entry as it was
    assert document["actors"]["gateway"] == {"keys": [gateway_key], "groups": ["edge"],
                                             "delegates": ["*@example.com"], "note": "kept"}
    [public] = document["actors"]["alice"]["keys"]
    assert fingerprint(public) in made.stdout

    signer = Signer.from_file("alice", key_file, "prod")
    value = default_codec().encode("ConfigRequest", {"operation": "get", "workspace": "w", "keys": []})
    headers = signer.sign(value, [("id", b"r1")], NOW)
    auth = Authenticator(Keyring.load(keyring), 300_000, "prod")
    assert auth.verify(value, headers, "r1", 0, NOW).actor == "alice"


def test_list_shows_actors_fingerprints_and_groups_and_revoke_removes_one_key_or_all(tmp_path: Path) -> None:
    keyring = tmp_path / "keyring.yaml"
    env = {"EVENTCONFIG_AUTH_KEYRING_FILE": str(keyring)}  # the setting, as serve reads it
    for key_file in ("old.pem", "new.pem"):
        assert keys(tmp_path, "new", "bob", "--key-file", key_file, env=env).returncode == 0
    document = yaml.safe_load(keyring.read_text())
    document["actors"]["bob"]["groups"] = ["editors"]
    keyring.write_text(yaml.safe_dump(document))
    old, new = (fingerprint(k) for k in document["actors"]["bob"]["keys"])

    listed = keys(tmp_path, "list", env=env)
    assert listed.stdout.splitlines() == [f"bob\t{old}\teditors", f"bob\t{new}\teditors"]

    assert keys(tmp_path, "revoke", "bob", old, env=env).stdout == f"revoked bob\t{old}\n"
    assert keys(tmp_path, "list", env=env).stdout.splitlines() == [f"bob\t{new}\teditors"]
    assert keys(tmp_path, "revoke", "bob", env=env).returncode == 0
    assert keys(tmp_path, "list", env=env).stdout.splitlines() == ["bob\t-\teditors"]
    assert Keyring.load(keyring).groups["bob"] == frozenset({"editors"}), "the groups stay"


@pytest.mark.parametrize("setup, args, code, fragment", [
    (None, ("list",), EXIT_USAGE, "no keyring"),
    (None, ("list", "--keyring", "missing.yaml"), EXIT_ERROR, "cannot read the keyring"),
    ("{actors: {a: {keys: [nope]}}}", ("list", "--keyring", "k.yaml"), EXIT_ERROR, "not a base64 Ed25519"),
    ("{actors: {}}", ("revoke", "carol", "--keyring", "k.yaml"), EXIT_ERROR, "actor 'carol' is not in the keyring"),
    ("{actors: {}}", ("new", "carol", "--key-file", "taken.pem", "--keyring", "k.yaml"), EXIT_ERROR,
     "taken.pem already exists"),
])
def test_keys_errors_are_one_line_with_a_documented_exit_code(tmp_path: Path, setup: str | None,
                                                              args: tuple[str, ...], code: int, fragment: str) -> None:
    if setup is not None:
        (tmp_path / "k.yaml").write_text(setup)
    (tmp_path / "taken.pem").write_text("mine")
    assert_one_line_error(keys(tmp_path, *args), code, fragment)
    assert (tmp_path / "taken.pem").read_text() == "mine", "a key file is never overwritten"


def test_revoking_a_key_the_actor_does_not_have_changes_nothing(tmp_path: Path) -> None:
    keyring = tmp_path / "k.yaml"
    assert keys(tmp_path, "new", "dan", "--keyring", str(keyring)).returncode == 0
    before = keyring.read_text()
    assert_one_line_error(keys(tmp_path, "revoke", "dan", "SHA256:nope", "--keyring", str(keyring)),
                          EXIT_ERROR, "has no key 'SHA256:nope'")
    assert keyring.read_text() == before
