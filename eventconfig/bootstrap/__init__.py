"""Bootstrap (docs/design.md §8): a long-running reconciler that runs pluggable, flag-versioned initialisers.

Example::

    bootstrapper = Bootstrapper.from_file(settings, "bootstrap.yaml")   # validates every entry
    await bootstrapper.run()                                           # wake, reconcile, sleep ...
"""

from eventconfig.bootstrap.base import Configured, Flag, InitContext, Initialiser
from eventconfig.bootstrap.bootstrapper import (STATE_TYPE, STATE_WORKSPACE, Bootstrapper, Cadence, CycleReport,
                                                Result, Status)
from eventconfig.bootstrap.errors import (BootstrapError, ClassPathError, InitialiserError, InstantiationError,
                                          SpecError, UnknownParams)
from eventconfig.bootstrap.spec import build_initialisers, load_entries

__all__ = [
    "STATE_TYPE", "STATE_WORKSPACE", "BootstrapError", "Bootstrapper", "Cadence", "ClassPathError", "Configured",
    "CycleReport", "Flag", "InitContext", "Initialiser", "InitialiserError", "InstantiationError", "Result",
    "SpecError", "Status", "UnknownParams", "build_initialisers", "load_entries",
]
