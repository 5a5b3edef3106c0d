"""TemplateSeed: fill the ``__template__`` workspace from a JSON seed file (docs/design.md §8).

First run (or ``overwrite: true``): every entry in one put. A re-run after a flag change without
``overwrite`` adds only the keys the template lacks and never modifies or deletes existing ones, so
operators' edits of the template survive a new seed file.

Example (bootstrap file)::

    - class: eventconfig.bootstrap.initialisers.TemplateSeed
      name: template-seed
      flag: v1
      params: {config_file: /etc/eventconfig/template-seed.json}
"""

from __future__ import annotations

from pathlib import Path

from eventconfig.bootstrap.base import Flag, InitContext, Initialiser
from eventconfig.bootstrap.initialisers.tree import load_tree, size, write_tree

TEMPLATE_WORKSPACE = "__template__"


class TemplateSeed(Initialiser):
    """Seed ``__template__`` from ``config_file`` (``{type: {key: value-or-JSON}}``)."""

    def __init__(self, *, config_file: str, overwrite: bool = False) -> None:
        if not config_file:
            raise ValueError("TemplateSeed requires 'config_file'")
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite must be true or false, got {overwrite!r}")
        self.config_file = Path(config_file)
        self.overwrite = overwrite
        load_tree(self.config_file)  # a missing or malformed file is a configuration error at start

    async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
        tree = load_tree(self.config_file)  # read on every run: the file may have changed with the flag
        total = size(tree)
        if total == 0:
            ctx.logger.warning("seed file has no entries; nothing to write",
                               extra={"fields": {"file": str(self.config_file)}})
            return
        if old_flag is None or self.overwrite:
            written = await write_tree(ctx, TEMPLATE_WORKSPACE, tree, replace_all=True)
            ctx.logger.info("Template seeded with %d entries", written)
        else:
            written = await write_tree(ctx, TEMPLATE_WORKSPACE, tree, replace_all=False)
            ctx.logger.info("template topped up with missing entries",
                            extra={"fields": {"added": written, "kept": total - written}})
