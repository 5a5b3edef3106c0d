"""The bootstrap's exceptions: configuration problems (fatal at start) and initialiser failures (retried).

A :class:`SpecError` means the initialiser list cannot be used as written; the bootstrapper refuses to
start. An :class:`InitialiserError` is raised by an initialiser that cannot do its work yet (a
prerequisite is missing); the bootstrapper logs it without a traceback and retries on the next wake.
"""

from __future__ import annotations

from eventconfig.errors import EventConfigError


class BootstrapError(EventConfigError):
    """Base of every bootstrap error."""


class SpecError(BootstrapError):
    """The initialiser file or an entry of it is malformed (not a mapping, missing field, duplicate name)."""


class ClassPathError(SpecError):
    """An entry's ``class`` is not a dotted path, does not import, or is not an Initialiser."""


class UnknownParams(SpecError):
    """An entry's ``params`` names arguments its initialiser does not take (a typo, usually)."""


class InstantiationError(SpecError):
    """An initialiser's constructor raised with the entry's ``params``."""


class InitialiserError(BootstrapError):
    """An initialiser cannot complete this wake (e.g. its prerequisite is missing); it is retried."""
