"""Property: any sequence of requests, batched any way, behaves like a plain dict with a counter.

Requests go through the real batch handler; its log records go through the real applier into a
real RocksDB view that lags one batch behind (as the service's view lags its writer), so the
overlay of committed-but-unapplied changes is exercised too. Reads are answered from that view as
soon as it may answer them, and each equals the dict at the view's version then, a version that
holds every write before the read (docs/design.md §6).
"""

from __future__ import annotations

import copy
import tempfile
from collections import ChainMap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from eventconfig.codec import default_codec
from eventconfig.model import Entry, ItemKey
from eventconfig.view.apply import Applier
from eventconfig.view.store import ViewStore
from eventconfig.writer.batch import BatchConfig, RawRequest, answer_reads, process_batch

codec = default_codec()
WORKSPACES = ["w1", "w2", "_r"]
TYPES = ["a", "b"]
KEYS = ["k1", "k2", "k3"]


class DictModel:
    """The specification: a dict of (workspace, type, key) -> (value, version) and one counter."""

    def __init__(self) -> None:
        self.data: dict[ItemKey, Entry] = {}
        self.version = 0

    def expect(self, req: dict) -> dict:
        ws, op = req["workspace"], req["operation"]
        if op == "put":
            items = [(ItemKey(ws, v["type"], v["key"]), v["value"], v["if_version"]) for v in req["values"]]
            return self._write(items)
        if op == "delete":
            return self._write([(ItemKey(ws, k["type"], k["key"]), None, k["if_version"]) for k in req["keys"]])
        if op == "get":
            return {"values": [self._entry(ItemKey(ws, k["type"], k["key"])) for k in req["keys"]]}
        if op == "list":
            return {"directory": sorted(i.key for i in self.data if (i.workspace, i.type) == (ws, req["type"]))}
        config: dict[str, dict[str, str]] = {}
        for item in sorted(i for i in self.data if i.workspace == ws):
            config.setdefault(item.type, {})[item.key] = self.data[item].value
        return {"config": config}

    def _entry(self, item: ItemKey) -> tuple[str | None, int | None]:
        entry = self.data.get(item)
        return (entry.value, entry.version) if entry else (None, None)

    def _write(self, items: list[tuple[ItemKey, str | None, int | None]]) -> dict:
        for item, _, if_version in items:
            if if_version is not None and (self.data[item].version if item in self.data else 0) != if_version:
                return {"error": "conflict"}
        self.version += 1
        for item, val, _ in items:
            if val is None:
                self.data.pop(item, None)
            else:
                self.data[item] = Entry(val, self.version)
        return {"version": self.version}


def observed(req: dict, response: dict) -> dict:
    if response["error"]:
        return {"error": response["error"]["type"]}
    if req["operation"] in ("put", "delete"):
        return {"version": response["version"]}
    if req["operation"] == "get":
        return {"values": [(v["value"], v["version"]) for v in response["values"]]}
    if req["operation"] == "list":
        return {"directory": response["directory"]}
    return {"config": response["config"]}


names = st.tuples(st.sampled_from(TYPES), st.sampled_from(KEYS))
if_versions = st.one_of(st.none(), st.integers(0, 4))
put = st.builds(lambda ws, items: {"operation": "put", "workspace": ws, "values": [
    {"type": t, "key": k, "value": v, "if_version": iv} for (t, k), v, iv in items]},
    st.sampled_from(WORKSPACES), st.lists(st.tuples(names, st.text(max_size=3), if_versions), max_size=3))
delete = st.builds(lambda ws, keys: {"operation": "delete", "workspace": ws, "keys": [
    {"type": t, "key": k, "if_version": iv} for (t, k), iv in keys]},
    st.sampled_from(WORKSPACES), st.lists(st.tuples(names, if_versions), max_size=2))
get = st.builds(lambda ws, keys: {"operation": "get", "workspace": ws, "keys": [
    {"type": t, "key": k} for t, k in keys]}, st.sampled_from(WORKSPACES), st.lists(names, max_size=3))
listing = st.builds(lambda ws, t: {"operation": "list", "workspace": ws, "type": t},
                    st.sampled_from(WORKSPACES), st.sampled_from(TYPES))
dump = st.builds(lambda ws: {"operation": "config", "workspace": ws}, st.sampled_from(WORKSPACES))
requests = st.lists(st.one_of(put, put, delete, get, listing, dump), max_size=25)


@settings(max_examples=60, deadline=None)
@given(requests, st.lists(st.integers(1, 6), min_size=1, max_size=30))
def test_any_request_sequence_matches_the_dict_model(reqs, batch_sizes):
    model = DictModel()
    with tempfile.TemporaryDirectory() as tmp:
        store = ViewStore.open(Path(tmp) / "view")
        applier, offset, version = Applier(0), 0, 0
        unapplied: list[tuple[int, dict, list]] = []  # (version, changes, log records) per batch
        states = {0: copy.deepcopy(model)}  # the dict at each version
        reads: list = []  # (request, Waiting) not answered yet
        raw = [RawRequest(i, codec.encode("ConfigRequest", r), [("id", f"r{i}".encode())]) for i, r in enumerate(reqs)]
        position = 0
        for size in batch_sizes * (len(raw) // len(batch_sizes) + 1):
            if position >= len(raw):
                break
            batch, position = raw[position:position + size], position + size
            snapshot = store.snapshot()
            below = ChainMap(*(changes for _, changes, _ in reversed(unapplied)))
            result = process_batch(batch, snapshot, below, version, BatchConfig(), now_ms=0)
            requests = [codec.decode("ConfigRequest", rec.value) for rec in batch]
            writes = [req for req in requests if req["operation"] in ("put", "delete")]
            assert len(result.responses) == len(writes), "only writes are answered in the transaction"
            for req, response in zip(writes, result.responses):
                assert observed(req, codec.decode("ConfigResponse", response.value)) == model.expect(req)
                states[model.version] = copy.deepcopy(model)
            reads += zip((req for req in requests if req not in writes), result.reads)
            version = result.version
            unapplied.append((version, result.changes, result.log))
            if len(unapplied) > 1:  # the view lags one batch behind the writer
                offset = _apply(store, applier, unapplied.pop(0)[2], offset)
            reads = _answer(store, reads, states)
        for _, _, log in unapplied:
            offset = _apply(store, applier, log, offset)
        assert not _answer(store, reads, states), "once the view has every write, every read is answered"
        snapshot = store.snapshot()
        assert snapshot.version == model.version
        stored = {ItemKey(w, t, k): e for w in WORKSPACES for t, k, e in snapshot.scan_workspace(w)}
        assert stored == model.data
        store.close()


def _answer(store: ViewStore, reads: list, states: dict[int, DictModel]) -> list:
    """Answer the reads the view may answer; each must equal the dict at the view's version."""
    snapshot = store.snapshot()
    waiting = [read for _, read in reads]  # the writer's transactions before them committed
    result, later = answer_reads(waiting, snapshot, 0, BatchConfig(), now_ms=0)
    answered = [req for (req, _), read in zip(reads, waiting) if read not in later]
    assert len(result.responses) == len(answered)
    for req, response in zip(answered, result.responses):
        assert observed(req, codec.decode("ConfigResponse", response.value)) == states[snapshot.version].expect(req)
    return [(req, read) for (req, read), wait in zip(reads, waiting) if wait in later]


def _apply(store: ViewStore, applier: Applier, log: list, offset: int) -> int:
    for record in log:
        applier.add(offset, record.key, record.value, record.headers)
        offset += 1
    writes = applier.take(offset)
    if writes is not None:
        store.write(writes)
    return offset
