"""The item cache in front of RocksDB: what it serves always equals the store, whatever the order of
reads, writes and evictions, and a read that raced a write is never cached."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventconfig.client.local_view import LocalView
from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings, SettingsError
from eventconfig.view.materializer import Materializer
from eventconfig.view import ViewStore, ViewWrites
from eventconfig.view.cache import MISS, ViewCache
from eventconfig.view.store import ViewStoreOptions

KEYS = [ItemKey("w", t, k) for t in ("a", "b") for k in ("x", "y", "z")]

# A step is a read of one key or a write of some keys (None: delete).
reads = st.tuples(st.just("read"), st.sampled_from(KEYS))
writes = st.tuples(st.just("write"), st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), st.text(max_size=3)),
                                                     max_size=4))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.one_of(reads, writes), max_size=40), capacity=st.integers(0, 4))
def test_cached_reads_equal_the_store_under_any_reads_writes_and_evictions(steps, capacity):
    with tempfile.TemporaryDirectory() as folder, \
            ViewStore.open(Path(folder) / "view", ViewStoreOptions(cache_items=capacity)) as store:
        model: dict[ItemKey, Entry] = {}
        version = 0
        for kind, arg in steps:
            if kind == "read":
                assert store.get(arg) == model.get(arg)
                assert store.get(tuple(arg)) == model.get(arg), "a plain tuple is the same key"
            else:
                version += 1
                ops = {key: None if value is None else Entry(value, version) for key, value in arg.items()}
                store.write(ViewWrites(ops, version, version))
                for key, entry in ops.items():
                    model.pop(key, None) if entry is None else model.__setitem__(key, entry)
            assert len(store._cache) <= capacity
        for key in KEYS:  # and RocksDB itself agrees with the model
            with store.snapshot() as view:
                assert view.get(key) == model.get(key) == store.get(key)


def test_hot_items_and_absent_items_are_served_from_memory(tmp_path):
    with ViewStore.open(tmp_path / "view", ViewStoreOptions(cache_items=10)) as store:
        store.write(ViewWrites({KEYS[0]: Entry("v", 1)}, 1, 1))
        assert store.get(KEYS[0]) == Entry("v", 1) and store.get(KEYS[1]) is None
        assert store._cache.items == {}, "an item read once is not cached yet"
        assert store.get(KEYS[0]) == Entry("v", 1) and store.get(KEYS[1]) is None
        assert store._cache.items == {KEYS[0]: Entry("v", 1), KEYS[1]: None}, "its second read caches it"
        store.write(ViewWrites({KEYS[0]: Entry("v2", 2), KEYS[1]: Entry("new", 2), KEYS[2]: None}, 2, 2))
        assert store._cache.items == {KEYS[0]: Entry("v2", 2), KEYS[1]: Entry("new", 2)}, \
            "a write updates the keys that were cached and caches no others"


def test_an_item_enters_on_its_second_miss_so_a_pass_over_cold_items_keeps_the_hot_ones():
    cache = ViewCache(4)
    for _ in range(2):
        cache.fill(KEYS[0], Entry("hot", 1), cache.generation)
    for key in KEYS[1:]:  # five items read once each: more than the capacity
        cache.fill(key, Entry("cold", 1), cache.generation)
    assert cache.items == {KEYS[0]: Entry("hot", 1)}
    assert len(cache._missed_once) <= cache.capacity, "the doorkeeper is bounded by the capacity too"
    cache.fill(KEYS[5], Entry("cold", 1), cache.generation)
    assert KEYS[5] in cache.items, "missed twice among the last misses: cached"


def test_a_read_of_rocksdb_that_raced_a_write_is_not_cached():
    cache = ViewCache(10)
    cache.fill(KEYS[0], Entry("old", 1), cache.generation)  # its first miss: the next one may cache it
    before = cache.generation
    with cache.writing({KEYS[0]: Entry("new", 2)}):
        cache.fill(KEYS[0], Entry("old or new", 1), cache.generation)  # read while the write runs
    cache.fill(KEYS[0], Entry("old", 1), before)  # read before the write, finished after it
    assert cache.items.get(KEYS[0], MISS) is MISS
    cache.fill(KEYS[0], Entry("new", 2), cache.generation)
    assert cache.items[KEYS[0]] == Entry("new", 2)


def test_a_failed_write_leaves_its_keys_evicted():
    cache = ViewCache(10)
    for _ in range(2):
        cache.fill(KEYS[0], Entry("v", 1), cache.generation)
    assert KEYS[0] in cache.items
    try:
        with cache.writing({KEYS[0]: Entry("v2", 2)}):
            raise OSError("disk full")
    except OSError:
        pass
    assert KEYS[0] not in cache.items and cache.generation % 2 == 0, "the next read goes to RocksDB"


def test_reads_on_another_thread_stay_exact_while_writes_run(tmp_path):
    """A reader thread hammers one key while this thread writes it 300 times: the reader never sees a
    version go backwards, and after the last write every read is the last value."""
    with ViewStore.open(tmp_path / "view", ViewStoreOptions(cache_items=10)) as store:
        stop, seen, problems = threading.Event(), [0], []

        def reader() -> None:
            while not stop.is_set():
                entry = store.get(KEYS[0])
                version = 0 if entry is None else entry.version
                if version < seen[0]:
                    problems.append((seen[0], version))
                seen[0] = version

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for version in range(1, 301):
                store.write(ViewWrites({KEYS[0]: Entry(str(version), version)}, version, version))
        finally:
            stop.set()
            thread.join(10)
        assert problems == []
        assert store.get(KEYS[0]) == Entry("300", 300) == store._cache.items.get(KEYS[0], Entry("300", 300))


def test_the_memory_of_views_is_set_by_settings():
    settings = Settings.load({"view_block_cache_bytes": 8 << 20, "view_write_buffer_bytes": 4 << 20,
                              "view_max_write_buffers": 2, "local_view_cache_items": 50}, env={})
    local = LocalView(settings, Path("unused")).materializer.options
    assert local == ViewStoreOptions(write_buffer_bytes=4 << 20, max_write_buffers=2, block_cache_bytes=8 << 20,
                                     cache_items=50)
    assert Materializer(settings).options.cache_items == 0, "the service's view reads through snapshots only"
    for bad in ({"local_view_cache_items": -1}, {"view_block_cache_bytes": -1}, {"view_write_buffer_bytes": 1000},
                {"view_max_write_buffers": 1}):
        with pytest.raises(SettingsError):
            Settings.load(bad, env={})


def _rocksdb_options(view: Path) -> dict[str, dict[str, str]]:
    """The sections of the OPTIONS file RocksDB wrote for the open view: what it actually runs with."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    latest = max(view.glob("OPTIONS-*"), key=lambda f: int(f.name.split("-")[1]))
    for line in latest.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            current = sections.setdefault(line, {})
        elif "=" in line:
            name, value = line.split("=", 1)
            current[name] = value
    return sections


def test_the_view_settings_reach_rocksdb_and_point_reads_map_the_files(tmp_path):
    settings = Settings.load({"view_block_cache_bytes": 8 << 20, "view_write_buffer_bytes": 4 << 20,
                              "view_max_write_buffers": 2}, env={})
    with ViewStore.open(tmp_path / "view", LocalView(settings, tmp_path / "view").materializer.options) as store:
        assert store._families[0].property_int_value("rocksdb.block-cache-capacity") == 8 << 20
    options = _rocksdb_options(tmp_path / "view")
    assert options["[DBOptions]"]["allow_mmap_reads"] == "true", "cold point reads read mapped pages in place"
    data = options['[CFOptions "data"]']
    assert (data["write_buffer_size"], data["max_write_buffer_number"]) == (str(4 << 20), "2")
    assert options['[TableOptions/BlockBasedTable "data"]']["filter_policy"] == "bloomfilter"
