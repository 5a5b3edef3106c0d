"""A third-party initialiser: lives outside eventconfig and is loaded by dotted path.

Put this folder on PYTHONPATH and reference ``acme_init.AcmeFeatureFlags`` in the bootstrap file::

    - class: acme_init.AcmeFeatureFlags
      name: acme-feature-flags
      flag: "2026-01"
      params: {workspace: default, flags: {new-search: true, beta-ui: false}}

Bump the flag after editing ``flags`` and the next wake writes them again (a deliberate re-run).
"""

from __future__ import annotations

import json

from eventconfig.bootstrap import Flag, InitContext, Initialiser


class AcmeFeatureFlags(Initialiser):
    """Write ``flags`` as ``feature/<name> = true|false`` into ``workspace`` in one put."""

    def __init__(self, *, flags: dict[str, bool], workspace: str = "default") -> None:
        if not flags or not all(isinstance(v, bool) for v in flags.values()):
            raise ValueError("flags must be a non-empty mapping of feature names to true/false")
        self.flags = dict(flags)
        self.workspace = workspace

    async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
        items = [("feature", name, json.dumps(enabled)) for name, enabled in sorted(self.flags.items())]
        version = await ctx.config.put_many(self.workspace, items)
        ctx.logger.info("feature flags written", extra={"fields": {
            "workspace": self.workspace, "count": len(items), "version": version, "from": old_flag, "to": new_flag}})
