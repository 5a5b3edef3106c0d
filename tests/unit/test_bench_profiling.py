"""``python -m bench --profile DIR``: its arguments, its one-line refusals, and the rows it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import main, parse_args
from bench.profiling import ProcessProfile, ProfilerUnavailable, check_attach, find_py_spy, profile_rows
from bench.stacks import Stack, summarise


def test_profile_takes_a_folder_and_is_off_by_default() -> None:
    assert parse_args(["--quick", "--only", "put64,get64", "--profile", "/tmp/prof"]).profile == Path("/tmp/prof")
    assert parse_args(["--quick"]).profile is None


def test_profile_without_a_profiled_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--only", "replay,auth", "--profile", "/tmp/prof"])
    assert exited.value.code == 2
    assert "--profile records the windows of put1, put64, get1, get64, fleet" in capsys.readouterr().err


def test_missing_py_spy_stops_the_run_before_it_starts_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))  # nothing beside it
    monkeypatch.setenv("PATH", str(tmp_path))  # nor on PATH
    with pytest.raises(ProfilerUnavailable, match="py-spy is not installed"):
        find_py_spy()
    with pytest.raises(SystemExit) as exited:
        main(["--only", "put1", "--profile", str(tmp_path / "prof")])
    assert exited.value.code == "error: --profile: py-spy is not installed (pip install 'eventconfig[bench]')"
    assert not (tmp_path / "prof").exists()


def test_a_py_spy_that_cannot_attach_is_refused_with_its_reason(tmp_path: Path) -> None:
    refusing = tmp_path / "py-spy"
    refusing.write_text("#!/bin/sh\necho 'Error: Permission denied (os error 13)' >&2\nexit 1\n")
    refusing.chmod(0o755)
    with pytest.raises(ProfilerUnavailable) as refused:
        check_attach(str(refusing))
    assert "cannot attach" in str(refused.value) and "Permission denied (os error 13)" in str(refused.value)
    assert "ptrace" in str(refused.value)


def test_an_unusable_profile_folder_is_one_error_line_of_the_real_process(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run([sys.executable, "-m", "bench", "--only", "put1", "--profile", str(blocker / "prof")],
                            capture_output=True, text=True, timeout=60, check=False)
    # without py-spy or ptrace the reason differs; it is still one line and nothing else runs
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: --profile: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def _profile(role: str, stacks: list[Stack], on_core_pct: float, ready_pct: float) -> ProcessProfile:
    return ProcessProfile("put64", role, Path(f"/tmp/prof/put64-{role}.txt"), summarise(stacks), on_core_pct=on_core_pct,
                          ready_pct=ready_pct)


def test_profile_rows_put_each_process_beside_its_measured_cpu() -> None:
    client = _profile("client", [Stack("t", ("w (asyncio/selector_events.py:1)",), 60),
                                 Stack("t", ("d (aiokafka/protocol/struct.py:1)",), 40)], 25.0, 70.0)
    service = _profile("service", [Stack("t", ("s (selectors.py:468)",), 75),
                                   Stack("t", ("b (eventconfig/writer/batch.py:1)",), 25)], 26.0, 5.0)
    failed = ProcessProfile("put64", "service", Path("/tmp/prof/x.txt"), error="py-spy recorded nothing: gone")
    cpu = {"clients_pct": 102.0, "service_pct": 26.0, "broker_pct": 59.0, "machine_busy_pct": 190.0}

    rows = profile_rows([client, service], cpu, client_procs=4)

    assert [(r.metric, r.value, r.unit) for r in rows] == [
        ("where the time goes: clients (py-spy on 1 of 4 processes)", 102.0, "% CPU"),
        ("where the time goes: service", 26.0, "% CPU"),
        ("where the time goes: broker", 59.0, "% CPU")]
    # the shares of the one profiled client apply to the CPU of all four; its own state is its own
    assert rows[0].note.startswith("of which socket I/O 61%, Kafka protocol encode/decode 41%; the profiled process: "
                                   "on a core 25%, ready but waiting for a core 70%, event loop idle in select 0% of "
                                   "the window")
    assert rows[0].note.endswith("put64-client.txt, put64-client.speedscope.json")
    assert rows[1].note.startswith("of which eventconfig service 26%; the profiled process: on a core 26%, ready "
                                   "but waiting for a core 5%, event loop idle in select 75% of the window")
    [row, _] = profile_rows([failed], cpu, client_procs=1)
    assert not row.valid and row.note == "py-spy recorded nothing: gone"
    assert profile_rows([], cpu, client_procs=4) == []  # without --profile the table is as before
