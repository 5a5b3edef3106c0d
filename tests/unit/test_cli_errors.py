"""Every command's error paths, run as the real ``eventconfig`` process: one line on stderr, a documented
exit code (eventconfig.cli.common), never a traceback, nothing left open, and a bounded wait.

No broker is needed: "unreachable" is a closed port on 127.0.0.1, or a port that accepts connections
and never answers (a hung broker).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from eventconfig.audit import ExportDocument
from eventconfig.cli.common import EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE, failure
from eventconfig.client import ClientError
from eventconfig.errors import Conflict
from eventconfig.localbroker.broker import free_port
from eventconfig.settings import Settings
from tests.support import CLI_DEADLINE_S, assert_one_line_error, eventconfig


@pytest.fixture
def closed_port() -> str:
    """127.0.0.1 at a port nobody listens on: every connection is refused at once."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def hung_broker() -> Iterator[str]:
    """A port whose connections are accepted (by the kernel's backlog) and never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def export_file(tmp_path: Path) -> Path:
    path = tmp_path / "export.json"
    path.write_text(ExportDocument("w", 1, {"prompt": {"system": "hi"}}).to_json())
    return path


# Every command that talks to Kafka; {tmp} is the test's folder, {export} a valid export document.
_COMMANDS = {
    "topics-check": "topics check", "topics-create": "topics create",
    "history": "history", "history-follow": "history --follow", "state": "state --at-version 1",
    "diff-equal-versions": "diff --from 1 --to 1", "verify-scratch": "verify --scratch",
    "rebuild": "rebuild --path {tmp}/view", "export": "export -w w",
    "export-at-version": "export -w w --at-version 1 -o {tmp}/out.json", "import": "import -i {export}",
    "get": "get -t t -k k", "put": "put -t t -k k --value v", "delete": "delete -t t -k k", "list": "list -t t",
    "getvalues": "getvalues -t t", "dump": "dump", "watch": "watch", "watch-values": "watch --values",
    "serve": "serve", "project": "project",
}


@pytest.mark.parametrize("command", _COMMANDS.values(), ids=_COMMANDS.keys())
def test_an_unreachable_broker_is_one_line_and_exit_3(command: str, closed_port: str, tmp_path: Path,
                                                     export_file: Path) -> None:
    args = command.format(tmp=tmp_path, export=export_file).split()
    result = eventconfig(closed_port, *args, cwd=tmp_path)
    assert_one_line_error(result, EXIT_UNAVAILABLE, f"cannot reach Kafka at {closed_port}")
    assert result.stdout == "", "nothing half-printed"
    assert not (tmp_path / "out.json").exists(), "no output file when nothing was read"


@pytest.mark.parametrize("args", [["topics", "check"], ["history"], ["verify", "--scratch"], ["get", "-t", "t", "-k", "k"]],
                         ids=["topics-check", "history", "verify-scratch", "get"])
def test_a_broker_that_never_answers_fails_within_the_request_timeout(args: list[str], hung_broker: str,
                                                                      tmp_path: Path) -> None:
    started = time.monotonic()
    result = eventconfig(hung_broker, *args, cwd=tmp_path, env={"EVENTCONFIG_REQUEST_TIMEOUT_MS": "1000"})
    assert_one_line_error(result, EXIT_UNAVAILABLE, f"cannot reach Kafka at {hung_broker}")
    assert time.monotonic() - started < CLI_DEADLINE_S / 2, "bounded by request_timeout_ms, not by a hang"


def test_export_to_a_folder_that_does_not_exist_is_a_usage_error_before_connecting(closed_port: str,
                                                                                    tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "out.json"
    result = eventconfig(closed_port, "export", "-w", "w", "-o", str(missing), cwd=tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert f"folder {missing.parent} does not exist" in result.stderr and "Traceback" not in result.stderr


def test_import_of_a_missing_or_bad_file_fails_before_connecting(closed_port: str, tmp_path: Path) -> None:
    missing = eventconfig(closed_port, "import", "-i", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert missing.returncode == EXIT_USAGE and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    assert_one_line_error(eventconfig(closed_port, "import", "-i", str(bad), cwd=tmp_path), EXIT_ERROR,
                          f"{bad} is not JSON")
    assert_one_line_error(eventconfig(closed_port, "import", cwd=tmp_path, stdin='{"format": "x"}'), EXIT_ERROR,
                          "standard input is not an eventconfig-export/1 document")


def test_verify_of_a_view_that_does_not_exist_is_one_line_and_exit_1(closed_port: str, tmp_path: Path) -> None:
    result = eventconfig(closed_port, "verify", "--path", str(tmp_path / "nothing"), cwd=tmp_path)
    assert_one_line_error(result, EXIT_ERROR, "there is no view at")


def test_a_bad_setting_is_one_line_and_exit_1(closed_port: str, tmp_path: Path) -> None:
    result = eventconfig(closed_port, "topics", "check", cwd=tmp_path, env={"EVENTCONFIG_REQUEST_TIMEOUT_MS": "soon"})
    assert_one_line_error(result, EXIT_ERROR, "EVENTCONFIG_REQUEST_TIMEOUT_MS='soon' is not a valid int")


def test_failures_map_to_one_message_and_a_documented_code(tmp_path: Path) -> None:
    settings = Settings.load({"bootstrap_servers": "kafka:9092"}, env={})
    denied = PermissionError(13, "Permission denied", str(tmp_path / "out.json"))
    assert failure(denied, settings) == (f"{tmp_path / 'out.json'}: Permission denied", EXIT_ERROR)
    assert failure(Conflict("t/k is at version 3"), settings) == ("conflict: t/k is at version 3", EXIT_ERROR)
    assert failure(KafkaTimeoutError(), settings) == ("Kafka at kafka:9092 did not answer: KafkaTimeoutError",
                                                      EXIT_UNAVAILABLE)
    try:  # the client's own "cannot reach" error keeps its text and gets the unavailable code
        raise ClientError("cannot reach Kafka at kafka:9092") from KafkaConnectionError()
    except ClientError as exc:
        assert failure(exc, settings) == ("cannot reach Kafka at kafka:9092", EXIT_UNAVAILABLE)
