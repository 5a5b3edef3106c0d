"""``python -m bench.probe_service``: ``eventconfig serve`` with a per-batch timing log, for the benchmark.

It runs the same :class:`~eventconfig.process.ConfigService` as ``eventconfig serve`` (settings from
the ``EVENTCONFIG_*`` environment; writer, view and push projector) and wraps, in this process only,
the writer's batch handling, the transaction commits and the producer's offset/commit calls with
timers. One JSON line per transaction goes to ``$BENCH_PROBE_FILE`` (``role`` writer or projector):
wall time, records, and for the writer where the batch's time went:

* ``gap_ms``     previous commit's end to this batch's start (the poll: waiting for/fetching requests)
* ``handle_ms``  ``process_batch`` (decode, handle, encode; pure Python)
* ``enqueue_ms`` the ``producer.send()`` calls, one per record (CPU: serialise, append to batches)
* ``produce_ms`` the rest until the acks arrived (AddPartitionsToTxn, Produce round trips)
* ``offsets_ms`` ``send_offsets_to_transaction`` (AddOffsetsToTxn + TxnOffsetCommit)
* ``end_ms``     ``commit_transaction`` (EndTxn)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TextIO

from aiokafka import AIOKafkaProducer

from eventconfig.kafka import transactions
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from eventconfig.writer import role as writer_service

_state: dict[str, Any] = {"last_end": None}  # the writer's current batch
_role_of: dict[int, str] = {}  # id(producer) -> role, so the producer timers count the right role
_timers: dict[str, float] = {}  # "role:phase" -> seconds in the current transaction


def _timed_async(phase: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @wraps(fn)
    async def wrapper(producer: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(producer, *args, **kwargs)
        finally:
            name = f"{_role_of.get(id(producer), '?')}:{phase}"
            _timers[name] = _timers.get(name, 0.0) + time.perf_counter() - started
    return wrapper


def install_probes(out: TextIO, settings: Settings) -> None:
    """Wrap the writer's (and projector's) batch steps with timers; one JSON line per transaction."""
    original_process = writer_service.process_batch
    original_commit = transactions.TransactionalSender.commit
    writer_tx = settings.transactional_id("writer")

    @wraps(original_process)
    def process_batch(records: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        last = _state["last_end"]
        _state.update(start=started, gap=0.0 if last is None else started - last)
        result = original_process(records, *args, **kwargs)
        _state.update(handle=time.perf_counter() - started, requests=len(result.outcomes), raw=len(records),
                      log=len(result.log))
        return result

    @wraps(original_commit)
    async def commit(self: Any, records: Any, **kwargs: Any) -> None:
        role = "writer" if self.transactional_id == writer_tx else "projector"
        _role_of[id(self._producer)] = role
        _timers[f"{role}:offsets"] = _timers[f"{role}:end"] = _timers[f"{role}:send"] = 0.0
        started = time.perf_counter()
        try:
            await original_commit(self, records, **kwargs)
        finally:
            ended = time.perf_counter()
            offsets, end, send = _timers[f"{role}:offsets"], _timers[f"{role}:end"], _timers[f"{role}:send"]
            line: dict[str, Any] = {"t": time.time(), "role": role,
                                    "records": sum(len(batch) for batch in records.values()),
                                    "enqueue_ms": send * 1e3,
                                    "produce_ms": (ended - started - offsets - end - send) * 1e3,
                                    "offsets_ms": offsets * 1e3, "end_ms": end * 1e3}
            if role == "writer":
                _state["last_end"] = ended
                line.update(requests=_state.get("requests", 0), raw=_state.get("raw", 0), log=_state.get("log", 0),
                            gap_ms=_state.get("gap", 0.0) * 1e3, handle_ms=_state.get("handle", 0.0) * 1e3)
            out.write(json.dumps(line) + "\n")

    writer_service.process_batch = process_batch
    transactions.TransactionalSender.commit = commit  # type: ignore[method-assign]
    AIOKafkaProducer.send_offsets_to_transaction = _timed_async(  # type: ignore[method-assign]
        "offsets", AIOKafkaProducer.send_offsets_to_transaction)
    AIOKafkaProducer.commit_transaction = _timed_async(  # type: ignore[method-assign]
        "end", AIOKafkaProducer.commit_transaction)
    AIOKafkaProducer.send = _timed_async("send", AIOKafkaProducer.send)  # type: ignore[method-assign]


async def _flush_every(out: TextIO, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        out.flush()


async def main() -> None:
    """Run the service until SIGTERM/SIGINT, with the probes installed."""
    path = os.environ.get("BENCH_PROBE_FILE", os.devnull)
    with open(path, "a", buffering=1 << 16) as out:
        settings = Settings.load()
        install_probes(out, settings)
        # As `eventconfig serve`: writer, view and push projector (BENCH_PROJECTOR=0: no projector).
        service = ConfigService(settings, projector=os.environ.get("BENCH_PROJECTOR", "1") != "0")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await service.start()
        flusher = asyncio.create_task(_flush_every(out, 0.5))
        waiter = asyncio.create_task(service.wait())
        stopper = asyncio.create_task(stopping.wait())
        try:
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (flusher, waiter, stopper):
                task.cancel()
            await service.stop()
        out.flush()


if __name__ == "__main__":
    asyncio.run(main())
