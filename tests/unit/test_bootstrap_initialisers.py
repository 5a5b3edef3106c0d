"""TemplateSeed and WorkspaceInit against an in-memory service (docs/compatibility.md behaviours 63–65), no broker."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from eventconfig.bootstrap import Bootstrapper, Cadence, InitContext, InitialiserError, build_initialisers
from eventconfig.bootstrap.initialisers import TEMPLATE_WORKSPACE, TemplateSeed, WorkspaceInit
from eventconfig.bootstrap.initialisers.tree import load_tree
from eventconfig.bootstrap.testing import MemoryConfig, MemoryConfigClient
from eventconfig.errors import Conflict
from eventconfig.model import WORKSPACE_TYPE, WORKSPACES_WORKSPACE
from eventconfig.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def memory() -> MemoryConfig:
    return MemoryConfig()


@pytest.fixture
async def ctx(memory: MemoryConfig) -> InitContext:
    """What the bootstrapper hands a post-gate initialiser: a started client of the service."""
    client = memory.client()
    await client.start()
    return InitContext("it", logging.getLogger("test.bootstrap"), Settings(), client)


def seed(tmp_path: Path, tree: dict, name: str = "seed.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(tree))
    return str(path)


def test_seed_files_keep_strings_verbatim_and_store_everything_else_as_json(tmp_path: Path) -> None:
    tree = load_tree(seed(tmp_path, {"t": {"s": "plain text", "o": {"a": 1}, "n": 2, "b": True, "l": [1, "x"]}}))
    assert tree == {"t": {"s": "plain text", "o": '{"a": 1}', "n": "2", "b": "true", "l": '[1, "x"]'}}
    with pytest.raises(InitialiserError, match="must be a JSON object"):
        load_tree(seed(tmp_path, {"t": ["not", "a", "mapping"]}))


async def test_63_template_seed_first_run_writes_every_entry_in_one_put(memory, ctx, tmp_path: Path) -> None:
    init = TemplateSeed(config_file=seed(tmp_path, {"t": {"k": {"a": 1}}, "prompt": {"system": "hi"}}))
    await init.run(ctx, None, "v1")
    assert memory.config(TEMPLATE_WORKSPACE) == {"t": {"k": '{"a": 1}'}, "prompt": {"system": "hi"}}
    assert len(memory.writes()) == 1 and memory.version == 1


async def test_64_a_rerun_without_overwrite_adds_only_missing_keys_and_never_touches_others(memory, ctx,
                                                                                            tmp_path) -> None:
    client = ctx.config
    await client.put_many(TEMPLATE_WORKSPACE, [("prompt", "system", "edited by ops"), ("prompt", "extra", "mine")])
    path = seed(tmp_path, {"prompt": {"system": "hi", "new": "n"}, "flow": {"f": {"x": 1}}})
    before = memory.version
    await TemplateSeed(config_file=path).run(ctx, "v1", "v2")
    assert memory.config(TEMPLATE_WORKSPACE) == {
        "prompt": {"system": "edited by ops", "extra": "mine", "new": "n"}, "flow": {"f": '{"x": 1}'}}
    [put] = memory.writes()[1:]
    assert {(v["key"], v["if_version"]) for v in put["values"]} == {("new", 0), ("f", 0)}, "one put, must-not-exist"
    await TemplateSeed(config_file=path).run(ctx, "v2", "v3")
    assert memory.version == before + 1, "nothing missing: no write at all"
    await TemplateSeed(config_file=path, overwrite=True).run(ctx, "v3", "v4")
    assert memory.config(TEMPLATE_WORKSPACE)["prompt"]["system"] == "hi", "overwrite replaces every seeded key"
    assert memory.config(TEMPLATE_WORKSPACE)["prompt"]["extra"] == "mine", "and still deletes nothing"


async def test_65_workspace_init_fails_cleanly_until_the_template_exists(memory, ctx) -> None:
    with pytest.raises(InitialiserError) as caught:
        await WorkspaceInit().run(ctx, None, "v1")
    assert str(caught.value) == "Template workspace is empty — has TemplateSeed run yet?"
    assert memory.writes() == []


async def test_65_workspace_init_copies_every_type_and_key_in_one_put_and_registers_the_workspace(memory, ctx) -> None:
    template = {"prompt": {"system": "hi", "q": '{"a":1}'}, "flow": {"f": "x"}}
    await ctx.config.put_many(TEMPLATE_WORKSPACE, [(t, k, v) for t, kv in template.items() for k, v in kv.items()])
    await WorkspaceInit(workspace="acme").run(ctx, None, "v1")
    assert memory.config("acme") == template, "values are copied verbatim"
    assert [w["workspace"] for w in memory.writes()] == [TEMPLATE_WORKSPACE, "acme", WORKSPACES_WORKSPACE]
    assert memory.config(WORKSPACES_WORKSPACE) == {WORKSPACE_TYPE: {"acme": '{"enabled": true}'}}


async def test_workspace_init_reruns_add_missing_keys_and_leave_a_registration_alone(memory, ctx) -> None:
    client = ctx.config
    await client.put_many(TEMPLATE_WORKSPACE, [("prompt", "system", "hi"), ("prompt", "new", "n")])
    await client.put_many("acme", [("prompt", "system", "tenant's own")])
    await client.put(WORKSPACES_WORKSPACE, WORKSPACE_TYPE, "acme", '{"enabled": false}')
    await WorkspaceInit(workspace="acme").run(ctx, "v1", "v2")
    assert memory.config("acme") == {"prompt": {"system": "tenant's own", "new": "n"}}
    assert memory.config(WORKSPACES_WORKSPACE)[WORKSPACE_TYPE]["acme"] == '{"enabled": false}'
    await WorkspaceInit(workspace="acme", overwrite=True).run(ctx, "v2", "v3")
    assert memory.config("acme")["prompt"]["system"] == "hi"


async def test_workspace_init_from_a_seed_file_needs_no_template(memory, ctx, tmp_path: Path) -> None:
    path = seed(tmp_path, {"prompt": {"system": "from file"}, "cost": {"default": {"in": 0}}})
    await WorkspaceInit(workspace="beta", source="seed-file", seed_file=path).run(ctx, None, "v1")
    assert memory.config("beta") == {"prompt": {"system": "from file"}, "cost": {"default": '{"in": 0}'}}
    with pytest.raises(InitialiserError, match="has no entries"):
        await WorkspaceInit(workspace="b", source="seed-file", seed_file=seed(tmp_path, {}, "e.json")).run(
            ctx, None, "v1")


async def test_upsert_missing_loses_a_race_whole_instead_of_overwriting(memory, ctx, tmp_path: Path) -> None:
    class Racing(MemoryConfigClient):  # someone adds the key between our read and our put
        async def get_all(self, workspace, **kwargs):  # type: ignore[no-untyped-def]
            tree = await super().get_all(workspace, **kwargs)
            await super().put(workspace, "prompt", "system", "racer")
            return tree

    racing = Racing(memory, Settings())
    await racing.start()
    with pytest.raises(Conflict):
        await TemplateSeed(config_file=seed(tmp_path, {"prompt": {"system": "hi", "other": "o"}})).run(
            InitContext("it", ctx.logger, Settings(), racing), "v1", "v2")
    assert memory.config(TEMPLATE_WORKSPACE) == {"prompt": {"system": "racer"}}


async def test_out_of_order_initialisers_converge_over_two_wakes(tmp_path: Path) -> None:
    service = MemoryConfig()
    entries = build_initialisers([
        {"class": "eventconfig.bootstrap.initialisers.WorkspaceInit", "name": "ws", "flag": "v1"},
        {"class": "eventconfig.bootstrap.initialisers.TemplateSeed", "name": "tpl", "flag": "v1",
         "params": {"config_file": seed(tmp_path, {"prompt": {"system": "hi"}})}},
    ])
    boot = Bootstrapper(Settings(), entries, client_factory=service.client, cadence=Cadence())
    first = await boot.run_once()
    assert (first.failed, first.ran) == (["ws"], ["tpl"])
    assert first["ws"].reason == "InitialiserError: Template workspace is empty — has TemplateSeed run yet?"
    second = await boot.run_once()
    assert (second.ran, second.skipped, service.config("default")) == (["ws"], ["tpl"], {"prompt": {"system": "hi"}})


async def test_the_third_party_example_writes_its_feature_flags(memory, ctx, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "examples" / "thirdparty"))
    [acme] = build_initialisers([{"class": "acme_init.AcmeFeatureFlags", "name": "acme", "flag": "2026-01",
                                  "params": {"workspace": "acme", "flags": {"new-search": True, "beta": False}}}])
    await acme.initialiser.run(ctx, None, "2026-01")
    assert memory.config("acme") == {"feature": {"beta": "false", "new-search": "true"}}
