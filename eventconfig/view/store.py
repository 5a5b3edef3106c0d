"""The local RocksDB view: items, a by-type index and the applied log position, written together.

The only module that imports rocksdict. Three column families, raw bytes:

* ``data``     ``workspace 0 type 0 key`` -> 8-byte big-endian version + UTF-8 value
* ``by_type``  ``type 0 workspace 0 key`` -> b"" (an all-workspace listing is one prefix scan)
* ``meta``     applied offset, view version, format version, caught_up_ms (8-byte big-endian each)

Names are non-empty and hold no NUL, the smallest byte, so the byte order of these keys is the order
of (workspace, type, key) tuples. Items, offset and version go in one WriteBatch, so a crash leaves
the view equal to a replay of a prefix of the log (docs/design.md §6). The WAL stays on but unsynced: a
killed process loses nothing, an OS crash at worst loses a suffix that is read again from the log.

Point reads may go through an exact in-process cache of hot items (:mod:`eventconfig.view.cache`),
which every write keeps exact; its size and RocksDB's memory are :class:`ViewStoreOptions`.
"""

from __future__ import annotations

import shutil
import struct
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocksdict import BlockBasedOptions, Cache, DBCompressionType, Options, Rdict, WriteBatch

from eventconfig.errors import ViewError
from eventconfig.model import Entry, ItemKey, Offset, Version
from eventconfig.view.apply import ViewWrites
from eventconfig.view.cache import MISS, ViewCache

FORMAT_VERSION = 1  # bump when the layout changes: views of another format are rebuilt

_MIB = 1024 * 1024
_DATA, _BY_TYPE, _META = "data", "by_type", "meta"
# Items, the index by type, the position: each family has its own write buffers (docs/operations.md
# "Sizing a view" quotes how many families there are).
COLUMN_FAMILIES = (_DATA, _BY_TYPE, _META)
_META_KEYS = {name: name.encode() for name in ("offset", "version", "format_version", "caught_up_ms")}
_NOT_FOUND = "key not found"  # what rocksdict's Snapshot raises (a bare Exception) for a missing key


class ViewLockedError(ViewError):
    """Another process (or another open ViewStore) holds the view: it must never be rebuilt under it."""


class ViewCorruptError(ViewError):
    """The view's own files are damaged or missing: only a rebuild from the log can mend it."""


class ViewUnavailableError(ViewError):
    """The system refused (permission, disk full, file limit, a file where the folder should be): the
    view may be intact, so this is never a reason to delete it."""


@dataclass(frozen=True)
class ViewMeta:
    offset: Offset  # next log offset to read
    version: Version  # last complete version
    format_version: int  # 0: unknown (a RocksDB that this code did not create)
    caught_up_ms: int  # wall clock of the last time the view was known to be at the log's end



def _meta_of(values: Mapping[str, int]) -> ViewMeta:
    """The meta from its stored fields (all of :data:`_META_KEYS`)."""
    return ViewMeta(offset=Offset(values["offset"]), version=Version(values["version"]),
                    format_version=values["format_version"], caught_up_ms=values["caught_up_ms"])


@dataclass(frozen=True)
class ViewStoreOptions:
    """Memory and RocksDB tuning of the view, turned into rocksdict options in one place.

    Memory is at most about ``block_cache_bytes + len(COLUMN_FAMILIES) * max_write_buffers *
    write_buffer_bytes`` (3 ×) plus the item cache, ``cache_items`` times the size of an item.
    """

    write_buffer_bytes: int = 64 * _MIB
    max_write_buffers: int = 3
    block_cache_bytes: int = 128 * _MIB
    cache_items: int = 0  # hot items kept in process memory in front of RocksDB; 0: none
    bloom_bits_per_key: int = 10
    background_jobs: int = 4
    keep_info_logs: int = 3

    def db_options(self) -> Options:
        options = Options(raw_mode=True)
        # A point read of an uncompressed block then reads the file's pages in place: no read call, no
        # copy into the block cache and no eviction from it (RocksDB's part of a cold get costs about
        # 40 % less, a whole cold ViewStore.get about 25 %). Blocks lz4 does shrink are still
        # decompressed into the block cache.
        options.set_allow_mmap_reads(True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        options.set_max_background_jobs(self.background_jobs)
        options.set_keep_log_file_num(self.keep_info_logs)
        return options

    def column_families(self) -> dict[str, Options]:
        cache = Cache(self.block_cache_bytes)  # one cache shared by the three families
        return {_DATA: self._family(cache, bloom=True), _BY_TYPE: self._family(cache, bloom=False),
                _META: self._family(cache, bloom=False)}

    def _family(self, cache: Cache, bloom: bool) -> Options:
        table = BlockBasedOptions()
        table.set_block_cache(cache)
        if bloom:  # point gets only hit `data`; the index is only ever scanned
            table.set_bloom_filter(self.bloom_bits_per_key, False)
        options = Options(raw_mode=True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_size(self.write_buffer_bytes)
        options.set_max_write_buffer_number(self.max_write_buffers)
        options.set_compression_type(DBCompressionType.lz4())
        return options


@contextmanager
def _rocksdb(action: str, path: Path) -> Iterator[None]:
    """The one place that maps rocksdict's errors (bare Exceptions with a message) to ViewError."""
    try:
        yield
    except ViewError:
        raise
    except Exception as exc:
        raise _view_error(action, path, exc) from exc


# What RocksDB says when another process, or this one, holds the LOCK file.
_LOCKED = ("While lock file:", "lock hold by")
# A damaged file, or a file the view's own MANIFEST names that is gone: rebuilding is the only cure.
_CORRUPT = ("Corruption:", "IO error: No such file or directory")


def _view_error(action: str, path: Path, exc: Exception) -> ViewError:
    """Corruption may be rebuilt, a held lock waited for; anything else (EACCES, ENOSPC, EMFILE ...)
    leaves the view alone."""
    message = str(exc)
    if any(marker in message for marker in _LOCKED):
        return ViewLockedError(f"cannot {action} the view at {path}: it is open elsewhere ({message})")
    if message.startswith(_CORRUPT):
        return ViewCorruptError(f"cannot {action} the view at {path}: it is corrupt ({message})")
    return ViewUnavailableError(f"cannot {action} the view at {path}: {message}")


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")  # raises for a negative version: the applier never lets one through


def _data_key(item: tuple[str, str, str]) -> bytes:
    """``workspace NUL type NUL key``: names hold no NUL, so byte order is (workspace, type, key) order."""
    return f"{item[0]}\x00{item[1]}\x00{item[2]}".encode()


_VERSION = struct.Struct(">Q")
_NEW, _SET_VALUE, _SET_VERSION = object.__new__, vars(Entry)["value"].__set__, vars(Entry)["version"].__set__


def _entry(raw: bytes) -> Entry:
    """The entry of a stored ``version + value``. It fills the frozen dataclass's slots directly:
    through Entry's own __init__ (object.__setattr__ per field) and int.from_bytes this took 850 ns, not 480."""
    entry = _NEW(Entry)
    _SET_VALUE(entry, raw[8:].decode())
    _SET_VERSION(entry, _VERSION.unpack_from(raw)[0])
    return entry


class ViewStore:
    """The materialized view on disk; the materializer writes it, readers take snapshots.

    Example::

        store = ViewStore.open(settings.data_dir / "view")
        with store.snapshot() as view: view.get(ItemKey("ws", "t", "k"))
    """

    def __init__(self, path: Path, db: Rdict, cache_items: int = 0) -> None:
        self.path = path
        self._db = db
        self._cache = ViewCache(cache_items)
        self._families = tuple(db.get_column_family(n) for n in COLUMN_FAMILIES)
        self._handles = tuple(db.get_column_family_handle(n) for n in COLUMN_FAMILIES)
        self._lock = threading.Lock()  # a snapshot and its meta are taken with no write in between
        self._closed = False
        self._snapshots: weakref.WeakSet[ViewSnapshot] = weakref.WeakSet()  # closed with the store
        try:
            with _rocksdb("open", path):
                raw = {field: self._families[2].get(key) for field, key in _META_KEYS.items()}
            if any(v is not None and len(v) != 8 for v in raw.values()):
                raise ViewCorruptError(f"the view at {path} has corrupt meta entries")
        except BaseException:
            self.close()
            raise
        # A RocksDB without a format entry was not written by this code: format 0 means "unknown".
        self._meta = _meta_of({f: int.from_bytes(v, "big") if v else 0 for f, v in raw.items()})

    @classmethod
    def open(cls, path: Path, options: ViewStoreOptions | None = None) -> ViewStore:
        """Open or create the view; ViewCorruptError if damaged, ViewLockedError if open elsewhere,
        ViewUnavailableError if the system refuses."""
        options = options or ViewStoreOptions()
        path = Path(path)
        fresh = not (path / "CURRENT").exists()
        with _rocksdb("open", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            db = Rdict(str(path), options.db_options(), column_families=options.column_families())
        store = cls(path, db, options.cache_items)
        if fresh:
            try:
                store._put_meta(format_version=FORMAT_VERSION, offset=0, version=0, caught_up_ms=0)
            except BaseException:
                store.close()
                raise
        return store

    @staticmethod
    def destroy(path: Path) -> None:
        """Remove the view's folder (for a rebuild); nothing happens if it does not exist."""
        path = Path(path)
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        except OSError as exc:
            raise ViewError(f"cannot remove the view at {path}: {exc}") from exc

    def meta(self) -> ViewMeta:
        return self._meta

    @property
    def version(self) -> Version:
        return self._meta.version

    @property
    def cached_items(self) -> int:
        """Items (and absent keys) the hot-item cache holds now, at most ``cache_items``
        (``local_view_cache_items`` for a LocalView; docs/operations.md "Sizing a view")."""
        return len(self._cache)

    def write(self, writes: ViewWrites) -> None:
        """Apply the item ops and the new offset and version in one WriteBatch (all or nothing).

        Safe to call from a worker thread while other threads read: rocksdict releases the GIL for
        the write, and the item cache stays exact (see :mod:`eventconfig.view.cache`)."""
        data, by_type, meta = self._open_handles()
        batch = WriteBatch(raw_mode=True)
        for (workspace, type_, key), entry in writes.ops.items():
            data_key = _data_key((workspace, type_, key))
            index_key = f"{type_}\x00{workspace}\x00{key}".encode()
            if entry is None:
                batch.delete(data_key, data)
                batch.delete(index_key, by_type)
            else:
                batch.put(data_key, _u64(entry.version) + entry.value.encode(), data)
                batch.put(index_key, b"", by_type)
        with self._cache.writing(writes.ops):
            self._put_meta(batch, offset=writes.offset, version=writes.version)

    def get(self, item: tuple[str, str, str]) -> Entry | None:
        """The latest entry of one item (an :class:`ItemKey` or a plain tuple), without a snapshot:
        one read is atomic, and this is the fast path of local reads, served from the item cache
        when hot. Use :meth:`snapshot` when several reads must agree."""
        if self._closed:
            raise ViewError(f"the view at {self.path} is closed")
        cache = self._cache
        entry = cache.items.get(item, MISS)
        if entry is not MISS:
            return entry  # type: ignore[return-value]
        generation = cache.generation
        try:  # no context manager here: it would double the cost of a local read
            raw = self._families[0].get(_data_key(item))
        except Exception as exc:
            raise _view_error("read", self.path, exc) from exc
        entry = None if raw is None else _entry(raw)
        cache.fill(item, entry, generation)
        return entry

    def mark_caught_up(self, ms: int) -> None:
        """Record that the view was at the log's end at wall-clock time ``ms``."""
        self._put_meta(caught_up_ms=ms)

    def _put_meta(self, batch: WriteBatch | None = None, **values: int) -> None:
        meta = self._open_handles()[2]
        batch = batch if batch is not None else WriteBatch(raw_mode=True)
        for field, value in values.items():
            batch.put(_META_KEYS[field], _u64(value), meta)
        with self._lock, _rocksdb("write", self.path):
            self._db.write(batch)
            self._meta = _meta_of({**vars(self._meta), **values})

    def _open_handles(self) -> tuple[Any, ...]:
        if self._closed:
            raise ViewError(f"the view at {self.path} is closed")
        return self._handles

    def snapshot(self) -> ViewSnapshot:
        """A consistent read view of the current state, with the meta of that same state."""
        with self._lock, _rocksdb("read", self.path):
            self._open_handles()
            data, by_type, _ = self._families
            # rocksdict's Snapshot honours the snapshot for gets but not for iteration (0.3.29): its
            # iter() sets the snapshot on a copy of the read options. A RocksDB iterator is itself a
            # point-in-time view from its creation, so the scan iterators are created here, together.
            snapshot = ViewSnapshot(self.path, data.snapshot(), data.iter(), by_type.iter(), self._meta)
            self._snapshots.add(snapshot)
            return snapshot

    def close(self) -> None:
        """Flush and close, now: every rocksdict object (column family, handle, snapshot, iterator)
        keeps the DB open, so all of them are released here, snapshots still held by readers included."""
        if self._closed:
            return
        with self._lock, _rocksdb("close", self.path):
            self._closed = True
            self._cache.clear()
            for snapshot in list(self._snapshots):
                snapshot.close()
            for family in self._families:
                family.close()
            self._families = self._handles = ()
            self._db.close()

    def __enter__(self) -> ViewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ViewSnapshot:
    """One consistent state of the view (a :class:`~eventconfig.view.reader.ViewReader`).

    Example::

        with store.snapshot() as view:
            keys = [key for key, entry in view.scan_type("ws", "flow")]
    """

    __slots__ = ("path", "_snap", "_data_iter", "_index_iter", "meta", "__weakref__")

    def __init__(self, path: Path, snap: Any, data_iter: Any, index_iter: Any, meta: ViewMeta) -> None:
        self.path = path
        self._snap = snap
        self._data_iter = data_iter
        self._index_iter = index_iter
        self.meta = meta

    @property
    def version(self) -> Version:
        return self.meta.version

    def get(self, item: ItemKey) -> Entry | None:
        raw = self._get(_data_key(item))
        return None if raw is None else _entry(raw)

    def _get(self, key: bytes) -> bytes | None:
        try:
            return self._snap[key]
        except Exception as exc:
            if str(exc) == _NOT_FOUND:
                return None
            if self._snap is None:
                raise ViewError(f"this snapshot of the view at {self.path} is closed") from None
            raise _view_error("read", self.path, exc) from exc

    # Scans drain the shared iterator before returning, so two scans of one snapshot cannot interleave.
    def scan_type(self, workspace: str, type: str) -> Iterator[tuple[str, Entry]]:
        found = self._scan(self._data_iter, f"{workspace}\x00{type}\x00".encode(), values=True)
        return iter([(rest.decode(), _entry(raw)) for rest, raw in found])

    def scan_workspace(self, workspace: str) -> Iterator[tuple[str, str, Entry]]:
        found = self._scan(self._data_iter, f"{workspace}\x00".encode(), values=True)
        result = []
        for rest, raw in found:
            type_, key = rest.decode().split("\x00", 1)
            result.append((type_, key, _entry(raw)))
        return iter(result)

    def scan_all_workspaces(self, type: str) -> Iterator[tuple[str, str, Entry]]:
        prefix = type.encode()
        result = []
        for rest, _ in self._scan(self._index_iter, prefix + b"\x00", values=False):
            workspace, key = rest.split(b"\x00", 1)
            raw = self._get(b"\x00".join((workspace, prefix, key)))
            if raw is not None:  # index and data are written in one batch; never absent in practice
                result.append((workspace.decode(), key.decode(), _entry(raw)))
        return iter(result)

    def scan_all(self) -> Iterator[tuple[ItemKey, Entry]]:
        """Every item of every workspace, in (workspace, type, key) order (audit: verify)."""
        found = self._scan(self._data_iter, b"", values=True)
        return iter([(ItemKey(*rest.decode().split("\x00", 2)), _entry(raw)) for rest, raw in found])

    def workspaces(self) -> list[str]:
        """Every workspace holding at least one item, ascending: one seek per workspace, not per key."""
        if self._data_iter is None:
            raise ViewError(f"this snapshot of the view at {self.path} is closed")
        found: list[str] = []
        with _rocksdb("scan", self.path):
            self._data_iter.seek_to_first()
            while self._data_iter.valid():
                workspace = self._data_iter.key().split(b"\x00", 1)[0]
                found.append(workspace.decode())
                self._data_iter.seek(workspace + b"\x01")  # past "workspace\x00...": names hold no NUL
            self._data_iter.status()
        return found

    def _scan(self, it: Any, prefix: bytes, values: bool) -> list[tuple[bytes, bytes]]:
        """(key after the prefix, value) of every key that starts with ``prefix``, ascending."""
        if it is None:
            raise ViewError(f"this snapshot of the view at {self.path} is closed")
        size = len(prefix)
        found: list[tuple[bytes, bytes]] = []
        with _rocksdb("scan", self.path):
            it.seek(prefix)
            while it.valid():
                key = it.key()
                if not key.startswith(prefix):
                    break
                found.append((key[size:], it.value() if values else b""))
                it.next()
            it.status()
        return found

    def close(self) -> None:
        # Dropping the references releases the RocksDB snapshot and the iterators' pinned state.
        self._snap = self._data_iter = self._index_iter = None

    def __enter__(self) -> ViewSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
