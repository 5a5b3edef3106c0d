"""Audit and replay: who changed what and when, the configuration as of a version or a time, the diff
of two versions, rebuilding and verifying local views, and export/import of a workspace.

The pure parts (records, query, replay, verify, exchange, chain) take plain values and need no broker;
:class:`HistoryReader`, :mod:`.views` and :mod:`.transfer` put Kafka and the service under them, and
load (with aiokafka and rocksdict) on first use of their names, so importing the pure parts loads
neither library (docs/design.md §11).

Example::

    async with HistoryReader(settings) as history:
        state = await history.state(at_version=42, workspace="acme")
        state.config("acme")          # {"prompt": {"system": "..."}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventconfig.audit.errors import (AuditError, CorruptHistory, ExportFormatError, HistoryGap, ImportConflict,
                                      OutOfRetention, VersionNotFound)
from eventconfig.audit.exchange import FORMAT, ExportDocument, ImportPlan, PlannedItem, plan_import
from eventconfig.audit.query import HeldHistory, HistoryQuery
from eventconfig.audit.records import Change, Mutation, format_time, parse_time
from eventconfig.audit.replay import (Diff, DiffFold, KeyChange, State, StateFold, diff_states, diff_versions,
                                      replay_state)
from eventconfig.audit.verify import Difference, VerifyReport, compare
from eventconfig.lazy import lazy_attributes

if TYPE_CHECKING:
    from eventconfig.audit.history import HistoryReader, Progress
    from eventconfig.audit.transfer import ImportResult, export_at_version, export_workspace, import_document
    from eventconfig.audit.views import RebuildResult, rebuild_view, verify_view, view_path

_LAZY = {
    **{name: "eventconfig.audit.history" for name in ("HistoryReader", "Progress")},
    **{name: "eventconfig.audit.transfer" for name in (
        "ImportResult", "export_at_version", "export_workspace", "import_document")},
    **{name: "eventconfig.audit.views" for name in ("RebuildResult", "rebuild_view", "verify_view", "view_path")},
}

__all__ = [
    "FORMAT", "AuditError", "Change", "CorruptHistory", "Diff", "DiffFold", "Difference", "ExportDocument",
    "ExportFormatError", "HeldHistory", "HistoryGap", "HistoryQuery", "HistoryReader", "ImportConflict",
    "ImportPlan", "ImportResult", "KeyChange", "Mutation", "OutOfRetention", "PlannedItem", "Progress",
    "RebuildResult", "State", "StateFold", "VerifyReport", "VersionNotFound", "compare", "diff_states",
    "diff_versions", "export_at_version", "export_workspace", "format_time", "import_document", "parse_time",
    "plan_import", "rebuild_view", "replay_state", "verify_view", "view_path",
]

__getattr__ = lazy_attributes(globals(), _LAZY)
