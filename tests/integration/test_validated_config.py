"""Validated config against the real service and broker (docs/design.md §5.5): schemas in ``__schemas__``
refuse invalid puts whole, through the Python client and the ``eventconfig schema`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventconfig.client import ConfigClient
from eventconfig.errors import InvalidValue
from eventconfig.settings import Settings
from tests.integration.test_client import eventconfig

pytestmark = pytest.mark.integration

PROMPT = {"type": "object", "required": ["text"],
          "properties": {"text": {"type": "string"}, "temperature": {"type": "number", "maximum": 2}}}


@pytest.fixture
async def client(settings: Settings, service: object):
    async with ConfigClient(settings, timeout=30, actor="tester") as c:
        yield c


async def test_valid_values_are_written_and_an_invalid_one_is_refused_with_its_path(client: ConfigClient):
    await client.put("__schemas__", "prompt", "*", json.dumps(PROMPT))
    version = await client.put("w", "prompt", "p", '{"text": "hi", "temperature": 0.5}')
    with pytest.raises(InvalidValue, match=r"^invalid-value: prompt/p at \$\.temperature: 3 is greater than the "
                                           r"maximum of 2 \(schema prompt@\*\)$"):
        await client.put("w", "prompt", "p", '{"text": "hi", "temperature": 3}')
    assert await client.get("w", "prompt", "p") == '{"text": "hi", "temperature": 0.5}'
    assert await client.version() == version, "a refused put makes no version"
    assert await client.put("w", "flow", "f", "not JSON, no schema") == version + 1


async def test_a_batch_with_one_invalid_value_writes_nothing(client: ConfigClient):
    await client.put("__schemas__", "prompt", "*", json.dumps(PROMPT))
    before = await client.version()
    with pytest.raises(InvalidValue, match=r"prompt/b at \$: 'text' is a required property"):
        await client.put_many("w", [("prompt", "a", '{"text": "a"}'), ("flow", "f", "x"), ("prompt", "b", "{}")])
    assert await client.get_all("w") == {}
    assert await client.version() == before


async def test_a_schema_that_is_not_one_is_refused(client: ConfigClient):
    with pytest.raises(InvalidValue, match=r"^invalid-value: prompt/\* at \$: not a valid Draft202012Validator"):
        await client.put("__schemas__", "prompt", "*", '{"type": "strnig"}')
    assert await client.get_all("__schemas__") == {}


async def test_schema_set_refuses_a_schema_that_would_strand_stored_values(
        settings: Settings, client: ConfigClient, tmp_path: Path):
    await client.put("acme-1", "prompt", "ok", '{"text": "fine"}')
    await client.put("acme-2", "prompt", "bad", '{"text": 5}')
    await client.put("other", "prompt", "bad", "not JSON")
    schema = tmp_path / "prompt.json"
    schema.write_text(json.dumps(PROMPT))

    code, out, err = await eventconfig(settings, "schema", "check", "prompt", str(schema), "-w", "acme-*")
    assert code == 1, err
    assert out.splitlines() == ["acme-2: prompt/bad at $.text: 5 is not of type 'string' (schema prompt@acme-*)"]
    assert err.strip() == "error: 1 of 2 values of prompt do not conform"

    code, out, err = await eventconfig(settings, "schema", "set", "prompt", str(schema), "-w", "acme-*")
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1] == ("error: 1 existing values of prompt do not conform; fix them, or store "
                                            "it anyway with --force")
    assert await client.get_all("__schemas__") == {}, "a refused set writes nothing"

    await client.put("acme-2", "prompt", "bad", '{"text": "fixed"}')
    code, out, err = await eventconfig(settings, "schema", "set", "prompt", str(schema), "-w", "acme-*")
    assert code == 0, err
    assert out.startswith("schema set: prompt@acme-* (version ")
    code, out, _ = await eventconfig(settings, "schema", "check", "prompt")
    assert (code, out.strip()) == (0, "all 2 values of prompt conform"), "'other' is not governed by acme-*"
    with pytest.raises(InvalidValue):
        await client.put("acme-3", "prompt", "p", "{}")
    await client.put("elsewhere", "prompt", "p", "{}")

    code, out, _ = await eventconfig(settings, "schema", "list")
    assert (code, out) == (0, "prompt\tacme-*\n")
    code, out, _ = await eventconfig(settings, "schema", "get", "prompt", "-w", "acme-*")
    assert json.loads(out) == PROMPT
    code, _, err = await eventconfig(settings, "schema", "get", "prompt")
    assert (code, err.strip()) == (1, "error: no schema for prompt@*")
    code, out, _ = await eventconfig(settings, "schema", "delete", "prompt", "-w", "acme-*")
    assert code == 0 and out.startswith("schema deleted: prompt@acme-*")
    await client.put("acme-3", "prompt", "p", "{}")


async def test_schema_set_with_force_stores_it_over_offenders_and_lists_them(
        settings: Settings, client: ConfigClient, tmp_path: Path):
    await client.put("w", "prompt", "bad", "{}")
    schema = tmp_path / "prompt.json"
    schema.write_text(json.dumps(PROMPT))
    code, out, err = await eventconfig(settings, "schema", "set", "prompt", str(schema), "--force")
    assert code == 0, err
    assert "w: prompt/bad at $: 'text' is a required property" in err
    assert json.loads(await client.get("__schemas__", "prompt", "*") or "null") == PROMPT


async def test_a_schema_file_that_is_not_a_schema_is_one_line_and_exit_1(settings: Settings, tmp_path: Path):
    schema = tmp_path / "bad.json"
    schema.write_text("{nope")
    code, out, err = await eventconfig(settings, "schema", "check", "prompt", str(schema))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {schema}: not JSON")
