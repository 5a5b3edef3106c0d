"""Package names that load their module on first use (PEP 562), so that importing a package's pure
modules does not load the I/O libraries (aiokafka, rocksdict) its adapters need (docs/design.md §11).

Example::

    __getattr__ = lazy_attributes(globals(), {"ViewStore": "eventconfig.view.store"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(namespace: dict[str, Any], homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each name of ``homes`` from its module when first asked for
    and keeps it in ``namespace`` (the package's globals), so later lookups do not come back here."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        namespace[name] = value
        return value

    return __getattr__
