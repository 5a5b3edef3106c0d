"""Config trees ``{type: {key: value}}`` for the seeding initialisers: read from JSON, written in one put.

Seed files hold any JSON per key: a string is stored as it is, anything else as its JSON text
(``{"a": 1}`` becomes ``'{"a": 1}'``), so a file can carry prompts verbatim and structures as JSON.

Example::

    tree = load_tree("template-seed.json")            # {'prompt': {'system': 'You are helpful'}}
    await write_tree(ctx, "__template__", tree, replace_all=False)   # only keys not there yet
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eventconfig.bootstrap.base import InitContext
from eventconfig.bootstrap.errors import InitialiserError

Tree = dict[str, dict[str, str]]


def load_tree(path: str | Path) -> Tree:
    """Read a seed file; InitialiserError when it is missing or not ``{type: {key: value}}``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InitialiserError(f"{path}: cannot read the seed file: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InitialiserError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not all(isinstance(keys, dict) for keys in document.values()):
        raise InitialiserError(f"{path}: a seed file must be a JSON object {{type: {{key: value}}}}")
    return {type_: {key: _stored(value) for key, value in keys.items()} for type_, keys in document.items()}


def _stored(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def size(tree: Tree) -> int:
    return sum(len(keys) for keys in tree.values())


async def write_tree(ctx: InitContext, workspace: str, tree: Tree, *, replace_all: bool) -> int:
    """Write ``tree`` into ``workspace`` in ONE put; returns how many entries it wrote.

    ``replace_all`` writes every entry. Otherwise only keys the workspace lacks are written, each
    with ``if_version=0`` (must not exist), so a key someone adds meanwhile is never overwritten:
    the put then fails whole with ``conflict`` and the initialiser retries on the next wake.
    """
    items: list[tuple[Any, ...]]  # (type, key, value) or, with a required version, (..., 0)
    if replace_all:
        items = [(type_, key, value) for type_, keys in tree.items() for key, value in keys.items()]
    else:
        existing = await ctx.config.get_all(workspace)
        items = [(type_, key, value, 0) for type_, keys in tree.items() for key, value in keys.items()
                 if key not in existing.get(type_, {})]
    if items:
        await ctx.config.put_many(workspace, items)
    return len(items)
