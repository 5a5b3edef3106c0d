"""A linearizability checker for a history of reads and writes of one versioned register (pure).

Wing and Gong's search with Lowe's memoisation (as Knossos and Porcupine do it): walk the history's
call and return events in time order; at each call, try to linearize that operation now (the model
must accept it from the current state); at a return whose operation is not linearized yet, undo the
last choice and try the next. A state already explored with the same set of linearized operations
is never explored again, so a history of unique values is checked in near-linear time.

Each key of a key-value store is its own register (linearizability is local), so a history is
checked key by key with :func:`check_history`. The register holds ``(value, version)``: an
acknowledged write returned its version, so versions must grow in the linearization order, and a
read returns the value and version it saw (``None`` and 0 for an absent key). An operation whose
outcome is unknown (no response) has no return event: it may take effect at any point after its
call, or never (placed last, it constrains nothing), as Knossos treats an ``:info`` operation.

Example::

    ops = [Op("write", "a", invoked=0.0, completed=1.0, version=1),
           Op("read", "a", invoked=2.0, completed=3.0, version=1)]
    assert linearizable(ops)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

State = tuple[str | None, int | None]  # value, version (None: set by a write whose version is unknown)
INITIAL: State = (None, 0)


@dataclass(frozen=True)
class Op:
    """One client operation on one register.

    ``kind``: ``write`` (put ``value``, answered with ``version``), ``cas`` (put ``value`` only if the
    register's version is ``base``; 0 for an absent key), or ``read`` (saw ``value`` at ``version``).
    ``completed`` is None when no response came: the outcome is unknown (reads without a response
    say nothing and should be left out).
    """

    kind: str
    value: str | None
    invoked: float
    completed: float | None
    version: int | None = None
    base: int | None = None
    client: str = ""


def step(state: State, op: Op) -> State | None:
    """The register's state after ``op`` applied to ``state``, or None if the model refuses ``op`` there."""
    value, version = state
    if op.kind == "read":
        if op.value != value:
            return None
        return state if version is None or op.version == version else None
    if op.kind == "cas" and version is not None and op.base != version:
        # A refused compare-and-set changes nothing; one without a response may have been refused.
        return state if op.completed is None else None
    if op.version is not None and version is not None and op.version <= version:
        return None  # a later write never gets an older version
    return op.value, op.version


@dataclass(eq=False)
class _Entry:
    """A call or return event in the doubly linked list the search walks."""

    op_id: int
    call: bool
    prev: _Entry | None = None
    next: _Entry | None = None
    match: _Entry | None = None  # a call's return event (None: the outcome is unknown)


def _events(ops: Sequence[Op]) -> _Entry:
    """The events in time order behind a sentinel head; at one instant calls come before returns,
    so operations that touch in time count as concurrent (the permissive reading)."""
    timed: list[tuple[float, int, _Entry]] = []
    for op_id, op in enumerate(ops):
        call = _Entry(op_id, True)
        timed.append((op.invoked, 0, call))
        if op.completed is not None:
            call.match = _Entry(op_id, False)
            timed.append((op.completed, 1, call.match))
    timed.sort(key=lambda t: (t[0], t[1]))
    head = _Entry(-1, False)
    last = head
    for _, _, entry in timed:
        last.next, entry.prev, last = entry, last, entry
    return head


def _lift(entry: _Entry) -> None:
    """Take a call (and its return) out of the list: the operation is linearized."""
    for node in (entry, entry.match):
        if node is not None:
            assert node.prev is not None
            node.prev.next = node.next
            if node.next is not None:
                node.next.prev = node.prev


def _unlift(entry: _Entry) -> None:
    """Put a lifted call (and its return) back where they were: the choice is undone."""
    for node in (entry.match, entry):
        if node is not None:
            assert node.prev is not None
            node.prev.next = node
            if node.next is not None:
                node.next.prev = node


def linearizable(ops: Sequence[Op], initial: State = INITIAL) -> bool:
    """Whether some order of ``ops`` that respects real time is a legal run of the register."""
    ops = [op for op in ops if op.kind != "read" or op.completed is not None]
    head = _events(ops)
    state, linearized = initial, 0
    seen: set[tuple[int, State]] = set()
    chosen: list[tuple[_Entry, State]] = []
    entry = head.next
    while head.next is not None:
        if entry is not None and entry.call:
            after = step(state, ops[entry.op_id])
            mark = linearized | (1 << entry.op_id)
            if after is not None and (mark, after) not in seen:
                seen.add((mark, after))
                chosen.append((entry, state))
                state, linearized = after, mark
                _lift(entry)
                entry = head.next
            else:
                entry = entry.next
        else:  # a return (or the end) with its operation unplaced: undo the last choice, try the next
            if not chosen:
                return False
            entry, state = chosen.pop()
            linearized &= ~(1 << entry.op_id)
            _unlift(entry)
            entry = entry.next
    return True


def check_history(ops_by_key: Mapping[str, Iterable[Op]]) -> list[str]:
    """The keys whose history is not linearizable (each register checked on its own), sorted."""
    return sorted(key for key, ops in ops_by_key.items() if not linearizable(list(ops)))
