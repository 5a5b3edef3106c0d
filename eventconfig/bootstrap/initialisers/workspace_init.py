"""WorkspaceInit: create a workspace from ``__template__`` (or a seed file) and register it (docs/design.md §8).

The copy is one put of every type and key, values verbatim. Until the template has entries it fails
with "Template workspace is empty — has TemplateSeed run yet?", and the bootstrapper retries it on
the next wake. The workspace is then registered in ``__workspaces__`` (type ``workspace``, value
``{"enabled": true}``) unless it already is: an operator's ``enabled: false`` is never overwritten.

Example (bootstrap file)::

    - class: eventconfig.bootstrap.initialisers.WorkspaceInit
      name: workspace-default
      flag: v1
      params: {workspace: default}
"""

from __future__ import annotations

from eventconfig.bootstrap.base import Flag, InitContext, Initialiser
from eventconfig.bootstrap.errors import InitialiserError
from eventconfig.bootstrap.initialisers.template_seed import TEMPLATE_WORKSPACE
from eventconfig.bootstrap.initialisers.tree import Tree, load_tree, size, write_tree
from eventconfig.errors import Conflict
from eventconfig.model import WORKSPACE_TYPE, WORKSPACES_WORKSPACE, is_reserved, name_problem

SOURCES = ("template", "seed-file")
REGISTERED_VALUE = '{"enabled": true}'


class WorkspaceInit(Initialiser):
    """Populate ``workspace`` from the template (``source: template``) or ``seed_file`` (``source: seed-file``)."""

    def __init__(self, *, workspace: str = "default", source: str = "template", seed_file: str | None = None,
                 overwrite: bool = False, register: bool = True) -> None:
        problem = name_problem("workspace", workspace)
        if problem:
            raise ValueError(problem)
        if is_reserved(workspace):
            raise ValueError(f"workspace {workspace!r} is reserved (starts with '_'); pick a tenant workspace")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        if source == "seed-file" and not seed_file:
            raise ValueError("WorkspaceInit requires 'seed_file' when source is 'seed-file'")
        if source == "template" and seed_file:
            raise ValueError("seed_file is only read with source: seed-file")
        for flag_name, value in (("overwrite", overwrite), ("register", register)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag_name} must be true or false, got {value!r}")
        self.workspace, self.source, self.seed_file = workspace, source, seed_file
        self.overwrite, self.register = overwrite, register
        if seed_file:
            load_tree(seed_file)  # a missing or malformed file is a configuration error at start

    async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
        tree = await self._source_tree(ctx)
        written = await write_tree(ctx, self.workspace, tree, replace_all=old_flag is None or self.overwrite)
        ctx.logger.info("workspace populated", extra={"fields": {
            "workspace": self.workspace, "source": self.source, "written": written, "kept": size(tree) - written}})
        if self.register:
            await self._register(ctx)

    async def _source_tree(self, ctx: InitContext) -> Tree:
        if self.seed_file:
            tree = load_tree(self.seed_file)
            if size(tree) == 0:
                raise InitialiserError(f"{self.seed_file}: the seed file has no entries to copy")
            return tree
        tree = await ctx.config.get_all(TEMPLATE_WORKSPACE)
        if size(tree) == 0:
            raise InitialiserError("Template workspace is empty — has TemplateSeed run yet?")
        return tree

    async def _register(self, ctx: InitContext) -> None:
        try:
            await ctx.config.put(WORKSPACES_WORKSPACE, WORKSPACE_TYPE, self.workspace, REGISTERED_VALUE, if_version=0)
        except Conflict:  # already registered (by an earlier run, or IAM): leave its value alone
            ctx.logger.info("workspace already registered", extra={"fields": {"workspace": self.workspace}})
        else:
            ctx.logger.info("workspace registered", extra={"fields": {"workspace": self.workspace}})
