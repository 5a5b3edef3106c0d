"""Editing the keyring file (``eventconfig keys``, docs/operations.md "Keys"): add and revoke public keys.

The edits work on the file's document, so whatever else it holds (other actors, ``groups``,
``delegates``, unknown fields) stays as it was; a JSON file stays JSON, a YAML file YAML (its
comments are not kept). Every edit is checked with :meth:`Keyring.parse` before it is written, and
written to a temporary file that replaces the keyring in one rename, so a running service that
re-reads the file (docs/design.md §14.4) never sees half of it.

Example::

    doc = KeyringDocument.read("keyring.yaml")
    doc.add("alice", public_key_base64); doc.write()
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eventconfig.writer.auth import Keyring, KeyringError, read_document


def fingerprint(public_key: str) -> str:
    """``SHA256:<base64>`` of the raw public key (as ``ssh-keygen -l`` shows keys)."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        raw = public_key.encode()
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class ActorKeys:
    actor: str
    fingerprints: tuple[str, ...]
    groups: tuple[str, ...]


@dataclass
class KeyringDocument:
    """A keyring file's content, its format kept (``json`` or ``yaml``)."""

    path: Path
    document: dict[str, Any]
    format: str

    @classmethod
    def read(cls, path: str | Path, *, create: bool = False) -> KeyringDocument:
        """The file's document; a missing file is an empty keyring when ``create``, an error otherwise."""
        path = Path(path)
        as_json = path.suffix.lower() == ".json"
        if create and not path.exists():
            return cls(path, {"actors": {}}, "json" if as_json else "yaml")
        text = _text(path)
        try:
            document, as_json = json.loads(text), True
        except ValueError:
            document = read_document(path, "keyring", KeyringError)
        Keyring.parse(document, str(path))
        return cls(path, document, "json" if as_json else "yaml")

    @property
    def actors(self) -> dict[str, Any]:
        return self.document["actors"]

    def add(self, actor: str, public_key: str) -> None:
        """Add a key to ``actor`` (made with no groups when new); its other keys stay (rotation)."""
        entry = self.actors.setdefault(actor, {"keys": []})
        entry["keys"] = [*entry["keys"], public_key]
        Keyring.parse(self.document, str(self.path))

    def revoke(self, actor: str, key: str | None = None) -> list[str]:
        """Remove ``key`` (its fingerprint or base64 text) from ``actor``, or every key of it; the
        actor's groups and ``delegates`` stay. The fingerprints removed; KeyringError if none matched."""
        entry = self.actors.get(actor)
        if entry is None:
            raise KeyringError(f"actor {actor!r} is not in the keyring {self.path}")
        keys = [str(k) for k in entry["keys"]]
        removed = [k for k in keys if key is None or key in (k, fingerprint(k))]
        if key is not None and not removed:
            raise KeyringError(f"actor {actor!r} has no key {key!r} in {self.path} (see 'eventconfig keys list')")
        entry["keys"] = [k for k in keys if k not in removed]
        return [fingerprint(k) for k in removed]

    def entries(self) -> list[ActorKeys]:
        return [ActorKeys(str(name), tuple(fingerprint(str(k)) for k in entry["keys"]),
                          tuple(map(str, entry.get("groups") or ()))) for name, entry in self.actors.items()]

    def write(self) -> None:
        """Replace the file in one rename (its permissions kept)."""
        text = json.dumps(self.document, indent=2) + "\n" if self.format == "json" else \
            yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True)
        folder = self.path.parent
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            if self.path.exists():
                os.chmod(temp, self.path.stat().st_mode & 0o7777)
            else:
                os.chmod(temp, 0o644)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyringError(f"cannot read the keyring {path}: {exc}") from None
