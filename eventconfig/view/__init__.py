"""The local view of the log: a RocksDB store, the pure applier that feeds it, and the materializer.

Example::

    materializer = Materializer(settings); await materializer.start()
    await materializer.wait_caught_up(30); view = materializer.store.snapshot()

The store and the materializer (rocksdict, aiokafka) load on first use of their names, so that the
pure core (``view.apply``, ``view.reader`` and the writer's handler that reads through them) imports
neither library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventconfig.lazy import lazy_attributes
from eventconfig.view.apply import Applier, ViewWrites
from eventconfig.view.reader import DictReader, ViewReader

if TYPE_CHECKING:
    from eventconfig.view.materializer import Materializer
    from eventconfig.view.store import (FORMAT_VERSION, ViewCorruptError, ViewLockedError, ViewMeta, ViewSnapshot,
                                        ViewStore, ViewStoreOptions, ViewUnavailableError)

_LAZY = {
    "Materializer": "eventconfig.view.materializer",
    **{name: "eventconfig.view.store" for name in (
        "FORMAT_VERSION", "ViewCorruptError", "ViewLockedError", "ViewMeta", "ViewSnapshot", "ViewStore",
        "ViewStoreOptions", "ViewUnavailableError")},
}

__all__ = [
    "FORMAT_VERSION", "Applier", "DictReader", "Materializer", "ViewCorruptError", "ViewLockedError", "ViewMeta",
    "ViewReader", "ViewSnapshot", "ViewStore", "ViewStoreOptions", "ViewUnavailableError", "ViewWrites",
]


__getattr__ = lazy_attributes(globals(), _LAZY)
