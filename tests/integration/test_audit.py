"""Audit and replay against the real broker: history, state, diff, verify, rebuild, export/import, retention.

A random workload goes through the running service (the raw wire client); a dict model of the store
says what every version must look like. The CLI is driven through click's CliRunner in a worker
thread, so the service keeps running on the test's event loop while a command runs its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from click.testing import CliRunner, Result

from eventconfig.audit import (ExportDocument, HistoryQuery, HistoryReader, OutOfRetention, diff_states, diff_versions,
                               verify_view)
from eventconfig.cli.main import cli
from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings
from eventconfig.view import ViewStore, ViewWrites
from tests.support import wait_until

pytestmark = pytest.mark.integration

Model = dict[ItemKey, Entry]


@pytest.fixture
def run_cli(settings: Settings):
    """``await run_cli("history", ...)``: the eventconfig command on this test's deployment."""
    root = logging.getLogger()

    def invoke(args: tuple[str, ...], input: str | None) -> Result:
        handlers, level = root.handlers[:], root.level
        try:
            return CliRunner().invoke(cli, ["--bootstrap-servers", settings.bootstrap_servers, "--topic-prefix",
                                            settings.topic_prefix, "--data-dir", str(settings.data_dir),
                                            "--log-level", "WARNING", *args], input=input,
                                       env={"EVENTCONFIG_VIEW_OPEN_WAIT_MS": "500"})  # a locked view: fail soon
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)

    async def run(*args: str, input: str | None = None) -> Result:
        return await asyncio.to_thread(invoke, args, input)

    return run


async def random_workload(wire, count: int, seed: int) -> tuple[list[Model], list[dict]]:
    """``count`` writes through the service; the model state after each version and the expected mutations."""
    rng = random.Random(seed)
    values = ["", "1", "two", '{"json": [1, 2]}', "ünï😀", "a\tb\nc"]
    model: Model = {}
    states: list[Model] = [{}]
    expected = []
    for version in range(1, count + 1):
        workspace = rng.choice(["w1", "w2"])
        actor = rng.choice(["alice", "bob", None])
        pairs = [(rng.choice(["prompt", "flow"]), rng.choice("abcd")) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.7:
            targets: dict[tuple[str, str], str | None] = {}
            for pair in pairs:  # a repeated key: the last entry wins
                targets.pop(pair, None)
                targets[pair] = rng.choice(values)
            request = {"values": [{"type": t, "key": k, "value": v} for (t, k), v in targets.items()]}
            operation = "put"
        else:
            targets = dict.fromkeys(pairs)
            request = {"keys": [{"type": t, "key": k} for t, k in pairs]}
            operation = "delete"
        response = await wire.call(operation, workspace, actor=actor, **request)
        assert response["version"] == version, response
        changes = []
        for (type_, key), value in targets.items():
            item = ItemKey(workspace, type_, key)
            before = model.pop(item, None)
            if value is not None:
                model[item] = Entry(value, version)
            changes.append((type_, key, before.value if before else None, value))
        states.append(dict(model))
        expected.append({"version": version, "workspace": workspace, "operation": operation, "actor": actor,
                         "changes": sorted(changes, key=str)})
    return states, expected


def config_of(model: Model, workspace: str) -> dict[str, dict[str, str]]:
    config: dict[str, dict[str, str]] = {}
    for item, entry in sorted(model.items()):
        if item.workspace == workspace:
            config.setdefault(item.type, {})[item.key] = entry.value
    return config


def values_of(model: Model, workspace: str | None = None) -> dict[ItemKey, str]:
    return {i: e.value for i, e in model.items() if workspace is None or i.workspace == workspace}


def shape(mutation_json: dict) -> dict:
    return {"version": mutation_json["version"], "workspace": mutation_json["workspace"],
            "operation": mutation_json["operation"], "actor": mutation_json["actor"],
            "changes": sorted(((c["type"], c["key"], c["previous"], c["value"]) for c in mutation_json["changes"]),
                              key=str)}


async def test_history_state_and_diff_replay_a_random_workload_exactly(service, wire, settings, run_cli):
    states, expected = await random_workload(wire, 40, seed=11)
    last = len(states) - 1
    async with HistoryReader(settings) as history:
        mutations = [m async for m in history.read(HistoryQuery())]
        assert [shape(m.to_json()) for m in mutations] == expected, "every mutation, with correct previous values"
        assert all(m.request_id and m.timestamp_ms > 0 for m in mutations)

        scoped = [shape(m.to_json()) async for m in history.read(HistoryQuery(workspace="w1", key="a",
                                                                              from_version=5, to_version=30))]
        wanted = [{**e, "changes": [c for c in e["changes"] if c[1] == "a"]} for e in expected
                  if e["workspace"] == "w1" and 5 <= e["version"] <= 30]
        assert scoped == [e for e in wanted if e["changes"]]

        for version, model in enumerate(states):  # the state at EVERY version
            assert (await history.state(at_version=version)).items == model, f"version {version}"
        assert (await history.state(at_version=last, workspace="w2")).items == {
            i: e for i, e in states[-1].items() if i.workspace == "w2"}
        middle = mutations[len(mutations) // 2]
        at_time = await history.state(at_time_ms=middle.timestamp_ms)
        assert at_time.version >= middle.version and at_time.items == states[at_time.version]

        for a in range(len(states)):  # every pair, folded from the history as read from Kafka
            for b in range(len(states)):
                assert list(diff_versions(mutations, a, b).changes) == diff_states(values_of(states[a]),
                                                                                   values_of(states[b]))
        for a, b, workspace in [(0, last, None), (last, 3, "w1"), (12, 27, "w2"), (7, 7, None)]:
            diff = await history.diff(a, b, workspace=workspace)
            assert list(diff.changes) == diff_states(values_of(states[a], workspace), values_of(states[b], workspace))

    result = await run_cli("history", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [shape(json.loads(line)) for line in result.stdout.splitlines()] == expected
    table = await run_cli("history", "-w", "w2", "--to-version", "10")
    assert table.stdout.splitlines()[0].split("\t")[:3] == ["version", "time", "actor"]
    assert {line.split("\t")[4] for line in table.stdout.splitlines()[1:]} <= {"w2"}
    result = await run_cli("state", "--at-version", "20", "-w", "w1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == config_of(states[20], "w1")
    assert "state as of version 20" in result.stderr
    result = await run_cli("state", "--at-version", str(last + 5))
    assert result.exit_code == 1 and f"the history ends at version {last}" in result.stderr
    result = await run_cli("diff", "--from", "4", "--to", "33", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    changed = diff_states(values_of(states[4]), values_of(states[33]))
    assert sum(len(listed[kind]) for kind in ("added", "removed", "changed")) == len(changed)
    assert {(c["key"], c["old"], c["new"]) for c in listed["changed"]} == {
        (c.item.key, c.old, c.new) for c in changed if c.kind == "changed"}


async def test_history_follow_tails_new_mutations(service, wire, settings):
    await wire.put("w", ("t", "k", "1"))
    seen: list[int] = []

    async def follow() -> None:
        async with HistoryReader(settings) as history:
            async for mutation in history.read(HistoryQuery(), follow=True):
                seen.append(mutation.version)

    task = asyncio.create_task(follow())
    await wire.put("w", ("t", "k", "2"))
    await wire.delete("w", ("t", "k"))
    await wait_until(lambda: len(seen) >= 3, 10, "following the history did not deliver the 3 mutations")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == [1, 2, 3]


async def test_verify_passes_when_healthy_and_reports_a_corrupted_view_until_rebuilt(service, wire, settings,
                                                                                      run_cli):
    states, _ = await random_workload(wire, 25, seed=3)
    assert (await verify_view(settings, scratch=True)).ok, "the log and the history agree while the service runs"
    locked = await run_cli("verify")
    assert locked.exit_code == 1 and "open elsewhere" in locked.stderr and "--scratch" in locked.stderr
    refused = await run_cli("rebuild")
    assert refused.exit_code == 1 and "open elsewhere" in refused.stderr
    assert (await wire.call("config", "w1"))["version"] == len(states) - 1, "the running view was left alone"
    await service.stop()
    healthy = await run_cli("verify")
    assert healthy.exit_code == 0, healthy.output
    assert healthy.stdout.splitlines()[-1] == "OK: consistent"

    model = states[-1]
    victim, dropped, stale = sorted(model)[:3]
    path = settings.data_dir / "view"
    with ViewStore.open(path) as store:
        meta = store.meta()
        store.write(ViewWrites({victim: Entry("corrupted", model[victim].version), dropped: None,
                                stale: Entry(model[stale].value, model[stale].version + 1),
                                ItemKey("w9", "t", "ghost"): Entry("boo", 2)}, meta.offset, meta.version))
    report = await verify_view(settings, catch_up=False)
    assert sorted(d.kind for d in report.differences) == ["extra", "missing", "value", "version"]
    broken = await run_cli("verify")
    assert broken.exit_code == 1
    out = broken.stdout
    assert f"value differs: {'/'.join(victim)}: history {model[victim].value!r}" in out
    assert f"missing in the view: {'/'.join(dropped)}" in out
    assert f"version differs: {'/'.join(stale)}: history v{model[stale].version}" in out
    assert "extra in the view: w9/t/ghost = 'boo' (v2)" in out
    assert out.splitlines()[-1] == "FAILED: 4 differences (1 missing, 1 extra, 1 value, 1 version)"
    as_json = json.loads((await run_cli("verify", "--format", "json")).stdout)
    assert as_json["ok"] is False and len(as_json["differences"]) == 4

    rebuilt = await run_cli("rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"version {len(states) - 1}" in rebuilt.stdout and "records/s" in rebuilt.stdout
    assert (await run_cli("verify", "--no-catch-up")).exit_code == 0


async def test_export_then_import_round_trips_and_honours_overwrite_and_dry_run(service, wire, run_cli, tmp_path):
    await wire.put("src", ("prompt", "system", "You are helpful"), ("prompt", "ü", "ñ\n"), ("flow", "f", '{"a": 1}'))
    exported = tmp_path / "src.json"
    result = await run_cli("export", "-w", "src", "-o", str(exported))
    assert result.exit_code == 0, result.output
    document = ExportDocument.from_json(exported.read_text())
    assert document.workspace == "src" and document.version == 1
    assert document.config == {"prompt": {"system": "You are helpful", "ü": "ñ\n"}, "flow": {"f": '{"a": 1}'}}

    result = await run_cli("import", "-w", "dst", "-i", str(exported))
    assert result.exit_code == 0, result.output
    assert "imported into dst at version 2: 3 added" in result.stderr
    assert (await wire.call("config", "dst"))["config"] == document.config
    stdout_export = await run_cli("export", "-w", "dst")
    assert ExportDocument.from_json(stdout_export.stdout).config == document.config

    await wire.put("dst", ("prompt", "system", "Be terse"), ("prompt", "extra", "x"))  # version 3
    await wire.delete("dst", ("flow", "f"))  # version 4
    dry = await run_cli("import", "-w", "dst", "-i", str(exported), "--overwrite", "--dry-run")
    assert dry.exit_code == 0, dry.output
    rows = [line.split("\t") for line in dry.stdout.splitlines()[1:]]
    assert sorted((r[0], r[2]) for r in rows) == [("add", "f"), ("overwrite", "system"), ("unchanged", "ü")]
    assert (await wire.call("config", "dst"))["version"] == 4, "a dry run writes nothing"

    upsert = await run_cli("import", "-w", "dst", "-i", str(exported))
    assert "at version 5: 1 added, 0 overwritten, 1 unchanged, 1 existing kept" in upsert.stderr
    after = (await wire.call("config", "dst"))["config"]
    assert after["prompt"]["system"] == "Be terse" and after["flow"] == {"f": '{"a": 1}'}

    overwrite = await run_cli("import", "-w", "dst", "-i", str(exported), "--overwrite", "--format", "json")
    assert json.loads(overwrite.stdout)["version"] == 6
    after = (await wire.call("config", "dst"))["config"]
    assert after == {"prompt": {"system": "You are helpful", "ü": "ñ\n", "extra": "x"}, "flow": {"f": '{"a": 1}'}}
    again = await run_cli("import", "-w", "dst", "-i", str(exported), "--overwrite")
    assert "nothing to import into dst" in again.stderr
    assert (await wire.call("config", "dst"))["version"] == 6

    old = await run_cli("export", "-w", "dst", "--at-version", "3")
    assert json.loads(old.stdout)["config"]["prompt"] == {"system": "Be terse", "ü": "ñ\n", "extra": "x"}


async def test_a_trustgraph_dump_imports_one_version_per_workspace_without_overwriting(service, wire, run_cli,
                                                                                       tmp_path):
    await wire.put("default", ("prompt", "system", "already here"))  # version 1
    dump = tmp_path / "trustgraph-dump.json"
    dump.write_text(json.dumps({
        "__workspaces__": {"workspace": {"default": "{}", "acme": "{}"}},
        "default": {"prompt": {"system": "from trustgraph", "user": "u"}, "flow": {"f": None}},
        "acme": {"prompt": {"system": "acme's"}},
    }))
    result = await run_cli("import", "-i", str(dump), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert "skipped 1 null values" in result.stderr and "default/flow/f" in result.stderr
    assert [line.split(": ")[0] for line in result.stderr.splitlines() if line.startswith("imported")] == [
        "imported into acme at version 2", "imported into default at version 3",
        "imported into __workspaces__ at version 4"]
    assert {(r["workspace"], r["key"]) for r in map(json.loads, result.stdout.splitlines())} == {
        ("acme", "system"), ("default", "user"), ("__workspaces__", "default"), ("__workspaces__", "acme")}
    assert (await wire.call("config", "default"))["config"] == {"prompt": {"system": "already here", "user": "u"}}

    overwrite = await run_cli("import", "-i", str(dump), "-w", "default", "--overwrite")
    assert "imported into default at version 5: 0 added, 1 overwritten, 1 unchanged" in overwrite.stderr
    assert (await wire.call("config", "default"))["config"]["prompt"]["system"] == "from trustgraph"

    missing = await run_cli("import", "-i", str(dump), "-w", "nowhere")
    assert missing.exit_code == 1 and "has no workspace 'nowhere'" in missing.stderr


async def test_requests_older_than_the_retained_history_fail_with_the_earliest_version_held(
        service, wire, settings, run_cli):
    for i in range(1, 11):
        await wire.put("w", ("t", "k", str(i)))
    records = await wire.read_topic(settings.topics.history)
    offset_of_5 = next(r.offset for r in records if r.key == b"5")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(settings.topics.history, 0): RecordsToDelete(offset_of_5)})
    finally:
        await admin.close()

    async with HistoryReader(settings) as history:
        held = await history.held()
        assert held.truncated and held.first is not None and held.first.version == 5
        with pytest.raises(OutOfRetention, match="earliest mutation still held is version 5 at") as caught:
            await history.state(at_version=8)
        assert caught.value.first_version == 5
        with pytest.raises(OutOfRetention):
            [m async for m in history.read(HistoryQuery(from_version=2))]
        assert [m.version async for m in history.read(HistoryQuery(from_version=5))] == list(range(5, 11))
        diff = await history.diff(4, 9)
        assert [(c.old, c.new) for c in diff.changes] == [("4", "9")], "a diff needs only the versions after 4"
        with pytest.raises(OutOfRetention):
            await history.diff(3, 9)

    result = await run_cli("state", "--at-version", "8")
    assert result.exit_code == 1
    assert "the state as of version 8 (replayed from version 1) needs history that retention has deleted" in \
        result.stderr
    refused = await run_cli("history", "--from-version", "2", "--format", "json")
    assert refused.exit_code == 1 and refused.stdout == "", "no half-printed answer"
    assert "history from version 2 needs history that retention has deleted" in refused.stderr
    listing = await run_cli("history", "--format", "jsonl")
    assert listing.exit_code == 0
    assert [json.loads(line)["version"] for line in listing.stdout.splitlines()] == list(range(5, 11))
    assert "note: the history topic starts at version 5" in listing.stderr


async def test_a_version_past_the_head_is_an_error_in_every_command_but_a_history_listing(
        service, wire, run_cli):
    for i in range(1, 4):
        await wire.put("w", ("t", "k", str(i)))
    past = "version 4 does not exist: the history ends at version 3"
    for args in (["state", "--at-version", "4"], ["diff", "--from", "4", "--to", "4"],
                 ["diff", "--from", "0", "--to", "4"], ["diff", "--from", "4", "--to", "2"],
                 ["export", "-w", "w", "--at-version", "4"]):
        result = await run_cli(*args)
        assert (result.exit_code, result.stdout) == (1, ""), f"{args}: {result.output}"
        assert result.stderr.strip() == f"error: {past}", args

    # A listing is a filter: past the head it selects nothing (a poller's "anything after 3?").
    header = "\t".join(("version", "time", "actor", "request", "workspace", "op", "type", "key", "previous", "value"))
    for fmt, empty in (("json", "[]\n"), ("jsonl", ""), ("table", header + "\n")):
        result = await run_cli("history", "--from-version", "4", "--format", fmt)
        assert (result.exit_code, result.stdout) == (0, empty), f"{fmt}: {result.output}"
    upto = await run_cli("history", "--from-version", "2", "--to-version", "40", "--format", "jsonl")
    assert upto.exit_code == 0, upto.output
    assert [json.loads(line)["version"] for line in upto.stdout.splitlines()] == [2, 3]
    beyond = await run_cli("diff", "--from", "9", "--to", "12")
    assert beyond.stderr.strip() == "error: version 12 does not exist: the history ends at version 3", \
        "the error names where the history really ends, not where the diff starts"

    for version in ("0", "3"):  # equal versions within the history: an empty diff
        same = await run_cli("diff", "--from", version, "--to", version, "--format", "json")
        assert same.exit_code == 0, same.output
        assert json.loads(same.stdout) == {"from": int(version), "to": int(version), "workspace": None,
                                           "added": [], "removed": [], "changed": []}
    last = await run_cli("history", "--from-version", "3", "--to-version", "3", "--format", "jsonl")
    assert last.exit_code == 0 and [json.loads(line)["version"] for line in last.stdout.splitlines()] == [3]
