"""The least-privilege ACL plans of the five roles, and the secure local broker's credentials (no broker)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from eventconfig.kafka.acl_plan import ROLES, Acl, AclError, plan
from eventconfig.localbroker.secure import CA_FILE, ROLE_USERS, SUPER_USER, Credentials
from eventconfig.settings import Settings
from eventconfig.trustgraph.frontend import RequestForwarder, ResponseTranslator
from eventconfig.trustgraph.wire import TrustGraphTopics

OPERATIONS_MD = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
WRITING = {"WRITE", "ALL", "CREATE", "DELETE", "ALTER", "ALTER_CONFIGS"}


def settings(**values: object) -> Settings:
    return Settings.load(values, env={})


def granted(acls: list[Acl], resource_type: str, name: str) -> set[str]:
    """Operations on a resource name, through literal or prefixed bindings."""
    return {a.operation for a in acls if a.resource_type == resource_type
            and (a.resource_name == name if a.pattern == "LITERAL" else name.startswith(a.resource_name))}


def test_the_operations_guide_shows_exactly_what_acls_plan_prints_for_the_default_settings() -> None:
    block = re.search(r"```text\n(# eventconfig acls plan .*?)```", OPERATIONS_MD.read_text(), re.S)
    assert block, "operations.md has the plan block of Access control"
    shown: dict[str, list[str]] = {}
    for line in block.group(1).splitlines():
        if line.startswith("# "):
            role = re.search(r"--role (\w+) --principal User:(\1)$", line)
            assert role, line
            current = shown.setdefault(role.group(1), [])
        else:
            current.append(line)
    assert list(shown) == list(ROLES)
    for role, lines in shown.items():
        assert lines == [acl.line() for acl in plan(settings(), [role], f"User:{role}")], role


def test_a_client_may_append_requests_and_read_answers_and_pokes_but_not_touch_what_the_service_writes() -> None:
    s = settings(topic_prefix="cfg", deployment="blue")
    acls = plan(s, ["client"], "User:app")
    assert granted(acls, "TOPIC", "cfg.request") == granted(acls, "TOPIC", "cfg.read") == {"WRITE"}
    assert granted(acls, "TOPIC", "cfg.response") == granted(acls, "TOPIC", "cfg.notify") == {"READ"}
    for topic in ("cfg.log", "cfg.history", "cfg.dlq"):
        assert granted(acls, "TOPIC", topic) == set(), topic
    assert not [a for a in acls if a.resource_type == "TRANSACTIONAL_ID"]
    for role in ("writer", "projector", "readers"):
        assert granted(acls, "GROUP", s.group_id(role)) == set(), "a client must not join the service's groups"
    assert granted(acls, "GROUP", "blue.client.billing") == {"READ"}
    assert {a.principal for a in acls} == {"User:app"} and {a.permission for a in acls} == {"ALLOW"}


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_readers_write_nothing_and_hold_no_group_or_transactional_id(role: str) -> None:
    acls = plan(settings(), [role], "User:r")
    assert not [a for a in acls if a.operation in WRITING or a.resource_type != "TOPIC"]
    assert "READ" in granted(acls, "TOPIC", "eventconfig.log")
    assert ("READ" in granted(acls, "TOPIC", "eventconfig.history")) == (role == "auditor")


def test_the_service_holds_the_groups_and_transactional_ids_of_every_role_it_runs() -> None:
    s = settings(deployment="blue", trustgraph_topicspace="tg")
    acls = plan(s, ["service"], "User:svc")
    tg = TrustGraphTopics.of("tg")
    roles = [RequestForwarder(s, "tg", tg), ResponseTranslator(s, "tg", tg, 1 << 20)]
    groups = [s.group_id("writer"), s.group_id("projector"), s.readers_group, *(r.group_id for r in roles)]
    ids = [s.transactional_id("writer"), s.transactional_id("projector"), *(r.sender.transactional_id for r in roles)]
    assert sorted(a.resource_name for a in acls if a.resource_type == "GROUP") == sorted(groups)
    assert sorted(a.resource_name for a in acls if a.resource_type == "TRANSACTIONAL_ID") == sorted(ids)
    assert granted(acls, "TOPIC", tg.request) == {"READ", "CREATE", "DESCRIBE_CONFIGS"}
    assert granted(acls, "TOPIC", "eventconfig.request") == {"READ", "WRITE", "DESCRIBE_CONFIGS"}
    assert granted(acls, "TOPIC", "eventconfig.read") == {"READ", "DESCRIBE_CONFIGS"}
    # The writer and projector read the notify topic's last poke when they take their role (design.md §7).
    assert granted(acls, "TOPIC", "eventconfig.notify") == {"READ", "WRITE", "DESCRIBE_CONFIGS"}
    assert all(a.pattern == "LITERAL" for a in acls), "the service gets exact names, no prefixes"


def test_the_admin_owns_the_deployments_prefixes_and_nothing_cluster_wide() -> None:
    acls = plan(settings(topic_prefix="cfg", deployment="blue"), ["admin"], "User:ops")
    assert [(a.resource_type, a.pattern, a.resource_name, a.operation) for a in acls] == [
        ("TOPIC", "PREFIXED", "cfg.", "ALL"), ("GROUP", "PREFIXED", "blue.", "ALL"),
        ("TRANSACTIONAL_ID", "PREFIXED", "blue.", "ALL")]


def test_roles_combine_without_duplicates() -> None:
    both = plan(settings(), ["viewer", "auditor"], "User:x")
    assert len(both) == len(set(both)) and set(both) == set(plan(settings(), ["auditor"], "User:x"))


@pytest.mark.parametrize(("roles", "principal", "message"), [
    (["client"], "app", "must look like User:<name>"),
    (["client"], "User:", "must look like User:<name>"),
    (["root"], "User:x", "unknown role 'root'"),
])
def test_a_bad_principal_or_role_is_refused(roles: list[str], principal: str, message: str) -> None:
    with pytest.raises(AclError, match=re.escape(message)):
        plan(settings(), roles, principal)


def test_a_secure_broker_keeps_its_users_passwords_in_a_private_file_and_reuses_them(tmp_path: Path) -> None:
    created = Credentials.load_or_create(tmp_path)
    assert set(created.passwords) == {SUPER_USER, *ROLE_USERS} == {SUPER_USER, *ROLES}
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600
    assert Credentials.load_or_create(tmp_path) == created == Credentials.load(tmp_path)
    assert len(set(created.passwords.values())) == len(created.passwords), "every user has its own password"
    client = Settings.load({}, env=created.environment("client"))
    assert client.kafka_kwargs()["sasl_plain_username"] == "client"
    assert client.kafka_kwargs()["sasl_plain_password"] == created.passwords["client"]
    assert created.format_args().count("--add-scram") == len(created.passwords)
    properties = created.server_properties(9094, 9096, 9095, tmp_path)
    assert "super.users=User:superuser" in properties and "SASL_SSL://127.0.0.1:9096" in properties
    assert (tmp_path / CA_FILE).exists(), "the throw-away CA clients trust"
    assert stat.S_IMODE((tmp_path / "tls" / "broker.pem").stat().st_mode) == 0o600
    assert created.environment("admin", tmp_path / CA_FILE)["EVENTCONFIG_SSL_CAFILE"] == str(tmp_path / CA_FILE)
    assert Credentials.load(tmp_path / "plain") is None


def test_acls_plan_prints_one_binding_a_line_and_a_bad_principal_is_a_usage_error() -> None:
    from click.testing import CliRunner

    from eventconfig.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["--topic-prefix", "cfg", "acls", "plan", "-r", "client", "-r", "viewer",
                                 "-p", "User:app"], env={})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [a.line() for a in plan(settings(topic_prefix="cfg"), ["client", "viewer"],
                                                                  "User:app")]
    refused = runner.invoke(cli, ["acls", "plan", "-r", "client", "-p", "app"], env={})
    assert refused.exit_code == 2 and "must look like User:<name>" in refused.output


@pytest.mark.parametrize("was_secure", [False, True])
def test_a_run_dir_keeps_the_mode_it_was_made_in(tmp_path: Path, was_secure: bool) -> None:
    from eventconfig.localbroker import BrokerError, LocalBroker

    (tmp_path / "broker.json").write_text(json.dumps({"pid": 0, "port": 9092, "controller_port": 9093,
                                                      "cluster_id": "x", "secure": was_secure}))
    with pytest.raises(BrokerError, match="use another --run-dir to switch modes"):
        LocalBroker(tmp_path, secure=not was_secure).start()  # refused before any JVM runs
