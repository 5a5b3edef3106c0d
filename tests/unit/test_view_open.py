"""Which open errors rebuild the view (corruption only) and which wait for it (a lock, a refusal)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest

from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings
from eventconfig.view import Materializer, ViewLockedError, ViewStore, ViewUnavailableError, ViewWrites
from tests.support import release, view_held_elsewhere

DAY_MS = 24 * 3600 * 1000


def a_view(path: Path) -> None:
    with ViewStore.open(path) as store:
        store.write(ViewWrites({ItemKey("w", "t", "k"): Entry("v", 1)}, 3, 1))


def materializer(tmp_path: Path, wait_ms: int = 10_000) -> Materializer:
    settings = dataclasses.replace(Settings.load(env={}), view_open_wait_ms=wait_ms)
    return Materializer(settings, tmp_path / "view")


async def open_view(m: Materializer) -> ViewStore:
    """The materializer's open rule against a log of 3 records; no broker involved."""
    return await m._open_store(0, 3, DAY_MS)


async def logged(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(text in r.getMessage() for r in caplog.records):
        assert asyncio.get_running_loop().time() < deadline, f"nobody logged {text!r}"
        await asyncio.sleep(0.01)


async def test_a_view_locked_by_a_process_shutting_down_is_opened_once_released(tmp_path, caplog):
    a_view(tmp_path / "view")
    m = materializer(tmp_path)
    caplog.set_level(logging.WARNING, "eventconfig.view.materializer")
    with view_held_elsewhere(tmp_path / "view") as holder:
        opening = asyncio.create_task(open_view(m))
        await logged(caplog, "cannot open the view yet")
        assert not opening.done()
        release(holder)
        store = await asyncio.wait_for(opening, 10)
    with store:
        assert m.rebuild_reason is None and store.get(ItemKey("w", "t", "k")) == Entry("v", 1)


async def test_a_view_locked_for_longer_than_the_wait_fails_loudly_and_is_kept(tmp_path):
    a_view(tmp_path / "view")
    with view_held_elsewhere(tmp_path / "view"):
        with pytest.raises(ViewLockedError, match="gave up after 300 ms"):
            await open_view(materializer(tmp_path, wait_ms=300))
    with ViewStore.open(tmp_path / "view") as store:
        assert store.get(ItemKey("w", "t", "k")) == Entry("v", 1)


async def test_a_view_the_system_refuses_is_retried_then_fails_and_is_never_wiped(tmp_path, caplog):
    path = tmp_path / "view"
    a_view(path)
    (path / "LOCK").unlink()
    (path / "LOCK").mkdir()  # EISDIR on the lock file: a refusal even root gets
    m = materializer(tmp_path, wait_ms=300)
    caplog.set_level(logging.WARNING, "eventconfig.view.materializer")
    with pytest.raises(ViewUnavailableError, match="Is a directory.*gave up"):
        await open_view(m)
    assert any("cannot open the view yet" in r.getMessage() for r in caplog.records), "it was retried"
    assert m.rebuild_reason is None
    (path / "LOCK").rmdir()
    with ViewStore.open(path) as store:
        assert store.get(ItemKey("w", "t", "k")) == Entry("v", 1)


async def test_a_corrupt_view_is_rebuilt(tmp_path):
    path = tmp_path / "view"
    a_view(path)
    (path / "CURRENT").write_bytes(b"\xff garbage \x00" * 20)
    m = materializer(tmp_path)
    with await open_view(m) as store:
        assert "corrupt" in (m.rebuild_reason or "")
        assert store.meta().offset == 0 and store.get(ItemKey("w", "t", "k")) is None
