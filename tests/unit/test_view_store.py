"""The RocksDB view store: key layout and orders, atomic position, snapshots, reopen and rebuild."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from eventconfig.errors import ViewError
from eventconfig.model import Entry, ItemKey
from eventconfig.view import (FORMAT_VERSION, DictReader, ViewCorruptError, ViewLockedError, ViewReader, ViewStore,
                              ViewUnavailableError, ViewWrites)
from eventconfig.view import store as store_module
from tests.support import view_held_elsewhere


@pytest.fixture
def store(tmp_path: Path):
    opened = ViewStore.open(tmp_path / "view")
    yield opened
    opened.close()


def put(store: ViewStore, items: dict[tuple[str, str, str], str | None], offset: int, version: int) -> None:
    ops = {ItemKey(*i): None if v is None else Entry(v, version) for i, v in items.items()}
    store.write(ViewWrites(ops, offset, version))


# Prefix collisions ("a"/"ab", "t"/"t2"), unicode beyond the BMP, and code points around the NUL separator.
ITEMS = {
    ("a", "t", "k"): "1", ("a", "t", "k2"): "2", ("a", "t2", "k"): "3", ("ab", "t", "k"): "4",
    ("a", "t", "é"): "5", ("a", "t", "😀"): "6", ("a", "t", "\x01"): "7", ("b", "t", "z"): "8",
    ("__template__", "t", "k"): "9", ("a", "tt", "x"): "10", ("a", "s", "y"): "11",
}


def utf8(*names: str) -> tuple[bytes, ...]:
    return tuple(n.encode() for n in names)


def test_a_fresh_store_is_empty_at_offset_and_version_zero(store):
    meta = store.meta()
    assert (meta.offset, meta.version, meta.format_version, meta.caught_up_ms) == (0, 0, FORMAT_VERSION, 0)
    view = store.snapshot()
    assert isinstance(view, ViewReader)
    assert view.version == 0 and view.get(ItemKey("a", "t", "k")) is None
    assert list(view.scan_workspace("a")) == [] and list(view.scan_all_workspaces("t")) == []


def test_scans_return_exactly_their_prefix_in_utf8_byte_order(store):
    put(store, ITEMS, offset=12, version=3)
    view = store.snapshot()
    expected_type = sorted((k for (w, t, k) in ITEMS if (w, t) == ("a", "t")), key=lambda k: k.encode())
    assert [k for k, _ in view.scan_type("a", "t")] == expected_type
    assert [k for k, _ in view.scan_type("a", "t2")] == ["k"]
    assert [k for k, _ in view.scan_type("ab", "t")] == ["k"]
    assert list(view.scan_type("a", "nope")) == [] and list(view.scan_type("", "t")) == []
    expected_ws = sorted(((t, k) for (w, t, k) in ITEMS if w == "a"), key=lambda tk: utf8(*tk))
    assert [(t, k) for t, k, _ in view.scan_workspace("a")] == expected_ws
    expected_all = sorted(((w, k) for (w, t, k) in ITEMS if t == "t"), key=lambda wk: utf8(*wk))
    assert [(w, k) for w, k, _ in view.scan_all_workspaces("t")] == expected_all
    assert ("__template__", "k") in expected_all, "reserved workspaces are listed too"
    assert [(w, k) for w, k, _ in view.scan_all_workspaces("t2")] == [("a", "k")]


def test_workspaces_lists_each_workspace_with_items_once_in_byte_order(store):
    put(store, {**ITEMS, ("a\x01b", "t", "k"): "12", ("ab", "t", "k"): None}, offset=13, version=4)
    with store.snapshot() as view:
        expected = sorted(({w for (w, _, _) in ITEMS} | {"a\x01b"}) - {"ab"}, key=str.encode)
        assert view.workspaces() == expected
    put(store, {i: None for i in ITEMS} | {("a\x01b", "t", "k"): None}, offset=14, version=5)
    with store.snapshot() as view:
        assert view.workspaces() == []


def test_values_and_per_key_versions_round_trip_and_deletes_remove_both_column_families(store):
    put(store, {("w", "t", "a"): "x" * 1000, ("w", "t", "b"): "ünïcødé 😀"}, offset=3, version=1)
    put(store, {("w", "t", "b"): None, ("w", "u", "c"): ""}, offset=6, version=2)
    view = store.snapshot()
    assert view.get(ItemKey("w", "t", "a")) == Entry("x" * 1000, 1)
    assert view.get(ItemKey("w", "t", "b")) is None
    assert view.get(ItemKey("w", "u", "c")) == Entry("", 2), "an empty value is a value"
    assert list(view.scan_type("w", "t")) == [("a", Entry("x" * 1000, 1))]
    assert list(view.scan_all_workspaces("t")) == [("w", "a", Entry("x" * 1000, 1))]
    assert (view.version, store.meta().offset) == (2, 6)


def test_an_entry_read_back_is_a_plain_frozen_entry(store):
    """Reads build entries without Entry's __init__ (it costs a third of a cold read): they must still
    equal, hash and refuse changes like any other entry, the largest version included."""
    put(store, {("w", "t", "k"): "ünï 😀"}, offset=1, version=2**64 - 1)
    entry = store.get(("w", "t", "k"))
    assert type(entry) is Entry and entry == Entry("ünï 😀", 2**64 - 1)
    assert hash(entry) == hash(Entry("ünï 😀", 2**64 - 1)) and repr(entry) == repr(Entry("ünï 😀", 2**64 - 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.value = "changed"  # type: ignore[misc]


def test_snapshot_with_dict_reader_agree(store):
    put(store, ITEMS, offset=1, version=1)
    model = DictReader({ItemKey(*i): Entry(v, 1) for i, v in ITEMS.items() if v is not None}, version=1)
    view = store.snapshot()
    for workspace in ("a", "ab", "b", "__template__"):
        assert list(view.scan_workspace(workspace)) == list(model.scan_workspace(workspace))
        for type_ in ("t", "t2", "s", "tt"):
            assert list(view.scan_type(workspace, type_)) == list(model.scan_type(workspace, type_))
    for type_ in ("t", "t2", "s", "tt"):
        assert list(view.scan_all_workspaces(type_)) == list(model.scan_all_workspaces(type_))


def test_a_snapshot_does_not_see_later_writes_in_gets_or_scans(store):
    put(store, {("w", "t", "a"): "old", ("w", "t", "gone"): "here"}, offset=2, version=1)
    before = store.snapshot()
    put(store, {("w", "t", "a"): "new", ("w", "t", "gone"): None, ("w", "t", "b"): "added"}, offset=5, version=2)
    after = store.snapshot()
    assert before.version == 1 and before.meta.offset == 2
    assert before.get(ItemKey("w", "t", "a")) == Entry("old", 1)
    assert list(before.scan_type("w", "t")) == [("a", Entry("old", 1)), ("gone", Entry("here", 1))]
    assert [k for _, k, _ in before.scan_all_workspaces("t")] == ["a", "gone"]
    assert [k for _, k, _ in before.scan_workspace("w")] == ["a", "gone"]
    assert after.version == 2
    assert list(after.scan_type("w", "t")) == [("a", Entry("new", 2)), ("b", Entry("added", 2))]


def test_two_scans_of_one_snapshot_do_not_interfere(store):
    put(store, ITEMS, offset=1, version=1)
    view = store.snapshot()
    first, second = view.scan_type("a", "t"), view.scan_workspace("b")
    assert [k for k, _ in first][:2] == ["\x01", "k"] and [k for _, k, _ in second] == ["z"]


def test_offset_version_and_data_survive_a_reopen(tmp_path):
    path = tmp_path / "view"
    with ViewStore.open(path) as store:
        put(store, {("w", "t", "k"): "v"}, offset=41, version=7)
        store.mark_caught_up(1_700_000_000_000)
    with ViewStore.open(path) as store:
        meta = store.meta()
        assert (meta.offset, meta.version, meta.format_version, meta.caught_up_ms) == (
            41, 7, FORMAT_VERSION, 1_700_000_000_000)
        assert store.snapshot().get(ItemKey("w", "t", "k")) == Entry("v", 7)


def test_destroy_removes_the_view_and_a_reopen_starts_fresh(tmp_path):
    path = tmp_path / "view"
    with ViewStore.open(path) as store:
        put(store, {("w", "t", "k"): "v"}, offset=3, version=1)
    ViewStore.destroy(path)
    assert not path.exists()
    ViewStore.destroy(path)  # nothing to remove is fine
    with ViewStore.open(path) as store:
        assert store.meta().offset == 0 and store.snapshot().get(ItemKey("w", "t", "k")) is None


@pytest.mark.parametrize("damage", ["corrupt CURRENT", "corrupt MANIFEST", "a missing table file"])
def test_a_damaged_view_raises_view_corrupt_error(tmp_path, damage):
    path = tmp_path / "view"
    with ViewStore.open(path) as store:
        put(store, {("w", "t", "k"): "v"}, offset=3, version=1)
    if damage == "a missing table file":
        for table in path.glob("*.sst"):
            table.unlink()
    else:
        target = path / "CURRENT" if damage == "corrupt CURRENT" else next(path.glob("MANIFEST-*"))
        target.write_bytes(b"\xff garbage \x00" * 20)
    with pytest.raises(ViewCorruptError, match="cannot open the view .* corrupt"):
        ViewStore.open(path)
    ViewStore.destroy(path)
    with ViewStore.open(path) as store:
        assert store.meta().version == 0


@pytest.mark.parametrize("refusal", ["a file, not a folder", "a folder, not a LOCK file"])
def test_a_view_the_system_refuses_raises_view_unavailable_error_and_keeps_its_data(tmp_path, refusal):
    """Real refusals that stop even root (a chmod would not): neither may pass for corruption."""
    path = tmp_path / "view"
    if refusal == "a file, not a folder":
        path.write_bytes(b"somebody's file")
    else:
        with ViewStore.open(path) as store:
            put(store, {("w", "t", "k"): "v"}, offset=3, version=1)
        (path / "LOCK").unlink()
        (path / "LOCK").mkdir()
    with pytest.raises(ViewUnavailableError, match="cannot open the view") as raised:
        ViewStore.open(path)
    assert not isinstance(raised.value, (ViewCorruptError, ViewLockedError))
    if refusal == "a file, not a folder":
        assert path.read_bytes() == b"somebody's file"
    else:
        (path / "LOCK").rmdir()
        with ViewStore.open(path) as store:
            assert store.snapshot().get(ItemKey("w", "t", "k")) == Entry("v", 1)


@pytest.mark.parametrize(("message", "kind"), [
    ("IO error: While open a file for appending: /v/000012.log: Permission denied", ViewUnavailableError),
    ("IO error: While appending to file: /v/000012.log: No space left on device", ViewUnavailableError),
    ("IO error: While open a file for random read: /v/000011.sst: Too many open files", ViewUnavailableError),
    ("Too many open files (os error 24)", ViewUnavailableError),
    ("IO error: While lock file: /v/LOCK: Resource temporarily unavailable", ViewLockedError),
    ("Corruption: block checksum mismatch", ViewCorruptError),
])
def test_rocksdb_errors_map_to_one_typed_error_each(monkeypatch, tmp_path, message, kind):
    """The exact texts RocksDB gives for EACCES, ENOSPC and EMFILE, which a test cannot provoke as root."""
    def refuse(*args, **kwargs):
        raise Exception(message)

    monkeypatch.setattr(store_module, "Rdict", refuse)
    with pytest.raises(kind) as raised:
        ViewStore.open(tmp_path / "view")
    assert type(raised.value) is kind


def test_a_view_open_elsewhere_raises_view_locked_error(tmp_path, store):
    with pytest.raises(ViewLockedError, match="open elsewhere"):
        ViewStore.open(store.path)
    other = tmp_path / "other"
    ViewStore.open(other).close()
    with view_held_elsewhere(other):
        with pytest.raises(ViewLockedError):
            ViewStore.open(other)


def test_close_releases_the_lock_and_a_closed_store_refuses_use(tmp_path):
    path = tmp_path / "view"
    store = ViewStore.open(path)
    store.snapshot().get(ItemKey("w", "t", "k"))
    store.close()
    store.close()  # idempotent
    with pytest.raises(ViewError, match="closed"):
        store.write(ViewWrites({}, 1, 1))
    with pytest.raises(ViewError, match="closed"):
        store.snapshot()
    ViewStore.open(path).close()


def test_closing_the_store_closes_its_snapshots_so_the_view_can_reopen_at_once(tmp_path):
    path = tmp_path / "view"
    store = ViewStore.open(path)
    put(store, {("w", "t", "k"): "v"}, offset=1, version=1)
    held = store.snapshot()
    store.close()
    with pytest.raises(ViewError, match="closed"):
        held.get(ItemKey("w", "t", "k"))
    with pytest.raises(ViewError, match="closed"):
        list(held.scan_type("w", "t"))
    with ViewStore.open(path) as again:
        assert again.snapshot().get(ItemKey("w", "t", "k")) == Entry("v", 1)
