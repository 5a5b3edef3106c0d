"""The gateway's authentication (pure): auth file parsing, hashing, and credentials mapped to actors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventconfig.cli.main import cli
from eventconfig.gateway.auth import (AuthFileError, LoginChecker, HttpUser, Unauthorized, check_password,
                                      hash_password, token_digest)

TOKEN = "s3cret-token"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def auth() -> LoginChecker:
    return LoginChecker.from_mapping({
        "tokens": [{"actor": "deploy-bot", "sha256": token_digest(TOKEN).upper()}],
        "users": [{"username": "alice", "password": hash_password("pw", iterations=1000)},
                  {"username": "bob", "password": hash_password("pw2", iterations=1000), "actor": "bob@corp"}]})


def test_without_credentials_configured_nobody_is_verified_and_the_header_is_marked_unverified():
    dev = LoginChecker()
    assert not dev.production
    assert dev.identify(None) == HttpUser("anonymous", verified=False)
    assert dev.identify(f"Bearer {TOKEN}", " carol ") == HttpUser("unverified:carol", verified=False)


def test_tokens_and_users_map_to_their_actors_and_the_actor_header_is_ignored(auth):
    assert auth.production
    assert auth.identify(f"Bearer {TOKEN}", "mallory") == HttpUser("deploy-bot", verified=True)
    assert auth.identify(f"bearer  {TOKEN} ") == HttpUser("deploy-bot", verified=True)
    assert auth.identify(basic("alice", "pw")) == HttpUser("alice", verified=True)
    assert auth.identify(basic("alice", "pw")) == HttpUser("alice", verified=True)  # cached check, same answer
    assert auth.identify(basic("bob", "pw2")) == HttpUser("bob@corp", verified=True)


@pytest.mark.parametrize("authorization, message", [
    (None, "needs credentials"),
    ("Bearer", "needs credentials"),
    ("Bearer nope", "not valid"),
    ("Digest abc", "unsupported authorization scheme"),
    ("Basic !!!", "not base64"),
    (basic("alice", "wrong"), "not valid"),
    (basic("nobody", "pw"), "not valid"),
    ("Basic " + base64.b64encode(b"alice").decode(), "not valid"),
])
def test_wrong_or_missing_credentials_are_unauthorized(auth, authorization, message):
    with pytest.raises(Unauthorized, match=message):
        auth.identify(authorization)


def test_a_password_hash_verifies_only_its_password_and_is_salted():
    stored = hash_password("pw", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert check_password("pw", stored) and not check_password("pw ", stored)
    assert hash_password("pw", iterations=1000) != stored


@pytest.mark.parametrize("document, message", [
    ([], "must be a mapping"),
    ({"tokens": [], "roles": []}, "must be a mapping"),
    ({"tokens": {"a": 1}}, "must be a list of mappings"),
    ({"tokens": [{"actor": "x"}]}, r"tokens\[1\].sha256 must be a non-empty string"),
    ({"tokens": [{"actor": "x", "sha256": "abc"}]}, "64 hex digits"),
    ({"tokens": [{"sha256": "a" * 64}]}, r"tokens\[1\].actor"),
    ({"users": [{"username": "u", "password": "plain"}]}, "pbkdf2_sha256"),
    ({"users": [{"username": "u", "password": "pbkdf2_sha256$10$%%%$abc"}]}, "base64"),
    ({"users": [{"username": "a:b", "password": hash_password("p", iterations=1)}]}, "may not contain ':'"),
    ({"users": [{"username": "u", "password": hash_password("p", iterations=1), "actor": ""}]}, "actor must be"),
])
def test_a_malformed_auth_file_names_the_wrong_entry(document, message):
    with pytest.raises(AuthFileError, match=message):
        LoginChecker.from_mapping(document)


def test_the_auth_file_is_yaml_and_its_errors_name_the_file(tmp_path: Path):
    good = tmp_path / "auth.yaml"
    good.write_text(f"tokens:\n  - actor: bot\n    sha256: {token_digest(TOKEN)}\n")
    assert LoginChecker.from_file(good).identify(f"Bearer {TOKEN}").actor == "bot"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokens: [unclosed\n")
    with pytest.raises(AuthFileError, match="bad.yaml"):
        LoginChecker.from_file(bad)
    with pytest.raises(AuthFileError, match="cannot read"):
        LoginChecker.from_file(tmp_path / "missing.yaml")


def test_gateway_secret_prints_a_token_with_its_hash_and_a_password_hash():
    runner = CliRunner()
    token_run = runner.invoke(cli, ["gateway-secret", "token"])
    assert token_run.exit_code == 0
    lines = token_run.output.splitlines()
    token, digest = lines[0].split()[1], lines[2].split()[1]
    assert token_digest(token) == digest
    password_run = runner.invoke(cli, ["gateway-secret", "password"], input="pw\npw\n")
    assert password_run.exit_code == 0
    assert check_password("pw", password_run.output.strip().splitlines()[-1])


def test_gateway_with_a_broken_auth_file_fails_in_one_line(tmp_path: Path):
    broken = tmp_path / "auth.yaml"
    broken.write_text("users: [{username: u, password: plain}]\n")
    result = CliRunner().invoke(cli, ["gateway", "--auth-file", str(broken)])
    assert result.exit_code == 1
    assert "error:" in result.output and "auth.yaml" in result.output and "Traceback" not in result.output
