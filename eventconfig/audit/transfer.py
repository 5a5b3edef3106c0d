"""Export a workspace to an ``eventconfig-export/1`` document, and import one as a single write.

Export reads through the service (its current version) or replays the history (``at_version``).
Import reads the target's current items for the document's keys, plans (see
:func:`~eventconfig.audit.exchange.plan_import`) and writes the plan as ONE ``put`` whose items
carry ``if_version`` preconditions: the whole import is one version, and a concurrent change to any
of its keys fails it with nothing written (:class:`ImportConflict`), never a silent overwrite.

Example::

    async with ConfigClient(settings, actor="ops") as client:
        doc = await export_workspace(client, "acme")
        result = await import_document(client, "acme-copy", doc, overwrite=False)
        result.version, result.plan.summary()
"""

from __future__ import annotations

from dataclasses import dataclass

from eventconfig.audit.errors import ImportConflict
from eventconfig.audit.exchange import ExportDocument, ImportPlan, plan_import
from eventconfig.audit.history import HistoryReader, Progress
from eventconfig.client import ConfigClient
from eventconfig.errors import Conflict
from eventconfig.settings import Settings


async def export_workspace(client: ConfigClient, workspace: str) -> ExportDocument:
    """The workspace as the service holds it now, with that version."""
    current = await client.get_all_versioned(workspace)
    return ExportDocument(workspace, current.version, current.value)


async def export_at_version(settings: Settings, workspace: str, version: int, *,
                            progress: Progress | None = None) -> ExportDocument:
    """The workspace as of an earlier version, replayed from the history."""
    async with HistoryReader(settings) as history:
        state = await history.state(at_version=version, workspace=workspace, progress=progress)
    return ExportDocument(workspace, state.version, state.config(workspace))


@dataclass(frozen=True)
class ImportResult:
    workspace: str
    plan: ImportPlan
    version: int | None  # the version of the import's put; None for a dry run or when nothing changes


async def import_document(client: ConfigClient, workspace: str, document: ExportDocument, *,
                          overwrite: bool = False, dry_run: bool = False) -> ImportResult:
    """Upsert the document's items into ``workspace`` in one put (missing keys only, unless ``overwrite``)."""
    keys = [(type_, key) for type_, values in document.config.items() for key in values]
    found = await client.get_many(workspace, keys)
    current = {(i.type, i.key): (i.value, i.version or 0) for i in found if i.value is not None}
    plan = plan_import(document.config, current, overwrite=overwrite)
    if dry_run or not plan.writes:
        return ImportResult(workspace, plan, None)
    try:
        version = await client.put_many(workspace, plan.writes)
    except Conflict as exc:
        raise ImportConflict(f"workspace {workspace!r} changed while importing ({exc.message}); nothing was "
                             "written: run the import again") from exc
    return ImportResult(workspace, plan, version)
