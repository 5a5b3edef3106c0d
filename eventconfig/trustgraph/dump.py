"""A TrustGraph config dump, pure: ``{workspace: {type: {key: value}}}`` as import documents.

The dump is what TrustGraph's ``config`` operation returns for each workspace, gathered for all of
them (``examples/trustgraph_dump.py`` writes one from a running TrustGraph config service). The
seed could store ``null`` values, which it read back as missing keys; eventconfig has no null
values, so those are skipped (and named). ``__workspaces__`` comes last, so a processor that learns
of a workspace from its push finds that workspace's config already there.

Example::

    documents, skipped = read_dump(json.loads(text), "dump.json")
    [d.workspace for d in documents]      # ['__template__', 'default', '__workspaces__']
"""

from __future__ import annotations

from typing import Any

from eventconfig.audit.errors import ExportFormatError
from eventconfig.audit.exchange import ExportDocument, check_config
from eventconfig.model import WORKSPACES_WORKSPACE, name_problem


def is_dump(document: Any) -> bool:
    """A JSON object that is not an eventconfig export (an export names its ``format``)."""
    return isinstance(document, dict) and not isinstance(document.get("format"), str)


def read_dump(document: Any, source: str = "the input") -> tuple[list[ExportDocument], list[str]]:
    """One import document per workspace (version 0: a dump has no eventconfig version), and the
    ``workspace/type/key`` names of the null values skipped."""
    def bad(why: str) -> ExportFormatError:
        return ExportFormatError(f"{source} is not a TrustGraph config dump {{workspace: {{type: {{key: value}}}}}}: "
                                 f"{why}")

    if not isinstance(document, dict):
        raise bad("expected a JSON object")
    documents: list[ExportDocument] = []
    skipped: list[str] = []
    for workspace in sorted(document, key=lambda w: (w == WORKSPACES_WORKSPACE, w)):
        config = document[workspace]
        problem = name_problem("workspace", workspace)
        if problem or not isinstance(config, dict):
            raise bad(problem or f"[{workspace!r}] must be an object {{type: {{key: value}}}}")
        for type_, values in config.items():
            if isinstance(values, dict):
                skipped += [f"{workspace}/{type_}/{key}" for key, value in values.items() if value is None]
        present = {t: {k: v for k, v in kv.items() if v is not None} if isinstance(kv, dict) else kv
                   for t, kv in config.items()}
        documents.append(ExportDocument(workspace, 0, check_config(present, bad, f"[{workspace!r}]")))
    return documents, skipped
