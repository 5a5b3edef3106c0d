"""The initialiser list: read from YAML/JSON, validated whole before anything runs.

Every problem is a :class:`SpecError` with a message that names the entry, so a typo stops the
bootstrapper at start instead of being silently ignored (TrustGraph's bootstrapper ignored them).

File format (YAML when the name ends ``.yaml``/``.yml``, JSON otherwise)::

    initialisers:
      - class: eventconfig.bootstrap.initialisers.TemplateSeed   # dotted path (required)
        name: template-seed                                      # unique (required)
        flag: v1                                                 # string, number or bool (required)
        params: {config_file: seed.json}                         # constructor kwargs (optional)

Example::

    entries = build_initialisers(load_entries("bootstrap.yaml"))
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from eventconfig.bootstrap.base import Configured, Initialiser
from eventconfig.bootstrap.errors import ClassPathError, InstantiationError, SpecError, UnknownParams
from eventconfig.model import name_problem

REQUIRED_FIELDS = ("class", "name", "flag")
FIELDS = (*REQUIRED_FIELDS, "params")


def load_entries(path: str | Path) -> list[dict[str, Any]]:
    """The raw entries of an initialiser file; SpecError if it cannot be read or has no list."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the initialiser file: {exc.strerror or exc}") from exc
    try:
        document = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise SpecError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: {exc}") from exc
    if not isinstance(document, dict) or "initialisers" not in document:
        raise SpecError(f"{path}: expected a mapping with an 'initialisers' key")
    extra = sorted(set(document) - {"initialisers"})
    if extra:
        raise SpecError(f"{path}: unknown top-level key(s) {', '.join(map(repr, extra))}; "
                        "only 'initialisers' is read")
    entries = document["initialisers"]
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"{path}: 'initialisers' must be a non-empty list of entries")
    return entries


def build_initialisers(entries: Iterable[Mapping[str, Any] | Configured]) -> list[Configured]:
    """Validate every entry and build its initialiser; entries already built are checked for names only."""
    built: list[Configured] = []
    names: set[str] = set()
    for entry in entries:
        configured = entry if isinstance(entry, Configured) else build_one(entry)
        _check_name(configured.name)
        _check_flag(configured.name, configured.flag)
        if configured.name in names:
            raise SpecError(f"Duplicate initialiser name {configured.name!r}")
        names.add(configured.name)
        built.append(configured)
    return built


def build_one(entry: Any) -> Configured:
    """One entry of the file -> a Configured initialiser (its class imported and constructed)."""
    if not isinstance(entry, Mapping):
        raise SpecError(f"Initialiser entry must be a mapping, got: {entry!r}")
    for required in REQUIRED_FIELDS:
        if required not in entry:
            raise SpecError(f"Initialiser entry missing required field {required!r}: {dict(entry)!r}")
    name = entry["name"]
    _check_name(name)
    extra = sorted(set(entry) - set(FIELDS))
    if extra:
        raise SpecError(f"Initialiser entry {name!r} has unknown field(s) {', '.join(map(repr, extra))}; "
                        f"allowed: {', '.join(FIELDS)}")
    params = entry.get("params") or {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise SpecError(f"Initialiser entry {name!r}: params must be a mapping of names to values, got: {params!r}")
    cls = resolve_class(entry["class"], name)
    return Configured(name, entry["flag"], instantiate(cls, entry["class"], name, dict(params)))


def resolve_class(path: Any, name: str) -> type[Initialiser]:
    """Import ``package.module.Class``; it must be a subclass of :class:`Initialiser`."""
    if not isinstance(path, str) or "." not in path.strip(".") or not all(path.split(".")):
        raise ClassPathError(f"Initialiser class must be a dotted path, got {path!r}")
    module_name, _, attribute = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a broken third-party module can raise anything on import
        raise ClassPathError(f"Cannot import initialiser class {path!r} for {name!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
    cls = getattr(module, attribute, None)
    if cls is None:
        raise ClassPathError(f"Cannot import initialiser class {path!r} for {name!r}: "
                             f"module {module_name!r} has no attribute {attribute!r}")
    if not (isinstance(cls, type) and issubclass(cls, Initialiser)):
        raise ClassPathError(f"Initialiser class {path!r} for {name!r} is not a subclass of "
                             "eventconfig.bootstrap.Initialiser")
    if not isinstance(cls.wait_for_services, bool):
        raise ClassPathError(f"Initialiser class {path!r}: wait_for_services must be True or False")
    return cls


def instantiate(cls: type[Initialiser], path: str, name: str, params: dict[str, Any]) -> Initialiser:
    """``cls(**params)``; unknown params and constructor failures are SpecErrors naming the entry."""
    accepted = _accepted_params(cls)
    if accepted is not None:
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise UnknownParams(f"Initialiser {name!r} ({path}) got unknown param(s) "
                                f"{', '.join(map(repr, unknown))}; it accepts: {', '.join(sorted(accepted)) or 'none'}")
    try:
        return cls(**params)
    except Exception as exc:
        raise InstantiationError(f"Failed to instantiate initialiser {path!r} as {name!r}: "
                                 f"{type(exc).__name__}: {exc}") from exc


def _accepted_params(cls: type[Initialiser]) -> set[str] | None:
    """The keyword names the constructor takes, or None when it takes ``**kwargs`` (anything goes)."""
    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _check_name(name: Any) -> None:
    problem = name_problem("name", name)  # the name is a config key in __system__
    if problem:
        raise SpecError(f"Initialiser {problem}: {name!r}")


def _check_flag(name: str, flag: Any) -> None:
    # None would read back as "never ran"; lists and mappings compare badly after a JSON round trip.
    if flag is None or not isinstance(flag, (str, int, float, bool)):
        raise SpecError(f"Initialiser {name!r}: flag must be a string, number or boolean, got {flag!r}")
