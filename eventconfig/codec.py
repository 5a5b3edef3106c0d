"""Avro single-object encoding of every eventconfig message, with a schema registry.

Each message carries ``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of its writer
schema's Parsing Canonical Form, then the Avro binary body. Because the writer schema travels by
fingerprint, a reader can resolve old (or newer, once registered) data against its own schema: fields
may be added with defaults without breaking old readers or the data already in the log.

Decoding rejects trailing bytes after the body (``CorruptBody``): a body must be exactly one datum.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from .errors import BadMarker, CodecError, CorruptBody, UnknownFingerprint

MARKER = b"\xc3\x01"
HEADER_SIZE = 10  # marker + 8-byte fingerprint
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_EMPTY64 = 0xC15D213AA4D7A795


def _rabin_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE = _rabin_table()


def rabin64(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint as an unsigned 64-bit int (Avro spec, "Schema Fingerprints")."""
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def schema_fingerprint(schema: Any) -> bytes:
    """The 8 fingerprint bytes of single-object encoding: little-endian, as Java's Avro writes them."""
    return rabin64(to_parsing_canonical_form(schema).encode()).to_bytes(8, "little")


def _fullname(node: Mapping[str, Any], namespace: str) -> str:
    name = node["name"]
    if "." in name:
        return name
    ns = node.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _expand(node: Any, namespace: str, defs: Mapping[str, Any], seen: set[str]) -> Any:
    """Inline the first reference to each named type so a schema is self-contained."""
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        full = node if "." in node or not namespace else f"{namespace}.{node}"
        if full in seen or full not in defs:
            return full  # a repeat reference (valid) or an unknown one (parse_schema reports it)
        return _expand(defs[full], namespace, defs, seen)
    if isinstance(node, list):
        return [_expand(n, namespace, defs, seen) for n in node]
    if not isinstance(node, Mapping):
        return node
    kind = node.get("type")
    if kind in _NAMED:
        full = _fullname(node, namespace)
        seen.add(full)
        node = {k: v for k, v in node.items() if k != "namespace"} | {"name": full}
        if kind in ("record", "error"):
            inner = full.rpartition(".")[0]
            fields = [{**f, "type": _expand(f["type"], inner, defs, seen)} for f in node["fields"]]
            node["fields"] = fields
        return node
    if kind == "array":
        return {**node, "items": _expand(node["items"], namespace, defs, seen)}
    if kind == "map":
        return {**node, "values": _expand(node["values"], namespace, defs, seen)}
    return node


class RecordSchema:
    """A reader schema (self-contained, parsed) with everything the hot paths need, computed once."""

    __slots__ = ("name", "fullname", "schema", "fingerprint", "header", "int_fields")

    def __init__(self, fullname: str, schema: dict[str, Any], fingerprint: bytes) -> None:
        self.fullname = fullname
        self.name = fullname.rpartition(".")[2]
        self.schema = schema
        self.fingerprint = fingerprint
        self.header = MARKER + fingerprint
        # fastavro silently truncates floats and accepts bools for plain int/long fields: check those.
        self.int_fields = tuple(f["name"] for f in schema["fields"] if f["type"] in ("int", "long"))


class SchemaRegistry:
    """Reader schemas by record name, writer schemas by fingerprint."""

    def __init__(self, definitions: list[dict[str, Any]]) -> None:
        self._defs: dict[str, dict[str, Any]] = {_fullname(d, ""): d for d in definitions}
        self._readers: dict[str, RecordSchema] = {}
        self._writers: dict[bytes, tuple[str, dict[str, Any]]] = {}
        # Older generations of a record: (generation, full name) -> fingerprint, and back.
        self._generations: dict[tuple[str, str], bytes] = {}
        self._generation_of: dict[bytes, str] = {}
        for full in self._defs:
            schema, fp = self._parse(self._defs[full])
            rec = RecordSchema(full, schema, fp)
            self._readers[full] = self._readers[rec.name] = rec
            self._writers[fp] = (full, schema)

    @classmethod
    def from_dir(cls, path: str | Path) -> SchemaRegistry:
        """Load every ``*.avsc`` file of a directory (one record per file)."""
        files = sorted(Path(path).glob("*.avsc"))
        if not files:
            raise CodecError(f"no *.avsc schema files in {path}")
        try:
            return cls([json.loads(f.read_text(encoding="utf-8")) for f in files])
        except ValueError as exc:
            raise CodecError(f"unreadable schema file in {path}: {exc}") from exc

    def _parse(self, schema: Any) -> tuple[dict[str, Any], bytes]:
        expanded = _expand(schema, "", self._defs, set())
        try:
            parsed = cast(dict[str, Any], parse_schema(expanded, named_schemas={}))  # a record in, a record out
            return parsed, schema_fingerprint(parsed)
        except Exception as exc:
            name = schema.get("name", "?") if isinstance(schema, Mapping) else schema
            raise CodecError(f"invalid Avro schema {name!r}: {exc}") from exc

    def register_generation(self, path: str | Path) -> None:
        """Accept older schemas as writers: ``<Record>.<generation>.avsc`` files of a directory. A
        message written with one is answered (see :meth:`Codec.counterpart`) in the same generation."""
        for file in sorted(Path(path).glob("*.*.avsc")):
            record, generation = file.name.split(".")[:2]
            try:
                fp = self.register(json.loads(file.read_text(encoding="utf-8")))
            except ValueError as exc:
                raise CodecError(f"unreadable schema file {file}: {exc}") from exc
            full = self._writers[fp][0]
            self._generations[(generation, full)] = fp
            self._generation_of[fp] = generation

    def counterpart(self, fingerprint: bytes, record_name: str) -> bytes | None:
        """The fingerprint of ``record_name`` in the generation of ``fingerprint`` (None: current)."""
        generation = self._generation_of.get(fingerprint)
        if generation is None:
            return None
        return self._generations.get((generation, self.reader(record_name).fullname))

    def generation(self, generation: str, record_name: str) -> bytes:
        """The fingerprint of ``record_name`` in an older ``generation`` (to write for older readers)."""
        found = self._generations.get((generation, self.reader(record_name).fullname))
        if found is None:
            raise CodecError(f"no generation {generation!r} of {record_name!r} is shipped")
        return found

    def register(self, schema: dict[str, Any] | str) -> bytes:
        """Add a writer schema (an older or newer version of a record); returns its fingerprint."""
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise CodecError(f"schema is not valid JSON: {exc}") from exc
        parsed, fp = self._parse(schema)
        if not isinstance(parsed, dict) or parsed.get("type") != "record":
            raise CodecError("only record schemas can be registered as writer schemas")
        self._writers.setdefault(fp, (parsed["name"], parsed))
        return fp

    def reader(self, record_name: str) -> RecordSchema:
        try:
            return self._readers[record_name]
        except KeyError:
            raise CodecError(f"unknown record {record_name!r}") from None

    def writer(self, fingerprint: bytes) -> tuple[str, dict[str, Any]] | None:
        """(full record name, parsed schema) of a known writer schema, or None."""
        return self._writers.get(fingerprint)

    @property
    def record_names(self) -> list[str]:
        return sorted({r.name for r in self._readers.values()})


class Codec:
    """Encodes and decodes single-object Avro messages against a :class:`SchemaRegistry`."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()

    def fingerprint(self, record_name: str) -> bytes:
        return self.registry.reader(record_name).fingerprint

    def header(self, record_name: str) -> bytes:
        return self.registry.reader(record_name).header

    def encode(self, record_name: str, value: Mapping[str, Any], *, writer: bytes | None = None) -> bytes:
        """Encode with the current schema; missing fields take their defaults, unknown ones are rejected.

        With ``writer`` (a registered older schema's fingerprint), encode in that generation instead:
        fields it does not have are dropped, so an older client can read the message."""
        if writer is not None:
            return self._encode_as(writer, value)
        rec = self.registry.reader(record_name)
        if not isinstance(value, Mapping):
            raise CodecError(f"cannot encode {rec.name}: expected a mapping, got {type(value).__name__}")
        for name in rec.int_fields:
            v = value.get(name)
            if v is not None and type(v) is not int:
                raise CodecError(f"cannot encode {rec.name}: field {name} must be an int, got {v!r}")
        buf = io.BytesIO()
        buf.write(rec.header)
        try:
            schemaless_writer(buf, rec.schema, value, strict_allow_default=True, disable_tuple_notation=True)
        except Exception as exc:
            raise CodecError(f"cannot encode {rec.name}: {exc}") from exc
        return buf.getvalue()

    def _encode_as(self, fingerprint: bytes, value: Mapping[str, Any]) -> bytes:
        found = self.registry.writer(fingerprint)
        if found is None:
            raise UnknownFingerprint(f"unknown writer schema fingerprint {fingerprint.hex()}")
        name, schema = found
        buf = io.BytesIO()
        buf.write(MARKER + fingerprint)
        try:
            schemaless_writer(buf, schema, _project(schema, value), strict_allow_default=True,
                              disable_tuple_notation=True)
        except Exception as exc:
            raise CodecError(f"cannot encode {name} in schema {fingerprint.hex()}: {exc}") from exc
        return buf.getvalue()

    def decode(self, record_name: str, data: bytes) -> dict[str, Any]:
        """Decode, resolving the writer schema (found by fingerprint) against the reader schema."""
        return self.decode_with_writer(record_name, data)[0]

    def decode_with_writer(self, record_name: str, data: bytes) -> tuple[dict[str, Any], bytes]:
        """Like :meth:`decode`, also returning the writer schema's fingerprint (to answer in kind)."""
        rec = self.registry.reader(record_name)
        if len(data) < HEADER_SIZE or data[:2] != MARKER:
            raise BadMarker(f"not an Avro single-object message ({len(data)} bytes, starts {bytes(data[:2]).hex()})")
        fp = bytes(data[2:HEADER_SIZE])
        if fp == rec.fingerprint:
            writer_schema, reader_schema = rec.schema, None
        else:
            found = self.registry.writer(fp)
            if found is None:
                raise UnknownFingerprint(f"unknown writer schema fingerprint {fp.hex()} (decoding {rec.name})")
            writer_name, writer_schema = found
            if writer_name != rec.fullname:
                raise CodecError(f"message is a {writer_name}, expected {rec.fullname}")
            reader_schema = rec.schema
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            result = schemaless_reader(buf, writer_schema, reader_schema)
        except Exception as exc:
            raise CorruptBody(f"corrupt {rec.name} body: {type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data):
            raise CorruptBody(f"corrupt {rec.name} body: {len(data) - buf.tell()} trailing bytes")
        return result, fp  # type: ignore[return-value]

    def encode_log_key(self, workspace: str, type: str, key: str) -> bytes:
        """Canonical key bytes for the compacted log: the same (workspace, type, key), the same bytes."""
        return self.encode("LogKey", {"workspace": workspace, "type": type, "key": key})

    def decode_log_key(self, data: bytes) -> tuple[str, str, str]:
        d = self.decode("LogKey", data)
        return d["workspace"], d["type"], d["key"]


def _project(schema: Any, value: Any) -> Any:
    """``value`` reduced to what ``schema`` (parsed) has: fields an older schema lacks are dropped."""
    if isinstance(schema, list):  # a union: project onto the first record branch a mapping fits
        if isinstance(value, Mapping):
            for branch in schema:
                if isinstance(branch, dict) and branch.get("type") == "record":
                    return _project(branch, value)
        return value
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if kind == "record" and isinstance(value, Mapping):
        return {f["name"]: _project(f["type"], value[f["name"]]) for f in schema["fields"] if f["name"] in value}
    if kind == "array" and isinstance(value, list):
        return [_project(schema["items"], v) for v in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: _project(schema["values"], v) for k, v in value.items()}
    return value


@lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    """The registry of the schemas shipped with the package (eventconfig/schemas, plus the older
    generations in eventconfig/schemas/compat that requests may still be written with), loaded once."""
    registry = SchemaRegistry.from_dir(SCHEMAS_DIR)
    registry.register_generation(SCHEMAS_DIR / "compat")
    return registry


@lru_cache(maxsize=1)
def default_codec() -> Codec:
    return Codec(default_registry())


def encode(record_name: str, value: Mapping[str, Any]) -> bytes:
    return default_codec().encode(record_name, value)


def decode(record_name: str, data: bytes) -> dict[str, Any]:
    return default_codec().decode(record_name, data)


def encode_log_key(workspace: str, type: str, key: str) -> bytes:
    return default_codec().encode_log_key(workspace, type, key)


def decode_log_key(data: bytes) -> tuple[str, str, str]:
    return default_codec().decode_log_key(data)
