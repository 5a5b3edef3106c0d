"""The commit pipeline of the exclusive roles (eventconfig.kafka.commits): transactions in order, at most
one in flight, a failure reported once and every later commit of the activation refused untried."""

from __future__ import annotations

import asyncio
from typing import Any

from eventconfig.kafka.adapter import TopicPartition
from eventconfig.kafka.commits import CommitPipeline
from eventconfig.kafka.transactions import Fenced, TransactionFailed

TP = TopicPartition("in", 0)


class Sender:
    """An in-memory transactional sender: each commit waits for its gate, then commits or fails."""

    transactional_id = "t.tx"

    def __init__(self) -> None:
        self.gates: list[asyncio.Future[Exception | None]] = []
        self.committed: list[Any] = []
        self.begun: list[Any] = []

    async def commit(self, records: Any, *, offsets: Any = None, group_id: str = "") -> None:
        self.begun.append(records)
        gate: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        error = await gate
        if error is not None:
            raise error
        self.committed.append((records, offsets))


def pipeline(sender: Sender, failures: list[tuple[Exception, Any]]) -> CommitPipeline:
    async def failed(error: Exception, batch: Any) -> None:
        failures.append((error, batch))
    return CommitPipeline(sender, "g", TP, on_failure=failed)  # type: ignore[arg-type]


async def until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


async def test_the_next_transaction_begins_only_once_the_one_in_flight_committed() -> None:
    sender, failures, done = Sender(), [], []
    commits = pipeline(sender, failures)
    assert await commits.submit({"out": ["a"]}, 1, "m", then=lambda: done.append("a"))
    second = asyncio.create_task(commits.submit({"out": ["b"]}, 2, then=lambda: done.append("b")))
    await until(lambda: sender.gates)
    assert not second.done() and sender.begun == [{"out": ["a"]}], "b waits while a is in flight"
    sender.gates[0].set_result(None)
    assert await second and commits.begun == 2
    sender.gates[1].set_result(None)
    assert await commits.drain()
    assert [offsets for _, offsets in sender.committed] == [{TP: (1, "m")}, {TP: (2, "")}]
    assert done == ["a", "b"] and failures == []


async def test_a_failed_commit_is_reported_once_and_later_ones_are_not_tried() -> None:
    sender, failures, done = Sender(), [], []
    commits = pipeline(sender, failures)
    await commits.submit({"out": ["a"]}, 1, batch="batch a", then=lambda: done.append("a"))
    second = asyncio.create_task(commits.submit({"out": ["b"]}, 2, batch="batch b"))
    await until(lambda: sender.gates)
    error = Fenced("a newer producer")
    sender.gates[0].set_result(error)
    assert not await second, "b is refused: it is redone from committed state"
    assert not await commits.commit({"out": ["c"]}, 3)
    assert sender.begun == [{"out": ["a"]}] and done == []
    assert failures == [(error, "batch a")]
    commits.reset()  # the next activation commits again
    task = asyncio.create_task(commits.commit({"out": ["d"]}, 4))
    await until(lambda: len(sender.gates) == 2)
    sender.gates[1].set_result(None)
    assert await task and commits.begun == 1


async def test_commit_waits_for_its_own_outcome_and_a_commit_without_an_input_offset_commits_no_offset() -> None:
    sender, failures = Sender(), []
    commits = pipeline(sender, failures)
    task = asyncio.create_task(commits.commit({"out": ["x"]}, None))
    await until(lambda: sender.gates)
    sender.gates[0].set_result(None)
    assert await task and sender.committed == [({"out": ["x"]}, None)]
    task = asyncio.create_task(commits.commit({"out": ["y"]}, 5))
    await until(lambda: len(sender.gates) == 2)
    error = TransactionFailed("broker gone")
    sender.gates[1].set_result(error)
    assert not await task and commits.broken and failures == [(error, None)]
