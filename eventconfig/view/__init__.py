"""The local view of the log: a RocksDB store, the pure applier that feeds it, and the materializer.

Example::

    materializer = Materializer(settings); await materializer.start()
    await materializer.wait_caught_up(30); view = materializer.store.snapshot()
"""

from eventconfig.view.apply import Applier, ViewWrites
from eventconfig.view.materializer import Materializer
from eventconfig.view.reader import DictReader, ViewReader
from eventconfig.view.store import (FORMAT_VERSION, ViewCorruptError, ViewLockedError, ViewMeta, ViewSnapshot,
                                    ViewStore, ViewStoreOptions, ViewUnavailableError)

__all__ = [
    "FORMAT_VERSION", "Applier", "DictReader", "Materializer", "ViewCorruptError", "ViewLockedError", "ViewMeta",
    "ViewReader", "ViewSnapshot", "ViewStore", "ViewStoreOptions", "ViewUnavailableError", "ViewWrites",
]
