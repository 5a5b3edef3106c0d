"""The audit errors: every one says what was asked, what the topics still hold, and what to do."""

from __future__ import annotations

from eventconfig.errors import EventConfigError


class AuditError(EventConfigError):
    """Base of the errors of history, state, diff, verify, rebuild, export and import."""


class OutOfRetention(AuditError):
    """The request needs history that retention has deleted; answering would be silently partial."""

    def __init__(self, message: str, first_version: int | None, first_timestamp_ms: int | None) -> None:
        super().__init__(message)
        self.first_version = first_version
        self.first_timestamp_ms = first_timestamp_ms


class VersionNotFound(AuditError):
    """The requested version is beyond the last version in the history."""


class HistoryGap(AuditError):
    """The history skips or repeats a version, so no state can be rebuilt across that point."""


class CorruptHistory(AuditError):
    """A history record does not decode as a ``Mutation``."""


class ExportFormatError(AuditError):
    """An export document is not in the ``eventconfig-export/1`` format."""


class ImportConflict(AuditError):
    """The target workspace changed between planning an import and writing it; nothing was written."""
